"""The audit log of authenticated management operations (never a secret: resources are named,
not shown)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tokenserver.domain.models import MAX_AUDIT_FIELD, AuditEntry, Principal, PrincipalKind
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.roles import ROLE_GRANTS, Role
from tokenserver.domain.text import escape, truncate
from tokenserver.errors import ProjectNotFound, TokenServerError
from tokenserver.services.access import AccessService, denied
from tokenserver.services.ports import AuditScope, Store

# The project roles whose members may read their project's log (Harbor: all but
# limitedGuest).
LOG_READERS = tuple(role for role in Role if ROLE_GRANTS[role].can("log", "list"))

AuditPage = tuple[list[AuditEntry], int]
"""A page of entries and how many there are in all."""


def _bounded(text: str) -> str:
    """A caller-supplied field as stored: escaped (no control character, NUL or lone surrogate
    reaches the database or an operator's terminal) and at most MAX_AUDIT_FIELD long."""
    return truncate(escape(text), MAX_AUDIT_FIELD)


@dataclass(slots=True)
class AuditedOperation:
    """The operation being recorded. The block may name its `resource` better once it knows
    it (a robot the caller named by id or short name, by its full name), and says which
    project it concerns (`project_id`) once it has found it: that project's members may read
    the entry."""

    resource: str
    project_id: int | None = None


class AuditService:
    def __init__(
        self, store: Store, access: AccessService, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._access = access
        self._clock = clock

    @asynccontextmanager
    async def operation(
        self, actor: Principal, operation: str, resource_type: str, resource: str
    ) -> AsyncIterator[AuditedOperation]:
        """Record the operation run in the block: `success`, or `failure: <CODE>` when it
        raises a TokenServerError (which is re-raised), on the resource as the block last
        named it (`resource` until it says otherwise).

        An anonymous caller's attempt is not recorded: it can only fail (every operation needs
        an account), and recording it would let anyone write to the database without limit.
        The access log still has the request."""
        entry = AuditedOperation(resource)
        if actor.kind is PrincipalKind.ANONYMOUS:
            yield entry
            return
        try:
            yield entry
        except TokenServerError as e:
            await self._record(actor, operation, resource_type, entry, f"failure: {e.code}")
            raise
        await self._record(actor, operation, resource_type, entry, "success")

    async def _record(
        self,
        actor: Principal,
        operation: str,
        resource_type: str,
        entry: AuditedOperation,
        outcome: str,
    ) -> None:
        await self._store.add_audit(
            AuditEntry(
                int(self._clock()),
                _bounded(actor.operator),
                operation,
                resource_type,
                _bounded(entry.resource),
                _bounded(outcome),
                project_id=entry.project_id,
            )
        )

    async def list(
        self, actor: Principal, offset: int, limit: int, query: Query = EVERYTHING
    ) -> AuditPage:
        """A page of the entries `actor` may read that meet `query`, and their total, as
        Harbor's GET /audit-logs: with `audit-log:list`, every entry; a user without it, the
        entries of the projects where the user's role may list the log; anyone else,
        nothing (an empty page, not a denial)."""
        if actor.kind is PrincipalKind.ANONYMOUS:
            raise denied(actor, "list the audit log")
        if self._access.system_grants(actor).can("audit-log", "list"):
            scope = AuditScope()
        elif actor.user is not None:
            scope = AuditScope(member_id=actor.user.id, roles=LOG_READERS)
        else:
            return [], 0
        return await self._store.list_audit(offset, limit, query, scope)

    async def list_project(
        self, actor: Principal, project_name: str, offset: int, limit: int, query: Query
    ) -> AuditPage:
        """A page of project `project_name`'s entries that meet `query`, and their total.
        Needs `log:list` in the project. Raises ProjectNotFound, Unauthorized, Forbidden."""
        project = await self._store.find_project(project_name)
        if project is None:
            raise ProjectNotFound(f"project {project_name!r} not found")
        await self._access.require(actor, project, "log", "list")
        return await self._store.list_audit(offset, limit, query, AuditScope(project_id=project.id))
