"""Projects as Harbor has them: who may create one (project_creation_restriction), the
metadata a project keeps, its summary and whether it can be deleted."""

from __future__ import annotations

import asyncio
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


# ---- /metadatas -------------------------------------------------------------------------------


async def metadata(api: Api, project: str = "p", key: str = "") -> Any:
    path = f"/projects/{project}/metadatas" + (f"/{key}" if key else "")
    r = await api.call("GET", path, api.admin)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_metadatas_add_read_update_and_delete_one_key_at_a_time(api: Api) -> None:
    """Every /metadatas operation was a 404."""
    project_id = await api.project("p")
    assert await metadata(api) == {"public": "false"}
    r = await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "TRUE"})
    assert r.status == 200, await r.text()
    assert await metadata(api) == {"public": "false", "auto_scan": "true"}
    assert await metadata(api, key="auto_scan") == {"auto_scan": "true"}
    assert await metadata(api, key="severity") == {}  # not held: nothing, as in Harbor
    assert await metadata(api, key="colour") == {}
    # Harbor's swagger spells the list with a slash; by id, and by name with a numeric name.
    r = await api.call("GET", f"/projects/{project_id}/metadatas/", api.admin)
    assert await r.json() == {"public": "false", "auto_scan": "true"}
    await api.project("123")
    r = await api.call(
        "POST",
        "/projects/123/metadatas",
        api.admin,
        {"severity": "High"},
        headers={"X-Is-Resource-Name": "true"},
    )
    assert r.status == 200, await r.text()
    r = await api.call(
        "GET", "/projects/123/metadatas", api.admin, headers={"X-Is-Resource-Name": "true"}
    )
    assert await r.json() == {"public": "false", "severity": "high"}
    # Added once: a second add is Harbor's 409, and changes nothing.
    r = await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "false"})
    assert "metadata auto_scan already exists" in await error(r, 409, "CONFLICT")
    # PUT sets it, held or not.
    for key, given, stored in (("auto_scan", "0", "false"), ("severity", "negligible", "none")):
        r = await api.call("PUT", f"/projects/p/metadatas/{key}", api.admin, {key: given})
        assert r.status == 200, await r.text()
        assert await metadata(api, key=key) == {key: stored}
    r = await api.call("DELETE", "/projects/p/metadatas/auto_scan", api.admin)
    assert r.status == 200, await r.text()
    assert await metadata(api) == {"public": "false", "severity": "none"}
    # Deleting what is not held is no error, as in Harbor.
    for key in ("auto_scan", "colour", "retention_id"):
        assert (await api.call("DELETE", f"/projects/p/metadatas/{key}", api.admin)).status == 200
    shown = await (await api.call("GET", "/projects/p", api.admin)).json()
    assert shown["metadata"] == {"public": "false", "severity": "none"}


async def test_metadata_public_is_the_projects_public_flag(api: Api) -> None:
    await api.project("p")
    await error(await api.call("GET", "/projects/p"), 401, "UNAUTHORIZED")
    r = await api.call("PUT", "/projects/p/metadatas/public", api.admin, {"public": "True"})
    assert r.status == 200, await r.text()
    assert (await api.call("GET", "/projects/p")).status == 200  # anyone reads it now
    assert await metadata(api, key="public") == {"public": "true"}
    # It always exists: adding it is a 409, as in Harbor where every project holds it.
    r = await api.call("POST", "/projects/p/metadatas", api.admin, {"public": "false"})
    await error(r, 409, "CONFLICT")
    # A Harbor project without it is private.
    assert (await api.call("DELETE", "/projects/p/metadatas/public", api.admin)).status == 200
    assert await metadata(api) == {"public": "false"}
    await error(await api.call("GET", "/projects/p"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("role", "reads", "changes"),
    [(1, True, True), (4, True, False), (2, True, False), (3, True, False), (5, False, False)],
)
async def test_who_may_read_and_change_metadata_by_role(
    api: Api, role: int, reads: bool, changes: bool
) -> None:
    await api.project("p", public=True)
    await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "true"})
    who = await api.user("who")
    await api.member("p", "who", role)
    for path in ("/projects/p/metadatas", "/projects/p/metadatas/auto_scan"):
        r = await api.call("GET", path, who)
        if reads:
            assert r.status == 200, await r.text()
        else:
            await error(r, 403, "FORBIDDEN")
    attempts = (
        ("POST", "/projects/p/metadatas", {"severity": "low"}),
        ("PUT", "/projects/p/metadatas/auto_scan", {"auto_scan": "false"}),
        ("DELETE", "/projects/p/metadatas/severity", None),
    )
    for method, path, body in attempts:
        r = await api.call(method, path, who, body)
        if changes:
            assert r.status == 200, await r.text()
        else:
            await error(r, 403, "FORBIDDEN")
    expected = {"public": "true", "auto_scan": "false" if changes else "true"}
    assert await metadata(api) == expected


