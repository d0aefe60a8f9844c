"""Users as Harbor has them: profile (PUT), deletion, the system admin flag, search and the
caller's permissions; who may do each, and what a deletion takes with it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.http.conftest import basic
from tests.http.test_api import TOKEN, Api, api, creds, error, project_robot
from tokenserver.domain.models import LOCAL

__all__ = ["api"]  # the fixture, shared with tests/http/test_api.py


async def user_id(api: Api, auth: dict[str, str]) -> int:
    me = await (await api.call("GET", "/users/current", auth)).json()
    found: int = me["user_id"]
    return found


async def audit(api: Api) -> list[tuple[str, str, str, str, str]]:
    entries = await (await api.call("GET", "/audit-logs?page_size=100", api.admin)).json()
    return [
        (e["username"], e["operation"], e["resource_type"], e["resource"], e["outcome"])
        for e in entries
    ]


# ---- search ----------------------------------------------------------------------------------


async def test_search_is_routed_and_open_to_any_authenticated_caller(api: Api) -> None:
    """`/users/search` was taken as a user id: 400 "user_id must be a positive integer"."""
    alice = await api.user("alice")
    await api.user("malia")
    await api.user("bob")
    await api.project("p")
    robot = creds(await api.robot(project_robot("p", "ci", "repository:pull")))
    for caller in (alice, robot, api.admin):
        r = await api.call("GET", "/users/search?username=ali", caller)
        assert r.status == 200, await r.text()
        assert await r.json() == [
            {"user_id": await user_id(api, alice), "username": "alice"},
            {"user_id": (await user_id(api, basic("malia", "Us3rPassword"))), "username": "malia"},
        ]
        assert r.headers["X-Total-Count"] == "2"
    r = await api.call("GET", "/users/search?username=a&page_size=1&page=2", alice)
    assert [u["username"] for u in await r.json()] == ["alice"]  # admin, alice, malia
    assert r.headers["X-Total-Count"] == "3"
    assert await (await api.call("GET", "/users/search?username=zed", alice)).json() == []
    await error(await api.call("GET", "/users/search?username=a"), 401, "UNAUTHORIZED")
    for query in ("", "?username="):
        r = await api.call("GET", f"/users/search{query}", alice)
        assert "username" in await error(r, 400, "BAD_REQUEST")


# ---- profile ---------------------------------------------------------------------------------


async def test_users_update_their_own_profile_and_admins_anyones(api: Api) -> None:
    carol = await api.user("carol")
    dave = await api.user("dave")
    carol_id, dave_id = await user_id(api, carol), await user_id(api, dave)
    profile = {"email": "carol@example.com", "realname": "Carol C", "comment": "ops"}
    assert (await api.call("PUT", f"/users/{carol_id}", carol, profile)).status == 200
    shown = await (await api.call("GET", f"/users/{carol_id}", carol)).json()
    assert {k: shown[k] for k in profile} == profile
    # Harbor replaces all three: one left out becomes empty.
    r = await api.call("PUT", f"/users/{carol_id}", api.admin, {"realname": "Carol"})
    assert r.status == 200
    shown = await (await api.call("GET", f"/users/{carol_id}", carol)).json()
    # Empty ones are left out of the answer, as Harbor leaves them.
    assert shown["realname"] == "Carol" and {"email", "comment"}.isdisjoint(shown)
    # Nobody else's: dave is no admin.
    r = await api.call("PUT", f"/users/{carol_id}", dave, {"email": "evil@example.com"})
    await error(r, 403, "FORBIDDEN")
    await error(await api.call("PUT", "/users/9999", api.admin, profile), 404, "NOT_FOUND")
    await error(await api.call("PUT", f"/users/{dave_id}", None, profile), 401, "UNAUTHORIZED")
    assert ("admin", "update", "user", "carol/profile", "success") in await audit(api)
    assert ("dave", "update", "user", f"{carol_id}/profile", "failure: FORBIDDEN") in await audit(
        api
    )


async def test_a_taken_email_is_a_conflict(api: Api) -> None:
    """Harbor's `harbor_user.email` is UNIQUE: a second user with the same email is 409 ("user
    bob or email a@example.com already exists"). tokenserver created both (201, 201), so
    `username_or_email=a@example.com` then found two users."""
    body = {"username": "alice", "email": "a@example.com", "password": "Us3rPassword"}
    r = await api.call("POST", "/users", api.admin, body)
    assert r.status == 201, await r.text()
    r = await api.call("POST", "/users", api.admin, {**body, "username": "bob"})
    message = await error(r, 409, "CONFLICT")
    assert message == "user bob or email a@example.com already exists"
    r = await api.call("GET", "/users?q=username_or_email%3Da@example.com", api.admin)
    assert [u["username"] for u in await r.json()] == ["alice"]
    # Nor by changing one's profile; one's own email again is no conflict.
    bob = await api.user("bob")
    bob_id = await user_id(api, bob)
    r = await api.call("PUT", f"/users/{bob_id}", bob, {"email": "a@example.com"})
    assert await error(r, 409, "CONFLICT") == "email a@example.com already exists"
    profile = {"email": "b@example.com", "realname": "Bob"}
    assert (await api.call("PUT", f"/users/{bob_id}", bob, profile)).status == 200
    assert (await api.call("PUT", f"/users/{bob_id}", bob, profile)).status == 200
    # Users without an email are many.
    await api.user("carol")
    await api.user("dave")


async def test_attack_users_created_at_once_with_one_email_one_wins(api: Api) -> None:
    def body(name: str) -> dict[str, str]:
        return {"username": name, "email": "same@example.com", "password": "Us3rPassword"}

    answers = await asyncio.gather(
        *(api.call("POST", "/users", api.admin, body(f"u{i}")) for i in range(4))
    )
    assert sorted(r.status for r in answers) == [201, 409, 409, 409]


async def test_bad_profiles_are_400(api: Api) -> None:
    carol = await api.user("carol")
    path = f"/users/{await user_id(api, carol)}"
    for body, message in (
        ({"email": 5}, "'email' must be a string"),
        ({"username": "other"}, "unknown field 'username'"),
        ({"comment": "x" * 256}, "comment longer than 255"),
        ({"realname": "a\u0000b"}, "NUL"),
    ):
        r = await api.call("PUT", path, carol, body)
        assert message in await error(r, 400, "BAD_REQUEST")
    r = await api.call("PUT", "/users/abc", carol, {})
    await error(r, 400, "BAD_REQUEST")


# ---- system admin flag -----------------------------------------------------------------------


async def test_sysadmin_flag_is_set_by_system_admins_and_never_leaves_none(api: Api) -> None:
    bob = await api.user("bob")
    bob_id = await user_id(api, bob)
    admin_id = await user_id(api, api.admin)
    r = await api.call("PUT", f"/users/{bob_id}/sysadmin", bob, {"sysadmin_flag": True})
    await error(r, 403, "FORBIDDEN")
    await error(await api.call("GET", "/users", bob), 403, "FORBIDDEN")
    r = await api.call("PUT", f"/users/{bob_id}/sysadmin", api.admin, {"sysadmin_flag": True})
    assert r.status == 200
    assert (await (await api.call("GET", "/users/current", bob)).json())["sysadmin_flag"]
    assert (await api.call("GET", "/users", bob)).status == 200
    # Harbor lets a system admin demote `admin`: bob is one too.
    r = await api.call("PUT", f"/users/{admin_id}/sysadmin", bob, {"sysadmin_flag": False})
    assert r.status == 200
    await error(await api.call("GET", "/users", api.admin), 403, "FORBIDDEN")
    # bob is the last one now: demoting himself would leave nobody to manage users.
    r = await api.call("PUT", f"/users/{bob_id}/sysadmin", bob, {"sysadmin_flag": False})
    assert "last system admin" in await error(r, 403, "FORBIDDEN")
    assert (await (await api.call("GET", "/users/current", bob)).json())["sysadmin_flag"]
    r = await api.call("PUT", "/users/9999/sysadmin", bob, {"sysadmin_flag": True})
    await error(r, 404, "NOT_FOUND")
    r = await api.call("PUT", f"/users/{admin_id}/sysadmin", bob, {})
    assert "sysadmin_flag" in await error(r, 400, "BAD_REQUEST")
    r = await api.call("PUT", f"/users/{admin_id}/sysadmin", bob, {"sysadmin_flag": "true"})
    await error(r, 400, "BAD_REQUEST")
    entries = await (await api.call("GET", "/audit-logs?page_size=100", bob)).json()
    outcomes = [(e["username"], e["resource"], e["outcome"]) for e in entries]
    assert ("bob", "bob/sysadmin", "failure: FORBIDDEN") in outcomes
    assert ("bob", "admin/sysadmin", "success") in outcomes


async def test_parallel_demotions_and_deletions_leave_one_system_admin(api: Api) -> None:
    ids = []
    for name in ("s1", "s2", "s3", "s4", "s5"):
        auth = await api.user(name)
        ids.append(await user_id(api, auth))
        r = await api.call("PUT", f"/users/{ids[-1]}/sysadmin", api.admin, {"sysadmin_flag": True})
        assert r.status == 200
    ids.append(await user_id(api, api.admin))
    users = api.server.runtime.users
    # NOTE: by the command line (the local operator), which no demotion can lock out midway.
    results = await asyncio.gather(
        *(
            users.delete(LOCAL, i)
            if i % 2 and i != ids[-1]
            else users.set_sysadmin(LOCAL, i, False)
            for i in ids
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and "last system admin" in str(refused[0])
    remaining = await api.server.runtime.store.list_users()
    assert sum(u.sysadmin for u in remaining) == 1


# ---- deletion --------------------------------------------------------------------------------


async def test_a_user_who_is_no_admin_cannot_delete_another(api: Api) -> None:
    erin = await api.user("erin")
    frank = await api.user("frank")
    frank_id = await user_id(api, frank)
    await error(await api.call("DELETE", f"/users/{frank_id}", erin), 403, "FORBIDDEN")
    await error(await api.call("DELETE", f"/users/{frank_id}"), 401, "UNAUTHORIZED")
    assert (await api.call("GET", "/users/current", frank)).status == 200
    # Named by id: the refusal comes before the lookup, so it tells erin nothing of frank.
    assert ("erin", "delete", "user", str(frank_id), "failure: FORBIDDEN") in await audit(api)


async def test_deleting_a_user_takes_its_memberships_and_frees_its_name(api: Api) -> None:
    grace = await api.user("grace")
    grace_id = await user_id(api, grace)
    await api.project("team")
    await api.project("mine", auth=grace)  # grace owns it and is its projectAdmin
    await api.member("team", "grace", 2)
    assert (await api.call("DELETE", f"/users/{grace_id}", api.admin)).status == 200
    await error(await api.call("GET", f"/users/{grace_id}", api.admin), 404, "NOT_FOUND")
    await error(await api.call("GET", "/users/current", grace), 401, "UNAUTHORIZED")
    members = await (await api.call("GET", "/projects/team/members", api.admin)).json()
    assert [m["entity_name"] for m in members] == ["admin"]
    assert await (await api.call("GET", "/projects/mine/members", api.admin)).json() == []
    mine = await (await api.call("GET", "/projects/mine", api.admin)).json()
    assert {"owner_id", "owner_name"}.isdisjoint(mine)  # no owner: left out, as in Harbor
    await error(await api.call("DELETE", f"/users/{grace_id}", api.admin), 404, "NOT_FOUND")
    assert ("admin", "delete", "user", "grace", "success") in await audit(api)
    # The name is free again, for a new account that inherits nothing.
    again = await api.user("grace", "N3wPassword")
    assert await user_id(api, again) != grace_id
    await error(await api.call("GET", "/projects/team", again), 403, "FORBIDDEN")
    await error(await api.call("GET", "/users/current", grace), 401, "UNAUTHORIZED")


async def test_nobody_deletes_themselves_or_admin(api: Api) -> None:
    heidi = await api.user("heidi")
    heidi_id = await user_id(api, heidi)
    admin_id = await user_id(api, api.admin)
    r = await api.call("PUT", f"/users/{heidi_id}/sysadmin", api.admin, {"sysadmin_flag": True})
    assert r.status == 200
    message = await error(await api.call("DELETE", f"/users/{admin_id}", heidi), 403, "FORBIDDEN")
    assert "'admin' cannot be deleted" in message
    r = await api.call("DELETE", f"/users/{heidi_id}", heidi)
    assert "'heidi' cannot be deleted" in await error(r, 403, "FORBIDDEN")
    r = await api.call("DELETE", f"/users/{admin_id}", api.admin)
    await error(r, 403, "FORBIDDEN")
    assert (await api.call("GET", "/users/current", api.admin)).status == 200
    assert (await api.call("GET", "/users/current", heidi)).status == 200


async def test_parallel_deletes_of_one_user_delete_it_once(api: Api) -> None:
    ivan = await api.user("ivan")
    ivan_id = await user_id(api, ivan)
    responses = await asyncio.gather(
        *(api.call("DELETE", f"/users/{ivan_id}", api.admin) for _ in range(8))
    )
    assert sorted(r.status for r in responses) == [200] + [404] * 7
    ivan_entries = [e for e in await audit(api) if e[1] == "delete"]
    assert [e[4] for e in ivan_entries].count("success") == 1


async def test_attack_delete_a_user_while_it_creates_projects_and_is_added(api: Api) -> None:
    """Once: 500s (a member row cascaded away before its read-back), projects left with no
    owner nor member and their names taken, 409s for projects that did not exist, and
    projects created without an audit entry."""
    await api.project("team")
    for round_ in range(10):
        auth = await api.user(f"racer{round_}")
        racer = await user_id(api, auth)
        names = [f"race{round_}-{i}" for i in range(11)]
        creations = [
            api.call("POST", "/projects", auth, {"project_name": n, "metadata": {}}) for n in names
        ]
        joined = api.call(
            "POST",
            "/projects/team/members",
            api.admin,
            {"role_id": 2, "member_user": {"user_id": racer}},
        )
        deleted = api.call("DELETE", f"/users/{racer}", api.admin)
        # the deletion sent amid the others
        join, *answers = await asyncio.gather(joined, *creations[:6], deleted, *creations[6:])
        delete = answers.pop(6)
        created = answers
        assert delete.status == 200, await delete.text()
        assert join.status in (201, 404), await join.text()
        entries = await audit(api)
        for name, r in zip(names, created, strict=True):
            assert r.status in (201, 404, 401), (name, r.status, await r.text())
            found = await api.call("GET", f"/projects/{name}", api.admin)
            if r.status == 201:
                # created whole; the deletion then took its owner and membership
                assert found.status == 200
                assert (
                    await (await api.call("GET", f"/projects/{name}/members", api.admin)).json()
                    == []
                )
                assert (f"racer{round_}", "create", "project", name, "success") in entries
            else:
                await error(found, 404, "NOT_FOUND")  # nothing left behind, the name free
        members = await (await api.call("GET", "/projects/team/members", api.admin)).json()
        assert [m["entity_name"] for m in members] == ["admin"]


async def test_a_deleted_users_session_and_refresh_token_stop_at_once(api: Api) -> None:
    judy = await api.user("judy", "Jud1Password")
    judy_id = await user_id(api, judy)
    client = api.client
    r = await client.post("/c/login", json={"principal": "judy", "password": "Jud1Password"})
    assert r.status == 200, await r.text()
    assert (await client.get("/c/session")).status == 200
    r = await client.get(
        TOKEN,
        params={"service": "registry", "offline_token": "true", "client_id": "docker"},
        headers=judy,
    )
    refresh = (await r.json())["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "service": "registry",
        "client_id": "docker",
    }
    assert (await client.post(TOKEN, data=form)).status == 200
    # Deleted with Basic credentials on the same client: the cookie jar still holds judy's.
    assert (await api.call("DELETE", f"/users/{judy_id}", api.admin)).status == 200
    assert (await client.get("/c/session")).status == 401
    assert (await client.get("/api/v2.0/users/current")).status == 401
    assert (await client.post(TOKEN, data=form)).status == 401
    assert (await client.get(TOKEN, headers=judy)).status == 401
    store = api.server.runtime.store
    assert await store.list_refresh_tokens(user_id=judy_id) == []


# ---- the caller's permissions ----------------------------------------------------------------


def pairs(body: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(p["resource"], p["action"]) for p in body}


async def test_current_permissions_in_a_project_follow_the_role(api: Api) -> None:
    kim = await api.user("kim")
    project_id = await api.project("p")
    await api.member("p", "kim", 2)  # developer
    scope = f"/project/{project_id}"
    r = await api.call("GET", f"/users/current/permissions?scope={scope}", kim)
    assert r.status == 200, await r.text()
    held = pairs(await r.json())
    assert {(f"{scope}/repository", "push"), (f"{scope}/repository", "pull"), (scope, "read")} <= (
        held
    )
    assert (f"{scope}/repository", "delete") not in held
    assert (f"{scope}/member", "create") not in held
    r = await api.call("GET", f"/users/current/permissions?scope={scope}&relative=true", kim)
    relative = pairs(await r.json())
    assert {("repository", "push"), (".", "read")} <= relative
    assert len(relative) == len(held)
    admin = pairs(
        await (await api.call("GET", f"/users/current/permissions?scope={scope}", api.admin)).json()
    )
    assert {(f"{scope}/repository", "delete"), (f"{scope}/member", "create")} <= admin
    assert held < admin


async def test_current_permissions_in_the_system_and_elsewhere(api: Api) -> None:
    lee = await api.user("lee")
    r = await api.call("GET", "/users/current/permissions?scope=/system&relative=true", api.admin)
    system = pairs(await r.json())
    assert {("user", "create"), ("user", "delete"), ("project", "create"), ("catalog", "read")} <= (
        system
    )
    r = await api.call("GET", "/users/current/permissions?scope=/system", api.admin)
    assert ("/system/catalog", "read") in pairs(await r.json())
    # A user who is no admin holds nothing in the system, as in Harbor (it may still create
    # projects: that is project_creation_restriction's business).
    assert (
        await (await api.call("GET", "/users/current/permissions?scope=/system", lee)).json() == []
    )
    for scope in ("", "?scope=", "?scope=/project/abc", "?scope=/nothing", "?scope=/project/"):
        r = await api.call("GET", f"/users/current/permissions{scope}", api.admin)
        assert await r.json() == [], scope
    # A project that does not exist: an admin may do anything there, anyone else nothing.
    missing = "/users/current/permissions?scope=/project/9999"
    assert len(await (await api.call("GET", missing, api.admin)).json()) > 10
    assert await (await api.call("GET", missing, lee)).json() == []
    await error(
        await api.call("GET", "/users/current/permissions?scope=/system"), 401, "UNAUTHORIZED"
    )
    r = await api.call("GET", "/users/current/permissions?scope=/system&relative=maybe", lee)
    assert "relative" in await error(r, 400, "BAD_REQUEST")


async def test_a_robots_permissions_are_its_own(api: Api) -> None:
    project_id = await api.project("p")
    robot = creds(await api.robot(project_robot("p", "ci", "repository:pull", "tag:create")))
    scope = f"/project/{project_id}"
    r = await api.call("GET", f"/users/current/permissions?scope={scope}&relative=true", robot)
    assert pairs(await r.json()) == {("repository", "pull"), ("tag", "create")}
    r = await api.call("GET", "/users/current/permissions?scope=/system", robot)
    assert await r.json() == []


def user_manager(*actions: str) -> dict[str, Any]:
    """A system robot holding Harbor's system `user` permissions `actions`."""
    return {
        "name": "people",
        "level": "system",
        "duration": -1,
        "permissions": [
            {
                "kind": "system",
                "namespace": "/",
                "access": [{"resource": "user", "action": a} for a in actions],
            }
        ],
    }


