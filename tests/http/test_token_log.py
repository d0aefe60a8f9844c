"""One log line per token request, at `info`: the token service's outcome (who, what was asked
and granted, or why not) with what the access line said of the request (client, method,
status, time, request id, agent); never a secret. Other requests keep their access line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import Server, basic
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.http.observability import AccessLogger, server_handler

TOKEN = "/service/token"
SCOPE = "repository:p/app:pull,push"
LOGGERS = ("tokenserver.access", "tokenserver.token")


@pytest.fixture
async def served(make_settings: MakeSettings) -> AsyncIterator[Server]:
    """A server whose access log is the one `tokenserver serve` writes."""
    settings = with_migrated_database(make_settings())
    test_server = TestServer(create_app(settings))
    await test_server.start_server(
        access_log_class=AccessLogger, access_log=logging.getLogger("tokenserver.access")
    )
    client = TestClient(test_server)
    try:
        yield Server(client, test_server.app[RUNTIME], settings)
    finally:
        await client.close()


def lines_of(caplog: pytest.LogCaptureFixture, request_id: str) -> list[str]:
    """Every line the access and token logs wrote about the request `request_id`."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name in LOGGERS and f" id={request_id} " in r.getMessage()
    ]


@pytest.fixture
def info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


async def test_an_issued_token_is_one_line_saying_what_both_lines_said(
    served: Server, info: pytest.LogCaptureFixture
) -> None:
    robot = await served.robot("p", "ci", "repository:pull")
    response = await served.client.get(
        TOKEN,
        params={"service": "registry", "scope": SCOPE},
        headers={**robot.headers, "X-Request-Id": "req-1", "User-Agent": "docker/27 go"},
    )
    assert response.status == 200
    (line,) = lines_of(info, "req-1")
    assert re.fullmatch(
        rf"token issued grant=basic account='{re.escape(robot.name)}' client=127\.0\.0\.1 "
        rf"scopes='{SCOPE}' granted='repository:p/app:pull' "
        r"method=GET status=200 ms=\d+\.\d id=req-1 agent='docker/27 go'",
        line,
    ), line
    [record] = [r for r in info.records if r.name in LOGGERS and "req-1" in r.getMessage()]
    assert record.name == "tokenserver.token" and record.levelno == logging.INFO
    assert robot.secret not in info.text
    assert (await response.json())["token"] not in info.text


async def test_a_denied_password_grant_is_one_line_with_its_status_and_no_secret(
    served: Server, info: pytest.LogCaptureFixture
) -> None:
    robot = await served.robot("p", "ci", "repository:pull")
    response = await served.client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "service": "registry",
            "username": robot.name,
            "password": "Wr0ngSecretWr0ngSecret",
            "scope": SCOPE,
        },
        headers={"X-Request-Id": "req-2"},
    )
    assert response.status == 401
    (line,) = lines_of(info, "req-2")
    assert line.startswith(f"token denied grant=password account='{robot.name}' client=127.0.0.1 ")
    assert "reason='invalid username or password'" in line
    assert re.search(r" method=POST status=401 ms=\d+\.\d id=req-2 agent='[^']*'$", line), line
    assert "Wr0ngSecret" not in info.text


@pytest.mark.parametrize(
    ("method", "data", "headers", "status", "grant"),
    [
        ("PUT", None, {}, 405, "unknown"),
        ("POST", "grant_type=password", {"Content-Type": "text/plain"}, 400, "unknown"),
        (
            "POST",
            "grant_type=password&username=robot%24p%2Bci",
            {"Content-Type": "application/x-www-form-urlencoded"},
            401,
            "password",
        ),
    ],
    ids=["method not allowed", "not a form", "no password"],
)
async def test_a_token_request_refused_before_the_token_service_is_one_line_too(
    served: Server,
    info: pytest.LogCaptureFixture,
    method: str,
    data: str | None,
    headers: dict[str, str],
    status: int,
    grant: str,
) -> None:
    response = await served.client.request(
        method, TOKEN, data=data, headers={**headers, "X-Request-Id": "req-3"}
    )
    assert response.status == status
    (line,) = lines_of(info, "req-3")
    assert re.fullmatch(
        rf"token denied grant={grant} client=127\.0\.0\.1 method={method} status={status} "
        r"ms=\d+\.\d id=req-3 agent='[^']*'",
        line,
    ), line


async def test_other_requests_keep_their_access_line(
    served: Server, info: pytest.LogCaptureFixture
) -> None:
    response = await served.client.get("/healthz", headers={"X-Request-Id": "req-4"})
    assert response.status == 200
    (line,) = lines_of(info, "req-4")
    assert re.fullmatch(r"127\.0\.0\.1 GET /healthz 200 \d+\.\dms id=req-4 agent='[^']*'", line)
    (record,) = [r for r in info.records if "req-4" in r.getMessage()]
    assert record.name == "tokenserver.access"


