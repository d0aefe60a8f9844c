"""A PostgreSQL replica's read cache never serves a row after a change it was not told of.

Two stores on one database stand for two replicas: A (no cache, as the command line) writes, B
(a server's store, with the cache) reads. B honours A's change once its notification arrives;
`sync_cache()` waits for that, so the tests need no clock. What B does when it cannot hear
(listener killed, hung, not yet resynced) is served from the database.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.postgres import PostgresServer
from tests.storage.test_store_contract import new_robot, new_user
from tokenserver.domain.federation import Condition, Identity
from tokenserver.domain.roles import Role
from tokenserver.services.ports import NewIssuer, NewRule, RobotChanges
from tokenserver.storage import pg_cache
from tokenserver.storage.pg_cache import NotifiedCache
from tokenserver.storage.postgres import PostgresStore
from tokenserver.storage.sql import CACHED_READS

SQL = Path(__file__).resolve().parents[2] / "tokenserver" / "storage" / "sql.py"


@dataclass
class Pair:
    a: PostgresStore
    b: PostgresStore
    url: str

    @property
    def cache(self) -> NotifiedCache:
        assert self.b._cache is not None
        return self.b._cache


async def listening(cache: NotifiedCache) -> None:
    """Until the cache has (re)connected and confirmed a ping (it reconnects by itself)."""
    for _ in range(2000):
        if cache.usable():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the cache never listened")


@pytest.fixture
async def pair(postgres: PostgresServer) -> AsyncIterator[Pair]:
    url = postgres.emptied_database()
    a = await PostgresStore.open(url)
    b = await PostgresStore.open(url, cache_size=1000)
    try:
        assert b._cache is not None
        await listening(b._cache)
        project = await a.create_project("p", False, None, 0)
        await a.create_robot(new_robot("ci", project.id))
        await b.sync_cache()  # their notifications have come: B keeps what it reads next
        yield Pair(a, b, url)
    finally:
        await b.close()
        await a.close()


async def test_rows_are_served_from_the_cache_until_another_replica_changes_them(
    pair: Pair,
) -> None:
    first = await pair.b.find_robot("p", "ci")
    assert first is not None and not first.disabled
    assert await pair.b.find_robot("p", "ci") is first  # kept
    await pair.a.update_robot(first.id, 1, RobotChanges(disabled=True, secret_hash="h2"))
    await pair.b.sync_cache()
    changed = await pair.b.find_robot("p", "ci")
    assert changed is not None and changed.disabled and changed.secret_hash == "h2"
    await pair.a.delete_robot(first.id)
    await pair.b.sync_cache()
    assert await pair.b.find_robot("p", "ci") is None


async def test_a_change_made_outside_tokenserver_notifies_too(pair: Pair) -> None:
    """A trigger sends the notification, not tokenserver's code: an operator's SQL, or a
    cascade from a deleted project, drops the rows as well."""
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None and not robot.project_public
    conn = await asyncpg.connect(pair.url)
    try:
        await conn.execute("UPDATE project SET public = TRUE")
        await pair.b.sync_cache()
        robot = await pair.b.find_robot("p", "ci")
        assert robot is not None and robot.project_public
        await conn.execute("DELETE FROM project")  # the robot goes with it (ON DELETE CASCADE)
        await pair.b.sync_cache()
        assert await pair.b.find_robot("p", "ci") is None
        assert await pair.b.find_robot_by_id(robot.id) is None
    finally:
        await conn.close()


async def test_own_writes_are_honoured_when_the_write_returns(pair: Pair) -> None:
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None
    await pair.b.update_robot(robot.id, 1, RobotChanges(description="direct"))
    changed = await pair.b.find_robot("p", "ci")
    assert changed is not None and changed.description == "direct"
    async with pair.b.transaction():
        await pair.b.update_robot(robot.id, 2, RobotChanges(description="inside"))
        inside = await pair.b.find_robot("p", "ci")  # the transaction's own view
        assert inside is not None and inside.description == "inside"
    after = await pair.b.find_robot("p", "ci")
    assert after is not None and after.description == "inside"
    assert await pair.b.find_user("nobody") is None  # a miss is kept too...
    await pair.b.create_user(new_user("nobody"), 0)
    assert await pair.b.find_user("nobody") is not None  # ...and dropped by the insert


async def test_a_row_read_before_a_change_is_not_kept_after_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that left the database before A's commit and comes back after its notification
    must not keep the old row: it would be served until the next change."""
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None
    await pair.a.update_robot(robot.id, 1, RobotChanges(description="new"))
    await pair.b.sync_cache()
    read, release = asyncio.Event(), asyncio.Event()
    rows = pair.b._rows

    async def slow_rows(sql: str, args: Any = ()) -> Any:
        found = await rows(sql, args)
        read.set()
        await release.wait()
        return found

    monkeypatch.setattr(pair.b, "_rows", slow_rows)
    loading = asyncio.create_task(pair.b.find_robot("p", "ci"))
    await read.wait()
    await pair.a.update_robot(robot.id, 2, RobotChanges(description="newer"))
    await pair.b.sync_cache()
    release.set()
    assert (await loading) is not None  # what it read ("new" or "newer"): not kept
    monkeypatch.setattr(pair.b, "_rows", rows)
    now = await pair.b.find_robot("p", "ci")
    assert now is not None and now.description == "newer"


