"""Robots as Harbor's own clients drive them: a PUT without `duration` (Harbor's system-robot
test, harborapi's update_robot), a PATCH with an empty secret (harborapi's
refresh_robot_secret), every permission of Harbor's robot permission provider (its page's
"Select all") and `GET /permissions` listing them as Harbor does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from tests.http.conftest import basic
from tests.http.test_api import Api, api, creds, error, project_robot
from tests.http.test_robot_expiry import get, restarted, token_status
from tokenserver.domain.roles import ROLE_GRANTS, Role

__all__ = ["api"]  # the fixture, imported for pytest


# Harbor 2.15's robot permission provider (src/common/rbac/const.go: PoliciesMap and
# NolimitProvider.GetPermissions), in its order: what its `GET /permissions` lists and what its
# page's "Select all" sends. The same in Harbor 2.13 and 2.14.
def _words(text: str) -> list[str]:
    return text.split()


HARBOR_SYSTEM = _words("""
    audit-log:list preheat-instance:read preheat-instance:create preheat-instance:delete
    preheat-instance:list preheat-instance:update project:list project:create
    replication-policy:read replication-policy:create replication-policy:delete
    replication-policy:list replication-policy:update replication:read replication:create
    replication:list replication-adapter:list registry:read registry:create registry:delete
    registry:list registry:update scan-all:read scan-all:update scan-all:stop scan-all:create
    system-volumes:read garbage-collection:read garbage-collection:create garbage-collection:list
    garbage-collection:update garbage-collection:stop purge-audit:read purge-audit:create
    purge-audit:list purge-audit:update purge-audit:stop jobservice-monitor:list
    jobservice-monitor:stop scanner:read scanner:create scanner:delete scanner:list
    scanner:update label:read label:create label:delete label:update security-hub:read
    security-hub:list catalog:read quota:read quota:list robot:create robot:read robot:list
    robot:delete user:create user:read user:update user:list user:delete ldap-user:create
    ldap-user:list quota:update user-group:create user-group:read user-group:update
    user-group:list user-group:delete
""")
HARBOR_PROJECT = _words("""
    log:list project:read project:delete project:update metadata:read metadata:create
    metadata:delete metadata:list metadata:update repository:read repository:update
    repository:delete repository:list repository:pull repository:push artifact:read
    artifact:create artifact:list artifact:delete scan:create scan:read scan:stop sbom:create
    sbom:stop sbom:read tag:create tag:list tag:delete accessory:list artifact-addition:read
    artifact-label:create artifact-label:delete scanner:create scanner:read preheat-policy:read
    preheat-policy:create preheat-policy:delete preheat-policy:list preheat-policy:update
    immutable-tag:create immutable-tag:delete immutable-tag:list immutable-tag:update
    notification-policy:read notification-policy:create notification-policy:delete
    notification-policy:list notification-policy:update tag-retention:read tag-retention:create
    tag-retention:delete tag-retention:list tag-retention:update label:read label:create
    label:delete label:list label:update quota:read robot:create robot:read robot:list
    robot:delete export-cve:create export-cve:read member:create member:read member:update
    member:list member:delete
""")

# What the registry acts on: everything else grants no registry action.
REGISTRY_MEANINGFUL = {"repository:pull", "repository:push", "repository:delete", "artifact:delete"}


def listed(pairs: Iterable[str]) -> list[dict[str, str]]:
    """`resource:action` pairs as Harbor's page and `GET /permissions` write them."""
    return [{"resource": p.split(":")[0], "action": p.split(":")[1]} for p in pairs]


def select_all(name: str, namespace: str = "*") -> dict[str, Any]:
    """A system robot as Harbor's page creates it with "Select all" for the system and for
    `namespace` (all projects by default)."""
    return {
        "name": name,
        "description": "",
        "level": "system",
        "duration": -1,
        "disable": False,
        "permissions": [
            {"kind": "system", "namespace": "/", "access": listed(HARBOR_SYSTEM)},
            {"kind": "project", "namespace": namespace, "access": listed(HARBOR_PROJECT)},
        ],
    }


def system_robot(name: str, kind: str, namespace: str, *pairs: str) -> dict[str, Any]:
    """A system robot holding `pairs` in one entry."""
    entry = {"kind": kind, "namespace": namespace, "access": listed(pairs)}
    return {**select_all(name), "permissions": [entry]}


def pairs_of(entry: dict[str, Any]) -> list[str]:
    return [f"{a['resource']}:{a['action']}" for a in entry["access"]]


# ---- PUT without duration -----------------------------------------------------------------


def without_duration(project: str, name: str, *access: str) -> dict[str, Any]:
    body = project_robot(project, name, *access)
    del body["duration"], body["description"]
    return body


