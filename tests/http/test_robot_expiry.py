"""A robot's expiry through the API: a PUT (the page's Edit, Disable and Enable) keeps a
restarted expiry, durations are bounded wherever they enter (API, Harbor import), and the
audit log names each robot by its full name with the real outcome."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from tests.harbor_export import export as harbor_export
from tests.http.conftest import Server
from tests.http.test_api import ADMIN_PASSWORD, TOKEN, Api, creds, error, project_robot
from tokenserver.domain.harbor_export import plan_import
from tokenserver.domain.models import LOCAL
from tokenserver.errors import BadRequest

DAY = 86400


@pytest.fixture
async def api(server: Server) -> Api:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    return Api(server)


def backdate(server: Server, robot_id: int, days: int) -> None:
    """Make the robot as if created `days` ago, its expiry counted from then."""
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute(
            "UPDATE robot SET creation_time = creation_time - :s, update_time = update_time - :s,"
            " expires_at = CASE WHEN expires_at = -1 THEN -1 ELSE expires_at - :s END"
            " WHERE id = :id",
            {"s": days * DAY, "id": robot_id},
        )


async def get(api: Api, robot_id: int) -> dict[str, Any]:
    r = await api.call("GET", f"/robots/{robot_id}", api.admin)
    assert r.status == 200, await r.text()
    robot: dict[str, Any] = await r.json()
    return robot


async def token_status(api: Api, auth: dict[str, str]) -> int:
    r = await api.client.get(TOKEN, headers=auth)
    await r.read()
    return r.status


async def restarted(api: Api, duration: int = 1) -> tuple[dict[str, Any], dict[str, str]]:
    """A robot created ten days ago with `duration` days, so long expired, whose expiry was
    then restarted: the robot as GET shows it, and its new credentials."""
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=duration))
    backdate(api.server, created["id"], 10)
    assert await token_status(api, creds(created)) == 401
    r = await api.call("PATCH", f"/robots/{created['id']}", api.admin, {"restart_expiry": True})
    assert r.status == 200, await r.text()
    auth = creds(created | {"secret": (await r.json())["secret"]})
    assert await token_status(api, auth) == 200
    robot = await get(api, created["id"])
    assert robot["expires_at"] > time.time() + (duration - 1) * DAY
    return robot, auth


# ---- item 7: PUT keeps a restarted expiry ----------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"disable": True}, {"description": "edited"}, {"disable": True, "description": "x"}],
)
async def test_a_put_that_keeps_the_duration_keeps_a_restarted_expiry(
    api: Api, changes: dict[str, Any]
) -> None:
    robot, auth = await restarted(api)
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, robot | changes)
    assert r.status == 200, await r.text()
    assert (await get(api, robot["id"]))["expires_at"] == robot["expires_at"]
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, robot | {"disable": False})
    assert r.status == 200, await r.text()
    assert (await get(api, robot["id"]))["expires_at"] == robot["expires_at"]
    assert await token_status(api, auth) == 200


async def test_a_new_duration_counts_from_the_restart(api: Api) -> None:
    robot, auth = await restarted(api, duration=1)
    path = f"/robots/{robot['id']}"
    assert (await api.call("PUT", path, api.admin, robot | {"duration": 3})).status == 200
    longer = await get(api, robot["id"])
    assert longer["expires_at"] == robot["expires_at"] + 2 * DAY
    assert (await api.call("PUT", path, api.admin, longer | {"duration": 2})).status == 200
    assert (await get(api, robot["id"]))["expires_at"] == robot["expires_at"] + DAY
    assert await token_status(api, auth) == 200
    assert (await api.call("PUT", path, api.admin, longer | {"duration": -1})).status == 200
    assert (await get(api, robot["id"]))["expires_at"] == -1


async def test_without_a_restart_a_new_duration_counts_from_creation(api: Api) -> None:
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=-1))
    backdate(api.server, created["id"], 10)
    robot = await get(api, created["id"])
    path = f"/robots/{robot['id']}"
    # Harbor's rule: a robot created ten days ago given five days has expired.
    assert (await api.call("PUT", path, api.admin, robot | {"duration": 5})).status == 200
    shown = await get(api, robot["id"])
    stored = await api.server.runtime.robots.resolve(str(robot["id"]))
    assert shown["expires_at"] == stored.creation_time + 5 * DAY
    assert await token_status(api, creds(created)) == 401
    assert (await api.call("PUT", path, api.admin, shown | {"duration": 30})).status == 200
    assert await token_status(api, creds(created)) == 200


async def test_the_cli_disable_and_enable_keep_a_restarted_expiry(api: Api) -> None:
    robot, auth = await restarted(api)
    await api.server.runtime.robots.set_disabled(LOCAL, str(robot["id"]), True)
    await api.server.runtime.robots.set_disabled(LOCAL, str(robot["id"]), False)
    assert (await get(api, robot["id"]))["expires_at"] == robot["expires_at"]
    assert await token_status(api, auth) == 200


# ---- item 9: durations are bounded -----------------------------------------------------------


@pytest.mark.parametrize("duration", [36501, 99999999, 2**31 - 1, 2**62])
async def test_a_duration_past_the_bound_is_refused_at_create(api: Api, duration: int) -> None:
    await api.project("p")
    body = project_robot("p", "ci", "repository:pull", duration=duration)
    message = await error(await api.call("POST", "/robots", api.admin, body), 400, "BAD_REQUEST")
    assert "duration" in message
    assert "36500" in message
    assert await api.server.runtime.robots.list(LOCAL, "p") == []


async def test_the_longest_duration_is_accepted(api: Api) -> None:
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=36500))
    assert (await get(api, created["id"]))["duration"] == 36500


async def test_a_duration_past_the_bound_is_refused_at_put(api: Api) -> None:
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=30))
    robot = await get(api, created["id"])
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, robot | {"duration": 36501})
    message = await error(r, 400, "BAD_REQUEST")
    assert "duration" in message
    assert "36500" in message
    assert await get(api, created["id"]) == robot


async def test_a_stored_duration_past_the_bound_is_listed_and_can_be_disabled(api: Api) -> None:
    # What an earlier release accepted: an expiry in year 275817.
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=30))
    with sqlite3.connect(api.server.settings.database.path) as db:
        db.execute(
            "UPDATE robot SET duration = 99999999, expires_at = creation_time + 99999999 * 86400"
        )
    project_id = (await (await api.call("GET", "/projects/p", api.admin)).json())["project_id"]
    r = await api.call("GET", f"/robots?q=Level=project,ProjectID={project_id}", api.admin)
    assert r.status == 200
    (robot,) = await r.json()
    assert robot["duration"] == 99999999
    # The page's Disable sends the robot back as it is: that must still work.
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, robot | {"disable": True})
    assert r.status == 200, await r.text()
    assert (await get(api, robot["id"]))["expires_at"] == robot["expires_at"]
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, robot | {"disable": False})
    assert r.status == 200
    assert await token_status(api, creds(created)) == 200


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"duration": 99999999}, "duration 99999999 is out of range"),
        ({"duration": 36501, "expiresat": -1}, "1 to 36500 days"),
        ({"duration": None, "expiresat": 10**13}, "'expiresat' 10000000000000"),
        ({"duration": -2}, "duration -2 is out of range"),
    ],
)
def test_the_harbor_import_refuses_a_duration_past_the_bound(
    changes: dict[str, Any], words: str
) -> None:
    data = harbor_export()
    data["robot"][0].update(changes)
    with pytest.raises(BadRequest, match=r"robot row 0 \(id 21\)") as raised:
        plan_import(data)
    assert words in raised.value.message


# ---- item 10: the audit log names robots by their full name ----------------------------------


async def audit(api: Api) -> list[tuple[str, str, str]]:
    r = await api.call("GET", "/audit-logs?page_size=100", api.admin)
    return [
        (e["operation"], e["resource"], e["outcome"])
        for e in await r.json()
        if e["resource_type"] == "robot"
    ]


async def test_api_audit_entries_name_the_robot_not_its_id(api: Api) -> None:
    await api.project("p")
    created = await api.robot(project_robot("p", "ci", "repository:pull", duration=30))
    path = f"/robots/{created['id']}"
    robot = await get(api, created["id"])
    assert (await api.call("PUT", path, api.admin, robot | {"description": "x"})).status == 200
    assert (await api.call("PATCH", path, api.admin, {})).status == 200
    assert (await api.call("DELETE", f"{path}/refresh-tokens", api.admin)).status == 200
    await error(await api.call("DELETE", f"{path}/refresh-tokens/999", api.admin), 404, "NOT_FOUND")
    await error(await api.call("PUT", path, api.admin, robot | {"duration": 0}), 400, "BAD_REQUEST")
    await error(
        await api.call("POST", "/robots", api.admin, project_robot("p", "ci", "repository:pull")),
        409,
        "CONFLICT",
    )
    assert (await api.call("DELETE", path, api.admin)).status == 200
    await error(await api.call("DELETE", path, api.admin), 404, "NOT_FOUND")
    assert await audit(api) == [
        ("delete", str(created["id"]), "failure: NOT_FOUND"),  # gone: named as asked
        ("delete", "robot$p+ci", "success"),
        ("create", "robot$p+ci", "failure: CONFLICT"),
        ("update", "robot$p+ci", "failure: BAD_REQUEST"),
        ("revoke-refresh-tokens", "robot$p+ci", "failure: NOT_FOUND"),
        ("revoke-refresh-tokens", "robot$p+ci", "success"),
        ("refresh", "robot$p+ci", "success"),
        ("update", "robot$p+ci", "success"),
        ("create", "robot$p+ci", "success"),
    ]
