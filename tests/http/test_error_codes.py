"""Every wire error code is declared once with its status and message: the errors tokenserver
raises and those aiohttp raises by itself answer the declared code on any Python version, and
the OpenAPI document lists the 429 and 503 every operation can answer."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from aiohttp import ClientResponse, web, web_exceptions, web_response

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, basic, serving
from tests.http.openapi_check import DOC, check_response
from tokenserver import errors
from tokenserver.errors import (
    ERROR_CODES,
    FRAMEWORK_ERRORS,
    StorageError,
    TokenServerError,
    TooManyRequests,
    declare,
)
from tokenserver.http.appkeys import REALM
from tokenserver.http.errors import error_middleware

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"

# The codes clients saw for aiohttp's own errors when they were derived from Python 3.11's
# status phrases; pinned here so that they never change again.
FRAMEWORK_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "PAYMENT_REQUIRED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    407: "PROXY_AUTHENTICATION_REQUIRED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    410: "GONE",
    411: "LENGTH_REQUIRED",
    412: "PRECONDITION_FAILED",
    413: "REQUEST_ENTITY_TOO_LARGE",
    414: "REQUEST_URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "REQUESTED_RANGE_NOT_SATISFIABLE",
    417: "EXPECTATION_FAILED",
    421: "MISDIRECTED_REQUEST",
    422: "UNPROCESSABLE_ENTITY",
    424: "FAILED_DEPENDENCY",
    426: "UPGRADE_REQUIRED",
    428: "PRECONDITION_REQUIRED",
    429: "TOO_MANY_REQUESTS",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    451: "UNAVAILABLE_FOR_LEGAL_REASONS",
    500: "INTERNAL_SERVER_ERROR",
    501: "NOT_IMPLEMENTED",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
    505: "HTTP_VERSION_NOT_SUPPORTED",
    506: "VARIANT_ALSO_NEGOTIATES",
    507: "INSUFFICIENT_STORAGE",
    510: "NOT_EXTENDED",
    511: "NETWORK_AUTHENTICATION_REQUIRED",
}


def aiohttp_errors() -> list[type[web.HTTPError]]:
    """One web.HTTPError class per status aiohttp can raise (a few statuses have two names)."""
    by_status: dict[int, type[web.HTTPError]] = {}
    for _, cls in inspect.getmembers(web_exceptions, inspect.isclass):
        if issubclass(cls, web.HTTPError) and cls.status_code >= 400:
            by_status.setdefault(cls.status_code, cls)
    return [by_status[s] for s in sorted(by_status)]


def instance(cls: type[web.HTTPError]) -> web.HTTPError:
    if cls is web.HTTPMethodNotAllowed:
        return web.HTTPMethodNotAllowed("PUT", ["GET"])
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20)
    if cls is web.HTTPUnavailableForLegalReasons:
        return web.HTTPUnavailableForLegalReasons("https://example.com/why")
    return cls()


def token_server_errors() -> Iterator[type[TokenServerError]]:
    pending: list[type[TokenServerError]] = [TokenServerError]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


async def raising(
    aiohttp_client: AiohttpClient, error: Exception, *, anonymous: bool = False
) -> ClientResponse:
    """What the error middleware answers when a handler raises `error`, to a caller with
    credentials (not checked here) or, with `anonymous`, without."""

    async def handler(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app[REALM] = "http://test/service/token"
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    return await client.get("/", headers={} if anonymous else {"Authorization": "Basic eDp5"})


async def envelope(response: ClientResponse) -> tuple[int, str, str]:
    body = await response.json()
    (entry,) = body["errors"]
    assert set(entry) == {"code", "message"}
    return response.status, entry["code"], entry["message"]


def test_every_status_aiohttp_can_raise_has_a_declared_code() -> None:
    statuses = [cls.status_code for cls in aiohttp_errors()]
    assert statuses == sorted(FRAMEWORK_CODES)
    for status, code in FRAMEWORK_CODES.items():
        declared = FRAMEWORK_ERRORS[status]
        assert (declared.code, declared.status) == (code, status)
        assert ERROR_CODES[code] is declared


@pytest.mark.parametrize("cls", aiohttp_errors(), ids=lambda c: str(c.status_code))
async def test_aiohttp_errors_answer_their_declared_code(
    aiohttp_client: AiohttpClient, cls: type[web.HTTPError]
) -> None:
    status, code, message = await envelope(await raising(aiohttp_client, instance(cls)))
    assert status == cls.status_code
    assert code == FRAMEWORK_CODES[status]
    assert message == ERROR_CODES[code].message


@pytest.mark.parametrize("cls", list(token_server_errors()), ids=lambda c: c.__name__)
async def test_each_error_class_answers_its_declared_code_and_status(
    aiohttp_client: AiohttpClient, cls: type[TokenServerError]
) -> None:
    error = TooManyRequests("locked", 5) if cls is TooManyRequests else cls("the message")
    status, code, message = await envelope(await raising(aiohttp_client, error))
    assert ERROR_CODES[code] is cls.error
    assert (status, code) == (cls.error.status, cls.error.code)
    assert message == error.message


async def test_attack_anonymous_callers_cannot_tell_missing_from_private(
    aiohttp_client: AiohttpClient,
) -> None:
    """A private project (or a robot, a user) answers an anonymous caller 401; a missing one
    answered 404, so anyone could list what exists."""
    response = await raising(aiohttp_client, errors.ProjectNotFound("no"), anonymous=True)
    assert await envelope(response) == (401, "UNAUTHORIZED", "authentication required")
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_storage_errors_are_the_declared_503() -> None:
    assert issubclass(StorageError, TokenServerError)
    assert (StorageError.error.code, StorageError.error.status) == ("SERVICE_UNAVAILABLE", 503)


def test_a_code_cannot_be_declared_twice() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        declare("NOT_FOUND", 410, "Gone")
    assert errors.NOT_FOUND.status == 404


async def test_attack_python_313_phrase_does_not_rename_the_413_code(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.13 renamed 413's phrase "Request Entity Too Large" to "Content Too Large";
    a code derived from the phrase changed under clients with the interpreter. This runs 3.13's
    phrase on any Python."""
    monkeypatch.setattr(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "phrase", "Content Too Large")
    monkeypatch.setitem(web_response.REASON_PHRASES, 413, "Content Too Large")
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    huge = b'{"project_name": "x", "comment": "' + b"a" * 100_000 + b'"}'
    r = await server.client.post(
        f"{API}/projects", data=huge, headers=basic("admin", ADMIN_PASSWORD)
    )
    assert await envelope(r) == (413, "REQUEST_ENTITY_TOO_LARGE", "Request Entity Too Large")


