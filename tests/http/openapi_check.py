"""Validate real requests and responses against the served OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema import Draft202012Validator

from tokenserver.http.openapi import document

DOC = document()
API = "/api/v2.0"


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any] | None] | None:
    """The documented template of a concrete request path and its operation for `method`
    (None: the method is not documented there); None if the path is not documented."""
    local = path.split("?", 1)[0].removeprefix(API)
    for template, pattern, item in _PATHS:
        if pattern.fullmatch(local):
            return template, item.get(method.lower())
    return None


# Each documented path as a pattern, compiled once: every request of every HTTP test is
# looked up here.
_PATHS = [
    (template, re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template)), item)
    for template, item in DOC["paths"].items()
]


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented template and operation for a concrete request path."""
    found = find_operation(method, path)
    assert found is not None, f"{method} {path} is not in the OpenAPI document"
    template, op = found
    assert op is not None, f"{method} {template} is not in the OpenAPI document"
    return template, op


_VALIDATORS: dict[int, Draft202012Validator] = {}


def _validate(schema: dict[str, Any], value: Any) -> None:
    # One validator per schema of the document (they live as long as DOC does).
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = Draft202012Validator({**schema, "components": DOC["components"]})
        _VALIDATORS[id(schema)] = validator
    validator.validate(value)


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
    _validate(content["application/json"]["schema"], json.loads(body))


def check_request(method: str, path: str, body: Any) -> None:
    """A request body the server accepted matches the operation's documented request body."""
    template, op = operation(method, path)
    documented = op.get("requestBody")
    assert documented is not None, f"{method} {template} took a body it does not document"
    _validate(documented["content"]["application/json"]["schema"], body)


def check_served(app: web.Application) -> list[str]:
    """Make `app` check what it serves on the documented operations against the document:
    each response, and each request body it accepts (a 2xx answer). The failures are in the
    list returned, for the test to assert on (an assertion raised inside the server would
    only turn into a 500). Undocumented routes (404, 405) are the error tests' business."""
    failures: list[str] = []

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        found = find_operation(request.method, request.path)
        if not request.path.startswith(API + "/") or found is None or found[1] is None:
            return response
        try:
            body = response.body if isinstance(response, web.Response) else None
            assert isinstance(body, bytes | None), f"unexpected body {body!r}"
            if request.method == "HEAD":  # aiohttp sends no body
                body = None
            check_response(
                request.method, request.path, response.status, response.headers, body or b""
            )
            raw = await request.read()  # what the handler read: aiohttp keeps it
            if 200 <= response.status < 300 and raw:
                check_request(request.method, request.path, json.loads(raw))
        except Exception as e:
            failures.append(f"{request.method} {request.path} {response.status}: {e}")
        return response

    # Outermost, so that it sees what the client gets.
    app.middlewares.insert(0, check)
    return failures