async def test_a_killed_listener_serves_uncached_until_it_listens_again(pair: Pair) -> None:
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None
    pid = pair.cache.listener_pid()
    assert pid is not None
    # It reconnects within milliseconds: held back here, to look at it while it is down.
    gate, connect = asyncio.Event(), pair.cache._connect

    async def held_back() -> Any:
        await gate.wait()
        return await connect()

    pair.cache._connect = held_back
    # Ended, and A's change committed while nobody listens: its notification is lost.
    assert await pair.a._rows("SELECT pg_terminate_backend(?, 10000)", (pid,))
    await pair.a.update_robot(robot.id, 1, RobotChanges(disabled=True))
    await pair.b.sync_cache()  # returns once B knows it missed something
    assert not pair.cache.usable()
    first = await pair.b.find_robot("p", "ci")
    assert first is not None and first.disabled
    again = await pair.b.find_robot("p", "ci")
    assert again == first and again is not first  # read afresh
    gate.set()
    await listening(pair.cache)
    assert pair.cache.listener_pid() not in (None, pid)
    kept = await pair.b.find_robot("p", "ci")
    assert kept is not None and kept.disabled
    assert await pair.b.find_robot("p", "ci") is kept  # cached again
    await pair.a.update_robot(robot.id, 2, RobotChanges(disabled=False))
    await pair.b.sync_cache()
    back = await pair.b.find_robot("p", "ci")
    assert back is not None and not back.disabled


async def test_attack_changes_reads_and_killed_listeners_at_once_never_serve_a_stale_row(
    pair: Pair,
) -> None:
    """Readers hammer B while A changes the robot and the listener is ended mid-run, again
    and again: once B has caught up, every read shows A's newest value."""
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            await pair.b.find_robot("p", "ci")
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        for i in range(60):
            if i % 7 == 3:
                pid = pair.cache.listener_pid()
                if pid is not None:
                    await pair.a._rows("SELECT pg_terminate_backend(?)", (pid,))
            await pair.a.update_robot(robot.id, i, RobotChanges(description=f"v{i}"))
            await pair.b.sync_cache()
            for _ in range(3):
                seen = await pair.b.find_robot("p", "ci")
                assert seen is not None and seen.description == f"v{i}", i
                await asyncio.sleep(0)
    finally:
        stop.set()
        await asyncio.gather(*readers)


async def test_a_hung_listener_stops_the_cache_within_the_bound(pair: Pair) -> None:
    """A listener whose connection neither answers nor closes (its server process stopped):
    its ping does not come back, so the cache stops serving once its newest returned ping is
    `bound` old, and a new connection takes over."""
    if os.geteuid() != 0:
        pytest.skip("stopping the server's process needs root (it runs as postgres)")
    cache = pair.cache
    cache._bound = 0.3  # the production bound is 1 s; the rule is the same
    robot = await pair.b.find_robot("p", "ci")
    assert robot is not None
    pid = cache.listener_pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        await pair.a.update_robot(robot.id, 1, RobotChanges(disabled=True))
        await pair.b.sync_cache()  # the ping times out: B gives the connection up
        seen = await pair.b.find_robot("p", "ci")
        assert seen is not None and seen.disabled
    finally:
        os.kill(pid, signal.SIGCONT)
    await listening(cache)
    assert cache.listener_pid() != pid


async def test_an_unconfirmed_listener_serves_nothing(pair: Pair) -> None:
    """Past the bound since its newest returned ping (a clock moved here), nothing is served
    from the cache even if it is connected; before its first resync neither."""
    cache = pair.cache
    robot = await pair.b.find_robot("p", "ci")
    assert await pair.b.find_robot("p", "ci") is robot
    clock = cache._clock
    cache._clock = lambda: clock() + 2 * pg_cache.BOUND_SECONDS
    assert not cache.usable()
    assert await pair.b.find_robot("p", "ci") is not robot
    cache._clock = clock

    fresh = NotifiedCache(_never_connects, CACHED_READS, 10)
    assert not fresh.usable()


async def _never_connects() -> Any:
    raise ConnectionError("unreachable")