async def test_attack_unknown_route_and_method_keep_their_codes_whatever_the_phrases(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HTTPStatus.NOT_FOUND, "phrase", "Nothing Here")
    monkeypatch.setitem(web_response.REASON_PHRASES, 404, "Nothing Here")
    monkeypatch.setitem(web_response.REASON_PHRASES, 405, "Wrong Verb")
    assert await envelope(await server.client.get("/nope")) == (404, "NOT_FOUND", "Not Found")
    r = await server.client.put("/service/token")
    assert await envelope(r) == (405, "METHOD_NOT_ALLOWED", "Method Not Allowed")
    assert r.headers["Allow"]


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, item in DOC["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield method, template, op


@pytest.mark.parametrize(("method", "template", "op"), list(operations()))
def test_every_operation_documents_lockout_and_outage(
    method: str, template: str, op: dict[str, Any]
) -> None:
    responses = op["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "503" in responses


@pytest.fixture
async def strict(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> AsyncIterator[Server]:
    settings = make_settings(security__lockout_threshold=3)
    async with serving(settings, aiohttp_client) as server:
        await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
        yield server


async def call(server: Server, method: str, path: str, **kwargs: Any) -> ClientResponse:
    r = await server.client.request(method, API + path, **kwargs)
    check_response(method, API + path, r.status, r.headers, await r.read())
    return r


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/projects"), ("HEAD", "/projects?project_name=p"), ("POST", "/robots"),
     ("PUT", "/users/1/password"), ("GET", "/permissions")],
)  # fmt: skip
async def test_attack_locked_out_basic_credentials_get_the_documented_429(
    strict: Server, method: str, path: str
) -> None:
    for i in range(3):
        r = await call(strict, "GET", "/projects", headers=basic("admin", f"Wrong{i}Password"))
        assert r.status == 401
    r = await call(strict, method, path, headers=basic("admin", ADMIN_PASSWORD), json={})
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/projects"), ("HEAD", "/projects?project_name=p"), ("POST", "/robots"),
     ("GET", "/robots/1"), ("GET", "/audit-logs")],
)  # fmt: skip
async def test_attack_database_outage_answers_the_documented_503(
    strict: Server, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    store = strict.runtime.store

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("the database is unavailable; try again")

    for name, _ in inspect.getmembers(store, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            monkeypatch.setattr(store, name, unavailable)
    r = await call(strict, method, path, headers=basic("admin", ADMIN_PASSWORD), json={})
    assert r.status == 503
    if method != "HEAD":
        assert await envelope(r) == (
            503,
            "SERVICE_UNAVAILABLE",
            "the database is unavailable; try again",
        )
