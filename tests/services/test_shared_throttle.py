"""Two processes' throttles on one database (SQLite and PostgreSQL): the thresholds hold for
both together as for one, and only what runs the KDF touches the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import with_migrated_database
from tokenserver.config import Settings
from tokenserver.domain.lockouts import CHECK_STALE_SECONDS
from tokenserver.errors import TooManyRequests
from tokenserver.services.throttle import REPEAT_WINDOW, Throttle
from tokenserver.storage.postgres import PostgresStore
from tokenserver.storage.sql import SqlStore
from tokenserver.storage.sqlite import SqliteStore

IP = "192.0.2.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The store, counting the statements the throttles send it."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if callable(attribute):
            self.calls.append(name)
        return attribute


@dataclass
class Pair:
    a: Throttle
    b: Throttle
    clock: Clock
    store: CountingStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def two(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Pair]:
    opened: list[SqlStore] = []
    if request.param == "sqlite":
        path = with_migrated_database(settings).database.path
        opened = [await SqliteStore.open(path), await SqliteStore.open(path)]
    else:
        url = request.getfixturevalue("postgres").emptied_database()
        opened = [await PostgresStore.open(url), await PostgresStore.open(url)]
    clock = Clock()
    counting = CountingStore(opened[1])

    def throttle(store: Any) -> Throttle:
        return Throttle(
            pair_threshold=3, address_threshold=10, max_seconds=900, clock=clock, shared=store
        )

    try:
        yield Pair(throttle(opened[0]), throttle(counting), clock, counting)
    finally:
        for store in opened:
            await store.close()


def locked_for(throttle: Throttle, account: str = "a", address: str = IP) -> int | None:
    try:
        throttle.check(account, address)
    except TooManyRequests as e:
        return e.retry_after
    return None


async def guess(throttle: Throttle, attempt: str, account: str = "a", address: str = IP) -> str:
    """One wrong guess through `guard`, as a login runs it: "401", or "429" if refused."""

    async def check(admit: Any) -> None:
        await admit()
        raise PermissionError

    try:
        await throttle.guard(account, address, attempt, check, PermissionError)
    except PermissionError:
        return "401"
    except TooManyRequests:
        return "429"
    raise AssertionError("unreachable")


async def test_guesses_spread_over_two_processes_lock_at_the_threshold(two: Pair) -> None:
    """Before: each process counted its own, so two gave a guesser twice the threshold."""
    answers = []
    for i in range(6):
        two.clock.now += 0.1
        answers.append(await guess(two.a if i % 2 else two.b, f"guess-{i}"))
    assert answers == ["401", "401", "401", "429", "429", "429"]
    # The one that did not see the last failure learns of the lockout from the database.
    assert locked_for(two.a) == 1 and locked_for(two.b) == 1
    assert two.a.failures + two.b.failures == 3


async def test_a_lockout_is_learnt_by_sync_without_a_check(two: Pair) -> None:
    for i in range(3):
        two.clock.now += 1
        await two.a.failed("a", IP, f"guess-{i}")
    assert locked_for(two.a) == 1
    assert locked_for(two.b) is None  # nothing read yet: a warm request is not refused
    await two.b.sync()
    assert locked_for(two.b) == 1
    assert locked_for(two.b, account="other") is None
    two.clock.now += 1.5
    assert locked_for(two.b) is None
    # The next failure anywhere doubles the wait, for both.
    await two.a.failed("a", IP, "guess-4")
    await two.b.sync()
    assert locked_for(two.a) == 2 and locked_for(two.b) == 2


async def test_an_address_failing_on_both_is_locked_for_every_account(two: Pair) -> None:
    for i in range(10):
        await (two.a if i % 2 else two.b).failed(f"user{i}", IP, "x")
    await two.a.sync()
    await two.b.sync()
    for throttle in (two.a, two.b):
        with pytest.raises(TooManyRequests):
            throttle.check("someone-new", IP)
        assert locked_for(throttle, account="someone-new", address="192.0.2.2") is None


async def test_guesses_running_at_once_on_both_count_for_both(two: Pair) -> None:
    running = [
        (two.a, await two.a.admit("a", IP, "guess-0")),
        (two.a, await two.a.admit("a", IP, "guess-1")),
        (two.b, await two.b.admit("a", IP, "guess-2")),
    ]
    with pytest.raises(TooManyRequests) as refused:
        await two.b.admit("a", IP, "guess-3")
    assert refused.value.retry_after == 1
    with pytest.raises(TooManyRequests):
        await two.a.admit("a", IP, "guess-4")
    # The same attempt again shares its running check; another pair has its own score.
    running.append((two.a, await two.a.admit("a", IP, "guess-0")))
    running.append((two.b, await two.b.admit("b", IP, "guess")))
    for throttle, admission in running:
        await throttle.settle(admission)
    assert await two.b.admit("a", IP, "guess-5")


async def test_a_burst_of_one_attempt_on_both_is_never_refused(two: Pair) -> None:
    """A cold burst of a CI fleet with one secret through both processes: each process's
    requests share one check; the two checks count each other, below the threshold."""
    admitted = await asyncio.gather(*(t.admit("a", IP, "the secret") for t in [two.a, two.b] * 10))
    assert len(admitted) == 20
    for i, admission in enumerate(admitted):
        await (two.a, two.b)[i % 2].settle(admission)


async def test_a_success_clears_the_pair_for_both(two: Pair) -> None:
    for i in range(2):
        two.clock.now += 1
        await two.a.failed("a", IP, f"guess-{i}")

    async def right(admit: Any) -> str:
        await admit()
        return "ok"

    assert await two.b.guard("a", IP, "the secret", right, PermissionError) == "ok"
    for i in range(2):
        two.clock.now += 1
        assert await guess(two.a, f"again-{i}") == "401"
    assert locked_for(two.a) is None  # 2, not 4


async def test_identical_retries_count_once_in_a_process(two: Pair) -> None:
    for _ in range(5):
        await two.a.failed("a", IP, "the same typo")
        two.clock.now += 0.5
    assert await guess(two.b, "another") == "401"
    assert locked_for(two.b) is None
    two.clock.now += REPEAT_WINDOW
    await two.a.failed("a", IP, "the same typo")
    assert locked_for(two.a) == 1


async def test_checks_of_a_process_that_died_stop_counting(two: Pair) -> None:
    for i in range(3):
        await two.a.admit("a", IP, f"guess-{i}")  # never settled: the process died
    with pytest.raises(TooManyRequests):
        await two.b.admit("a", IP, "guess-3")
    two.clock.now += CHECK_STALE_SECONDS
    assert await two.b.admit("a", IP, "guess-3")


async def test_only_what_runs_the_kdf_touches_the_database(two: Pair) -> None:
    """Requests answered without the KDF (checks, successes of a pair with no score) send
    nothing; a check that runs it records itself and reads; a failure writes."""
    b, calls = two.b, two.store.calls
    for _ in range(100):
        b.check("a", IP)
        await b.succeeded("a", IP)
    assert calls == []
    await b.settle(await b.admit("a", IP, "cold"))
    assert calls == ["begin_check", "find_lockouts", "end_check"]
    calls.clear()
    await b.failed("a", IP, "wrong")
    assert calls == ["add_lockout_failure", "add_lockout_failure"]
    calls.clear()
    for _ in range(100):
        b.check("a", IP)
    await b.succeeded("a", IP)  # the pair has a score here: cleared for everyone
    assert calls == ["clear_lockout"]
