"""Rotation without downtime (issue 19, item 1): a refresh that keeps the previous secret for
a grace period, through the API and the token endpoint."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse

from tests.http.conftest import AiohttpClient, RobotCredentials, Server, basic, serving
from tokenserver.config import Settings
from tokenserver.domain.models import LOCAL, MAX_KEEP_PREVIOUS

TOKEN = "/service/token"
API = "/api/v2.0"
ADMIN = basic("admin", "Adm1nPassword")


@pytest.fixture
async def server(settings: Settings, aiohttp_client: AiohttpClient) -> AsyncIterator[Server]:
    async with serving(settings, aiohttp_client) as served:
        await served.runtime.users.ensure_admin("Adm1nPassword")
        yield served


async def body_of(response: ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def refresh(server: Server, robot: RobotCredentials, **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = await body_of(
        await server.client.patch(f"{API}/robots/{robot.id}", json=body, headers=ADMIN)
    )
    return answer


async def login(server: Server, name: str, password: str) -> int:
    return (await server.client.get(TOKEN, headers=basic(name, password))).status


async def offline(server: Server, name: str, password: str) -> str:
    body = await body_of(
        await server.client.post(
            TOKEN,
            data={
                "grant_type": "password",
                "username": name,
                "password": password,
                "access_type": "offline",
                "client_id": "docker",
                "service": "registry",
            },
        )
    )
    token: str = body["refresh_token"]
    return token


async def use(server: Server, refresh_token: str) -> int:
    r = await server.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    return r.status


async def shown(server: Server, robot: RobotCredentials) -> dict[str, Any]:
    robot_json: dict[str, Any] = await body_of(
        await server.client.get(f"{API}/robots/{robot.id}", headers=ADMIN)
    )
    return robot_json


def set_previous_end(server: Server, robot_id: int, at: int) -> None:
    """Move the previous secret's end, as time passing would."""
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute("UPDATE robot SET previous_secret_expires_at = ? WHERE id = ?", (at, robot_id))