async def test_attack_the_agent_cannot_forge_a_line_or_a_field(
    served: Server, info: pytest.LogCaptureFixture
) -> None:
    """The agent is the caller's text at the end of the line: a quote cannot end it early and
    append fields. (Control characters, which aiohttp's client will not send, are escaped as
    in every line: tests/cli/test_log_injection.py sends them over a socket.)"""
    agent = "x' status=200 ms=0.1 id=admin agent='y"
    response = await served.client.get(
        TOKEN,
        params={"service": "registry", "scope": "repository:p/app:pull"},
        headers={
            "X-Request-Id": "req-5",
            "User-Agent": agent,
            **basic("robot$p+ci", "Wr0ngSecretWr0ngSecret"),
        },
    )
    assert response.status == 401
    (line,) = lines_of(info, "req-5")
    assert line.isprintable()
    assert line.endswith(" id=req-5 agent='x\\' status=200 ms=0.1 id=admin agent=\\'y'")
    fields = line.split(" agent='")[0]
    assert fields.count(" status=") == 1 and " status=401 " in fields and fields.count(" id=") == 1


async def test_attack_concurrent_token_requests_each_get_their_own_line(
    served: Server, info: pytest.LogCaptureFixture
) -> None:
    """Requests in flight together: each line has its own id, outcome and status."""
    robot = await served.robot("p", "ci", "repository:pull")
    good, bad = robot.headers, basic(robot.name, "Wr0ngSecretWr0ngSecret")

    async def ask(i: int) -> int:
        response = await served.client.get(
            TOKEN,
            params={"service": "registry", "scope": "repository:p/app:pull"},
            headers={**(good if i % 2 else bad), "X-Request-Id": f"par-{i}"},
        )
        return response.status

    # Below the lockout threshold (10 failures per account and address).
    statuses = await asyncio.gather(*(ask(i) for i in range(16)))
    assert statuses == [200 if i % 2 else 401 for i in range(16)]
    for i in range(16):
        (line,) = lines_of(info, f"par-{i}")
        outcome, status = ("issued", 200) if i % 2 else ("denied", 401)
        assert line.startswith(f"token {outcome} grant=basic ") and f" status={status} " in line


