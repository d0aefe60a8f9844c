"""harborapi (the PyPI Harbor client) against a live tokenserver: every call it offers for
users, projects, members, robots and audit logs (issue 16).

The calls are read from harborapi's own source (`_calls_in_scope`); each test says which it
makes (`@calls`), and `test_every_call_in_scope_is_made_here` holds the two lists equal. A call
either works as against Harbor, or is out of scope and gets Harbor's error shape (which
harborapi turns into its typed exception with the error's code and message).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import harborapi.client
import pytest
from harborapi import HarborAsyncClient
from harborapi.auth import load_harbor_auth_file
from harborapi.exceptions import BadRequest, NotFound, PreconditionFailed, StatusError
from harborapi.models import (
    Access,
    ProjectMember,
    ProjectMetadata,
    ProjectReq,
    Robot,
    RobotCreate,
    RobotCreateV1,
    RobotPermission,
    UserCreationReq,
    UserEntity,
    UserGroup,
    UserProfile,
)

from tests.http.conftest import Server, basic

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
USER_PASSWORD = "Us3rPassword"

# harborapi's categories (`# CATEGORY: x` in its client) that are about users, projects,
# members, robots and audit logs, and the ones out of scope whose answers must still be
# Harbor's error shape (robot v1, LDAP groups and users).
CATEGORIES = (
    "user",
    "project",
    "projectMetadata",
    "robot",
    "robotv1",
    "auditlog",
    "permissions",
    "usergroup",
    "ldap",
)
# The client's plain HTTP methods, which follow the last category in its source.
_PLAIN = {"get", "get_text", "get_file", "post", "put", "patch", "delete", "head"}


def _calls_in_scope() -> set[str]:
    source = Path(harborapi.client.__file__).read_text()
    calls, category = set(), ""
    for line in source.splitlines():
        if match := re.match(r"    # CATEGORY: (\w+)", line):
            category = match[1]
        elif (match := re.match(r"    async def ([a-z]\w*)\(", line)) and category in CATEGORIES:
            calls.add(match[1])
    return calls - _PLAIN


MADE: dict[str, set[str]] = {}
"""harborapi call → the tests that make it."""

F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def calls(*names: str) -> Callable[[F], F]:
    def register(test: F) -> F:
        for name in names:
            MADE.setdefault(name, set()).add(test.__name__)
        return test

    return register


# The server is plain HTTP: its clients' TLS context is never used. Given none, httpx loads
# the CA bundle for each client (25 ms, a third of this file's time).
PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Harbor:
    """The server, an admin's harborapi client, and clients for other callers."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = str(server.client.make_url(API))
        self._clients: list[HarborAsyncClient] = []
        self.secrets: dict[int, str] = {}  # robot id → the secret it was created with
        self.admin = self.client("admin", ADMIN_PASSWORD)

    def client(self, username: str, secret: str) -> HarborAsyncClient:
        # NOTE: no retries: an error must surface at once, not after a minute of backoff.
        client = HarborAsyncClient(
            url=self.url, username=username, secret=secret, retry=None, verify=PLAIN_HTTP
        )
        self._clients.append(client)
        return client

    async def logs_in(self, username: str, secret: str) -> bool:
        """Whether the token endpoint takes these credentials."""
        r = await self.server.client.get("/service/token", headers=basic(username, secret))
        return r.status == 200

    async def close(self) -> None:
        for client in self._clients:
            await client.client.aclose()

    async def user(self, username: str, **profile: str) -> tuple[int, HarborAsyncClient]:
        location = await self.admin.create_user(
            UserCreationReq(username=username, password=USER_PASSWORD, **profile)
        )
        return int(location.rsplit("/", 1)[1]), self.client(username, USER_PASSWORD)

    async def project(self, name: str, public: bool = False) -> int:
        await self.admin.create_project(
            ProjectReq(project_name=name, metadata=ProjectMetadata(public=str(public).lower()))
        )
        project = await self.admin.get_project(name)
        assert project.project_id is not None
        return project.project_id

    async def robot(
        self, project: str, name: str, *access: str, duration: int = -1
    ) -> tuple[int, HarborAsyncClient]:
        created = await self.admin.create_robot(
            RobotCreate(
                name=name,
                level="project",
                duration=duration,
                permissions=[project_permission(project, *access)],
            )
        )
        assert created.id is not None and created.name and created.secret
        self.secrets[created.id] = created.secret
        return created.id, self.client(created.name, created.secret)


