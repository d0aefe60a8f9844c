"""One log line per token request, at `info`: the token service's outcome (who, what was asked
and granted, or why not) with what the access line said of the request (client, method,
status, time, request id, agent); never a secret. Other requests keep their access line."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import Server, basic
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.http.observability import AccessLogger

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
