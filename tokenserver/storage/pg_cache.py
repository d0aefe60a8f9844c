"""A PostgreSQL replica's read cache, kept current by notifications.

Every write to a table the cache reads sends a notification in its own transaction (a
statement trigger: `pg_notify('tokenserver_cache', <table>)`, see the PostgreSQL migrations), so
it is delivered at commit, to every replica, in commit order. Each replica listens on a
connection of its own and drops the rows that read the table named.

A notification can be missed only while that connection is down, and then the cache is not
used: a replica serves from it only while

- its listener is connected and has dropped everything since it (re)connected, and
- a ping of its own (a notification it sends itself through that connection) came back, sent
  less than `bound` seconds ago. Notifications arrive in commit order, so the ping's return
  proves that every change committed before it was sent has been dropped; a listener whose
  connection hangs without closing stops the cache within `bound`.

A change committed on another replica is thus honoured here after its notification's trip
(milliseconds), never after more than `bound` seconds whatever the network does; a change made
through this process is honoured by the time the write returns (`sync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from tokenserver.domain.names import NAME_MAX_LENGTH

__all__ = ["CHANNEL", "MISSING", "NotifiedCache"]

log = logging.getLogger("tokenserver.storage")

CHANNEL = "tokenserver_cache"
# How often a listener pings itself, and how old its newest returned ping may be for the cache
# to serve: the most a change committed elsewhere can go unseen if the listener's connection
# hangs silently (a closed one stops the cache at once).
PING_SECONDS = 0.25
BOUND_SECONDS = 1.0
# Waits between attempts to listen again, doubling from the first to the last.
RECONNECT_SECONDS = (0.05, 2.0)

MISSING = object()
_PING = "ping:"

Connect = Callable[[], Awaitable[Any]]


class NotifiedCache:
    """Rows of the kinds in `reads` (kind -> the tables its query reads), at most `size`,
    kept while no notification names one of those tables. `connect()` opens the listening
    connection (an asyncpg connection); `start()` begins listening, `close()` ends it."""

    def __init__(
        self,
        connect: Connect,
        reads: Mapping[str, Iterable[str]],
        size: int,
        *,
        bound: float = BOUND_SECONDS,
        ping_every: float = PING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        describe: str = "the database",
    ) -> None:
        self._connect = connect
        self._size = size
        self._bound = bound
        self._ping_every = ping_every
        self._clock = clock
        self._describe = describe
        self._dropped_by: dict[str, set[str]] = {}  # table -> the kinds that read it
        for kind, tables in reads.items():
            for table in tables:
                self._dropped_by.setdefault(table, set()).add(kind)
        self._kinds = frozenset(reads)
        self._entries: OrderedDict[tuple[object, ...], object] = OrderedDict()
        # Changes whenever rows may have changed unseen: a value loaded before must not be kept.
        self.generation = 0
        self._listening = False
        self._confirmed = -float("inf")  # when the newest ping that came back was sent
        self._token = secrets.token_hex(8)  # tells this cache's pings from other replicas'
        self._sequence = 0
        self._ping: tuple[str, asyncio.Future[None]] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._closing = False
        self.drops = 0  # notifications that dropped rows (for tests and measurements)

    # ---- the cache -----------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether rows may be served: listening, and confirmed within the bound."""
        return self._listening and self._clock() - self._confirmed < self._bound

    def get(self, key: tuple[object, ...]) -> object:
        """The value kept under `key`, or MISSING. Callers check `usable()` first."""
        found = self._entries.get(key, MISSING)
        if found is not MISSING:
            self._entries.move_to_end(key)
        return found

    def keeps(self, key: tuple[object, ...]) -> bool:
        """Whether `key`'s kind is one the cache knows the tables of (others are never kept)."""
        return key[0] in self._kinds

    def put(self, generation: int, key: tuple[object, ...], value: object) -> None:
        """Keep `value`, loaded after `generation` was read, unless anything may have changed
        since. A key holding a name longer than any stored name can be is not kept (it finds
        nothing anyway, and `size` then bounds the bytes too)."""
        if (
            generation != self.generation
            or not self._listening
            or key[0] not in self._kinds
            or any(isinstance(part, str) and len(part) > NAME_MAX_LENGTH for part in key)
        ):
            return
        self._entries[key] = value
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def _drop_all(self) -> None:
        self.generation += 1
        self._entries.clear()

    def _drop(self, table: str) -> None:
        kinds = self._dropped_by.get(table)
        self.generation += 1
        self.drops += 1
        if kinds is None:  # a table this version does not know: it may be read, drop it all
            self._entries.clear()
            return
        for key in [key for key in self._entries if key[0] in kinds]:
            del self._entries[key]

    # ---- listening -----------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._down()

    async def sync(self) -> None:
        """Return once every change committed before the call has been dropped, or the cache
        is off until it listens again (which drops everything). A write calls it: its own
        change is then honoured by the next read in this process."""
        if not self._listening or self._closing:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        await waiter

    def listener_pid(self) -> int | None:
        """The server process of the listening connection (for tests that end it)."""
        if self._connection is None or not self._listening:
            return None
        pid: int = self._connection.get_server_pid()
        return pid

    async def _run(self) -> None:
        delay = RECONNECT_SECONDS[0]
        failing = False
        while not self._closing:
            try:
                self._connection = await self._connect()
                self._connection.add_termination_listener(self._lost)
                await self._connection.add_listener(CHANNEL, self._notified)
                # Anything may have changed while nobody listened.
                self._drop_all()
                self._listening = True
                if failing:
                    log.warning("listening to %s again: its read cache is back", self._describe)
                failing = False
                delay = RECONNECT_SECONDS[0]
                while self._listening and not self._closing:
                    await self._ping_round()
                    # NOTE: not wait_for, which on 3.11 loses a cancellation that arrives as
                    # the event is set (as `close` does): the task never ended.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._ping_every):
                            await self._wake.wait()
                    self._wake.clear()
                raise ConnectionError("the listening connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Whatever failed (connecting, a lost connection, a ping that did not come back
                # in time), the cache is off until a new connection listens and drops it all.
                if not self._closing and not failing:
                    log.warning(
                        "not listening to %s (%s): its read cache is off until it listens again",
                        self._describe,
                        str(e) or type(e).__name__,
                    )
                failing = True
            finally:
                self._down()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_SECONDS[1])

    async def _ping_round(self) -> None:
        """Send a ping through the listening connection and wait for it to come back; then
        everything committed before it was sent has been seen. Raises if it does not come
        back within the bound (the connection is then given up)."""
        waiters, self._waiters = self._waiters, []
        self._sequence += 1
        payload = f"{_PING}{self._token}:{self._sequence}"
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ping = (payload, arrived)
        sent = self._clock()
        try:
            async with asyncio.timeout(self._bound):
                await self._connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                await arrived
        except TimeoutError:
            self._waiters[:0] = waiters
            raise TimeoutError(f"a notification took over {self._bound} s") from None
        except BaseException:
            self._waiters[:0] = waiters
            raise
        finally:
            self._ping = None
        self._confirmed = max(self._confirmed, sent)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        if payload.startswith(_PING):
            ping = self._ping
            if ping is not None and payload == ping[0] and not ping[1].done():
                ping[1].set_result(None)
            return  # another replica's ping: nothing changed
        self._drop(payload)

    def _lost(self, connection: object) -> None:
        if connection is self._connection:
            self._down()
            self._wake.set()

    def _down(self) -> None:
        """Stop serving and forget everything: notifications may be missed from now on."""
        self._listening = False
        self._confirmed = -float("inf")
        self._drop_all()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # their writes will be honoured: nothing is served until resync
            if not waiter.done():
                waiter.set_result(None)
        if self._ping is not None and not self._ping[1].done():
            self._ping[1].set_exception(ConnectionError("the listening connection was closed"))
            self._ping[1].exception()  # retrieved: `_ping_round` may not be awaiting it
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()