def project_permission(namespace: str, *access: str) -> RobotPermission:
    return RobotPermission(
        kind="project",
        namespace=namespace,
        access=[Access(resource=a.split(":")[0], action=a.split(":")[1]) for a in access],
    )


@pytest.fixture
async def harbor(server: Server) -> AsyncIterator[Harbor]:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    harbor = Harbor(server)
    yield harbor
    await harbor.close()


async def refused(call: Awaitable[Any], kind: type[StatusError], code: str) -> str:
    """The message of the error a call raised: of `kind`, Harbor's shape, with `code`."""
    with pytest.raises(kind) as raised:
        await call
    (error,) = raised.value.errors  # parsed by harborapi from {"errors": [...]}
    assert error.code == code
    assert error.message
    return error.message


# ---- users ---------------------------------------------------------------------------------


@calls("create_user", "get_users", "get_user", "get_current_user", "set_user_password")
async def test_users_are_created_listed_read_and_change_their_password(harbor: Harbor) -> None:
    dana_id, dana = await harbor.user("dana", email="d@example.com", realname="Dana")
    eve_id, _ = await harbor.user("eve")
    for name in ("u1", "u2", "u3"):
        await harbor.user(name)
    # harborapi follows the Link header page by page.
    users = await harbor.admin.get_users(page_size=2)
    assert sorted(u.username or "" for u in users) == ["admin", "dana", "eve", "u1", "u2", "u3"]
    assert len(await harbor.admin.get_users(page_size=2, limit=3)) == 3
    eve = await harbor.admin.get_user(eve_id)
    # Harbor's own test reads an unset comment back as None (issue 16 item 3).
    assert (eve.username, eve.comment, eve.email, eve.realname) == ("eve", None, None, None)
    assert eve.sysadmin_flag is False
    me = await dana.get_current_user()
    assert (me.user_id, me.email, me.realname) == (dana_id, "d@example.com", "Dana")
    await dana.set_user_password(dana_id, "N3wPassword", old_password=USER_PASSWORD)
    assert (await harbor.client("dana", "N3wPassword").get_current_user()).user_id == dana_id
    await harbor.admin.set_user_password(dana_id, "Adm1nChosen")
    message = await refused(
        harbor.client("dana", "Adm1nChosen").set_user_password(eve_id, "Stol3nPassword"),
        StatusError,
        "FORBIDDEN",
    )
    assert message


@calls(
    "search_users_by_username",
    "get_user_by_username",
    "update_user",
    "set_user_admin",
    "delete_user",
)
async def test_users_are_searched_updated_made_admin_and_deleted(harbor: Harbor) -> None:
    dana_id, _ = await harbor.user("dana")
    await harbor.user("daniel")
    await harbor.project("team")
    found = await harbor.admin.search_users_by_username("dan")
    assert {(u.user_id, u.username) for u in found} >= {(dana_id, "dana")}
    assert (await harbor.admin.get_user_by_username("dana")).user_id == dana_id
    await harbor.admin.update_user(
        dana_id, UserProfile(email="d@example.com", realname="Dana", comment="ops")
    )
    shown = await harbor.admin.get_user(dana_id)
    assert (shown.email, shown.realname, shown.comment) == ("d@example.com", "Dana", "ops")
    await harbor.admin.set_user_admin(dana_id, True)
    assert (await harbor.admin.get_user(dana_id)).sysadmin_flag is True
    await harbor.admin.set_user_admin(dana_id, False)
    await harbor.admin.add_project_member_user("team", "dana", 2)
    await harbor.admin.delete_user(dana_id)
    await refused(harbor.admin.get_user(dana_id), NotFound, "NOT_FOUND")
    assert [m.entity_name for m in await harbor.admin.get_project_members("team")] == ["admin"]
    assert await harbor.admin.search_users_by_username("dana") == []


