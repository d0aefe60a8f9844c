"""The audit log of authenticated management operations (never a secret: resources are named,
not shown)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tokenserver.domain.models import MAX_AUDIT_FIELD, AuditEntry, Principal, PrincipalKind
from tokenserver.domain.text import escape, truncate
from tokenserver.errors import TokenServerError
from tokenserver.services.access import AccessService
from tokenserver.services.ports import Store


def _bounded(text: str) -> str:
    """A caller-supplied field as stored: escaped (no control character, NUL or lone surrogate
    reaches the database or an operator's terminal) and at most MAX_AUDIT_FIELD long."""
    return truncate(escape(text), MAX_AUDIT_FIELD)


@dataclass(slots=True)
class AuditedOperation:
    """The operation being recorded. The block may name its `resource` better once it knows
    it (a robot the caller named by id or short name, by its full name)."""

    resource: str


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
            await self._record(
                actor, operation, resource_type, entry.resource, f"failure: {e.code}"
            )
            raise
        await self._record(actor, operation, resource_type, entry.resource, "success")

    async def _record(
        self, actor: Principal, operation: str, resource_type: str, resource: str, outcome: str
    ) -> None:
        await self._store.add_audit(
            AuditEntry(
                int(self._clock()),
                _bounded(actor.operator),
                operation,
                resource_type,
                _bounded(resource),
                _bounded(outcome),
            )
        )

    async def list(self, actor: Principal, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and the total. Needs `audit-log:list`."""
        self._access.require_system(actor, "audit-log", "list")
        return await self._store.list_audit(offset, limit)
