"""Who may do what: a principal's grants in a project and in the system, and the token actions
a scope is answered with. Pure: the services load the facts (robot, role, project)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenserver.domain.models import Principal, Project
from tokenserver.domain.permissions import Grants, PermissionKind
from tokenserver.domain.repositories import relative_name
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
        for p in principal.robot.permissions:
            grants = grants | p.grants_on(project.id, project.name)
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

    Entries with repository patterns count only for a scope whose repository (its name after
    the project) they match.
    """
    if scope.type == "registry":
        return (
            frozenset({"*"})
            if scope.name == "catalog" and system.can("catalog", "read")
            else (frozenset())
        )
    if project.scoped:
        project = project.at(relative_name(scope.name))
    if scope.type == "repository":
        return project.registry_actions()
    return project.actions_on(scope.type)


# Harbor's RBAC namespaces: `/project/<id>` (the regular expression Harbor parses it with) and
# anything that starts with `/system`.
_PROJECT_SCOPE = re.compile(r"/project/([^/]*)/?")
_GO_INT = re.compile(r"[+-]?[0-9]+")
SYSTEM_SCOPE = "/system"
# What Harbor calls a project's own resource (the project itself): our `project`.
_SELF = "project"


def scope_namespace(scope: str) -> int | str | None:
    """The namespace a permission scope names, as Harbor parses it: a project id for
    `/project/<id>[/...]`, SYSTEM_SCOPE for a scope that starts with it, None for any other
    (which lists nothing)."""
    project = _PROJECT_SCOPE.match(scope)
    if project is not None:
        text = project.group(1)
        if _GO_INT.fullmatch(text) and -(2**63) <= int(text) < 2**63:
            return int(text)
        return None
    return SYSTEM_SCOPE if scope.startswith(SYSTEM_SCOPE) else None


def listed_permissions(
    grants: Grants,
    candidates: Iterable[tuple[str, str]],
    namespace: int | str,
    scope: str,
    relative: bool,
) -> list[tuple[str, str]]:
    """The (resource, action) pairs of `candidates` that `grants` allow, as Harbor's
    /users/current/permissions lists them: each resource a path in the namespace
    (`/project/1/repository`, the project itself `/project/1`, `/system/catalog`), or with
    `relative` that path after `scope` (`repository`, `.`), leaving out what does not lie
    under `scope`."""
    base = SYSTEM_SCOPE if namespace == SYSTEM_SCOPE else f"/project/{namespace}"
    listed = []
    for resource, action in sorted(candidates):
        if not grants.can(resource, action):
            continue
        path = base if resource == _SELF and base != SYSTEM_SCOPE else f"{base}/{resource}"
        if relative:
            if not path.startswith(scope):
                continue
            path = path.removeprefix(scope).removeprefix("/") or "."
        listed.append((path, action))
    return listed
