"""POST /service/token (OAuth2 password and refresh_token grants) and refresh tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse

from tests.conftest import MakeSettings, with_migrated_database
from tests.helpers import FakeClock
from tests.http.conftest import AiohttpClient, RobotCredentials, Server, basic
from tests.http.openapi_check import check_response
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

TOKEN = "/service/token"
API = "/api/v2.0"
ADMIN = basic("admin", "Adm1nPassword")


async def post(server: Server, **form: str) -> ClientResponse:
    return await server.client.post(TOKEN, data=form)


async def ok_json(response: ClientResponse) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def access(body: dict[str, Any]) -> list[Any]:
    token = body["access_token"]
    result: list[Any] = jwt.decode(token, options={"verify_signature": False})["access"]
    return result


async def refresh_token(server: Server, robot: RobotCredentials, client_id: str = "docker") -> str:
    body = await ok_json(
        await post(
            server,
            grant_type="password",
            username=robot.name,
            password=robot.secret,
            access_type="offline",
            client_id=client_id,
            service="registry",
        )
    )
    token: str = body["refresh_token"]
    return token


async def error(response: ClientResponse, status: int) -> str:
    assert response.status == status, await response.text()
    message: str = (await response.json())["errors"][0]["message"]
    return message


async def test_password_grant(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:push")
    body = await ok_json(
        await post(
            server,
            grant_type="password",
            username=robot.name,
            password=robot.secret,
            client_id="containerd-client",
            service="registry",
            scope="repository:p/app:pull,push repository:p/other:pull",
        )
    )
    assert set(body) == {"access_token", "scope", "expires_in", "issued_at"}
    assert body["scope"] == "repository:p/app:pull,push repository:p/other:pull"
    assert [a["actions"] for a in access(body)] == [["pull", "push"], ["pull"]]


async def test_login_without_scope_as_oras_does(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    body = await ok_json(
        await post(
            server, grant_type="password", username=robot.name, password=robot.secret,
            client_id="oras-go", service="registry",
        )
    )  # fmt: skip
    assert body["scope"] == ""
    assert access(body) == []


async def test_offline_password_grant_then_refresh_grant_returns_the_same_token(
    server: Server,
) -> None:
    robot = await server.robot("p", "ci", "repository:push")
    token = await refresh_token(server, robot)
    assert token.startswith("tsr_")
    assert token.encode() not in server.settings.database.path.read_bytes()
    for _ in range(2):
        body = await ok_json(
            await post(
                server, grant_type="refresh_token", refresh_token=token, client_id="docker",
                service="registry", scope="repository:p/app:push,pull",
            )
        )  # fmt: skip
        assert body["refresh_token"] == token
        assert access(body)[0]["actions"] == ["push", "pull"]
        assert jwt.decode(body["access_token"], options={"verify_signature": False})["sub"] == (
            robot.name
        )


async def test_get_with_offline_token_returns_a_refresh_token(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    r = await server.client.get(
        TOKEN,
        params={"service": "registry", "offline_token": "true", "client_id": "docker"},
        headers=robot.headers,
    )
    body = await ok_json(r)
    assert body["refresh_token"].startswith("tsr_")
    plain = await ok_json(await server.client.get(TOKEN, headers=robot.headers))
    assert "refresh_token" not in plain


@pytest.mark.parametrize("change", ["refresh-secret", "disable", "delete", "expire"])
async def test_refresh_tokens_are_revoked(server: Server, change: str) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    token = await refresh_token(server, robot)
    await ok_json(await post(server, grant_type="refresh_token", refresh_token=token))
    robots = server.runtime.robots
    if change == "refresh-secret":
        await robots.refresh_secret(LOCAL, str(robot.id))
    elif change == "disable":
        await robots.set_disabled(LOCAL, str(robot.id), True)
    elif change == "delete":
        await robots.delete(LOCAL, str(robot.id))
    else:
        server.expire(robot.id)
    r = await post(server, grant_type="refresh_token", refresh_token=token)
    assert await error(r, 401) == "invalid refresh token"
    if change == "disable":
        await robots.set_disabled(LOCAL, str(robot.id), False)
        r = await post(server, grant_type="refresh_token", refresh_token=token)
        assert await error(r, 401) == "invalid refresh token"


async def test_a_user_password_change_revokes_its_refresh_tokens(server: Server) -> None:
    await server.runtime.users.create(LOCAL, "kim", "K1mPassword1")
    body = await ok_json(
        await post(
            server, grant_type="password", username="kim", password="K1mPassword1",
            access_type="offline",
        )
    )  # fmt: skip
    token = body["refresh_token"]
    await ok_json(await post(server, grant_type="refresh_token", refresh_token=token))
    user = await server.runtime.store.find_user("kim")
    assert user is not None
    await server.runtime.users.change_password(LOCAL, user.id, None, "N3wPassword1")
    await error(await post(server, grant_type="refresh_token", refresh_token=token), 401)


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({}, 400, "grant_type"),
        ({"grant_type": "client_credentials"}, 400, "grant_type"),
        ({"grant_type": "password", "username": "x"}, 401, "username and password"),
        ({"grant_type": "refresh_token"}, 401, "refresh_token"),
        ({"grant_type": "refresh_token", "refresh_token": "tsr_nope"}, 401, "invalid refresh"),
        ({"grant_type": "password", "username": "robot$p+ci", "password": "nope"}, 401, "invalid"),
        (
            {"grant_type": "password", "username": "a", "password": "b", "service": "x"},
            400,
            "service",
        ),
        (
            {"grant_type": "password", "username": "a", "password": "b", "scope": "bad"},
            400,
            "scope",
        ),
    ],
)
async def test_bad_oauth_requests(
    server: Server, form: dict[str, str], status: int, message: str
) -> None:
    await server.robot("p", "ci", "repository:pull")
    assert message in await error(await post(server, **form), status)


async def test_oauth_needs_a_form(server: Server) -> None:
    r = await server.client.post(TOKEN, json={"grant_type": "password"})
    assert "form" in await error(r, 400)


async def test_refresh_tokens_are_listed_and_revoked_through_the_api(server: Server) -> None:
    await server.runtime.users.ensure_admin("Adm1nPassword")
    robot = await server.robot("p", "ci", "repository:pull")
    first = await refresh_token(server, robot, "docker")
    second = await refresh_token(server, robot, "helm")
    path = f"{API}/robots/{robot.id}/refresh-tokens"
    r = await server.client.get(path, headers=ADMIN)
    check_response("GET", path, r.status, r.headers, await r.read())
    listed = await r.json()
    assert [t["client_id"] for t in listed] == ["helm", "docker"]
    assert first not in str(listed) and second not in str(listed)
    r = await server.client.delete(f"{path}/{listed[1]['id']}", headers=ADMIN)
    assert r.status == 200
    await error(await post(server, grant_type="refresh_token", refresh_token=first), 401)
    await ok_json(await post(server, grant_type="refresh_token", refresh_token=second))
    r = await server.client.delete(f"{path}/{listed[1]['id']}", headers=ADMIN)
    await error(r, 404)
    assert (await server.client.delete(path, headers=ADMIN)).status == 200
    await error(await post(server, grant_type="refresh_token", refresh_token=second), 401)
    r = await server.client.get(path, headers=robot.headers)
    await error(r, 403)


# ---- refresh tokens end when unused -------------------------------------------------------

IDLE_DAYS = 2
DAY = 86400


@pytest.fixture
async def clocked(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> tuple[Server, FakeClock]:
    """A server whose refresh tokens end after IDLE_DAYS unused, on a clock the test moves."""
    settings = with_migrated_database(make_settings(token__refresh_token_idle_days=IDLE_DAYS))
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    return Server(await aiohttp_client(app), app[RUNTIME], settings), clock


async def refresh(server: Server, token: str) -> ClientResponse:
    response = await post(server, grant_type="refresh_token", refresh_token=token)
    await server.runtime.usage.flush()  # what the server does every 30 s
    return response


async def test_attack_a_refresh_token_unused_for_months_still_works(
    clocked: tuple[Server, FakeClock],
) -> None:
    server, clock = clocked
    robot = await server.robot("p", "ci", "repository:pull")
    token = await refresh_token(server, robot)
    # Used just within the limit, twice: each use starts the idle time again, so it outlives
    # IDLE_DAYS from its creation.
    for _ in range(2):
        clock.now += IDLE_DAYS * DAY - 60
        await ok_json(await refresh(server, token))
    clock.now += IDLE_DAYS * DAY
    assert await error(await refresh(server, token), 401) == "invalid refresh token"
    # Unused for the limit from its creation: also over, and a new login gets a new one.
    other = await refresh_token(server, robot, "helm")
    clock.now += IDLE_DAYS * DAY
    assert await error(await refresh(server, other), 401) == "invalid refresh token"
    await ok_json(await refresh(server, await refresh_token(server, robot)))


async def test_refresh_token_use_is_written_at_most_once_an_hour(
    clocked: tuple[Server, FakeClock],
) -> None:
    server, clock = clocked
    robot = await server.robot("p", "ci", "repository:pull")
    token = await refresh_token(server, robot)
    created = int(clock.now)
    steps = [(60, created), (3500, created), (3601, created + 3601), (3700, created + 3601)]
    for offset, recorded in steps:
        clock.now = created + offset
        await ok_json(await refresh(server, token))
        (stored,) = await server.runtime.store.list_refresh_tokens(robot_id=robot.id)
        assert stored.last_used_at == recorded, offset


async def test_concurrent_refreshes_of_an_idle_token_record_one_use(
    clocked: tuple[Server, FakeClock],
) -> None:
    server, clock = clocked
    robot = await server.robot("p", "ci", "repository:pull")
    token = await refresh_token(server, robot)
    clock.now += IDLE_DAYS * DAY - 60
    responses = await asyncio.gather(
        *(post(server, grant_type="refresh_token", refresh_token=token) for _ in range(20))
    )
    assert [r.status for r in responses] == [200] * 20
    await server.runtime.usage.flush()
    (stored,) = await server.runtime.store.list_refresh_tokens(robot_id=robot.id)
    assert stored.last_used_at == int(clock.now)


# ---- HEAD issues nothing --------------------------------------------------------------------


async def test_attack_head_stores_a_refresh_token_nobody_receives(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    r = await server.client.head(
        TOKEN,
        params={"service": "registry", "offline_token": "true", "client_id": "docker"},
        headers=robot.headers,
    )
    assert r.status == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "POST"}
    assert await server.runtime.store.list_refresh_tokens(robot_id=robot.id) == []
    # GET still issues one.
    r = await server.client.get(
        TOKEN,
        params={"service": "registry", "offline_token": "true", "client_id": "docker"},
        headers=robot.headers,
    )
    await ok_json(r)
    assert len(await server.runtime.store.list_refresh_tokens(robot_id=robot.id)) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_attack_a_robot_deleted_while_its_login_stores_a_refresh_token_is_a_401(
    server: Server, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """`docker login` (offline_token=true) racing the robot's deletion: the secret checked,
    the robot deleted before its refresh token is stored. Answered as a deleted robot's login
    (401), not 409 "refresh token already stored" (seen on PostgreSQL replicas)."""
    robot = await server.robot("p", "ci", "repository:pull")
    store = server.runtime.store
    add = store.add_refresh_token

    async def deleted_meanwhile(*args: Any, **kwargs: Any) -> Any:
        await server.runtime.robots.delete(LOCAL, str(robot.id))
        return await add(*args, **kwargs)

    monkeypatch.setattr(store, "add_refresh_token", deleted_meanwhile)
    if method == "GET":
        r = await server.client.get(
            TOKEN,
            params={"service": "registry", "offline_token": "true", "client_id": "docker"},
            headers=basic(robot.name, robot.secret),
        )
    else:
        r = await post(
            server, grant_type="password", username=robot.name, password=robot.secret,
            access_type="offline", client_id="docker", service="registry",
        )  # fmt: skip
    assert await error(r, 401) == "invalid username or password"
    assert await store.find_robot_by_id(robot.id) is None
