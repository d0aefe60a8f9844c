"""Who may do what, at the domain level: flat tables of principals, projects and scopes with the
token actions they get. Each row is one rule; the HTTP tests show the rules are wired."""

from __future__ import annotations

import pytest

from tokenserver.domain.models import (
    ANONYMOUS,
    LOCAL,
    Level,
    Principal,
    PrincipalKind,
    Project,
    Robot,
    User,
)
from tokenserver.domain.permissions import Access, Effect, Permission, PermissionKind
from tokenserver.domain.policy import NOTHING, project_grants, system_grants, token_actions
from tokenserver.domain.roles import Role
from tokenserver.domain.scopes import Scope

LIB = Project(id=1, name="lib", public=False, creation_time=0, update_time=0)
PUB = Project(id=2, name="pub", public=True, creation_time=0, update_time=0)
LATER = Project(id=3, name="later", public=False, creation_time=0, update_time=0)
# `lib` deleted and created again: the same name, another id.
LIB_AGAIN = Project(id=9, name="lib", public=False, creation_time=0, update_time=0)


def allow(text: str) -> Access:
    resource, action = text.split(":")
    return Access(resource, action)


def deny(text: str) -> Access:
    resource, action = text.split(":")
    return Access(resource, action, Effect.DENY)


def on(project: Project, *access: Access) -> Permission:
    """A project-kind entry granted on `project` (pinned to its id, as stored)."""
    return Permission(project.name, access, PermissionKind.PROJECT, project.id)


def on_every_project(*access: Access) -> Permission:
    return Permission("*", access, PermissionKind.PROJECT)


def on_system(*access: Access) -> Permission:
    return Permission("/", access, PermissionKind.SYSTEM)


def robot(*permissions: Permission) -> Principal:
    stored = Robot(
        id=7, name="ci", project_id=None, project_name=None, description="", secret_hash="",
        duration=-1, expires_at=-1, disabled=False, creation_time=0, update_time=0,
        permissions=permissions, level=Level.SYSTEM,
    )  # fmt: skip
    return Principal(PrincipalKind.ROBOT, "robot$ci", robot=stored)


def user(*, sysadmin: bool = False) -> Principal:
    stored = User(
        id=5, username="erin", email="", realname="", comment="", password_hash="",
        sysadmin=sysadmin, creation_time=0, update_time=0,
    )  # fmt: skip
    return Principal(PrincipalKind.USER, "erin", user=stored)


REPOSITORY = Scope("repository", "lib/app", ("*",))
ALL = {"pull", "push", "delete"}

