"""The token log says why a request got less than it asked, where the answer cannot.

A push to a project nobody created is answered as any denied scope (a token with no actions:
the registry protocol, and whether a project exists is not for a caller who may not see it);
the operator's log line says the project does not exist. A robot name mangled by a shell
(`robot$demo+ci` unquoted arrives as `robot+ci`) fails as any wrong name; the log line says
to quote it. Neither line holds a secret.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import jwt
import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, RobotCredentials, Server, basic
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

TOKEN = "/service/token"


def shell_hint(name: str) -> str:
    """The hint as the log line ends with it (quoted: its own quotes escaped)."""
    typed = "robot$..." + name.removeprefix("robot")
    return (
        f"hint='a shell expands \\'$\\' in an unquoted name, so \\'{typed}\\' arrives as "
        f"\\'{name}\\': put robot names in single quotes'"
    )


async def token_request(server: Server, scopes: list[str], headers: dict[str, str]) -> Any:
    response = await server.client.get(
        TOKEN, params=[("service", "registry"), *(("scope", s) for s in scopes)], headers=headers
    )
    assert response.status == 200, await response.text()
    return await response.json()


# What the line says of the request besides the token service's outcome (tests/http/
# test_observability.py pins it).
ACCESS_FIELDS = re.compile(r" method=(GET|POST) status=\d+ ms=[\d.]+ id=\S+ agent='[^']*'$")


def token_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The token lines, each without its request's fields (method, status, time, id, agent)."""
    lines = [m for m in caplog.messages if m.startswith("token ")]
    assert all(ACCESS_FIELDS.search(line) for line in lines), lines
    return [ACCESS_FIELDS.sub("", line) for line in lines]


def access_of(body: Any) -> Any:
    """The token's access claim (the signature is checked elsewhere)."""
    return jwt.decode(body["token"], options={"verify_signature": False})["access"]


@pytest.fixture
def info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="tokenserver.token")
    return caplog


