"""Robots acting on robots: a robot may create, change, refresh, disable, enable or delete
another robot only when the other's effective permissions are within its own, and may never
widen itself or make a robot that outlives it. Denies and allows survive a project being
deleted and created again, failing closed. Each test is an attack that once succeeded."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import pytest

from tests.http.conftest import basic
from tests.http.test_api import Api, api, error, project_robot
from tokenserver.domain.roles import ROLE_GRANTS, Role

__all__ = ["api"]  # the fixture, imported for pytest


def access(*items: str, effect: str = "allow") -> list[dict[str, str]]:
    return [
        {"resource": a.split(":")[0], "action": a.split(":")[1], "effect": effect} for a in items
    ]


def system_robot(name: str, *entries: dict[str, Any], duration: int = -1) -> dict[str, Any]:
    return {
        "name": name,
        "level": "system",
        "duration": duration,
        "description": "",
        "permissions": list(entries),
    }


def on(namespace: str, *allow: str, deny: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "kind": "project",
        "namespace": namespace,
        "access": access(*allow) + access(*deny, effect="deny"),
    }


def system(*allow: str) -> dict[str, Any]:
    return {"kind": "system", "namespace": "/", "access": access(*allow)}


def login(robot: dict[str, Any]) -> dict[str, str]:
    return basic(robot["name"], robot["secret"])


async def actions(api: Api, auth: dict[str, str], repository: str) -> list[str]:
    (entry,) = await api.token_access(auth, f"repository:{repository}:pull,push,delete")
    return list(entry["actions"])


async def get_robot(api: Api, robot_id: int) -> dict[str, Any]:
    r = await api.call("GET", f"/robots/{robot_id}", api.admin)
    assert r.status == 200, await r.text()
    body: dict[str, Any] = await r.json()
    return body


def put_body(robot: dict[str, Any], **changes: Any) -> dict[str, Any]:
    # An empty description is left out of what GET shows, as Harbor does.
    fields = ("name", "level", "duration", "description", "permissions")
    body = {k: robot[k] for k in fields if k in robot}
    body["disable"] = robot["disable"]
    body.update(changes)
    return body


# ---- 1. a weak robot acting on a stronger one -----------------------------------------------


@pytest.fixture
async def weak_and_strong(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    await api.project("p")
    strong = await api.robot(
        project_robot("p", "strong", "repository:pull", "repository:push", "repository:delete")
    )
    weak = await api.robot(
        project_robot("p", "weak", "repository:pull", "robot:read", "robot:update", "robot:delete")
    )
    return weak, strong


async def test_attack_weak_robot_refreshes_stronger_robots_secret(
    api: Api, weak_and_strong: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    weak, strong = weak_and_strong
    path = f"/robots/{strong['id']}"
    generated = await api.call("PATCH", path, login(weak), {})
    assert "within its own" in await error(generated, 403, "FORBIDDEN")
    chosen = await api.call("PATCH", path, login(weak), {"secret": "Chosen1Secret"})
    assert "repository:delete" in await error(chosen, 403, "FORBIDDEN")
    # The stronger robot's secret is untouched; the chosen one does not log in.
    assert await actions(api, login(strong), "p/app") == ["pull", "push", "delete"]
    r = await api.client.get(
        "/service/token",
        params={"scope": "repository:p/app:pull"},
        headers=basic(strong["name"], "Chosen1Secret"),
    )
    assert r.status == 401


async def test_attack_weak_robot_puts_disables_and_deletes_stronger_robot(
    api: Api, weak_and_strong: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    weak, strong = weak_and_strong
    path = f"/robots/{strong['id']}"
    before = await get_robot(api, strong["id"])
    narrowed = put_body(before, permissions=[on("p", "repository:pull")])
    await error(await api.call("PUT", path, login(weak), narrowed), 403, "FORBIDDEN")
    disabled = put_body(before, disable=True)
    await error(await api.call("PUT", path, login(weak), disabled), 403, "FORBIDDEN")
    await error(await api.call("DELETE", path, login(weak)), 403, "FORBIDDEN")
    revoke = await api.call("DELETE", f"{path}/refresh-tokens", login(weak))
    await error(revoke, 403, "FORBIDDEN")
    after = await get_robot(api, strong["id"])
    assert after["permissions"] == before["permissions"]
    assert after["disable"] is False
    assert await actions(api, login(strong), "p/app") == ["pull", "push", "delete"]


async def test_a_robot_may_act_on_robots_within_its_own_permissions(
    api: Api, weak_and_strong: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    weak, _ = weak_and_strong
    peer = await api.robot(project_robot("p", "peer", "repository:pull"))
    path = f"/robots/{peer['id']}"
    r = await api.call("PATCH", path, login(weak), {})
    assert r.status == 200, await r.text()
    secret = (await r.json())["secret"]
    assert await actions(api, basic(peer["name"], secret), "p/app") == ["pull"]
    body = put_body(await get_robot(api, peer["id"]), disable=True)
    assert (await api.call("PUT", path, login(weak), body)).status == 200
    assert (await api.call("DELETE", path, login(weak))).status == 200


async def test_attack_robot_acts_on_robot_with_a_deny_it_lacks_is_judged_on_effect(
    api: Api,
) -> None:
    """Subset is effective: a target whose allows exceed the actor's but whose denies take
    the excess away is within; a target holding an action the actor itself denies is not."""
    await api.project("p")
    actor = await api.robot(
        {
            **project_robot("p", "actor", "repository:pull", "robot:update", "robot:read"),
            "permissions": [
                on(
                    "p",
                    "repository:pull",
                    "repository:push",
                    "robot:update",
                    deny=("repository:push",),
                )
            ],
        }
    )
    pushing = await api.robot(project_robot("p", "pusher", "repository:pull", "repository:push"))
    r = await api.call("PATCH", f"/robots/{pushing['id']}", login(actor), {})
    assert "repository:push" in await error(r, 403, "FORBIDDEN")
    tamed = await api.robot(
        {
            **project_robot("p", "tamed"),
            "permissions": [
                on("p", "repository:pull", "repository:push", deny=("repository:push",))
            ],
        }
    )
    r = await api.call("PATCH", f"/robots/{tamed['id']}", login(actor), {})
    assert r.status == 200, await r.text()


# ---- 2. a robot widening itself -------------------------------------------------------------


async def test_attack_robot_puts_itself_without_its_deny(api: Api) -> None:
    await api.project("p")
    me = await api.robot(
        {
            **project_robot("p", "me"),
            "permissions": [
                on(
                    "p",
                    "repository:pull",
                    "repository:push",
                    "repository:delete",
                    "robot:read",
                    "robot:update",
                    deny=("repository:delete",),
                )
            ],
        }
    )
    assert await actions(api, login(me), "p/app") == ["pull", "push"]
    mine = await get_robot(api, me["id"])
    widened = put_body(
        mine,
        permissions=[
            on(
                "p",
                "repository:pull",
                "repository:push",
                "repository:delete",
                "robot:read",
                "robot:update",
            )
        ],
    )
    r = await api.call("PUT", f"/robots/{me['id']}", login(me), widened)
    assert "repository:delete" in await error(r, 403, "FORBIDDEN")
    assert await actions(api, login(me), "p/app") == ["pull", "push"]
    assert (await get_robot(api, me["id"]))["permissions"] == mine["permissions"]
    # Narrowing itself is fine.
    narrowed = put_body(
        mine,
        permissions=[
            on("p", "repository:pull", "robot:read", "robot:update", deny=("repository:delete",))
        ],
    )
    r = await api.call("PUT", f"/robots/{me['id']}", login(me), narrowed)
    assert r.status == 200, await r.text()
    assert await actions(api, login(me), "p/app") == ["pull"]


# ---- 3. a system robot's deny and its children ----------------------------------------------


async def test_attack_system_robot_with_a_deny_creates_a_child_that_reaches_the_denied_project(
    api: Api,
) -> None:
    await api.project("open")
    await api.project("vault")
    parent = await api.robot(
        system_robot(
            "parent",
            on("*", "repository:pull", "repository:push"),
            on("vault", deny=("repository:pull", "repository:push")),
            system("robot:create", "robot:read", "robot:list"),
        )
    )
    assert await actions(api, login(parent), "vault/secret") == []
    for child in (
        system_robot("child", on("*", "repository:pull")),
        system_robot("child", on("vault", "repository:pull")),
        # A deny the parent lacks on a project that does not exist yet: the parent's own
        # deny on vault still reaches it through '*'.
        system_robot("child", on("*", "repository:pull"), on("later", deny=("repository:pull",))),
    ):
        r = await api.call("POST", "/robots", login(parent), child)
        assert "vault" in await error(r, 403, "FORBIDDEN")
    allowed = await api.robot(
        system_robot("child", on("*", "repository:pull"), on("vault", deny=("repository:pull",))),
        auth=login(parent),
    )
    assert await actions(api, login(allowed), "open/app") == ["pull"]
    assert await actions(api, login(allowed), "vault/app") == []


async def test_attack_child_reaches_a_future_project_its_parent_is_denied(api: Api) -> None:
    """The parent denies a project that does not exist yet; a child without that deny would
    reach it once somebody creates it."""
    parent = await api.robot(
        system_robot(
            "parent",
            on("*", "repository:pull"),
            on("future", deny=("repository:pull",)),
            system("robot:create"),
        )
    )
    r = await api.call(
        "POST", "/robots", login(parent), system_robot("child", on("*", "repository:pull"))
    )
    assert "'future'" in await error(r, 403, "FORBIDDEN")
    await api.project("future")
    assert await actions(api, login(parent), "future/app") == []


async def test_attack_child_gains_system_permissions_its_parent_lacks(api: Api) -> None:
    parent = await api.robot(
        system_robot("parent", on("*", "repository:pull"), system("robot:create"))
    )
    child = system_robot("child", on("*", "repository:pull"), system("catalog:read"))
    r = await api.call("POST", "/robots", login(parent), child)
    assert "catalog:read in the system" in await error(r, 403, "FORBIDDEN")


# ---- 4. expiry ------------------------------------------------------------------------------


async def test_attack_robot_creates_a_child_that_outlives_it(api: Api) -> None:
    await api.project("p")
    parent = await api.robot(
        project_robot("p", "parent", "repository:pull", "robot:create", duration=30)
    )
    for duration in (-1, 31):
        child = project_robot("p", "child", "repository:pull", duration=duration)
        r = await api.call("POST", "/robots", login(parent), child)
        assert "expire no later" in await error(r, 403, "FORBIDDEN")
    child = await api.robot(
        project_robot("p", "child", "repository:pull", duration=29), auth=login(parent)
    )
    assert child["expires_at"] < parent["expires_at"]


async def test_attack_robot_makes_itself_never_expire(api: Api) -> None:
    await api.project("p")
    me = await api.robot(
        project_robot("p", "me", "repository:pull", "robot:read", "robot:update", duration=30)
    )
    mine = await get_robot(api, me["id"])
    for duration in (-1, 60):
        r = await api.call(
            "PUT", f"/robots/{me['id']}", login(me), put_body(mine, duration=duration)
        )
        assert "expire no later" in await error(r, 403, "FORBIDDEN")
    # A PUT that keeps its duration is fine.
    r = await api.call("PUT", f"/robots/{me['id']}", login(me), put_body(mine, description="x"))
    assert r.status == 200, await r.text()
    # Restarting its own expiry with a refreshed secret would also outlive the robot it is
    # (here a day from its end, as another process would see it).
    soon = int(time.time()) + 86400
    with sqlite3.connect(api.server.settings.database.path) as db:
        db.execute("UPDATE robot SET expires_at = ? WHERE id = ?", (soon, me["id"]))
    await asyncio.sleep(0)  # another process's write reaches the server in a later turn
    r = await api.call("PATCH", f"/robots/{me['id']}", login(me), {"restart_expiry": True})
    assert "expire no later" in await error(r, 403, "FORBIDDEN")
    assert (await get_robot(api, me["id"]))["expires_at"] == soon


async def test_attack_expiring_robot_refreshes_a_never_expiring_peer(api: Api) -> None:
    """The secret of a peer that never expires would outlive the robot that asked for it."""
    await api.project("p")
    actor = await api.robot(
        project_robot("p", "actor", "repository:pull", "robot:update", duration=7)
    )
    peer = await api.robot(project_robot("p", "peer", "repository:pull"))
    r = await api.call("PATCH", f"/robots/{peer['id']}", login(actor), {})
    assert "expire no later" in await error(r, 403, "FORBIDDEN")


# ---- 5. project deleted and created again ---------------------------------------------------


async def test_attack_deny_stops_applying_when_the_project_is_recreated(api: Api) -> None:
    await api.project("vault")
    robot = await api.robot(
        system_robot("reader", on("*", "repository:pull"), on("vault", deny=("repository:pull",)))
    )
    assert await actions(api, login(robot), "vault/app") == []
    assert (await api.call("DELETE", "/projects/vault", api.admin)).status == 200
    user = await api.user("someone")
    await api.project("vault", auth=user)
    assert await actions(api, login(robot), "vault/app") == []
    shown = (await get_robot(api, robot["id"]))["permissions"]
    vault = [p for p in shown if p["namespace"] == "vault"]
    assert vault == [
        {
            "kind": "project",
            "namespace": "vault",
            "access": [{"resource": "repository", "action": "pull", "effect": "deny"}],
        }
    ]


async def test_attack_allow_is_inherited_by_a_recreated_project(api: Api) -> None:
    await api.project("shared")
    robot = await api.robot(
        system_robot("pusher", on("shared", "repository:pull", "repository:push"))
    )
    assert await actions(api, login(robot), "shared/app") == ["pull", "push"]
    assert (await api.call("DELETE", "/projects/shared", api.admin)).status == 200
    await api.project("shared", auth=await api.user("squatter"))
    assert await actions(api, login(robot), "shared/app") == []
    # GET shows what is enforced: no allow on the new project of that name. No permission at
    # all is no "permissions" field, as Harbor leaves an empty list out.
    assert "permissions" not in await get_robot(api, robot["id"])


async def test_a_robot_put_back_as_shown_keeps_its_deny_on_a_deleted_project(api: Api) -> None:
    await api.project("vault")
    robot = await api.robot(
        system_robot(
            "reader",
            on("*", "repository:pull"),
            on("vault", "repository:push", deny=("repository:pull",)),
        )
    )
    assert (await api.call("DELETE", "/projects/vault", api.admin)).status == 200
    shown = await get_robot(api, robot["id"])
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, put_body(shown))
    assert r.status == 200, await r.text()
    assert (await get_robot(api, robot["id"]))["permissions"] == shown["permissions"]
    await api.project("vault")
    assert await actions(api, login(robot), "vault/app") == []
    # An allow on a project that does not exist is still refused.
    body = put_body(shown, permissions=[on("gone", "repository:pull")])
    r = await api.call("PUT", f"/robots/{robot['id']}", api.admin, body)
    assert "not found" in await error(r, 400, "BAD_REQUEST")


# ---- robots making members ------------------------------------------------------------------


def role_access(role: Role) -> tuple[str, ...]:
    return tuple(f"{r}:{a}" for r, a in sorted(ROLE_GRANTS[role].allowed))


async def test_attack_member_robot_makes_a_user_projectadmin_everywhere(api: Api) -> None:
    """A robot holding only member rights on `*` made bob projectAdmin of every project;
    bob then made a robot that pushes and deletes there."""
    await api.project("p")
    bob = await api.user("bob")
    robot = login(
        await api.robot(
            system_robot(
                "members",
                on("*", "member:create", "member:update", "member:list", "repository:pull"),
            )
        )
    )
    body = {"role_id": 1, "member_user": {"username": "bob"}}
    r = await api.call("POST", "/projects/p/members", robot, body)
    message = await error(r, 403, "FORBIDDEN")
    assert "the role projectAdmin holds" in message and "repository:push" in message
    assert "in project 'p'" in message
    for role in (2, 3, 4, 5):  # no role is within pull alone
        body = {"role_id": role, "member_user": {"username": "bob"}}
        await error(await api.call("POST", "/projects/p/members", robot, body), 403, "FORBIDDEN")
    r = await api.call("GET", "/projects/p/members", api.admin)
    assert [m["entity_name"] for m in await r.json()] == ["admin"]
    r = await api.call("POST", "/robots", bob, project_robot("p", "bobs", "repository:push"))
    await error(r, 403, "FORBIDDEN")
    # Changing a member's role is held to the same rule.
    await api.member("p", "bob", 5)
    (member,) = [
        m
        for m in await (await api.call("GET", "/projects/p/members", api.admin)).json()
        if m["entity_name"] == "bob"
    ]
    r = await api.call("PUT", f"/projects/p/members/{member['id']}", robot, {"role_id": 1})
    assert "the role projectAdmin holds" in await error(r, 403, "FORBIDDEN")
    r = await api.call("GET", f"/projects/p/members/{member['id']}", api.admin)
    assert (await r.json())["role_id"] == 5


async def test_a_member_robot_gives_roles_within_its_own_permissions(api: Api) -> None:
    await api.project("p")
    await api.project("q")
    await api.user("carol")
    members = ("member:create", "member:update", "member:list")
    robot = login(
        await api.robot(
            system_robot(
                "guests",
                on("*", *members, *role_access(Role.GUEST)),
                on("q", deny=("repository:pull",)),
            )
        )
    )
    body = {"role_id": 3, "member_user": {"username": "carol"}}
    assert (await api.call("POST", "/projects/p/members", robot, body)).status == 201
    # a deny in q takes the guest role out of the robot's reach there
    r = await api.call("POST", "/projects/q/members", robot, body)
    assert "repository:pull in project 'q'" in await error(r, 403, "FORBIDDEN")
    (member,) = [
        m
        for m in await (await api.call("GET", "/projects/p/members", api.admin)).json()
        if m["entity_name"] == "carol"
    ]
    path = f"/projects/p/members/{member['id']}"
    assert (await api.call("PUT", path, robot, {"role_id": 5})).status == 200  # narrower
    await error(await api.call("PUT", path, robot, {"role_id": 2}), 403, "FORBIDDEN")
    # a user keeps the role rules: a projectAdmin may give any role
    r = await api.call("PUT", path, api.admin, {"role_id": 1})
    assert r.status == 200