async def test_a_put_without_duration_keeps_the_duration_and_the_expiry(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull", duration=30))
    path = f"/robots/{export['id']}"
    disabled = await get(api, export["id"]) | {"disable": True, "description": "old"}
    assert (await api.call("PUT", path, api.admin, disabled)).status == 200
    body = without_duration("p", "ci", "repository:push")
    assert (await api.call("PUT", path, api.admin, body)).status == 200
    robot = await get(api, export["id"])
    assert (robot["duration"], robot["expires_at"]) == (30, export["expires_at"])
    # What Harbor does with the other fields left out: no description (left out of the
    # answer, as Harbor leaves an empty one), not disabled.
    assert ("description" not in robot, robot["disable"]) == (True, False)
    assert pairs_of(robot["permissions"][0]) == ["repository:push"]
    (entry,) = await api.token_access(creds(export), "repository:p/app:pull,push")
    assert entry["actions"] == ["pull", "push"]


async def test_a_put_with_a_null_duration_keeps_a_restarted_expiry(api: Api) -> None:
    robot, auth = await restarted(api)
    absent = without_duration("p", "ci", "repository:pull")
    for body in (absent, absent | {"duration": None}):
        assert (await api.call("PUT", f"/robots/{robot['id']}", api.admin, body)).status == 200
        after = await get(api, robot["id"])
        assert (after["duration"], after["expires_at"]) == (1, robot["expires_at"])
        assert await token_status(api, auth) == 200


async def test_a_put_without_duration_never_without_permissions_name_or_level(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    path = f"/robots/{export['id']}"
    body = without_duration("p", "ci", "repository:pull")
    for field in ("permissions", "name", "level"):
        r = await api.call("PUT", path, api.admin, {k: v for k, v in body.items() if k != field})
        assert await error(r, 400, "BAD_REQUEST") == f"robot: missing field '{field}'"
    r = await api.call("POST", "/robots", api.admin, body)
    assert await error(r, 400, "BAD_REQUEST") == "robot: missing field 'duration'"


async def test_attack_a_robot_cannot_widen_itself_by_leaving_out_the_duration(api: Api) -> None:
    # The delegation rule still sees the permissions and the kept expiry.
    await api.project("p")
    me = await api.robot(project_robot("p", "me", "repository:pull", "robot:update", duration=5))
    body = without_duration("p", "me", "repository:pull", "repository:push", "robot:update")
    r = await api.call("PUT", f"/robots/{me['id']}", creds(me), body)
    assert "within its own" in await error(r, 403, "FORBIDDEN")
    assert (await get(api, me["id"]))["expires_at"] == me["expires_at"]


# ---- PATCH with an empty secret ------------------------------------------------------------


async def test_an_empty_secret_asks_for_a_generated_one(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull", duration=3))
    path = f"/robots/{export['id']}"
    r = await api.call("PATCH", path, api.admin, {"secret": ""})
    assert r.status == 200, await r.text()
    (secret,) = (await r.json()).values()
    assert len(secret) == 32 and secret != export["secret"]
    assert await token_status(api, creds(export)) == 401
    assert await token_status(api, basic(export["name"], secret)) == 200
    # Harbor answers a secret given with `{}`: no empty secret to mistake for the new one.
    r = await api.call("PATCH", path, api.admin, {"secret": "Manu4lSecret"})
    assert (r.status, await r.json()) == (200, {})
    assert await token_status(api, basic(export["name"], "Manu4lSecret")) == 200
    r = await api.call("PATCH", path, api.admin, {"secret": "", "restart_expiry": True})
    assert (await r.json())["secret"] != secret
    assert (await get(api, export["id"]))["expires_at"] >= export["expires_at"]


@pytest.mark.parametrize(
    ("secret", "rule"),
    [
        (" ", "must be 8-128"),
        ("\t", "must not contain control characters"),
        ("short1A", "must be 8-128"),
        ("x" * 129, "must be 8-128"),
    ],
)
async def test_a_blank_or_weak_secret_is_not_taken_for_an_empty_one(
    api: Api, secret: str, rule: str
) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    r = await api.call("PATCH", f"/robots/{export['id']}", api.admin, {"secret": secret})
    assert f"the secret {rule}" in await error(r, 400, "BAD_REQUEST")
    assert await token_status(api, creds(export)) == 200


# C0, DEL, C1 (refused by the ASCII rule before), a trailing NUL and one inside.
CONTROL_SECRETS = ["Abcdefgh1\u0000", "Abcd\u0000efgh1", "Abcdefgh1\t", "Abcdefgh1\u007f"]
CONTROL_SECRETS += ["Abcdefgh1\u0085", "Abc\rdefgh1", "Abcdefgh1\u001b[2J"]


@pytest.mark.parametrize("secret", CONTROL_SECRETS)
async def test_attack_a_secret_with_a_control_character_is_refused(api: Api, secret: str) -> None:
    """`Abcdefgh1\\0` was taken, and then `Abcdefgh1` logged in too (scrypt's HMAC pads its key
    with zero bytes): a chosen secret holds no control character, on update or creation."""
    project_id = await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    r = await api.call("PATCH", f"/robots/{export['id']}", api.admin, {"secret": secret})
    message = await error(r, 400, "BAD_REQUEST")
    assert "the secret must not contain control characters" in message
    assert secret not in message and "Abcd" not in message
    assert await token_status(api, creds(export)) == 200
    for twin in (secret, secret.replace("\u0000", "")):
        assert await token_status(api, basic(export["name"], twin)) == 401
    body = project_robot("p", "cd", "repository:pull") | {"secret": secret}
    r = await api.call("POST", "/robots", api.admin, body)
    assert "must not contain control characters" in await error(r, 400, "BAD_REQUEST")
    query = f"/robots?q=Level=project,ProjectID={project_id}"
    robots = await (await api.call("GET", query, api.admin)).json()
    assert [r["name"] for r in robots] == [export["name"]]


async def test_attack_an_empty_secret_is_no_way_round_the_delegation_rule(api: Api) -> None:
    await api.project("p")
    strong = await api.robot(project_robot("p", "strong", "repository:push"))
    weak = await api.robot(project_robot("p", "weak", "repository:pull", "robot:update"))
    r = await api.call("PATCH", f"/robots/{strong['id']}", creds(weak), {"secret": ""})
    assert "within its own" in await error(r, 403, "FORBIDDEN")
    assert await token_status(api, creds(strong)) == 200


# ---- every permission Harbor offers ---------------------------------------------------------


async def test_harbor_select_all_is_stored_and_returned_as_sent(api: Api) -> None:
    export = await api.robot(select_all("everything"))
    robot = await get(api, export["id"])
    system, projects = robot["permissions"]
    assert (system["kind"], system["namespace"], pairs_of(system)) == ("system", "/", HARBOR_SYSTEM)
    assert (projects["kind"], projects["namespace"]) == ("project", "*")
    assert pairs_of(projects) == HARBOR_PROJECT
    assert {a["effect"] for e in robot["permissions"] for a in e["access"]} == {"allow"}
    # Sent back whole (Harbor's page edits by PUT), it stays the same.
    r = await api.call("PUT", f"/robots/{export['id']}", api.admin, robot)
    assert r.status == 200, await r.text()
    assert (await get(api, export["id"]))["permissions"] == robot["permissions"]


async def test_harbor_select_all_for_a_project_robot(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", *HARBOR_PROJECT))
    (entry,) = (await get(api, export["id"]))["permissions"]
    assert pairs_of(entry) == HARBOR_PROJECT


@pytest.mark.parametrize(
    ("kind", "pair"),
    [
        ("project", "sbom:create"), ("project", "sbom:stop"), ("project", "export-cve:read"),
        ("project", "member:update"), ("project", "member:delete"),
        ("system", "user:create"), ("system", "ldap-user:list"), ("system", "quota:update"),
        ("system", "user-group:delete"),
        # Harbor 2.12's system export-cve, moved to projects in 2.13: its robots still import
        ("system", "export-cve:create"),
        # kept from before: helm before Harbor 2.8, robot:update
        ("project", "helm-chart-version:read"), ("project", "robot:update"),
        ("system", "robot:update"),
    ],
)  # fmt: skip
async def test_each_permission_harbor_accepts_is_accepted(api: Api, kind: str, pair: str) -> None:
    await api.project("p")
    namespace = "p" if kind == "project" else "/"
    export = await api.robot(system_robot("one", kind, namespace, pair))
    (entry,) = (await get(api, export["id"]))["permissions"]
    assert pairs_of(entry) == [pair]


@pytest.mark.parametrize(
    ("kind", "pair"),
    [
        ("project", "user:create"), ("project", "catalog:read"), ("project", "sbom:delete"),
        ("project", "member:stop"), ("project", "export-cve:delete"),
        ("system", "sbom:create"), ("system", "member:create"), ("system", "repository:pull"),
        ("system", "user:pull"), ("system", "ldap-user:delete"),
        ("system", "*:*"), ("project", "repository:*"), ("project", "SBOM:create"),
    ],
)  # fmt: skip
async def test_what_harbor_refuses_is_still_refused(api: Api, kind: str, pair: str) -> None:
    await api.project("p")
    namespace = "p" if kind == "project" else "/"
    body = system_robot("one", kind, namespace, pair)
    r = await api.call("POST", "/robots", api.admin, body)
    assert f"bad request permission: {pair}" in await error(r, 400, "BAD_REQUEST")


async def test_only_registry_permissions_grant_registry_actions(api: Api) -> None:
    await api.project("p")
    everything = await api.robot(select_all("everything"))
    access = await api.token_access(
        creds(everything), "repository:p/app:pull,push,delete", "registry:catalog:*"
    )
    assert [a["actions"] for a in access] == [["pull", "push", "delete"], ["*"]]
    rest = select_all("rest")
    rest["permissions"][0]["access"] = listed(p for p in HARBOR_SYSTEM if p != "catalog:read")
    rest["permissions"][1]["access"] = listed(
        p for p in HARBOR_PROJECT if p not in REGISTRY_MEANINGFUL
    )
    rest_robot = await api.robot(rest)
    access = await api.token_access(
        creds(rest_robot), "repository:p/app:pull,push,delete", "registry:catalog:*"
    )
    assert [a["actions"] for a in access] == [[], []]


async def test_new_permissions_act_where_tokenserver_has_the_resource(api: Api) -> None:
    await api.project("p")
    await api.user("gina")
    # a robot gives only a role within its own permissions: the guest role's
    guest = [f"{r}:{a}" for r, a in sorted(ROLE_GRANTS[Role.GUEST].allowed)]
    members = await api.robot(project_robot("p", "members", "member:create", *guest))
    r = await api.call(
        "POST", "/projects/p/members", creds(members),
        {"role_id": 3, "member_user": {"username": "gina"}},
    )  # fmt: skip
    assert r.status == 201, await r.text()
    r = await api.call("GET", "/projects/p/members", creds(members))
    assert "gina" in [m["entity_name"] for m in await r.json()]
    users = await api.robot(system_robot("users", "system", "/", "user:list"))
    r = await api.call("GET", "/users", creds(users))
    assert r.status == 200 and "gina" in [u["username"] for u in await r.json()]
    r = await api.call("POST", "/users", creds(users), {"username": "x", "password": "Passw0rdX"})
    await error(r, 403, "FORBIDDEN")


# ---- robots granting Harbor's permissions to robots -----------------------------------------


async def test_a_select_all_robot_may_grant_select_all_and_no_more(api: Api) -> None:
    await api.project("p")
    parent = await api.robot(select_all("parent"))
    child = await api.robot(select_all("child"), auth=creds(parent))
    assert pairs_of((await get(api, child["id"]))["permissions"][1]) == HARBOR_PROJECT
    greedy = select_all("greedy")
    greedy["permissions"][0]["access"] += listed(["robot:update"])
    r = await api.call("POST", "/robots", creds(parent), greedy)
    assert "robot:update in the system" in await error(r, 403, "FORBIDDEN")
    # Within: a project robot holding part of it.
    ok = project_robot("p", "ci", "sbom:create", "member:list", "repository:push")
    assert (await api.call("POST", "/robots", creds(parent), ok)).status == 201


async def test_attack_a_robot_with_member_rights_cannot_grant_sbom(api: Api) -> None:
    await api.project("p")
    manager = await api.robot(project_robot("p", "mgr", "member:create", "robot:create"))
    r = await api.call("POST", "/robots", creds(manager), project_robot("p", "x", "sbom:read"))
    assert "sbom:read in project 'p'" in await error(r, 403, "FORBIDDEN")
    r = await api.call("POST", "/robots", creds(manager), project_robot("p", "y", "member:create"))
    assert r.status == 201, await r.text()


# ---- GET /permissions ------------------------------------------------------------------------


async def test_permissions_lists_harbors_lists_in_harbors_order(api: Api) -> None:
    r = await api.call("GET", "/permissions", api.admin)
    assert await r.json() == {"system": listed(HARBOR_SYSTEM), "project": listed(HARBOR_PROJECT)}


async def test_permissions_shows_the_project_list_alone_to_anyone_but_system_admins(
    api: Api,
) -> None:
    await api.project("p")
    boss = await api.user("boss")
    dev = await api.user("dev")
    await api.member("p", "boss", 1)
    await api.member("p", "dev", 2)
    everything = await api.robot(select_all("everything"))
    for auth in (boss, dev, creds(everything)):
        r = await api.call("GET", "/permissions", auth)
        assert await r.json() == {"project": listed(HARBOR_PROJECT)}
    await error(await api.call("GET", "/permissions"), 401, "UNAUTHORIZED")