@calls("get_current_user_permissions")
async def test_a_user_reads_its_own_permissions(harbor: Harbor) -> None:
    _, dana = await harbor.user("dana")
    team = await harbor.project("team")
    await harbor.admin.add_project_member_user("team", "dana", 2)  # developer
    held = await dana.get_current_user_permissions(scope=f"/project/{team}", relative=True)
    pairs = {(p.resource, p.action) for p in held}
    assert {("repository", "pull"), ("repository", "push")} <= pairs
    assert ("project", "delete") not in pairs


@calls("set_user_cli_secret")
async def test_a_cli_secret_is_refused_as_harbor_does_without_oidc(harbor: Harbor) -> None:
    dana_id, dana = await harbor.user("dana")
    # Out of scope: Harbor refuses it (412) unless it logs in through OIDC; not a 404 or a
    # misrouted 400.
    for client in (harbor.admin, dana):
        message = await refused(
            client.set_user_cli_secret(dana_id, "Cl1Secret"), PreconditionFailed, "PRECONDITION"
        )
        assert message == "unable to update CLI secret under authmode: db_auth"
    await refused(
        harbor.client("dana", "wrong").set_user_cli_secret(dana_id, "x"),
        StatusError,
        "UNAUTHORIZED",
    )


# ---- projects and members ------------------------------------------------------------------


@calls(
    "create_project",
    "project_exists",
    "get_projects",
    "get_project",
    "update_project",
    "delete_project",
)
async def test_projects_are_created_found_listed_updated_and_deleted(harbor: Harbor) -> None:
    location = await harbor.admin.create_project(ProjectReq(project_name="team"))
    # harborapi asks for the name in Location (X-Resource-Name-In-Location), as Harbor gives.
    assert location == f"{API}/projects/team"
    await harbor.admin.create_project(ProjectReq(project_name="pub", public=True))
    assert await harbor.admin.project_exists("team") is True
    assert await harbor.admin.project_exists("nope") is False
    listed = await harbor.admin.get_projects(page_size=1)
    assert sorted(p.name or "" for p in listed) == ["pub", "team"]
    assert [p.name for p in await harbor.admin.get_projects(public=True)] == ["pub"]
    assert [p.name for p in await harbor.admin.get_projects(name="team")] == ["team"]
    team = await harbor.admin.get_project("team")
    assert team.project_id is not None and team.metadata is not None
    assert (team.name, team.metadata.public, team.owner_name) == ("team", "false", "admin")
    assert (await harbor.admin.get_project(team.project_id)).name == "team"  # by id
    await harbor.admin.update_project("team", ProjectReq(metadata=ProjectMetadata(public="true")))
    team = await harbor.admin.get_project(team.project_id)
    assert team.metadata is not None and team.metadata.public == "true"
    await harbor.admin.delete_project("team")
    assert await harbor.admin.project_exists("team") is False
    await refused(harbor.admin.get_project("team"), NotFound, "NOT_FOUND")
    await refused(
        harbor.admin.create_project(ProjectReq(project_name="pub")), StatusError, "CONFLICT"
    )


@calls(
    "add_project_member",
    "add_project_member_user",
    "get_project_members",
    "get_project_member",
    "update_project_member_role",
    "remove_project_member",
)
async def test_members_are_added_by_name_or_id_listed_changed_and_removed(
    harbor: Harbor,
) -> None:
    dana_id, dana = await harbor.user("dana")
    eve_id, _ = await harbor.user("eve")
    await harbor.user("finn")
    team = await harbor.project("team")
    location = await harbor.admin.add_project_member_user("team", "dana", 2)
    await harbor.admin.add_project_member_user(team, eve_id, 3)  # by project id and user id
    await harbor.admin.add_project_member(
        "team", ProjectMember(role_id=4, member_user=UserEntity(username="finn"))
    )
    members = await harbor.admin.get_project_members("team", page_size=1)
    by_name = {m.entity_name: m for m in members}
    assert {n: m.role_name for n, m in by_name.items()} == {
        "admin": "projectAdmin",
        "dana": "developer",
        "eve": "guest",
        "finn": "maintainer",
    }
    assert [m.entity_name for m in await harbor.admin.get_project_members(team, "fin")] == ["finn"]
    mid = int(location.rsplit("/", 1)[1])
    member = await harbor.admin.get_project_member("team", mid)
    assert (member.entity_id, member.entity_type, member.role_id) == (dana_id, "u", 2)
    await harbor.admin.update_project_member_role("team", mid, 1)
    assert (await dana.get_project_member(team, mid)).role_name == "projectAdmin"
    await harbor.admin.remove_project_member("team", mid)
    await refused(harbor.admin.get_project_member("team", mid), NotFound, "NOT_FOUND")
    await refused(
        harbor.admin.add_project_member_user("team", "nobody", 2), StatusError, "NOT_FOUND"
    )