# (principal, role (its membership, users only), project) -> registry actions on a repository
REPOSITORY_CASES = [
    # Anonymous and users without a role: a public project's pull, nothing else.
    ("anonymous, private", ANONYMOUS, None, LIB, set()),
    ("anonymous, public", ANONYMOUS, None, PUB, {"pull"}),
    ("anonymous, a role is ignored", ANONYMOUS, Role.PROJECT_ADMIN, LIB, set()),
    ("user without role, private", user(), None, LIB, set()),
    ("user without role, public", user(), None, PUB, {"pull"}),
    # Roles, as Harbor defines them.
    ("limitedGuest", user(), Role.LIMITED_GUEST, LIB, {"pull"}),
    ("guest", user(), Role.GUEST, LIB, {"pull"}),
    ("developer", user(), Role.DEVELOPER, LIB, {"pull", "push"}),
    ("maintainer", user(), Role.MAINTAINER, LIB, ALL),
    ("projectAdmin", user(), Role.PROJECT_ADMIN, LIB, ALL),
    ("developer, public", user(), Role.DEVELOPER, PUB, {"pull", "push"}),
    # System administrators and the local operator hold everything, without a role.
    ("sysadmin user", user(sysadmin=True), None, LIB, ALL),
    ("local operator", LOCAL, None, LIB, ALL),
    # Robots: exactly their permissions in the project.
    ("robot without permissions", robot(), None, LIB, set()),
    ("robot without permissions, public", robot(), None, PUB, {"pull"}),
    ("robot pull", robot(on(LIB, allow("repository:pull"))), None, LIB, {"pull"}),
    ("robot push implies pull", robot(on(LIB, allow("repository:push"))), None, LIB,
     {"pull", "push"}),
    ("robot push, pull denied", robot(on(LIB, allow("repository:push"), deny("repository:pull"))),
     None, LIB, set()),
    ("robot pull and push, push denied",
     robot(on(LIB, allow("repository:pull"), allow("repository:push"), deny("repository:push"))),
     None, LIB, {"pull"}),
    ("robot repository:delete", robot(on(LIB, allow("repository:delete"))), None, LIB,
     {"delete"}),
    ("robot artifact:delete", robot(on(LIB, allow("artifact:delete"))), None, LIB, {"delete"}),
    ("robot artifact:delete denied",
     robot(on(LIB, allow("artifact:delete"), deny("artifact:delete"))), None, LIB, set()),
    ("robot pull on another project", robot(on(PUB, allow("repository:push"))), None, LIB,
     set()),
    ("robot, a role is ignored", robot(), Role.PROJECT_ADMIN, LIB, set()),
    ("robot deny wins over public", robot(on(PUB, deny("repository:pull"))), None, PUB, set()),
    ("robot on every project", robot(on_every_project(allow("repository:push"))), None, LIB,
     {"pull", "push"}),
    ("robot on every project, created later",
     robot(on_every_project(allow("repository:pull"))), None, LATER, {"pull"}),
    ("robot on every project, denied on lib",
     robot(on_every_project(allow("repository:pull")), on(LIB, deny("repository:pull"))), None,
     LIB, set()),
    ("robot on every project, denied on lib, elsewhere",
     robot(on_every_project(allow("repository:pull")), on(LIB, deny("repository:pull"))), None,
     LATER, {"pull"}),
    ("robot on every project, denied everywhere",
     robot(on(LIB, allow("repository:push")), on_every_project(deny("repository:pull"))), None,
     LIB, set()),
    # A project deleted and created again under the same name: allows stay with the old one,
    # denies follow the name.
    ("robot allow on a recreated project", robot(on(LIB, allow("repository:pull"))), None,
     LIB_AGAIN, set()),
    ("robot deny on a recreated project",
     robot(on_every_project(allow("repository:pull")), on(LIB, deny("repository:pull"))), None,
     LIB_AGAIN, set()),
    ("robot system permissions only", robot(on_system(allow("catalog:read"))), None, LIB, set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "role", "project", "actions"),
    [pytest.param(*case[1:], id=case[0]) for case in REPOSITORY_CASES],
)
def test_repository_actions(
    principal: Principal, role: Role | None, project: Project, actions: set[str]
) -> None:
    grants = project_grants(principal, project, role)
    assert token_actions(REPOSITORY, grants, system_grants(principal)) == actions


CATALOG = Scope("registry", "catalog", ("*",))

# principal -> actions on registry:catalog (a system permission: project grants do not count)
CATALOG_CASES = [
    ("anonymous", ANONYMOUS, set()),
    ("user", user(), set()),
    ("sysadmin user", user(sysadmin=True), {"*"}),
    ("local operator", LOCAL, {"*"}),
    ("robot catalog:read", robot(on_system(allow("catalog:read"))), {"*"}),
    ("robot catalog:read denied",
     robot(on_system(allow("catalog:read"), deny("catalog:read"))), set()),
    ("robot other system permissions", robot(on_system(allow("project:list"))), set()),
    ("robot with every project permission",
     robot(on_every_project(allow("repository:pull"), allow("project:read"))), set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "actions"), [pytest.param(*case[1:], id=case[0]) for case in CATALOG_CASES]
)
def test_catalog_actions(principal: Principal, actions: set[str]) -> None:
    project = project_grants(principal, LIB, None)
    assert token_actions(CATALOG, project, system_grants(principal)) == actions


@pytest.mark.parametrize("name", ["other", "catalog/x", ""])
@pytest.mark.parametrize("principal", [LOCAL, user(sysadmin=True)], ids=["local", "sysadmin"])
def test_registry_resources_other_than_the_catalog_get_nothing(
    principal: Principal, name: str
) -> None:
    scope = Scope("registry", name, ("*",))
    assert token_actions(scope, project_grants(principal, LIB, None), system_grants(principal)) == (
        frozenset()
    )