async def test_attack_a_robot_with_user_update_cannot_make_or_unmake_system_admins(
    api: Api,
) -> None:
    """A robot holding system `user:update` made any user a system admin and demoted `admin`:
    only a system admin changes who is one (stricter than Harbor)."""
    carol = await api.user("carol")
    carol_id, admin_id = await user_id(api, carol), await user_id(api, api.admin)
    robot = creds(await api.robot(user_manager("update", "delete", "create", "list", "read")))
    for target, flag in ((carol_id, True), (admin_id, False), (admin_id, True), (carol_id, False)):
        r = await api.call("PUT", f"/users/{target}/sysadmin", robot, {"sysadmin_flag": flag})
        assert "not a system admin" in await error(r, 403, "FORBIDDEN")
    assert not (await (await api.call("GET", "/users/current", carol)).json())["sysadmin_flag"]
    assert (await (await api.call("GET", "/users/current", api.admin)).json())["sysadmin_flag"]
    assert ("robot$people", "update", "user", "carol/sysadmin", "failure: FORBIDDEN") in (
        await audit(api)
    )
    assert ("robot$people", "update", "user", "admin/sysadmin", "failure: FORBIDDEN") in (
        await audit(api)
    )
    # A system admin still does it (and Harbor's `admin` is one of them).
    r = await api.call("PUT", f"/users/{carol_id}/sysadmin", api.admin, {"sysadmin_flag": True})
    assert r.status == 200, await r.text()


