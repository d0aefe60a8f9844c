"""Who reads which audit entries (issue 16 item 5), as Harbor answers: GET /audit-logs and
/auditlog-exts give every entry to holders of audit-log:list, a user's projects' entries to
other users (nothing to other robots), and GET /projects/{name}/logs and
/projects/{name}/auditlog-exts a project's entries to those who may list its log. An
operator of one project never sees another's, whatever the query says."""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote

import pytest

from tests.http.conftest import Server
from tests.http.test_api import ADMIN_PASSWORD, Api, creds, error, project_robot
from tokenserver.domain.roles import Role


@pytest.fixture
async def api(server: Server) -> Api:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    return Api(server)


class World:
    """Projects p1 and p2; alice a developer in p1, bob projectAdmin in p2, lim a limited
    guest in p1, eve a member of nothing; robots: p1's log reader, p2's log reader, a
    system robot with audit-log:list and one with only project:create."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.auth: dict[str, dict[str, str]] = {}
        self.ids: dict[str, int] = {}

    async def build(self) -> World:
        api = self.api
        for name in ("alice", "bob", "lim", "eve"):
            self.auth[name] = await api.user(name)
        self.ids["p1"] = await api.project("p1")
        self.ids["p2"] = await api.project("p2")
        await api.member("p1", "alice", Role.DEVELOPER)
        await api.member("p2", "bob", Role.PROJECT_ADMIN)
        await api.member("p1", "lim", Role.LIMITED_GUEST)
        self.auth["r1"] = creds(await api.robot(project_robot("p1", "logs", "log:list")))
        self.auth["r2"] = creds(await api.robot(project_robot("p2", "logs", "log:list")))
        self.auth["auditor"] = creds(await api.robot(system_robot("auditor", "audit-log:list")))
        self.auth["maker"] = creds(await api.robot(system_robot("maker", "project:create")))
        # A failure in p2 by bob (the name is taken), and one in p1 by eve (she may not):
        # each is p2's and p1's.
        body = project_robot("p2", "logs", "repository:pull")
        r = await api.call("POST", "/robots", self.auth["bob"], body)
        assert r.status == 409
        r = await api.call("DELETE", "/projects/p1/members/1", self.auth["eve"])
        assert r.status == 403
        return self

    async def resources(self, path: str, who: str) -> list[str]:
        auth = self.api.admin if who == "admin" else self.auth[who]
        r = await self.api.call("GET", path + ("&" if "?" in path else "?") + "page_size=100", auth)
        assert r.status == 200, await r.text()
        entries: list[dict[str, Any]] = await r.json()
        assert int(r.headers["X-Total-Count"]) == len(entries)
        return [e["resource"] for e in entries]


def system_robot(name: str, *access: str) -> dict[str, Any]:
    return {
        "name": name,
        "level": "system",
        "duration": -1,
        "permissions": [
            {
                "kind": "system",
                "namespace": "/",
                "access": [
                    {"resource": a.split(":")[0], "action": a.split(":")[1]} for a in access
                ],
            }
        ],
    }


@pytest.fixture
async def world(api: Api) -> World:
    return await World(api).build()


P1 = ["p1/1", "robot$p1+logs", "p1/lim", "p1/alice", "p1"]
P2 = ["robot$p2+logs", "robot$p2+logs", "p2/bob", "p2"]


@pytest.mark.parametrize("path", ["/audit-logs", "/auditlog-exts"])
async def test_users_read_the_entries_of_their_projects(world: World, path: str) -> None:
    assert await world.resources(path, "alice") == P1
    assert await world.resources(path, "bob") == P2
    # A limited guest may not list the log (Harbor's role), a stranger is member of nothing.
    assert await world.resources(path, "lim") == []
    assert await world.resources(path, "eve") == []


@pytest.mark.parametrize("path", ["/audit-logs", "/auditlog-exts"])
async def test_robots_read_every_entry_or_none(world: World, path: str) -> None:
    everything = await world.resources(path, "admin")
    assert "alice" in everything and "robot$auditor" in everything  # system entries too
    assert await world.resources(path, "auditor") == everything
    # Harbor gives a robot without audit-log:list nothing here, even one that may list a
    # project's log (it reads it at /projects/{name}/logs).
    assert await world.resources(path, "r1") == []
    assert await world.resources(path, "maker") == []


async def test_anonymous_callers_are_asked_to_authenticate(world: World) -> None:
    for path in (
        "/audit-logs",
        "/auditlog-exts",
        "/projects/p1/logs",
        "/projects/p1/auditlog-exts",
    ):
        r = await world.api.call("GET", path)
        await error(r, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("kind", ["logs", "auditlog-exts"])
async def test_a_projects_log_is_read_by_who_may_list_it(world: World, kind: str) -> None:
    for who in ("admin", "alice", "r1"):
        assert await world.resources(f"/projects/p1/{kind}", who) == P1, who
    assert await world.resources(f"/projects/p2/{kind}", "bob") == P2
    assert await world.resources(f"/projects/p2/{kind}", "r2") == P2
    for who in ("bob", "lim", "eve", "r2", "maker"):
        r = await world.api.call("GET", f"/projects/p1/{kind}", world.auth[who])
        await error(r, 403, "FORBIDDEN")
    r = await world.api.call("GET", f"/projects/nothing/{kind}", world.auth["alice"])
    await error(r, 404, "NOT_FOUND")


async def test_the_path_names_the_project_even_when_it_is_digits(world: World) -> None:
    api = world.api
    await api.project("12")
    r = await api.call("GET", f"/projects/{world.ids['p1']}/logs", api.admin)
    await error(r, 404, "NOT_FOUND")  # a name, not an id
    assert await world.resources("/projects/12/logs", "admin") == ["12"]


async def test_attack_a_query_never_reaches_another_projects_entries(world: World) -> None:
    p1, p2 = world.ids["p1"], world.ids["p2"]
    for q in (f"project_id={p2}", f"ProjectID={{{p1} {p2}}}", f"project_id=[{p1}~{p2}]",
              "resource=~p2", f"project_id=[~{p2}],operation=~e"):  # fmt: skip
        for path, who in (
            ("/audit-logs", "alice"),
            ("/auditlog-exts", "alice"),
            ("/projects/p1/logs", "r1"),
            ("/projects/p1/auditlog-exts", "alice"),
        ):
            seen = await world.resources(f"{path}?q={quote(q, safe='')}", who)
            assert set(seen) <= set(P1), (path, who, q, seen)
            assert not any("p2" in s for s in seen)
    # The robot of p2 reads p1's log by no path.
    r = await world.api.call("GET", f"/projects/p1/logs?q=project_id%3D{p1}", world.auth["r2"])
    await error(r, 403, "FORBIDDEN")
    assert await world.resources(f"/audit-logs?q=project_id%3D{p1}", "r2") == []


async def test_attack_a_project_made_again_under_the_same_name_shows_none_of_the_old(
    world: World,
) -> None:
    api = world.api
    r = await api.call("DELETE", "/projects/p2", api.admin)
    assert r.status == 200
    # eve makes a new p2 and becomes its projectAdmin: the old p2's log is not hers.
    await api.project("p2", auth=world.auth["eve"])
    assert await world.resources("/projects/p2/logs", "eve") == ["p2"]
    assert await world.resources("/audit-logs", "eve") == ["p2"]
    await api.robot(project_robot("p2", "new", "repository:pull"), world.auth["eve"])
    assert await world.resources("/projects/p2/logs", "eve") == ["robot$p2+new", "p2"]
    # bob, no longer a member of anything, sees nothing.
    assert await world.resources("/audit-logs", "bob") == []
    # The old entries are still there for the system admin.
    assert set(P2) <= set(await world.resources("/audit-logs", "admin"))


async def test_entries_from_before_the_upgrade_belong_to_no_project(world: World) -> None:
    """Entries written before schema 5 name no project: only holders of audit-log:list
    read them (their text cannot tell the project apart from a later one of that name)."""
    with sqlite3.connect(world.api.server.settings.database.path) as db:
        db.execute("UPDATE audit_log SET project_id = NULL WHERE resource = 'p1/alice'")
    assert "p1/alice" not in await world.resources("/projects/p1/logs", "alice")
    assert "p1/alice" not in await world.resources("/audit-logs", "alice")
    assert "p1/alice" in await world.resources("/audit-logs", "admin")


async def test_ext_entries_are_harbors_audit_log_ext(world: World) -> None:
    r = await world.api.call("GET", "/projects/p2/auditlog-exts?page_size=1", world.auth["bob"])
    (entry,) = await r.json()
    assert entry == {
        "id": entry["id"],
        "username": "bob",
        "resource": "robot$p2+logs",
        "resource_type": "robot",
        "operation": "create",
        "operation_description": "create robot: robot$p2+logs",
        "operation_result": False,
        "op_time": entry["op_time"],
    }
    assert r.headers["X-Total-Count"] == str(len(P2))
    assert 'rel="next"' in r.headers["Link"]
    r = await world.api.call("GET", "/projects/p2/logs?page_size=1&page=2", world.auth["bob"])
    (entry,) = await r.json()
    assert set(entry) == {
        "id", "username", "resource", "resource_type", "operation", "op_time", "outcome"
    }  # fmt: skip
    assert (entry["resource"], entry["outcome"]) == ("robot$p2+logs", "success")


async def test_a_user_with_no_membership_left_sees_nothing(world: World) -> None:
    api = world.api
    r = await api.call("GET", "/projects/p1/members", api.admin)
    alice = next(m for m in await r.json() if m["entity_name"] == "alice")
    r = await api.call("DELETE", f"/projects/p1/members/{alice['id']}", api.admin)
    assert r.status == 200
    assert await world.resources("/audit-logs", "alice") == []
    r = await api.call("GET", "/projects/p1/logs", world.auth["alice"])
    await error(r, 403, "FORBIDDEN")