@calls("add_project_member_group")
async def test_a_group_member_is_refused_in_harbors_error_shape(harbor: Harbor) -> None:
    await harbor.project("team")
    # LDAP groups are out of scope: a 400 as Harbor's for a group it does not know.
    for group in (7, "cn=devs,dc=example,dc=com"):
        message = await refused(
            harbor.admin.add_project_member_group("team", group, 2), BadRequest, "BAD_REQUEST"
        )
        assert "groups are not supported" in message
    await refused(
        harbor.admin.add_project_member(
            "team", ProjectMember(role_id=2, member_group=UserGroup(group_name="devs"))
        ),
        BadRequest,
        "BAD_REQUEST",
    )


@calls("get_project_summary", "get_project_deletable")
async def test_a_project_summary_and_whether_it_may_be_deleted(harbor: Harbor) -> None:
    await harbor.user("dana")
    await harbor.project("team")
    await harbor.admin.add_project_member_user("team", "dana", 2)
    summary = await harbor.admin.get_project_summary("team")
    assert (summary.project_admin_count, summary.developer_count) == (1, 1)
    assert summary.repo_count == 0
    deletable = await harbor.admin.get_project_deletable("team")
    assert deletable.deletable is True


@calls("update_project")
async def test_every_project_metadata_key_harbor_defines_is_kept(harbor: Harbor) -> None:
    await harbor.project("team")
    metadata = ProjectMetadata(
        auto_scan="true", severity="high", prevent_vul="true", reuse_sys_cve_allowlist="false"
    )
    await harbor.admin.update_project("team", ProjectReq(metadata=metadata))
    shown = (await harbor.admin.get_project("team")).metadata
    assert shown is not None
    assert (shown.public, shown.auto_scan, shown.severity) == ("false", "true", "high")
    assert (shown.prevent_vul, shown.reuse_sys_cve_allowlist) == ("true", "false")


@calls("create_project")
async def test_any_user_or_system_robot_creates_projects_by_default(harbor: Harbor) -> None:
    # project_creation_restriction defaults to everyone, as in Harbor: a system robot without
    # project:create too; a project robot never (Harbor: only system level robots).
    await harbor.project("team")
    created = await harbor.admin.create_robot(
        RobotCreate(
            name="sys",
            level="system",
            duration=-1,
            permissions=[project_permission("*", "repository:pull")],
        )
    )
    assert created.name and created.secret
    system_robot = harbor.client(created.name, created.secret)
    location = await system_robot.create_project(ProjectReq(project_name="robots"))
    assert location == f"{API}/projects/robots"
    _, dana = await harbor.user("dana")
    await dana.create_project(ProjectReq(project_name="danas"))
    assert await harbor.admin.project_exists("robots")
    assert await harbor.admin.project_exists("danas")
    _, project_robot = await harbor.robot("team", "ci", "repository:pull")
    await refused(
        project_robot.create_project(ProjectReq(project_name="nope")), StatusError, "FORBIDDEN"
    )


