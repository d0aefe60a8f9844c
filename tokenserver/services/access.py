"""Authorization: loads the facts a decision needs (membership) and applies the policy."""

from __future__ import annotations

from tokenserver.domain.models import Principal, PrincipalKind, Project
from tokenserver.domain.permissions import Grants
from tokenserver.domain.policy import (
    NOTHING,
    SYSTEM_SCOPE,
    listed_permissions,
    project_grants,
    scope_namespace,
    system_grants,
)
from tokenserver.domain.roles import ADMIN_PROJECT_GRANTS, ADMIN_SYSTEM_GRANTS
from tokenserver.errors import Forbidden, Unauthorized
from tokenserver.services.ports import Store


def denied(principal: Principal, what: str) -> Exception:
    """401 for an anonymous caller (it should authenticate), 403 for anyone else. The 401
    names nothing: it is what an anonymous caller gets for what does not exist, too."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return Unauthorized("authentication required")
    return Forbidden(f"{principal.operator} is not allowed to {what}")


class AccessService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def project_grants(self, principal: Principal, project: Project) -> Grants:
        role = None
        if principal.user is not None and not principal.sysadmin:
            member = await self._store.find_member(project.id, principal.user.id)
            role = member.role if member is not None else None
        return project_grants(principal, project, role)

    def system_grants(self, principal: Principal) -> Grants:
        return system_grants(principal)

    async def require(
        self, principal: Principal, project: Project, resource: str, action: str
    ) -> None:
        """Raise Unauthorized/Forbidden unless `principal` may `action` `resource` in
        `project`."""
        if not (await self.project_grants(principal, project)).can(resource, action):
            raise denied(principal, f"{action} {resource} in project {project.name!r}")

    def require_system(self, principal: Principal, resource: str, action: str) -> None:
        if not self.system_grants(principal).can(resource, action):
            raise denied(principal, f"{action} {resource}")

    async def permissions_in(
        self, principal: Principal, scope: str, relative: bool = False
    ) -> list[tuple[str, str]]:
        """What `principal` may do in the namespace `scope` names (`/project/<id>`,
        `/system`), as (resource, action) pairs in Harbor's form (see `listed_permissions`);
        nothing for a scope that names no namespace. In a project that does not exist, a
        system admin may do everything and anyone else nothing, as in Harbor."""
        namespace = scope_namespace(scope)
        if namespace is None:
            return []
        if namespace == SYSTEM_SCOPE:
            grants, candidates = self.system_grants(principal), ADMIN_SYSTEM_GRANTS.allowed
        else:
            assert isinstance(namespace, int)
            project = await self._store.find_project_by_id(namespace) if namespace > 0 else None
            candidates = ADMIN_PROJECT_GRANTS.allowed
            if project is not None:
                grants = await self.project_grants(principal, project)
            else:
                grants = ADMIN_PROJECT_GRANTS if principal.sysadmin else NOTHING
        return listed_permissions(grants, candidates, namespace, scope, relative)
