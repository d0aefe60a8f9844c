"""Validate real responses against the served OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from tokenserver.http.openapi import document

DOC = document()
API = "/api/v2.0"


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented template and operation for a concrete request path."""
    local = path.split("?", 1)[0].removeprefix(API)
    for template, item in DOC["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), local):
            op = item.get(method.lower())
            assert op is not None, f"{method} {template} is not in the OpenAPI document"
            return template, op
    raise AssertionError(f"{method} {local} is not in the OpenAPI document")


def check_response(method: str, path: str, status: int, headers: Any, body: bytes) -> None:
    template, op = operation(method, path)
    response = op["responses"].get(str(status))
    assert response is not None, f"{status} is not documented for {method} {template}"
    for name in response.get("headers", {}):
        if name != "Link":
            assert name in headers, f"{method} {template} {status}: header {name} missing"
    content = response.get("content")
    if content is None:
        assert body == b"", f"{method} {template} {status}: undocumented body {body[:200]!r}"
        return
    schema = {**content["application/json"]["schema"], "components": DOC["components"]}
    Draft202012Validator(schema).validate(json.loads(body))