async def test_attack_a_robot_with_user_update_cannot_take_over_a_system_admin(
    api: Api,
) -> None:
    """A robot holding system `user:update` set `admin`'s password without the old one (and
    so owned the account), rewrote its profile and deleted other system admins."""
    bob = await api.user("bob")
    bob_id, admin_id = await user_id(api, bob), await user_id(api, api.admin)
    r = await api.call("PUT", f"/users/{bob_id}/sysadmin", api.admin, {"sysadmin_flag": True})
    assert r.status == 200
    robot = creds(await api.robot(user_manager("update", "delete")))
    for target in (admin_id, bob_id):
        body = {"new_password": "T4kenOverNow"}
        r = await api.call("PUT", f"/users/{target}/password", robot, body)
        assert "not a system admin" in await error(r, 403, "FORBIDDEN")
        # The old password, which the robot might have guessed, changes nothing.
        body["old_password"] = "Us3rPassword"
        r = await api.call("PUT", f"/users/{target}/password", robot, body)
        await error(r, 403, "FORBIDDEN")
        r = await api.call("PUT", f"/users/{target}", robot, {"email": "evil@example.com"})
        assert "not a system admin" in await error(r, 403, "FORBIDDEN")
    r = await api.call("DELETE", f"/users/{bob_id}", robot)
    assert "may not delete the system admin 'bob'" in await error(r, 403, "FORBIDDEN")
    # Nothing changed: both log in with their passwords, with their profiles and their rank.
    for who in (api.admin, bob):
        me = await (await api.call("GET", "/users/current", who)).json()
        assert me["sysadmin_flag"] and "email" not in me
    taken = basic("admin", "T4kenOverNow")
    await error(await api.call("GET", "/users/current", taken), 401, "UNAUTHORIZED")
    log = await audit(api)
    for resource in ("admin/password", "admin/profile", "bob/password", "bob/profile", "bob"):
        operation = "delete" if resource == "bob" else "update"
        assert ("robot$people", operation, "user", resource, "failure: FORBIDDEN") in log
    assert not any(e[0] == "robot$people" and e[4] == "success" for e in log)