async def test_an_unreachable_database_logs_without_the_password(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.migrated_database()
    store = await PostgresStore.open(url, cache_size=10)
    try:
        assert store._cache is not None
        await listening(store._cache)
        postgres.pause()
        try:
            for _ in range(1000):
                if "its read cache is off" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert not store._cache.usable()
        finally:
            postgres.resume()
        await listening(store._cache)
        assert "its read cache is back" in caplog.text
        assert postgres.password not in caplog.text
    finally:
        await store.close()


# ---- what each cached read depends on --------------------------------------------------


def test_every_cached_read_names_the_tables_it_reads() -> None:
    """A kind missing from CACHED_READS would never be dropped; such a kind is not kept (see
    `NotifiedCache.put`), but it must not exist: the token path would read every time."""
    source = SQL.read_text()
    kinds = set(re.findall(r"self\._(?:first|cached)\(\s*\(\s*\"(\w+)\"", source))
    assert kinds and kinds == set(CACHED_READS)


async def test_every_table_a_cached_read_reads_notifies(pair: Pair) -> None:
    rows = await pair.a._rows(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_proc f ON f.oid = t.tgfoid WHERE f.proname = 'tokenserver_cache_notify'"
    )
    tables = {table for kind in CACHED_READS.values() for table in kind}
    assert {row[0] for row in rows} == tables


Reads = dict[str, Callable[[PostgresStore], Awaitable[object]]]


async def _one_of_each(store: PostgresStore) -> Reads:
    """Rows of every cached kind, on `store`: the reads that find them."""
    project = await store.create_project("q", False, None, 0)
    user = await store.create_user(new_user("u"), 0)
    await store.add_member(project.id, user.id, Role.DEVELOPER, 0)
    robot = await store.create_robot(new_robot("r", project.id))
    await store.create_robot(new_robot("robot$old", project.id, legacy_id=7, legacy_project_id=1))
    await store.add_refresh_token("rt", "docker", 0, robot_id=robot.id, keep=5)
    issuer = await store.add_issuer(
        NewIssuer("ci", "https://issuer.example", ("aud",), None, None, 3600, 0)
    )
    await store.add_federation_rule(
        robot.id, NewRule(issuer.id, (Condition("sub", ("x",)),)), 0, 10
    )
    await store.add_temporary_secret("ts", robot.id, _identity(), 0, 10**10, keep=5)
    return {
        "project": lambda s: s.find_project("q"),
        "robot": lambda s: s.find_robot("q", "r"),
        "robot_id": lambda s: s.find_robot_by_id(robot.id),
        "legacy_robot": lambda s: s.find_legacy_robot("robot$old"),
        "user": lambda s: s.find_user("u"),
        "user_id": lambda s: s.find_user_by_id(user.id),
        "member": lambda s: s.find_member(project.id, user.id),
        "refresh_token": lambda s: s.find_refresh_token("rt"),
        "issuer": lambda s: s.find_issuer("ci"),
        "issuer_url": lambda s: s.find_issuer_by_url("https://issuer.example"),
        "federation_rules": lambda s: s.list_federation_rules(robot.id),
        "temporary_secret": lambda s: s.find_temporary_secret("ts"),
    }


def _identity() -> Identity:
    return Identity(
        issuer="ci", iss="https://issuer.example", sub="x", aud="aud", rule_id=1,
        expires_at=10**10, jti="j", repository="", ref="", sha="", run_id="",
    )  # fmt: skip


@pytest.mark.parametrize(
    "table", sorted({table for tables in CACHED_READS.values() for table in tables})
)
async def test_a_write_to_a_table_drops_exactly_the_reads_of_it(pair: Pair, table: str) -> None:
    reads = await _one_of_each(pair.a)
    assert set(reads) == set(CACHED_READS)
    await pair.b.sync_cache()  # the notifications of those writes have come
    kept = {kind: await read(pair.b) for kind, read in reads.items()}
    for kind, read in reads.items():
        assert kept[kind], kind  # found: a row (not None, not []) tells a read from a kept one
        assert await read(pair.b) is kept[kind], kind
    # Any statement on the table notifies, even one that changes nothing.
    conn = await asyncpg.connect(pair.url)
    try:
        await conn.execute(f"UPDATE {table} SET id = id WHERE FALSE")  # noqa: S608
    finally:
        await conn.close()
    await pair.b.sync_cache()
    for kind, read in reads.items():
        again = await read(pair.b)
        assert again == kept[kind], kind
        if table in CACHED_READS[kind]:
            assert again is not kept[kind], f"{kind} was kept after a write to {table}"
        else:
            assert again is kept[kind], f"{kind} was dropped by a write to {table}"
