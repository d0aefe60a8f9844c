"""Authorization: loads the facts a decision needs (membership) and applies the policy."""

from __future__ import annotations

from collections import OrderedDict

from tokenserver.domain.models import Principal, PrincipalKind, Project
from tokenserver.domain.permissions import Grants, Permission
from tokenserver.domain.policy import project_grants, system_grants
from tokenserver.errors import Forbidden, Unauthorized
from tokenserver.services.ports import Store


def denied(principal: Principal, what: str) -> Exception:
    """401 for an anonymous caller (it should authenticate), 403 for anyone else."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return Unauthorized(f"authentication required to {what}")
    return Forbidden(f"{principal.operator} is not allowed to {what}")


_MEMO_SIZE = 4096


class AccessService:
    def __init__(self, store: Store) -> None:
        self._store = store
        # A robot's grants, keyed by the identity of its permissions tuple (kept in the value,
        # so an id is never mistaken after that tuple is gone). The store hands out the same
        # Robot while its row is unchanged, so warm token requests skip the computation.
        self._robot_memo: OrderedDict[
            tuple[int, int | None, bool], tuple[tuple[Permission, ...], Grants]
        ] = OrderedDict()

    async def project_grants(self, principal: Principal, project: Project) -> Grants:
        if principal.robot is not None and not principal.sysadmin:
            return self._robot_grants(principal, project)
        role = None
        if principal.user is not None and not principal.sysadmin:
            member = await self._store.find_member(project.id, principal.user.id)
            role = member.role if member is not None else None
        return project_grants(principal, project, role)

    def system_grants(self, principal: Principal) -> Grants:
        if principal.robot is not None and not principal.sysadmin:
            return self._robot_grants(principal, None)
        return system_grants(principal)

    def _robot_grants(self, principal: Principal, project: Project | None) -> Grants:
        """`project_grants` (or `system_grants` for None) of a robot, remembered."""
        assert principal.robot is not None
        permissions = principal.robot.permissions
        key = (
            id(permissions),
            None if project is None else project.id,
            project is not None and project.public,
        )
        found = self._robot_memo.get(key)
        if found is not None and found[0] is permissions:
            return found[1]
        grants = (
            system_grants(principal)
            if project is None
            else project_grants(principal, project, None)
        )
        self._robot_memo[key] = (permissions, grants)
        if len(self._robot_memo) > _MEMO_SIZE:
            self._robot_memo.popitem(last=False)
        return grants

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