async def test_robots_need_the_metadata_permission_of_each_operation(api: Api) -> None:
    await api.project("p")
    await api.project("other")
    reader = creds(await api.robot(project_robot("p", "r", "metadata:list", "metadata:read")))
    writer = creds(
        await api.robot(
            project_robot("p", "w", "metadata:create", "metadata:update", "metadata:delete")
        )
    )
    puller = creds(await api.robot(project_robot("p", "pull", "repository:pull")))
    assert (await api.call("GET", "/projects/p/metadatas", reader)).status == 200
    assert (await api.call("GET", "/projects/p/metadatas/public", reader)).status == 200
    for who in (writer, puller):
        await error(await api.call("GET", "/projects/p/metadatas", who), 403, "FORBIDDEN")
        r = await api.call("GET", "/projects/p/metadatas/public", who)
        await error(r, 403, "FORBIDDEN")
    for who in (reader, puller):
        r = await api.call("POST", "/projects/p/metadatas", who, {"auto_scan": "true"})
        await error(r, 403, "FORBIDDEN")
        r = await api.call("PUT", "/projects/p/metadatas/auto_scan", who, {"auto_scan": "true"})
        await error(r, 403, "FORBIDDEN")
        r = await api.call("DELETE", "/projects/p/metadatas/auto_scan", who)
        await error(r, 403, "FORBIDDEN")
    assert await metadata(api) == {"public": "false"}
    r = await api.call("POST", "/projects/p/metadatas", writer, {"auto_scan": "true"})
    assert r.status == 200, await r.text()
    r = await api.call("PUT", "/projects/p/metadatas/severity", writer, {"severity": "low"})
    assert r.status == 200, await r.text()
    assert (await api.call("DELETE", "/projects/p/metadatas/auto_scan", writer)).status == 200
    assert await metadata(api) == {"public": "false", "severity": "low"}
    # Its own project only.
    r = await api.call("POST", "/projects/other/metadatas", writer, {"auto_scan": "true"})
    await error(r, 403, "FORBIDDEN")
    await error(await api.call("GET", "/projects/other/metadatas", reader), 403, "FORBIDDEN")


_METADATA_CALLS = (
    ("GET", "/metadatas", None),
    ("POST", "/metadatas", {"auto_scan": "true"}),
    ("GET", "/metadatas/auto_scan", None),
    ("PUT", "/metadatas/auto_scan", {"auto_scan": "true"}),
    ("DELETE", "/metadatas/auto_scan", None),
)