@calls(
    "set_project_scanner",
    "get_project_scanner",
    "get_project_scanner_candidates",
    "get_project_artifacts",
)
async def test_project_calls_tokenserver_has_no_endpoint_for_are_harbors_404(
    harbor: Harbor,
) -> None:
    # Scanners and artifacts are the registry's business, not a token server's. Each is a
    # 404 in Harbor's shape, which harborapi raises as NotFound.
    await harbor.project("team")
    admin = harbor.admin
    for call in (
        admin.set_project_scanner("team", "1"),
        admin.get_project_scanner("team"),
        admin.get_project_scanner_candidates("team"),
        admin.get_project_artifacts("team"),
    ):
        await refused(call, NotFound, "NOT_FOUND")


@calls(
    "set_project_metadata",
    "get_project_metadata",
    "update_project_metadata_entry",
    "get_project_metadata_entry",
    "delete_project_metadata_entry",
)
async def test_project_metadata_is_added_read_updated_and_deleted(harbor: Harbor) -> None:
    """Each of these calls was a 404."""
    team = await harbor.project("team")
    admin = harbor.admin
    await admin.set_project_metadata("team", ProjectMetadata(auto_scan="true"))
    shown = await admin.get_project_metadata("team")
    assert (shown.public, shown.auto_scan, shown.severity) == ("false", "true", None)
    await admin.update_project_metadata_entry("team", "severity", {"severity": "Critical"})
    await admin.update_project_metadata_entry(
        team, "public", ProjectMetadata(public="true").model_dump(exclude_unset=True)
    )
    assert await admin.get_project_metadata_entry("team", "severity") == {"severity": "critical"}
    assert await admin.get_project_metadata_entry("team", "public") == {"public": "true"}
    await admin.delete_project_metadata_entry("team", "auto_scan")
    assert await admin.get_project_metadata_entry("team", "auto_scan") == {}
    project = await admin.get_project("team")
    assert project.metadata is not None
    assert (project.metadata.public, project.metadata.auto_scan) == ("true", None)
    assert project.metadata.severity == "critical"
    # Harbor's errors, as harborapi raises them.
    await refused(
        admin.set_project_metadata("team", ProjectMetadata(severity="low")),
        StatusError,
        "CONFLICT",
    )
    await refused(
        admin.update_project_metadata_entry("team", "auto_scan", {"auto_scan": "maybe"}),
        BadRequest,
        "BAD_REQUEST",
    )
    await refused(admin.get_project_metadata("nope"), NotFound, "NOT_FOUND")
    _, dana = await harbor.user("dana")
    await admin.add_project_member_user("team", "dana", 2)
    assert (await dana.get_project_metadata("team")).severity == "critical"
    await refused(dana.delete_project_metadata_entry("team", "severity"), StatusError, "FORBIDDEN")


# ---- robots --------------------------------------------------------------------------------


@calls(
    "create_robot",
    "get_robots",
    "get_robot",
    "update_robot",
    "refresh_robot_secret",
    "delete_robot",
)
async def test_robots_are_created_listed_updated_refreshed_and_deleted(
    harbor: Harbor, tmp_path: Path
) -> None:
    team = await harbor.project("team")
    created = await harbor.admin.create_robot(
        RobotCreate(
            name="ci",
            level="project",
            duration=30,
            description="pushes",
            permissions=[project_permission("team", "repository:pull", "repository:push")],
        ),
        path=tmp_path / "ci.json",  # harborapi's credentials file
    )
    assert created.id is not None and created.name == "robot$team+ci" and created.secret
    saved = load_harbor_auth_file(tmp_path / "ci.json")
    assert await harbor.logs_in(saved.name or "", saved.secret or "")
    await harbor.admin.create_robot(
        RobotCreate(
            name="sys",
            level="system",
            duration=-1,
            permissions=[project_permission("*", "repository:pull")],
        )
    )
    listed = await harbor.admin.get_robots(query=f"Level=project,ProjectID={team}")
    assert [r.name for r in listed] == ["robot$team+ci"]
    assert [r.name for r in await harbor.admin.get_robots()] == ["robot$sys"]
    robot = await harbor.admin.get_robot(created.id)
    assert (robot.duration, robot.description, robot.disable) == (30, "pushes", False)
    # The robot as GET gave it, changed and sent back whole.
    robot.description = "pulls"
    robot.disable = True
    robot.permissions = [project_permission("team", "repository:pull")]
    await harbor.admin.update_robot(created.id, robot)
    updated = await harbor.admin.get_robot(created.id)
    assert (updated.description, updated.disable, updated.duration) == ("pulls", True, 30)
    held = [
        (a.resource, a.action, a.effect) for p in updated.permissions or [] for a in p.access or []
    ]
    assert held == [("repository", "pull", "allow")]
    updated.disable = False
    await harbor.admin.update_robot(created.id, updated)
    sec = await harbor.admin.refresh_robot_secret(created.id, "Manu4lSecret")
    assert sec.secret is None  # Harbor shows no secret it did not make
    assert await harbor.logs_in("robot$team+ci", "Manu4lSecret")
    await harbor.admin.delete_robot(created.id)
    await refused(harbor.admin.get_robot(created.id), NotFound, "NOT_FOUND")


