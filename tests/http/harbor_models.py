"""Parse what the server answers with Harbor's own models, not only with our own document.

Two libraries are generated from Harbor's swagger: `harbor_client` (PyPI `harbor-api-client`,
swagger-codegen: each API method names its response model) and `harborapi` (pydantic models).
An answer on an operation Harbor defines is parsed with the model Harbor's client names for
it, as strictly as the libraries allow and a little more:

- `harbor_client`'s own deserializer must take it (it is what a Harbor client runs);
- the same JSON walked with `harbor_client`'s field types: no field Harbor does not define
  (unless our document marks it "tokenserver: ..."), each value of its declared type, and no
  null anywhere: Harbor's Go server leaves an empty field out, it never sends null;
- `harborapi`'s model of the same name validates it in pydantic's strict mode;
- an error answer (4xx, 5xx) is Harbor's `Errors`, with a code and a message.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import harbor_client
import harborapi.models
from aiohttp import web
from aiohttp.typedefs import Handler
from harbor_client.api_client import ApiClient
from pydantic import BaseModel, TypeAdapter

from tokenserver.http.openapi import document

API = "/api/v2.0"

# One Harbor operation: (METHOD, path template with `{}` for each parameter).
Operation = tuple[str, str]


def template_key(path: str) -> str:
    """A path template with its parameters unnamed: Harbor's `{project_name}` and
    `{project_name_or_id}` are the same segment."""
    return re.sub(r"\{[^}]+\}", "{}", path).rstrip("/") or "/"


def _harbor_operations() -> dict[Operation, str | None]:
    """Every operation of Harbor's generated client and the model of its response (`UserResp`,
    `list[Robot]`; None: no body), read from the client's source, where each API method
    states them in its `call_api` call."""
    found: dict[Operation, str | None] = {}
    call = re.compile(
        r"call_api\(\s*'([^']+)',\s*'(\w+)',.*?response_type=(?:None|'([^']+)')", re.S
    )
    for source in sorted((Path(harbor_client.__file__).parent / "api").glob("*_api.py")):
        for match in call.finditer(source.read_text()):
            path, method, response = match.groups()
            found[(method, template_key(path))] = response
    assert len(found) > 150, "harbor_client's API methods were not found"
    return found


HARBOR_OPERATIONS = _harbor_operations()


def _extensions() -> frozenset[tuple[str, str]]:
    """(model, field) of the fields Harbor does not define: those our document describes as
    "tokenserver: ...", in the components named as Harbor's models are."""
    return frozenset(
        (name, prop)
        for name, schema in document()["components"]["schemas"].items()
        for prop, declared in schema.get("properties", {}).items()
        if str(declared.get("description", "")).startswith("tokenserver:")
    )


EXTENSIONS = _extensions()

# Fields Harbor's current swagger defines that the client libraries (harbor-api-client 2.12,
# harborapi 0.26) predate, and their types: Harbor's, not extensions.
NEWER_THAN_THE_CLIENTS: dict[tuple[str, str], str] = {
    ("ProjectMetadata", key): "str"
    for key in (
        "max_upstream_conn",
        "proxy_cache_filter_kind",
        "proxy_cache_filter_pattern",
        "proxy_cache_local_on_not_found",
        "proxy_referrer_api",
    )
}


# Each operation's path as a pattern, compiled once: every answer of every HTTP test is
# looked up here.
_PATTERNS = [
    (op, re.compile(re.escape(op[1]).replace(re.escape("{}"), "[^/]+")), op[1].count("{}"))
    for op in HARBOR_OPERATIONS
]


# Harbor's definitions that are not objects with properties: strings (swagger-codegen makes an
# empty model class of each) and an object of any keys (ExtraAttrs); harborapi's are root
# models of the same types.
_UNSHAPED: dict[str, type] = {
    "EventType": str,
    "NotifyType": str,
    "PayloadFormatType": str,
    "ExtraAttrs": dict,
}


@functools.lru_cache(maxsize=4096)
def harbor_operation(method: str, path: str) -> Operation | None:
    """The Harbor operation a concrete request path (under /api/v2.0) is, or None. A literal
    segment wins over a parameter (`/users/current` is not `/users/{user_id}`)."""
    local = path.split("?", 1)[0].removeprefix(API).rstrip("/")
    best: tuple[int, Operation] | None = None
    for op, pattern, parameters in _PATTERNS:
        if op[0] == method and (best is None or parameters < best[0]) and pattern.fullmatch(local):
            best = (parameters, op)
    return None if best is None else best[1]


# ---- the checks ------------------------------------------------------------------------------

_LIST = re.compile(r"list\[(.*)\]")
_DICT = re.compile(r"dict\(([^,]*), (.*)\)")


def strict_problems(value: Any, kind: str, where: str = "$") -> list[str]:
    """What in `value` does not match harbor_client's type `kind` strictly (see the module)."""
    if value is None:
        return [f"{where}: null (Harbor leaves an empty field out, it never sends null)"]
    if match := _LIST.fullmatch(kind):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [
            p for i, v in enumerate(value) for p in strict_problems(v, match[1], f"{where}[{i}]")
        ]
    if match := _DICT.fullmatch(kind):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [p for k, v in value.items() for p in strict_problems(v, match[2], f"{where}.{k}")]
    scalar: dict[str, type | tuple[type, ...]] = {
        "str": str,
        "int": int,
        "bool": bool,
        "float": (int, float),
        "object": object,
    }
    if kind in scalar:
        wrong = not isinstance(value, scalar[kind]) or (
            kind in ("int", "float") and isinstance(value, bool)
        )
        return [f"{where}: {value!r} is not {kind}"] if wrong else []
    if kind in ("datetime", "date"):
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return [f"{where}: {value!r} is not an RFC 3339 {kind}"]
        return []
    if kind in _UNSHAPED:
        wanted = _UNSHAPED[kind]
        wrong = not isinstance(value, wanted)
        return [f"{where}: {value!r} is not a {kind} ({wanted.__name__})"] if wrong else []
    model = getattr(harbor_client.models, kind)
    if not isinstance(value, dict):
        return [f"{where}: {type(value).__name__}, not a {kind} object"]
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key in by_key:
            problems += strict_problems(item, model.swagger_types[by_key[key]], f"{where}.{key}")
        elif (kind, key) in NEWER_THAN_THE_CLIENTS:
            problems += strict_problems(item, NEWER_THAN_THE_CLIENTS[kind, key], f"{where}.{key}")
        elif (kind, key) not in EXTENSIONS:
            problems.append(f"{where}: {key!r} is not a field of Harbor's {kind}")
    return problems


