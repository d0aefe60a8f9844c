"""Projects as Harbor has them: who may create one (project_creation_restriction), the
metadata a project keeps, its summary and whether it can be deleted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, basic, serving
from tests.http.test_api import ADMIN_PASSWORD, Api, api, creds, error, project_robot
from tokenserver.errors import ConfigError

__all__ = ["api"]  # the fixture, shared with tests/http/test_api.py


def system_robot(name: str, *access: str, namespace: str = "*") -> dict[str, Any]:
    """A system robot holding `access` (`kind:resource:action`) in `namespace` or the system."""
    entries: dict[tuple[str, str], list[dict[str, str]]] = {}
    for text in access:
        kind, resource, action = text.split(":")
        where = (kind, namespace if kind == "project" else "/")
        entries.setdefault(where, []).append({"resource": resource, "action": action})
    return {
        "name": name,
        "level": "system",
        "duration": -1,
        "permissions": [
            {"kind": kind, "namespace": ns, "access": access}
            for (kind, ns), access in entries.items()
        ],
    }


async def create(api: Api, name: str, auth: dict[str, str], **extra: Any) -> Any:
    return await api.call("POST", "/projects", auth, {"project_name": name, **extra})


# ---- who may create projects -----------------------------------------------------------------


async def test_any_system_robot_creates_projects_by_default(api: Api) -> None:
    """Harbor's default (`everyone`): a system robot needs no project:create. It was a 403."""
    robot = creds(await api.robot(system_robot("fleet", "project:repository:pull")))
    r = await create(api, "made-by-robot", robot)
    assert r.status == 201, await r.text()
    project = await (await api.call("GET", "/projects/made-by-robot", api.admin)).json()
    # As in Harbor: the first system admin owns it; the robot gets no membership.
    assert (project["owner_name"], project["current_user_role_id"]) == ("admin", 1)
    members = await (await api.call("GET", "/projects/made-by-robot/members", api.admin)).json()
    assert [(m["entity_name"], m["role_id"]) for m in members] == [("admin", 1)]
    # Its `*` entry reaches the new project, so the robot pulls there and nothing more.
    access = await api.token_access(robot, "repository:made-by-robot/app:pull,push")
    assert access == [{"type": "repository", "name": "made-by-robot/app", "actions": ["pull"]}]


async def test_project_robots_never_create_projects(api: Api) -> None:
    await api.project("p")
    robot = creds(await api.robot(project_robot("p", "ci", "repository:push")))
    r = await create(api, "other", robot)
    assert "only system level robots" in await error(r, 403, "FORBIDDEN")
    assert (await api.call("HEAD", "/projects?project_name=other", api.admin)).status == 404


async def test_any_user_creates_projects_by_default(api: Api) -> None:
    bob = await api.user("bob")
    assert (await create(api, "bobs", bob)).status == 201
    project = await (await api.call("GET", "/projects/bobs", bob)).json()
    assert (project["owner_name"], project["current_user_role_id"]) == ("bob", 1)