@calls("update_robot")
async def test_a_robot_put_without_a_duration_keeps_its_own(harbor: Harbor) -> None:
    await harbor.project("team")
    robot_id, _ = await harbor.robot("team", "ci", "repository:pull", duration=30)
    shown = await harbor.admin.get_robot(robot_id)
    await harbor.admin.update_robot(
        robot_id,
        Robot(
            name=shown.name,
            level=shown.level,
            description="no duration sent",
            permissions=shown.permissions,
        ),
    )
    after = await harbor.admin.get_robot(robot_id)
    assert (after.duration, after.expires_at) == (30, shown.expires_at)
    assert after.description == "no duration sent"


@calls("refresh_robot_secret")
async def test_an_empty_secret_refreshes_to_a_generated_one(harbor: Harbor) -> None:
    await harbor.project("team")
    robot_id, _ = await harbor.robot("team", "ci", "repository:pull")
    sec = await harbor.admin.refresh_robot_secret(robot_id, "")
    assert sec.secret and len(sec.secret) == 32
    shown = await harbor.admin.get_robot(robot_id)
    assert shown.name is not None
    assert await harbor.logs_in(shown.name, sec.secret)
    assert not await harbor.logs_in(shown.name, harbor.secrets[robot_id])


@calls("get_permissions", "create_robot")
async def test_select_all_of_harbors_permission_lists_makes_a_robot(harbor: Harbor) -> None:
    offered = await harbor.admin.get_permissions()
    system = {(p.resource, p.action) for p in offered.system or []}
    project = {(p.resource, p.action) for p in offered.project or []}
    assert {("user", "create"), ("ldap-user", "list"), ("quota", "update")} <= system
    assert ("user-group", "delete") in system
    assert {("sbom", "create"), ("export-cve", "read"), ("member", "list")} <= project
    # What Harbor's page sends for "Select all".
    everything = RobotCreate(
        name="all",
        level="system",
        duration=-1,
        permissions=[
            RobotPermission(
                kind="system",
                namespace="/",
                access=[Access(resource=r, action=a) for r, a in sorted(system)],
            ),
            RobotPermission(
                kind="project",
                namespace="*",
                access=[Access(resource=r, action=a) for r, a in sorted(project)],
            ),
        ],
    )
    created = await harbor.admin.create_robot(everything)
    assert created.id is not None
    shown = await harbor.admin.get_robot(created.id)
    held = {(p.kind, a.resource, a.action) for p in shown.permissions or [] for a in p.access or []}
    assert held == {("system", *x) for x in system} | {("project", *x) for x in project}


@calls("get_robots_v1", "create_robot_v1", "get_robot_v1", "update_robot_v1", "delete_robot_v1")
async def test_the_robot_v1_api_is_harbors_404(harbor: Harbor) -> None:
    # Out of scope (Harbor 2.12 removed it too): a 404 in Harbor's shape, never a 400.
    team = await harbor.project("team")
    robot_id, _ = await harbor.robot("team", "ci", "repository:pull")
    admin = harbor.admin
    v1 = RobotCreateV1(
        name="old", access=[Access(resource=f"/project/{team}/repository", action="pull")]
    )
    for call in (
        admin.get_robots_v1("team"),
        admin.create_robot_v1("team", v1),
        admin.get_robot_v1(team, robot_id),
        admin.update_robot_v1("team", robot_id, Robot(description="x")),
        admin.delete_robot_v1(team, robot_id),
    ):
        await refused(call, NotFound, "NOT_FOUND")
    assert (await admin.get_robot(robot_id)).description is None  # untouched