async def test_a_robot_with_user_permissions_still_manages_ordinary_users(api: Api) -> None:
    """As in Harbor, such a robot sets an ordinary user's password without the old one,
    replaces its profile and deletes it; it may not demote the last system admin either."""
    carol = await api.user("carol")
    dave = await api.user("dave")
    carol_id, dave_id = await user_id(api, carol), await user_id(api, dave)
    robot = creds(await api.robot(user_manager("update", "delete")))
    r = await api.call("PUT", f"/users/{carol_id}/password", robot, {"new_password": "N3wPassword"})
    assert r.status == 200, await r.text()
    assert (await api.call("GET", "/users/current", basic("carol", "N3wPassword"))).status == 200
    await error(await api.call("GET", "/users/current", carol), 401, "UNAUTHORIZED")
    r = await api.call("PUT", f"/users/{carol_id}", robot, {"realname": "Carol C"})
    assert r.status == 200, await r.text()
    assert (await (await api.call("GET", f"/users/{carol_id}", api.admin)).json())[
        "realname"
    ] == "Carol C"
    assert (await api.call("DELETE", f"/users/{dave_id}", robot)).status == 200
    await error(await api.call("GET", "/users/current", dave), 401, "UNAUTHORIZED")
    r = await api.call("DELETE", f"/users/{await user_id(api, api.admin)}", robot)
    assert "'admin' cannot be deleted" in await error(r, 403, "FORBIDDEN")
    log = await audit(api)
    assert ("robot$people", "update", "user", "carol/password", "success") in log
    assert ("robot$people", "delete", "user", "dave", "success") in log