@functools.cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    """harborapi's model for harbor_client's type name (built once: building is slow)."""
    return TypeAdapter(_pydantic_type(kind))


def _pydantic_type(kind: str) -> Any:
    if match := _LIST.fullmatch(kind):
        return list[_pydantic_type(match[1])]  # type: ignore[misc]
    if match := _DICT.fullmatch(kind):
        return dict[str, _pydantic_type(match[2])]  # type: ignore[misc]
    return {"str": str, "int": int, "bool": bool}.get(kind) or getattr(harborapi.models, kind)


def _extras(parsed: Any, where: str = "$") -> list[str]:
    """Fields harborapi kept as extras (it allows them) that are not our declared extensions."""
    if isinstance(parsed, list):
        return [p for i, v in enumerate(parsed) for p in _extras(v, f"{where}[{i}]")]
    if isinstance(parsed, dict):
        return [p for k, v in parsed.items() for p in _extras(v, f"{where}.{k}")]
    if not isinstance(parsed, BaseModel):
        return []
    name = type(parsed).__name__
    problems = [
        f"{where}: {key!r} is not a field of harborapi's {name}"
        for key in parsed.model_extra or {}
        if (name, key) not in EXTENSIONS and (name, key) not in NEWER_THAN_THE_CLIENTS
    ]
    for key in type(parsed).model_fields:
        problems += _extras(getattr(parsed, key), f"{where}.{key}")
    return problems


_CLIENT = ApiClient()


@dataclass
class _Raw:
    """What harbor_client's deserializer reads of an HTTP response."""

    data: bytes


def parse_as_harbor(body: bytes, kind: str, *, deserialize: bool = True) -> list[str]:
    """Every problem Harbor's models find in `body` as a `kind` (empty: none). Without
    `deserialize`, harbor_client's own deserializer is not run (it takes milliseconds an
    answer: it builds a configuration object for every model it makes); its types are
    still checked, strictly."""
    problems: list[str] = []
    if deserialize:
        try:
            parsed = _CLIENT.deserialize(_Raw(body), kind)
        except Exception as e:  # what the client would raise to its caller
            return [f"harbor_client cannot read it as {kind}: {e!r}"]
        if parsed is None:
            problems.append(f"harbor_client read no {kind}")
    problems += strict_problems(json.loads(body), kind)
    try:
        model = _adapter(kind).validate_json(body, strict=True)
    except Exception as e:
        problems.append(f"harborapi's {kind} refuses it: {e}")
    else:
        problems += _extras(model)
    return problems


def check_answer(
    method: str, path: str, status: int, body: bytes, *, deserialize: bool = True
) -> list[str]:
    """The problems Harbor's models find in one answer of the management API."""
    if method == "HEAD":
        return []
    if status >= 400:
        problems = parse_as_harbor(body, "Errors", deserialize=deserialize)
        errors = json.loads(body).get("errors") if not problems else None
        if not problems and not (
            errors and all(e.get("code") and e.get("message") for e in errors)
        ):
            problems.append("an error answer without a code and a message")
        return problems
    op = harbor_operation(method, path)
    if op is None or not 200 <= status < 300:
        return []
    kind = HARBOR_OPERATIONS[op]
    if kind is None:
        return [] if body == b"" else [f"Harbor's client expects no body, got {body[:100]!r}"]
    return parse_as_harbor(body, kind, deserialize=deserialize)


@dataclass
class HarborModelCheck:
    """What `check_harbor_models` saw: the problems, and the Harbor operations it saw
    answered with a 2xx."""

    failures: list[str] = field(default_factory=list)
    answered: set[Operation] = field(default_factory=set)


def check_harbor_models(app: web.Application, *, deserialize: bool = True) -> HarborModelCheck:
    """Make `app` parse each answer of its management API with Harbor's models (see
    `parse_as_harbor` for `deserialize`). Problems go to the returned record's `failures`,
    for the test to assert on (raised inside the server they would only be a 500)."""
    seen = HarborModelCheck()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith(API + "/"):
            return response
        body = response.body if isinstance(response, web.Response) else None
        if not isinstance(body, bytes | None):
            seen.failures.append(f"{request.method} {request.path}: unexpected body {body!r}")
            return response
        try:
            problems = check_answer(
                request.method,
                request.path,
                response.status,
                body or b"",
                deserialize=deserialize,
            )
        except Exception as e:  # a body that is not JSON at all
            problems = [repr(e)]
        seen.failures += [
            f"{request.method} {request.path} {response.status}: {p}" for p in problems
        ]
        op = harbor_operation(request.method, request.path)
        if op is not None and 200 <= response.status < 300:
            seen.answered.add(op)
        return response

    app.middlewares.insert(0, check)
    return seen