# ---- audit logs, permissions ---------------------------------------------------------------


@calls("get_audit_logs", "get_permissions")
async def test_an_admin_reads_the_audit_log_and_the_permission_lists(harbor: Harbor) -> None:
    await harbor.user("dana")
    await harbor.project("team")
    logs = await harbor.admin.get_audit_logs(page_size=1, limit=2)
    assert len(logs) == 2
    every = await harbor.admin.get_audit_logs()
    assert {(e.operation, e.resource_type, e.resource) for e in every} >= {
        ("create", "user", "dana"),
        ("create", "project", "team"),
    }
    assert all(e.username == "admin" and e.op_time is not None for e in every)
    offered = await harbor.admin.get_permissions()
    assert ("repository", "push") in {(p.resource, p.action) for p in offered.project or []}


@calls("get_audit_logs", "get_project_logs")
async def test_audit_logs_for_callers_without_the_system_permission(harbor: Harbor) -> None:
    await harbor.project("team")
    _, robot = await harbor.robot("team", "ci", "repository:pull")
    assert await robot.get_audit_logs() == []  # Harbor: 200, the projects it may see
    await harbor.project("other")
    await harbor.robot("other", "elsewhere", "repository:pull")
    logs = await harbor.admin.get_project_logs("team")
    assert not any("other" in (e.resource or "") for e in logs)


@calls("get_users", "get_projects", "get_robots", "get_audit_logs")
async def test_harbors_query_language_filters_every_list(harbor: Harbor) -> None:
    for name in ("dana", "daniel", "eve"):
        await harbor.user(name)
    for name in ("team", "teal", "other"):
        await harbor.project(name)
    users = await harbor.admin.get_users(query="username=~dan")
    assert sorted(u.username or "" for u in users) == ["dana", "daniel"]
    projects = await harbor.admin.get_projects(query="name=~tea")
    assert sorted(p.name or "" for p in projects) == ["teal", "team"]
    projects = await harbor.admin.get_projects(query="name={team other}")
    assert sorted(p.name or "" for p in projects) == ["other", "team"]
    logs = await harbor.admin.get_audit_logs(query="resource_type=project", sort="-op_time")
    assert sorted(e.resource or "" for e in logs) == ["other", "teal", "team"]
    await refused(harbor.admin.get_users(query="colour=red"), BadRequest, "BAD_REQUEST")
    await refused(
        harbor.admin.get_robots(query="Level=system,colour=red"), BadRequest, "BAD_REQUEST"
    )


@calls(
    "search_usergroups",
    "create_usergroup",
    "get_usergroups",
    "update_usergroup",
    "get_usergroup",
    "delete_usergroup",
    "ping_ldap",
    "search_ldap_groups",
    "search_ldap_users",
    "import_ldap_users",
)
async def test_ldap_and_user_groups_are_harbors_404(harbor: Harbor) -> None:
    admin = harbor.admin
    for call in (
        admin.search_usergroups("devs"),
        admin.create_usergroup(UserGroup(group_name="devs", group_type=1)),
        admin.get_usergroups(),
        admin.update_usergroup(1, UserGroup(group_name="ops")),
        admin.get_usergroup(1),
        admin.delete_usergroup(1),
        admin.ping_ldap(),
        admin.search_ldap_groups(group_name="devs"),
        admin.search_ldap_users("dana"),
        admin.import_ldap_users(["dana"]),
    ):
        await refused(call, NotFound, "NOT_FOUND")


def test_every_call_in_scope_is_made_here() -> None:
    in_scope = _calls_in_scope()
    assert len(in_scope) > 40, "harborapi's calls were not found in its source"
    assert set(MADE) == in_scope, (
        f"not made here: {sorted(in_scope - set(MADE))}; "
        f"not harborapi's: {sorted(set(MADE) - in_scope)}"
    )