# (principal, role, project, resource type) -> the actions held on it, for services beside the
# registry that accept the same tokens; an unknown type gets nothing.
OTHER_TYPE_CASES = [
    ("robot tag create and delete",
     robot(on(LIB, allow("tag:create"), allow("tag:delete"))), None, LIB, "tag",
     {"create", "delete"}),
    ("robot tag create denied", robot(on(LIB, allow("tag:create"), deny("tag:create"))), None,
     LIB, "tag", set()),
    ("robot helm-chart read", robot(on(LIB, allow("helm-chart:read"))), None, LIB, "helm-chart",
     {"read"}),
    ("robot helm-chart-version", robot(on(LIB, allow("helm-chart-version:create"),
     allow("helm-chart-version:delete"))), None, LIB, "helm-chart-version", {"create", "delete"}),
    ("robot scan create", robot(on(LIB, allow("scan:create"))), None, LIB, "scan", {"create"}),
    ("robot artifact-label", robot(on(LIB, allow("artifact-label:create"))), None, LIB,
     "artifact-label", {"create"}),
    ("robot tag on another project", robot(on(PUB, allow("tag:create"))), None, LIB, "tag",
     set()),
    ("robot repository permissions are not tags", robot(on(LIB, allow("repository:push"))),
     None, LIB, "tag", set()),
    ("limitedGuest tag", user(), Role.LIMITED_GUEST, LIB, "tag", {"list"}),
    ("guest tag", user(), Role.GUEST, LIB, "tag", {"list"}),
    ("developer tag", user(), Role.DEVELOPER, LIB, "tag", {"list", "create"}),
    ("maintainer tag", user(), Role.MAINTAINER, LIB, "tag", {"list", "create", "delete"}),
    ("developer scan", user(), Role.DEVELOPER, LIB, "scan", {"read", "create", "stop"}),
    ("guest artifact-label", user(), Role.GUEST, LIB, "artifact-label", set()),
    ("anonymous public tag", ANONYMOUS, None, PUB, "tag", {"list"}),
    ("anonymous public artifact", ANONYMOUS, None, PUB, "artifact", {"read", "list"}),
    ("anonymous public scan", ANONYMOUS, None, PUB, "scan", set()),
    ("anonymous private tag", ANONYMOUS, None, LIB, "tag", set()),
    ("sysadmin helm-chart-version", user(sysadmin=True), None, LIB, "helm-chart-version",
     {"create", "read", "delete"}),
    ("sysadmin unknown type", user(sysadmin=True), None, LIB, "plugin", set()),
    ("local unknown type", LOCAL, None, LIB, "REPOSITORY", set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "role", "project", "resource", "actions"),
    [pytest.param(*case[1:], id=case[0]) for case in OTHER_TYPE_CASES],
)
def test_other_resource_type_actions(
    principal: Principal, role: Role | None, project: Project, resource: str, actions: set[str]
) -> None:
    scope = Scope(resource, "lib/app", ("*",))
    grants = project_grants(principal, project, role)
    assert token_actions(scope, grants, system_grants(principal)) == actions


# principal -> whether it may do (resource, action) in the system (outside any project)
SYSTEM_CASES = [
    ("anonymous", ANONYMOUS, "project:create", False),
    ("user", user(), "project:list", False),
    ("sysadmin user", user(sysadmin=True), "user:create", True),
    ("local operator", LOCAL, "robot:delete", True),
    ("robot system permission", robot(on_system(allow("project:create"))), "project:create",
     True),
    ("robot system permission denied",
     robot(on_system(allow("project:create"), deny("project:create"))), "project:create", False),
    ("robot project permission is not a system one",
     robot(on_every_project(allow("robot:create"))), "robot:create", False),
    ("robot other system permission", robot(on_system(allow("project:list"))), "project:create",
     False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "permission", "allowed"),
    [pytest.param(*case[1:], id=case[0]) for case in SYSTEM_CASES],
)
def test_system_grants(principal: Principal, permission: str, allowed: bool) -> None:
    resource, action = permission.split(":")
    assert system_grants(principal).can(resource, action) is allowed


def test_nothing_grants_nothing() -> None:
    for scope in (REPOSITORY, CATALOG, Scope("tag", "lib/app", ("*",))):
        assert token_actions(scope, NOTHING, NOTHING) == frozenset()