@pytest.mark.parametrize(("method", "path", "body"), _METADATA_CALLS)
async def test_metadata_of_a_missing_project_is_404_and_anonymous_gets_401(
    api: Api, method: str, path: str, body: Any
) -> None:
    await api.project("pub", public=True)
    user = await api.user("u")
    await error(await api.call(method, "/projects/nope" + path, api.admin, body), 404, "NOT_FOUND")
    await error(await api.call(method, "/projects/nope" + path, user, body), 404, "NOT_FOUND")
    await error(await api.call(method, "/projects/999" + path, user, body), 404, "NOT_FOUND")
    # Anonymous: 401 whether the project exists or not, public or not.
    for project in ("nope", "pub"):
        r = await api.call(method, f"/projects/{project}" + path, None, body)
        await error(r, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("method", "key", "body", "message"),
    [
        ("POST", "", {}, "only allow one key/value pair"),
        ("POST", "", {"auto_scan": "true", "severity": "low"}, "only allow one key/value pair"),
        ("POST", "", {"auto_scan": None}, "only allow one key/value pair"),
        ("POST", "", {"colour": "red"}, "unknown field 'colour'"),
        ("POST", "", {"retention_id": ""}, "invalid key: 'retention_id'"),
        ("POST", "", {"proxy_speed_kb": "5"}, "proxy cache"),
        ("POST", "", {"proxy_cache_filter_kind": "regex"}, "proxy cache"),
        ("POST", "", {"auto_scan": "yes"}, "invalid value for auto_scan: 'yes'"),
        ("POST", "", {"auto_scan": True}, "must be a string"),
        ("POST", "", {"severity": "moderate"}, "invalid value for severity"),
        ("POST", "", {"severity": "high\u0000"}, "invalid value for severity"),
        ("POST", "", {"auto_scan": "t" * 300}, "a text of 300 characters"),
        ("PUT", "auto_scan", {"severity": "low"}, "must hold the key 'auto_scan' alone"),
        ("PUT", "auto_scan", {}, "must hold the key 'auto_scan' alone"),
        ("PUT", "auto_scan", {"auto_scan": "1", "severity": "low"}, "alone"),
        ("PUT", "auto_scan", {"auto_scan": "\u0000"}, "invalid value for auto_scan"),
        ("PUT", "auto_scan", {"auto_scan": "1" * 256}, "a text of 256 characters"),
        ("PUT", "colour", {"colour": "red"}, "invalid key: 'colour'"),
        ("PUT", "retention_id", {"retention_id": "1"}, "invalid key"),
        ("PUT", "max_upstream_conn", {"max_upstream_conn": "3"}, "proxy cache"),
        ("PUT", "a%00b", {"auto_scan": "true"}, "invalid key: 'a\\x00b'"),
        ("PUT", "k" * 300, {"auto_scan": "true"}, "invalid key: a text of 300 characters"),
    ],
)
async def test_bad_metadata_requests_are_400_and_change_nothing(
    api: Api, method: str, key: str, body: Any, message: str
) -> None:
    await api.project("p")
    await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "false"})
    path = "/projects/p/metadatas" + (f"/{key}" if key else "")
    r = await api.call(method, path, api.admin, body)
    assert message in await error(r, 400, "BAD_REQUEST")
    assert await metadata(api) == {"public": "false", "auto_scan": "false"}


async def test_hostile_metadata_names_read_and_delete_nothing(api: Api) -> None:
    await api.project("p")
    await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "true"})
    for key in ("a%00b", "k" * 300, "%E2%80%A8", "auto_scan%00"):
        assert await metadata(api, key=key) == {}
        r = await api.call("DELETE", f"/projects/p/metadatas/{key}", api.admin)
        assert r.status == 200, await r.text()
    assert await metadata(api) == {"public": "false", "auto_scan": "true"}


async def test_of_parallel_adds_of_one_key_one_succeeds(api: Api) -> None:
    await api.project("p")
    responses = await asyncio.gather(
        *(
            api.call("POST", "/projects/p/metadatas", api.admin, {"severity": level})
            for level in ("low", "medium", "high", "critical", "none", "low")
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 409, 409, 409, 409, 409]


async def test_metadata_changes_are_audited(api: Api) -> None:
    await api.project("p")
    dev = await api.user("dev")
    await api.member("p", "dev", 2)
    await api.call("POST", "/projects/p/metadatas", api.admin, {"auto_scan": "true"})
    await api.call("PUT", "/projects/p/metadatas/severity", api.admin, {"severity": "low"})
    await api.call("DELETE", "/projects/p/metadatas/auto_scan", api.admin)
    await api.call("DELETE", "/projects/p/metadatas/severity", dev)
    await api.call("GET", "/projects/p/metadatas", api.admin)
    entries = await (await api.call("GET", "/audit-logs?page_size=100", api.admin)).json()
    seen = [
        (e["username"], e["operation"], e["resource"], e["outcome"])
        for e in entries
        if e["resource_type"] == "project-metadata"
    ]
    assert sorted(seen) == [
        ("admin", "create", "p/auto_scan", "success"),
        ("admin", "delete", "p/auto_scan", "success"),
        ("admin", "update", "p/severity", "success"),
        ("dev", "delete", "p/severity", "failure: FORBIDDEN"),
    ]
    # The project's members read them in its log.
    logs = await (await api.call("GET", "/projects/p/logs?page_size=100", dev)).json()
    assert sum(e["resource_type"] == "project-metadata" for e in logs) == 4


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