@pytest.fixture
async def admin_only(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> Any:
    settings = make_settings(security__project_creation_restriction="adminonly")
    async with serving(settings, aiohttp_client) as server:
        await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
        yield Api(server)


async def test_adminonly_lets_only_admins_and_robots_granted_project_create(
    admin_only: Api,
) -> None:
    api = admin_only
    bob = await api.user("bob")
    r = await create(api, "bobs", bob)
    assert "only system admins" in await error(r, 403, "FORBIDDEN")
    plain = creds(await api.robot(system_robot("plain", "project:repository:pull")))
    await error(await create(api, "plains", plain), 403, "FORBIDDEN")
    granted = creds(await api.robot(system_robot("maker", "system:project:create")))
    assert (await create(api, "makers", granted)).status == 201
    assert (await create(api, "admins", api.admin)).status == 201
    await api.project("p")
    project = creds(await api.robot(project_robot("p", "ci", "repository:push")))
    await error(await create(api, "projects", project), 403, "FORBIDDEN")
    r = await api.call("GET", "/projects", api.admin)
    assert [p["name"] for p in await r.json()] == ["admins", "makers", "p"]
    await error(await create(api, "anon", {}), 401, "UNAUTHORIZED")


def test_the_restriction_is_validated_at_start(make_settings: MakeSettings) -> None:
    with pytest.raises(ConfigError, match=r"security\.project_creation_restriction"):
        make_settings(security__project_creation_restriction="admins")


# ---- metadata --------------------------------------------------------------------------------


async def test_every_metadata_key_harbor_keeps_is_stored_and_returned(api: Api) -> None:
    """They were accepted and dropped: GET showed only `public`."""
    given = {
        "public": "true",
        "enable_content_trust": "true",
        "enable_content_trust_cosign": "false",
        "prevent_vul": "true",
        "severity": "high",
        "auto_scan": "true",
        "auto_sbom_generation": "false",
        "reuse_sys_cve_allowlist": "true",
        "proxy_cache_local_on_not_found": "false",
        "proxy_referrer_api": "true",
    }
    assert (await create(api, "full", api.admin, metadata=given)).status == 201
    shown = await (await api.call("GET", "/projects/full", api.admin)).json()
    assert shown["metadata"] == given
    listed = await (await api.call("GET", "/projects?name=full", api.admin)).json()
    assert listed[0]["metadata"] == given


async def test_put_sets_the_keys_it_holds_and_keeps_the_others(api: Api) -> None:
    await create(api, "p", api.admin, metadata={"auto_scan": "true"})
    r = await api.call("PUT", "/projects/p", api.admin, {"metadata": {"severity": "critical"}})
    assert r.status == 200
    shown = (await (await api.call("GET", "/projects/p", api.admin)).json())["metadata"]
    assert shown == {"public": "false", "auto_scan": "true", "severity": "critical"}
    r = await api.call(
        "PUT", "/projects/p", api.admin, {"metadata": {"public": "true", "auto_scan": "false"}}
    )
    assert r.status == 200
    shown = (await (await api.call("GET", "/projects/p", api.admin)).json())["metadata"]
    assert shown == {"public": "true", "auto_scan": "false", "severity": "critical"}
    # Anyone may read a public project: its metadata too.
    assert (await (await api.call("GET", "/projects/p")).json())["metadata"] == shown
    # A developer may not change it.
    dev = await api.user("dev")
    await api.member("p", "dev", 2)
    r = await api.call("PUT", "/projects/p", dev, {"metadata": {"auto_scan": "true"}})
    await error(r, 403, "FORBIDDEN")
    assert (await (await api.call("GET", "/projects/p", dev)).json())["metadata"] == shown


async def test_metadata_is_shown_and_dropped_as_harbor_does(api: Api) -> None:
    proxy = {
        "proxy_speed_kb": "100",
        "max_upstream_conn": "5",
        "proxy_cache_filter_pattern": "**",
        "proxy_cache_filter_kind": "doublestar",
    }
    metadata = {"severity": "Negligible", "retention_id": "", **proxy}
    assert (await create(api, "p", api.admin, metadata=metadata)).status == 201
    shown = (await (await api.call("GET", "/projects/p", api.admin)).json())["metadata"]
    assert shown == {"public": "false", "severity": "none"}
    for stored, seen in (("HIGH", "high"), ("moderate", "unknown"), ("", "unknown")):
        r = await api.call("PUT", "/projects/p", api.admin, {"metadata": {"severity": stored}})
        assert r.status == 200
        shown = (await (await api.call("GET", "/projects/p", api.admin)).json())["metadata"]
        assert shown["severity"] == seen


@pytest.mark.parametrize(
    ("method", "body", "message"),
    [
        ("POST", {"metadata": {"retention_id": "7"}}, "retention_id"),
        ("PUT", {"metadata": {"retention_id": ""}}, "retention_id"),
        ("PUT", {"metadata": {"auto_scan": "x" * 256}}, "metadata.auto_scan is longer than 255"),
        ("PUT", {"metadata": {"severity": "a\u0000"}}, "NUL"),
        ("PUT", {"metadata": {"auto_scan": True}}, "must be a string"),
        ("PUT", {"metadata": {"colour": "red"}}, "unknown field 'colour'"),
    ],
)
async def test_bad_metadata_is_400_and_changes_nothing(
    api: Api, method: str, body: dict[str, Any], message: str
) -> None:
    await create(api, "p", api.admin, metadata={"auto_scan": "true"})
    if method == "POST":
        r = await create(api, "q", api.admin, **body)
    else:
        r = await api.call("PUT", "/projects/p", api.admin, body)
    assert message in await error(r, 400, "BAD_REQUEST")
    shown = (await (await api.call("GET", "/projects/p", api.admin)).json())["metadata"]
    assert shown == {"public": "false", "auto_scan": "true"}
    assert (await api.call("HEAD", "/projects?project_name=q", api.admin)).status == 404


# ---- summary and deletable -------------------------------------------------------------------


async def test_summary_counts_members_by_role_for_who_may_list_them(api: Api) -> None:
    await api.project("team", public=True)
    for name, role in (("a1", 1), ("d1", 2), ("d2", 2), ("g1", 3), ("m1", 4), ("l1", 5)):
        await api.user(name)
        await api.member("team", name, role)
    everyone = {
        "repo_count": 0,
        "project_admin_count": 2,  # admin, who created it, and a1
        "maintainer_count": 1,
        "developer_count": 2,
        "guest_count": 1,
        "limited_guest_count": 1,
    }
    r = await api.call("GET", "/projects/team/summary", api.admin)
    assert r.status == 200 and await r.json() == everyone
    guest = basic("g1", "Us3rPassword")
    assert await (await api.call("GET", "/projects/team/summary", guest)).json() == everyone
    # A limited guest may read the project but not list its members: no counts, as in Harbor.
    limited = basic("l1", "Us3rPassword")
    assert await (await api.call("GET", "/projects/team/summary", limited)).json() == {
        "repo_count": 0
    }
    # Anyone reads a public project: the summary too, without the members.
    assert await (await api.call("GET", "/projects/team/summary")).json() == {"repo_count": 0}
    team_id = (await (await api.call("GET", "/projects/team", api.admin)).json())["project_id"]
    by_id = await api.call("GET", f"/projects/{team_id}/summary", api.admin)
    assert await by_id.json() == everyone


async def test_a_project_admin_reads_no_summary_of_another_private_project(api: Api) -> None:
    owner = await api.user("owner")
    await create(api, "mine", owner)
    await api.project("theirs")
    await error(await api.call("GET", "/projects/theirs/summary", owner), 403, "FORBIDDEN")
    await error(await api.call("GET", "/projects/theirs/summary"), 401, "UNAUTHORIZED")
    await error(await api.call("GET", "/projects/nope/summary", owner), 404, "NOT_FOUND")
    # Its own: the roles nobody holds are left out, as Harbor's omitempty does.
    r = await api.call("GET", "/projects/mine/summary", owner)
    assert await r.json() == {"repo_count": 0, "project_admin_count": 1}


async def test_deletable_is_asked_by_who_may_delete(api: Api) -> None:
    project_id = await api.project("p", public=True)
    r = await api.call("GET", "/projects/p/_deletable", api.admin)
    assert r.status == 200 and await r.json() == {"deletable": True}
    r = await api.call("GET", f"/projects/{project_id}/_deletable", api.admin)
    assert await r.json() == {"deletable": True}
    dev = await api.user("dev")
    await api.member("p", "dev", 2)
    await error(await api.call("GET", "/projects/p/_deletable", dev), 403, "FORBIDDEN")
    await error(await api.call("GET", "/projects/p/_deletable"), 401, "UNAUTHORIZED")
    await error(await api.call("GET", "/projects/nope/_deletable", api.admin), 404, "NOT_FOUND")
    robot = creds(await api.robot(project_robot("p", "ci", "project:delete")))
    assert await (await api.call("GET", "/projects/p/_deletable", robot)).json() == {
        "deletable": True
    }