@pytest.mark.parametrize(
    "password",
    ["Passw0rd1\u0000zz", "Passw0rd1\u0000", "Passw0rd1\n", "Pass\u007fw0rd1", "Passw0rd1\u009b"],
)
async def test_attack_a_password_with_a_control_character_is_refused(
    api: Api, password: str
) -> None:
    """`Passw0rd1\\0zz` was taken as a password; its NUL could not be typed at a login form,
    and a trailing NUL made a shorter twin that logged in as well."""
    r = await api.call("POST", "/users", api.admin, {"username": "eve", "password": password})
    message = await error(r, 400, "BAD_REQUEST")
    assert "the password must not contain control characters" in message
    assert "Passw0rd1" not in message
    carol = await api.user("carol")
    carol_id = await user_id(api, carol)
    for caller, body in (
        (carol, {"old_password": "Us3rPassword", "new_password": password}),
        (api.admin, {"new_password": password}),
    ):
        r = await api.call("PUT", f"/users/{carol_id}/password", caller, body)
        assert "must not contain control characters" in await error(r, 400, "BAD_REQUEST")
    assert (await api.call("GET", "/users/current", carol)).status == 200
    users = await (await api.call("GET", "/users", api.admin)).json()
    assert [u["username"] for u in users] == ["admin", "carol"]


async def test_a_password_change_is_audited_under_the_users_name(api: Api) -> None:
    """The API recorded `7/password` where `tokenserver user set-password` records
    `carol/password`: one user, two names in the audit log."""
    carol = await api.user("carol")
    carol_id = await user_id(api, carol)
    body = {"new_password": "N3wPassword"}
    r = await api.call("PUT", f"/users/{carol_id}/password", api.admin, json=body)
    assert r.status == 200, await r.text()
    r = await api.call("PUT", "/users/999999/password", api.admin, json=body)
    await error(r, 404, "NOT_FOUND")
    entries = [e for e in await audit(api) if e[3].endswith("/password")]
    assert ("admin", "update", "user", "carol/password", "success") in entries
    assert ("admin", "update", "user", "999999/password", "failure: NOT_FOUND") in entries
    assert not any(e[3] == f"{carol_id}/password" for e in entries)