async def test_a_push_to_a_project_that_does_not_exist_is_logged_with_the_reason(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    robot = await server.robot("demo", "ci", "repository:push")
    missing = await token_request(server, ["repository:nope/app:pull,push"], robot.headers)
    assert access_of(missing) == [{"type": "repository", "name": "nope/app", "actions": []}]
    (line,) = token_lines(info)
    assert line == (
        f"token issued grant=basic account='{robot.name}' client=127.0.0.1 "
        "scopes='repository:nope/app:pull,push' granted='repository:nope/app:' "
        "reason='project nope does not exist'"
    )
    assert robot.secret not in info.text


async def test_a_denial_in_a_project_that_exists_names_no_missing_project(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    robot = await server.robot("demo", "ci", "repository:pull")
    await server.runtime.projects.create(LOCAL, "other")
    body = await token_request(
        server, ["repository:other/app:pull,push", "repository:demo/app:pull,push"], robot.headers
    )
    assert [a["actions"] for a in access_of(body)] == [[], ["pull"]]
    (line,) = token_lines(info)
    assert "reason=" not in line and "exist" not in line


async def test_the_answer_does_not_tell_an_anonymous_caller_which_projects_exist(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    await server.runtime.projects.create(LOCAL, "private")
    existing = await token_request(server, ["repository:private/app:pull"], {})
    missing = await token_request(server, ["repository:nope/app:pull"], {})
    shape = [{"type": "repository", "name": "private/app", "actions": []}]
    assert access_of(existing) == shape
    assert access_of(missing) == [{**shape[0], "name": "nope/app"}]
    assert existing.keys() == missing.keys()
    assert "exist" not in str(missing)
    first, second = token_lines(info)
    assert "reason=" not in first
    assert second.endswith("reason='project nope does not exist'")
    assert second.startswith("token issued grant=anonymous account=''")


async def test_every_missing_project_is_named_once_also_on_repeated_requests(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    """A robot's grant is remembered (the grant memo): the reason must be remembered with it,
    and forgotten once the project exists."""
    robot = await server.robot("demo", "ci", "repository:push")
    scopes = [
        "repository:nope/a:pull",
        "repository:demo/app:push",
        "repository:nope/b:pull,push",
        "repository:gone/c:pull",
        "registry:catalog:*",
    ]
    for _ in range(3):
        await token_request(server, scopes, robot.headers)
    lines = token_lines(info)
    assert len(lines) == 3
    assert all(line.endswith(" reason='projects nope, gone do not exist'") for line in lines)
    await server.runtime.projects.create(LOCAL, "nope")
    await server.runtime.projects.create(LOCAL, "gone")
    info.clear()
    await token_request(server, scopes, robot.headers)
    (line,) = token_lines(info)
    assert "reason=" not in line


async def test_a_system_admin_pushing_to_a_missing_project_is_told_too(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    password = "Adm1nPassword0"
    await server.runtime.users.ensure_admin(password)
    body = await token_request(server, ["repository:nope/app:push"], basic("admin", password))
    assert access_of(body)[0]["actions"] == []
    (line,) = token_lines(info)
    assert line.endswith("reason='project nope does not exist'")
    assert password not in info.text


async def shell_mangled(server: Server, name: str, robot: RobotCredentials) -> str:
    response = await server.client.get(
        TOKEN,
        params={"service": "registry", "scope": "repository:demo/app:push"},
        headers=basic(name, robot.secret),
    )
    assert response.status == 401
    body = await response.text()
    assert "shell" not in body and "quote" not in body  # the log's, not the answer's
    return body


@pytest.mark.parametrize(
    "name",
    [
        "robot+ci",  # robot$demo+ci, $demo expanded to nothing
        "robot-web+ci",  # robot$demo-web+ci: $demo stops at the '-'
        "robot.x+ci",
    ],
)
async def test_a_robot_name_a_shell_expanded_gets_a_hint_to_quote_it(
    server: Server, info: pytest.LogCaptureFixture, name: str
) -> None:
    robot = await server.robot("demo", "ci", "repository:push")
    await shell_mangled(server, name, robot)
    (line,) = token_lines(info)
    assert line.startswith(f"token denied grant=basic account='{name}' ")
    assert "reason='invalid username or password'" in line
    assert line.endswith(shell_hint(name))
    assert robot.secret not in info.text


async def test_the_oauth_password_grant_gets_the_same_hint(
    server: Server, info: pytest.LogCaptureFixture
) -> None:
    robot = await server.robot("demo", "ci", "repository:push")
    response = await server.client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "service": "registry",
            "username": "robot+ci",
            "password": robot.secret,
            "scope": "repository:demo/app:push",
        },
    )
    assert response.status == 401
    (line,) = token_lines(info)
    assert line.startswith("token denied grant=password account='robot+ci' ")
    assert line.endswith(shell_hint("robot+ci"))
    assert robot.secret not in info.text


@pytest.mark.parametrize(
    "name",
    [
        "robot$demo+ci",  # the right name, a wrong secret
        "robot$nope+ci",  # an unknown robot, written correctly
        "alice",  # a user
        "robot",  # could be a user named so: no guess
        "robots",
    ],
)
async def test_other_failed_logins_get_no_hint(
    server: Server, info: pytest.LogCaptureFixture, name: str
) -> None:
    robot = await server.robot("demo", "ci", "repository:push")
    response = await server.client.get(
        TOKEN,
        params={"service": "registry", "scope": "repository:demo/app:push"},
        headers=basic(name, "Wrong0Secret"),
    )
    assert response.status == 401
    (line,) = token_lines(info)
    assert "hint=" not in line
    assert robot.secret not in info.text


async def test_no_hint_under_a_prefix_a_shell_leaves_alone(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, info: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(robots__name_prefix="bot-")
    app = create_app(settings)
    client = await aiohttp_client(app)
    runtime = app[RUNTIME]
    await runtime.projects.create(LOCAL, "demo")
    response = await client.get(
        TOKEN,
        params={"service": "registry", "scope": "repository:demo/app:push"},
        headers=basic("bot+ci", "Wrong0Secret"),
    )
    assert response.status == 401
    (line,) = token_lines(info)
    assert "hint=" not in line
