"""The audit log of management operations (never a secret: resources are named, not shown)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tokenserver.domain.models import AuditEntry, Principal
from tokenserver.errors import TokenServerError
from tokenserver.services.access import AccessService
from tokenserver.services.ports import Store


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
    ) -> AsyncIterator[None]:
        """Record the operation run in the block: `success`, or `failure: <CODE>` when it
        raises a TokenServerError (which is re-raised)."""
        try:
            yield
        except TokenServerError as e:
            await self._record(actor, operation, resource_type, resource, f"failure: {e.code}")
            raise
        await self._record(actor, operation, resource_type, resource, "success")

    async def _record(
        self, actor: Principal, operation: str, resource_type: str, resource: str, outcome: str
    ) -> None:
        await self._store.add_audit(
            AuditEntry(
                int(self._clock()), actor.operator, operation, resource_type, resource, outcome
            )
        )

    async def list(self, actor: Principal, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and the total. Needs `audit-log:list`."""
        self._access.require_system(actor, "audit-log", "list")
        return await self._store.list_audit(offset, limit)