async def test_a_refresh_keeping_the_previous_secret_lets_both_log_in(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    before = int(time.time())
    answer = await refresh(server, robot, keep_previous_for=3600)
    new = answer["secret"]
    assert new != robot.secret
    assert before + 3600 <= answer["previous_secret_expires_at"] <= int(time.time()) + 3600
    assert await login(server, robot.name, robot.secret) == 200
    assert await login(server, robot.name, new) == 200
    assert (await shown(server, robot))["previous_secret_expires_at"] == answer[
        "previous_secret_expires_at"
    ]


async def test_without_keep_previous_for_the_old_secret_ends_at_once(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    answer = await refresh(server, robot)
    assert answer.keys() == {"secret"}  # Harbor's answer, nothing more
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, answer["secret"]) == 200
    assert "previous_secret_expires_at" not in await shown(server, robot)


async def test_a_chosen_secret_can_keep_the_previous_one_too(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    answer = await refresh(server, robot, secret="Chosen5ecret", keep_previous_for=60)
    assert "secret" not in answer and answer["previous_secret_expires_at"] > time.time()
    assert await login(server, robot.name, robot.secret) == 200
    assert await login(server, robot.name, "Chosen5ecret") == 200


async def test_the_previous_secret_ends_when_its_time_is_over(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    token = await offline(server, robot.name, robot.secret)
    new = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    assert await use(server, token) == 200
    set_previous_end(server, robot.id, int(time.time()) - 1)
    assert await login(server, robot.name, robot.secret) == 401
    assert await use(server, token) == 401
    assert await login(server, robot.name, new) == 200
    assert "previous_secret_expires_at" not in await shown(server, robot)


async def test_revoking_the_previous_secret_ends_it_and_its_refresh_tokens(
    server: Server,
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    before = await offline(server, robot.name, robot.secret)
    new = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    since = await offline(server, robot.name, robot.secret)  # a login with the previous one
    current = await offline(server, robot.name, new)
    assert [await use(server, t) for t in (before, since, current)] == [200, 200, 200]
    r = await server.client.delete(f"{API}/robots/{robot.id}/previous-secret", headers=ADMIN)
    assert r.status == 200, await r.text()
    assert await login(server, robot.name, robot.secret) == 401
    assert [await use(server, t) for t in (before, since, current)] == [401, 401, 200]
    assert await login(server, robot.name, new) == 200
    assert "previous_secret_expires_at" not in await shown(server, robot)
    again = await server.client.delete(f"{API}/robots/{robot.id}/previous-secret", headers=ADMIN)
    errors = (await body_of(again, 404))["errors"]
    assert errors[0]["code"] == "NOT_FOUND" and "no previous secret" in errors[0]["message"]


async def test_a_third_refresh_drops_the_oldest_secret(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    first = await offline(server, robot.name, robot.secret)
    second = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    second_token = await offline(server, robot.name, second)
    third = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    assert [await login(server, robot.name, s) for s in (robot.secret, second, third)] == [
        401,
        200,
        200,
    ]
    assert [await use(server, t) for t in (first, second_token)] == [401, 200]


async def test_registry_tokens_for_the_previous_secret_end_with_it(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    answer = await refresh(server, robot, keep_previous_for=120)
    ends = answer["previous_secret_expires_at"]
    for password in (robot.secret, None):
        if password is None:  # a refresh token from the previous secret
            token = await offline(server, robot.name, robot.secret)
            r = await server.client.post(
                TOKEN, data={"grant_type": "refresh_token", "refresh_token": token}
            )
        else:
            r = await server.client.get(TOKEN, headers=basic(robot.name, password))
        issued = await body_of(r)
        claims = jwt.decode(
            issued.get("token") or issued["access_token"], options={"verify_signature": False}
        )
        assert claims["exp"] <= ends
    current = await body_of(
        await server.client.get(TOKEN, headers=basic(robot.name, answer["secret"]))
    )
    assert current["expires_in"] == server.settings.token.lifetime


@pytest.mark.parametrize("how", ["disable", "put-disable", "delete"])
async def test_disable_and_delete_end_both_secrets(server: Server, how: str) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    new = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    robots = server.runtime.robots
    if how == "disable":
        await robots.set_disabled(LOCAL, str(robot.id), True)
    elif how == "put-disable":
        shown_robot = await shown(server, robot)
        r = await server.client.put(
            f"{API}/robots/{robot.id}", json={**shown_robot, "disable": True}, headers=ADMIN
        )
        assert r.status == 200, await r.text()
    else:
        await robots.delete(LOCAL, str(robot.id))
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, new) == 401
    if how != "delete":
        await robots.set_disabled(LOCAL, str(robot.id), False)
        # Enabling brings back only the current secret.
        assert await login(server, robot.name, robot.secret) == 401
        assert await login(server, robot.name, new) == 200
        assert "previous_secret_expires_at" not in await shown(server, robot)


async def test_expiry_ends_both_and_a_new_expiry_brings_back_only_the_current(
    server: Server,
) -> None:
    robot = await server.robot("p", "ci", "repository:pull", duration=30)
    new = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    server.expire(robot.id)
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, new) == 401
    robot_json = await shown(server, robot)
    assert "previous_secret_expires_at" not in robot_json
    r = await server.client.put(
        f"{API}/robots/{robot.id}", json={**robot_json, "duration": 60}, headers=ADMIN
    )
    assert r.status == 200, await r.text()
    assert await login(server, robot.name, new) == 200
    assert await login(server, robot.name, robot.secret) == 401


async def test_the_previous_secret_never_outlives_the_robot(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull", duration=1)
    answer = await refresh(server, robot, keep_previous_for=MAX_KEEP_PREVIOUS)
    robot_json = await shown(server, robot)
    assert answer["previous_secret_expires_at"] == robot_json["expires_at"]
    assert robot_json["previous_secret_expires_at"] == robot_json["expires_at"]


async def test_a_disabled_robot_keeps_no_previous_secret(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    await server.runtime.robots.set_disabled(LOCAL, str(robot.id), True)
    answer = await refresh(server, robot, keep_previous_for=3600)
    assert "previous_secret_expires_at" not in answer
    await server.runtime.robots.set_disabled(LOCAL, str(robot.id), False)
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, answer["secret"]) == 200


@pytest.mark.parametrize(
    "value", [-1, MAX_KEEP_PREVIOUS + 1, "3600", 1.5, True, None, [3600], 2**70]
)
async def test_attack_keep_previous_for_that_is_no_span_is_refused(
    server: Server, value: object
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    r = await server.client.patch(
        f"{API}/robots/{robot.id}", json={"keep_previous_for": value}, headers=ADMIN
    )
    if value is None:  # null is absent: Harbor's refresh
        assert r.status == 200
        return
    errors = (await body_of(r, 400))["errors"]
    assert errors[0]["code"] == "BAD_REQUEST"
    assert "keep_previous_for" in errors[0]["message"]
    assert await login(server, robot.name, robot.secret) == 200  # nothing changed


async def test_attack_refreshes_at_once_leave_two_secrets_at_most(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    answers = await asyncio.gather(
        *(refresh(server, robot, keep_previous_for=3600) for _ in range(6))
    )
    secrets = [robot.secret, *(a["secret"] for a in answers)]
    working = [s for s in secrets if await login(server, robot.name, s) == 200]
    assert len(working) == 2


async def test_who_may_revoke_the_previous_secret(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    await refresh(server, robot, keep_previous_for=3600)
    path = f"{API}/robots/{robot.id}/previous-secret"
    assert (await server.client.delete(path)).status == 401
    # The robot itself holds no robot:update.
    r = await server.client.delete(path, headers=robot.headers)
    assert (await body_of(r, 403))["errors"][0]["code"] == "FORBIDDEN"
    missing = await server.client.delete(f"{API}/robots/999999/previous-secret", headers=ADMIN)
    await body_of(missing, 404)
    bad = await server.client.delete(f"{API}/robots/x/previous-secret", headers=ADMIN)
    await body_of(bad, 400)
    assert await login(server, robot.name, robot.secret) == 200


async def test_rotation_is_audited_without_a_secret(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    answer = await refresh(server, robot, keep_previous_for=3600)
    r = await server.client.delete(f"{API}/robots/{robot.id}/previous-secret", headers=ADMIN)
    assert r.status == 200
    logs = await body_of(await server.client.get(f"{API}/audit-logs", headers=ADMIN))
    operations = [(e["operation"], e["resource"]) for e in logs]
    assert ("refresh-keep-previous", robot.name) in operations
    assert ("revoke-previous-secret", robot.name) in operations
    text = str(logs)
    assert robot.secret not in text and answer["secret"] not in text