async def test_at_level_warning_a_token_request_writes_no_line(
    served: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    robot = await served.robot("p", "ci", "repository:pull")
    response = await served.client.get(
        TOKEN,
        params={"service": "registry", "scope": SCOPE},
        headers={**robot.headers, "X-Request-Id": "req-6"},
    )
    assert response.status == 200
    assert not [r for r in caplog.records if r.name in LOGGERS]


@contextlib.contextmanager
def serve_logging(form: str) -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """The root logger as `tokenserver serve` sets it up, its handler alone (pytest's capture
    set aside), writing to a string: the token lines take their direct way."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    handler = server_handler(stream, form)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream, handler
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


LINE_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.mark.parametrize("form", ["text", "json"])
async def test_the_served_token_lines_are_what_logging_would_write(
    served: Server, form: str
) -> None:
    """Where the server's handler is the only one, token lines are formatted for it directly:
    the same fields, the same escaping, one line each, in either format."""
    robot = await served.robot("p", "ci", "repository:pull")
    with serve_logging(form) as (stream, handler):
        issued = await served.client.get(
            TOKEN,
            params={"service": "registry", "scope": SCOPE},
            headers={**robot.headers, "X-Request-Id": "req-d1", "User-Agent": "it's docker/27"},
        )
        denied = await served.client.get(
            TOKEN,
            params={"service": "registry", "scope": SCOPE},
            headers={**basic(robot.name, "Wr0ngSecretWr0ngSecret"), "X-Request-Id": "req-d2"},
        )
        await asyncio.sleep(0)
        handler.flush()
    assert (issued.status, denied.status) == (200, 401)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    issued_line = (
        rf"token issued grant=basic account='{re.escape(robot.name)}' client=127\.0\.0\.1 "
        rf"scopes='{SCOPE}' granted='repository:p/app:pull' "
        r"method=GET status=200 ms=\d+\.\d id=req-d1 agent='it\\'s docker/27'"
    )
    denied_line = (
        rf"token denied grant=basic account='{re.escape(robot.name)}' client=127\.0\.0\.1 "
        rf"scopes='{SCOPE}' reason='invalid username or password' "
        r"method=GET status=401 ms=\d+\.\d id=req-d2 agent='[^']*'"
    )
    if form == "text":
        assert re.fullmatch(rf"{LINE_TIME} INFO tokenserver\.token {issued_line}", lines[0])
        assert re.fullmatch(rf"{LINE_TIME} INFO tokenserver\.token {denied_line}", lines[1])
    else:
        entries = [json.loads(line) for line in lines]
        assert [sorted(e) for e in entries] == [["level", "logger", "message", "time"]] * 2
        assert {(e["level"], e["logger"]) for e in entries} == {("info", "tokenserver.token")}
        assert re.fullmatch(issued_line, entries[0]["message"])
        assert re.fullmatch(denied_line, entries[1]["message"])
    assert robot.secret not in stream.getvalue()
    assert "Wr0ngSecret" not in stream.getvalue()
    assert (await issued.json())["token"] not in stream.getvalue()


async def test_attack_a_filter_or_handler_on_the_way_still_decides(served: Server) -> None:
    """A filter or a handler someone else added on the token lines' way is honoured: the
    lines then go through logging, a filter that drops them drops them, and a handler gets
    them."""
    robot = await served.robot("p", "ci", "repository:pull")
    seen: list[str] = []

    def drop(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return False

    token_logger, parent = logging.getLogger("tokenserver.token"), logging.getLogger("tokenserver")
    other = io.StringIO()
    theirs = logging.StreamHandler(other)
    with serve_logging("text") as (stream, handler):
        token_logger.addFilter(drop)
        try:
            dropped = await served.client.get(
                TOKEN,
                params={"service": "registry", "scope": SCOPE},
                headers={**robot.headers, "X-Request-Id": "req-f1"},
            )
            await asyncio.sleep(0)
        finally:
            token_logger.removeFilter(drop)
        parent.addHandler(theirs)
        try:
            handled = await served.client.get(
                TOKEN,
                params={"service": "registry", "scope": SCOPE},
                headers={**robot.headers, "X-Request-Id": "req-f2"},
            )
            await asyncio.sleep(0)
        finally:
            parent.removeHandler(theirs)
        handler.flush()
    assert (dropped.status, handled.status) == (200, 200)
    assert [line for line in seen if "id=req-f1" in line]
    assert "req-f1" not in stream.getvalue()
    assert "id=req-f2" in other.getvalue()
    assert re.search(
        rf"{LINE_TIME} INFO tokenserver\.token token issued .* id=req-f2 ", stream.getvalue()
    )


# What an embedding program keeps per request (a tenant, a trace id: OpenTelemetry's logging
# instrumentation reads the current span this way) and reads in a logging filter.
_EMBEDDER_REQUEST: ContextVar[str] = ContextVar("embedder_request", default="-")


async def test_attack_a_token_line_is_logged_in_its_own_requests_context(
    make_settings: MakeSettings,
) -> None:
    """Token lines written together at the end of a turn still go through logging in the
    context of the request they describe: a filter of an embedding program that reads its
    per-request context variable sees that request's value on each line, not the value of the
    first request of the turn."""
    settings = with_migrated_database(make_settings())
    app = create_app(settings)
    count = 4
    answered: list[str] = []
    all_answered = asyncio.Event()

    @web.middleware
    async def embedder(request: web.Request, handler: Handler) -> web.StreamResponse:
        _EMBEDDER_REQUEST.set(request.headers["X-Request-Id"])
        response = await handler(request)
        # NOTE: each answer waits for the others, so that all go back through `observe` in
        # one turn of the loop: their lines are written together (no timing involved).
        answered.append(request.headers["X-Request-Id"])
        if len(answered) == count:
            all_answered.set()
        await all_answered.wait()
        return response

    app.middlewares.append(embedder)
    seen: list[tuple[str, str]] = []

    def remember(record: logging.LogRecord) -> bool:
        seen.append((record.getMessage(), _EMBEDDER_REQUEST.get()))
        return True

    token_logger = logging.getLogger("tokenserver.token")
    async with TestClient(TestServer(app)) as client:
        server = Server(client, app[RUNTIME], settings)
        robot = await server.robot("p", "ci", "repository:pull")
        token_logger.addFilter(remember)
        previous = token_logger.level
        token_logger.setLevel(logging.INFO)
        try:
            responses = await asyncio.gather(
                *(
                    client.get(
                        TOKEN,
                        params={"service": "registry", "scope": SCOPE},
                        headers={**robot.headers, "X-Request-Id": f"ctx-{i}"},
                    )
                    for i in range(count)
                )
            )
            await asyncio.sleep(0)
        finally:
            token_logger.removeFilter(remember)
            token_logger.setLevel(previous)
    assert [r.status for r in responses] == [200] * count
    lines = {m.split(" id=")[1].split()[0]: context for m, context in seen if " id=ctx-" in m}
    assert lines == {f"ctx-{i}": f"ctx-{i}" for i in range(count)}


async def test_attack_a_record_factory_of_someone_elses_still_sees_the_lines(
    served: Server,
) -> None:
    """The direct way makes no LogRecord: with a record factory of someone else's installed
    (one that adds a trace id, say), the token lines go through logging and it sees them."""
    robot = await served.robot("p", "ci", "repository:pull")
    made: list[str] = []
    original = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        made.append(record.getMessage())
        return record

    with serve_logging("text") as (stream, handler):
        logging.setLogRecordFactory(factory)
        try:
            response = await served.client.get(
                TOKEN,
                params={"service": "registry", "scope": SCOPE},
                headers={**robot.headers, "X-Request-Id": "req-r1"},
            )
            await asyncio.sleep(0)
        finally:
            logging.setLogRecordFactory(original)
        handler.flush()
    assert response.status == 200
    assert [m for m in made if "id=req-r1" in m]
    assert "id=req-r1" in stream.getvalue()
