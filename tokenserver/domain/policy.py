"""Who may do what: a principal's grants in a project and in the system, and the token actions
a scope is answered with. Pure: the services load the facts (robot, role, project)."""

from __future__ import annotations

from tokenserver.domain.models import Principal, Project
from tokenserver.domain.permissions import Grants, PermissionKind
from tokenserver.domain.roles import (
    ADMIN_PROJECT_GRANTS,
    ADMIN_SYSTEM_GRANTS,
    PUBLIC_PROJECT_GRANTS,
    ROLE_GRANTS,
    Role,
)
from tokenserver.domain.scopes import Scope

NOTHING = Grants(frozenset())


def project_grants(principal: Principal, project: Project, role: Role | None) -> Grants:
    """What `principal` may do in `project`, where `role` is its membership (users only)."""
    if principal.sysadmin:
        return ADMIN_PROJECT_GRANTS
    grants = PUBLIC_PROJECT_GRANTS if project.public else NOTHING
    if principal.robot is not None:
        grants = grants | Grants.of(
            a for p in principal.robot.permissions for a in p.access_on(project.id, project.name)
        )
    if principal.user is not None and role is not None:
        grants = grants | ROLE_GRANTS[role]
    return grants


def system_grants(principal: Principal) -> Grants:
    """What `principal` may do outside any project (catalog, users, system robots...)."""
    if principal.sysadmin:
        return ADMIN_SYSTEM_GRANTS
    if principal.robot is not None:
        return Grants.of(
            a
            for p in principal.robot.permissions
            if p.kind == PermissionKind.SYSTEM
            for a in p.access
        )
    return NOTHING


def token_actions(scope: Scope, project: Grants, system: Grants) -> frozenset[str]:
    """The actions a token may carry for `scope`, given the caller's grants in the scope's
    project and in the system. Deny by default: an unknown type gets nothing.

    - `repository`: pull, push, delete from repository/artifact permissions (push implies pull);
    - `registry:catalog`: `*` with the system permission `catalog:read`;
    - any other project resource type (`tag`, `artifact-label`, `scan`, `helm-chart`,
      `helm-chart-version`, `artifact`, ...): exactly the actions held on that resource, so
      services beside the registry can accept the same signed tokens.
    """
    if scope.type == "repository":
        return project.registry_actions()
    if scope.type == "registry":
        return (
            frozenset({"*"})
            if scope.name == "catalog" and system.can("catalog", "read")
            else (frozenset())
        )
    return project.actions_on(scope.type)
