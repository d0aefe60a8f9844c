"""Project roles as Harbor defines them: a flat table of what each role may and may not do."""

from __future__ import annotations

import pytest

from tokenserver.domain.permissions import PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS
from tokenserver.domain.roles import (
    ADMIN_PROJECT_GRANTS,
    ADMIN_SYSTEM_GRANTS,
    PUBLIC_PROJECT_GRANTS,
    ROLE_GRANTS,
    Role,
)

LIMITED_GUEST, GUEST = Role.LIMITED_GUEST, Role.GUEST
DEVELOPER, MAINTAINER, PROJECT_ADMIN = Role.DEVELOPER, Role.MAINTAINER, Role.PROJECT_ADMIN

ALLOWED = [
    (LIMITED_GUEST, "repository:pull"),
    (LIMITED_GUEST, "tag:list"),
    (LIMITED_GUEST, "artifact:read"),
    (LIMITED_GUEST, "project:read"),
    (GUEST, "repository:pull"),
    (GUEST, "member:list"),
    (GUEST, "robot:read"),
    (GUEST, "log:list"),
    (DEVELOPER, "repository:push"),
    (DEVELOPER, "artifact:create"),
    (DEVELOPER, "tag:create"),
    (DEVELOPER, "artifact-label:create"),
    (DEVELOPER, "scan:create"),
    (DEVELOPER, "helm-chart-version:create"),
    (MAINTAINER, "repository:delete"),
    (MAINTAINER, "artifact:delete"),
    (MAINTAINER, "tag:delete"),
    (MAINTAINER, "helm-chart-version:delete"),
    (MAINTAINER, "tag-retention:update"),
    (MAINTAINER, "label:create"),
    (PROJECT_ADMIN, "repository:delete"),
    (PROJECT_ADMIN, "project:delete"),
    (PROJECT_ADMIN, "member:create"),
    (PROJECT_ADMIN, "robot:create"),
    (PROJECT_ADMIN, "scanner:create"),
]

DENIED = [
    (LIMITED_GUEST, "repository:push"),
    (LIMITED_GUEST, "member:list"),
    (LIMITED_GUEST, "robot:read"),
    (LIMITED_GUEST, "log:list"),
    (GUEST, "repository:push"),
    (GUEST, "tag:create"),
    (GUEST, "artifact-label:create"),
    (DEVELOPER, "repository:delete"),
    (DEVELOPER, "artifact:delete"),
    (DEVELOPER, "tag:delete"),
    (DEVELOPER, "label:create"),
    (DEVELOPER, "robot:create"),
    (MAINTAINER, "project:update"),
    (MAINTAINER, "project:delete"),
    (MAINTAINER, "member:create"),
    (MAINTAINER, "robot:create"),
    (PROJECT_ADMIN, "catalog:read"),  # a system permission: no role holds it
    (PROJECT_ADMIN, "user:create"),
    (PROJECT_ADMIN, "repository:admin"),  # no such permission
]


@pytest.mark.parametrize(("role", "permission"), ALLOWED)
def test_role_may(role: Role, permission: str) -> None:
    assert ROLE_GRANTS[role].can(*permission.split(":"))


@pytest.mark.parametrize(("role", "permission"), DENIED)
def test_role_may_not(role: Role, permission: str) -> None:
    assert not ROLE_GRANTS[role].can(*permission.split(":"))


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        (LIMITED_GUEST, {"pull"}),
        (GUEST, {"pull"}),
        (DEVELOPER, {"pull", "push"}),
        (MAINTAINER, {"pull", "push", "delete"}),
        (PROJECT_ADMIN, {"pull", "push", "delete"}),
    ],
)
def test_role_registry_actions(role: Role, actions: set[str]) -> None:
    assert ROLE_GRANTS[role].registry_actions() == actions


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        (LIMITED_GUEST, GUEST),
        (GUEST, DEVELOPER),
        (DEVELOPER, MAINTAINER),
        (MAINTAINER, PROJECT_ADMIN),
    ],
)
def test_each_role_holds_what_the_one_below_holds(lower: Role, higher: Role) -> None:
    assert ROLE_GRANTS[lower].allowed < ROLE_GRANTS[higher].allowed


@pytest.mark.parametrize(
    ("role", "harbor_id", "name"),
    [
        (PROJECT_ADMIN, 1, "projectAdmin"),
        (DEVELOPER, 2, "developer"),
        (GUEST, 3, "guest"),
        (MAINTAINER, 4, "maintainer"),
        (LIMITED_GUEST, 5, "limitedGuest"),
    ],
)
def test_roles_keep_harbors_ids_and_names(role: Role, harbor_id: int, name: str) -> None:
    assert Role(harbor_id) is role
    assert role.harbor_name == name


def test_roles_grant_nothing_by_deny() -> None:
    assert all(not grants.denied for grants in ROLE_GRANTS.values())


def test_public_projects_allow_reading_and_pulling_only() -> None:
    assert PUBLIC_PROJECT_GRANTS.allowed == {
        ("project", "read"),
        ("repository", "read"),
        ("repository", "list"),
        ("repository", "pull"),
        ("artifact", "read"),
        ("artifact", "list"),
        ("tag", "list"),
    }
    assert PUBLIC_PROJECT_GRANTS.registry_actions() == {"pull"}


def test_system_administrators_hold_every_permission() -> None:
    assert PROJECT_PERMISSIONS.issubset(ADMIN_PROJECT_GRANTS.allowed)
    assert ROLE_GRANTS[PROJECT_ADMIN].allowed.issubset(ADMIN_PROJECT_GRANTS.allowed)
    assert SYSTEM_PERMISSIONS.issubset(ADMIN_SYSTEM_GRANTS.allowed)
    for permission in ("user:create", "user:delete", "audit-log:list", "configuration:update"):
        assert ADMIN_SYSTEM_GRANTS.can(*permission.split(":"))
