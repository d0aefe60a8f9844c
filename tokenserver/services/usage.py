"""When each robot and refresh token was last used, kept in memory and written in batches: a
token request never waits for a database write."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from tokenserver.domain.models import Robot
from tokenserver.services.ports import Store

FLUSH_SECONDS = 30


class UsageTracker:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._pending: dict[int, int] = {}
        self._pending_refresh: dict[int, int] = {}

    def touch(self, robot: Robot) -> None:
        """Note a successful authentication (a dict write, no I/O)."""
        self._pending[robot.id] = int(self._clock())

    def touch_refresh_token(self, token_id: int, when: int) -> None:
        """Note a refresh token's use at Unix time `when` (a dict write, no I/O)."""
        self._pending_refresh[token_id] = when

    def merged(self, robot: Robot) -> Robot:
        """`robot` with a use not yet written to the database."""
        pending = self._pending.get(robot.id)
        if pending is None or (robot.last_used_at or 0) >= pending:
            return robot
        return dataclasses.replace(robot, last_used_at=pending)

    async def flush(self) -> None:
        """Write the pending uses in one batch."""
        if self._pending:
            pending, self._pending = self._pending, {}
            await self._store.record_robot_use(pending)
        if self._pending_refresh:
            refresh, self._pending_refresh = self._pending_refresh, {}
            await self._store.record_refresh_token_use(refresh)
