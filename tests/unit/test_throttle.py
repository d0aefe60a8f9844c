from __future__ import annotations

import pytest

from tokenserver.errors import TooManyRequests
from tokenserver.services.throttle import HALF_LIFE, REPEAT_WINDOW, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, pair: int = 3, address: int = 10) -> Throttle:
    return Throttle(pair_threshold=pair, address_threshold=address, max_seconds=900, clock=clock)


async def fail(
    throttle: Throttle, clock: Clock, n: int, account: str = "a", address: str = "1.1.1.1"
) -> None:
    for i in range(n):
        clock.now += 1  # distinct attempts a second apart
        await throttle.failed(account, address, f"attempt-{clock.now}-{i}")


def locked_for(throttle: Throttle, account: str = "a", address: str = "1.1.1.1") -> int | None:
    try:
        throttle.check(account, address)
    except TooManyRequests as e:
        return e.retry_after
    return None


async def test_lockout_starts_at_the_threshold_and_the_wait_doubles() -> None:
    clock = Clock()
    throttle = make(clock)
    await fail(throttle, clock, 2)
    assert locked_for(throttle) is None
    await throttle.failed("a", "1.1.1.1", "third")
    assert locked_for(throttle) == 1
    assert throttle.lockouts == 1
    clock.now += 1.5
    assert locked_for(throttle) is None
    await throttle.failed("a", "1.1.1.1", "fourth")
    assert locked_for(throttle) == 2
    clock.now += 2.5
    await throttle.failed("a", "1.1.1.1", "fifth")
    assert locked_for(throttle) == 4


async def test_the_wait_is_capped() -> None:
    clock = Clock()
    throttle = make(clock)
    for i in range(40):
        await throttle.failed("a", "1.1.1.1", f"x{i}")
    assert locked_for(throttle) == 900


async def test_scores_decay() -> None:
    clock = Clock()
    throttle = make(clock)
    await fail(throttle, clock, 2)
    clock.now += 5 * HALF_LIFE
    await throttle.failed("a", "1.1.1.1", "late")
    assert locked_for(throttle) is None


async def test_identical_retries_count_once() -> None:
    clock = Clock()
    throttle = make(clock)
    for _ in range(10):
        await throttle.failed("a", "1.1.1.1", "same wrong password")
        clock.now += 0.5
    assert locked_for(throttle) is None
    clock.now += REPEAT_WINDOW
    await throttle.failed("a", "1.1.1.1", "same wrong password")
    await throttle.failed("a", "1.1.1.1", "another")
    assert locked_for(throttle) == 1


async def test_another_address_is_not_locked_and_success_clears_the_pair() -> None:
    clock = Clock()
    throttle = make(clock)
    await fail(throttle, clock, 3)
    assert locked_for(throttle) is not None
    assert locked_for(throttle, address="2.2.2.2") is None
    assert locked_for(throttle, account="b") is None
    await fail(throttle, clock, 2, account="c")
    await throttle.succeeded("c", "1.1.1.1")
    await fail(throttle, clock, 2, account="c")
    assert locked_for(throttle, account="c") is None


async def test_an_address_failing_across_accounts_is_locked_for_all() -> None:
    clock = Clock()
    throttle = make(clock, pair=100, address=5)
    for i in range(5):
        await throttle.failed(f"user{i}", "9.9.9.9", "x")
    for account in ("user0", "someone-new"):
        with pytest.raises(TooManyRequests):
            throttle.check(account, "9.9.9.9")
    assert locked_for(throttle, account="someone-new", address="8.8.8.8") is None


async def test_attack_long_account_names_do_not_grow_throttle_keys() -> None:
    """A failed login with a 4 kB user name kept the name in its key: 100,000 entries
    could hold 400 MB. Keys are digests, and still lock out."""
    clock = Clock()
    throttle = make(clock, pair=3, address=1_000_000)
    for i in range(500):
        await fail(throttle, clock, 1, account=f"{i:04d}" + "x" * 4000)
    keys = list(throttle._scores)
    assert len(keys) == 501  # 500 pairs and the address
    assert max(len(key) for key in keys) == 32
    assert sum(len(key) for key in keys) == 501 * 32

    long_account = "robot$" + "y" * 4000
    await fail(throttle, clock, 3, account=long_account)
    assert locked_for(throttle, account=long_account) is not None
    assert locked_for(throttle, account=long_account + "z") is None  # another account
    await throttle.succeeded(long_account, "1.1.1.1")
    assert locked_for(throttle, account=long_account) is None


async def test_running_attempts_count_as_failures_until_settled() -> None:
    clock = Clock()
    throttle = make(clock, pair=3, address=5)
    admitted = [await throttle.admit("a", "1.1.1.1", f"guess-{i}") for i in range(3)]
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit("a", "1.1.1.1", "guess-3")
    assert refused.value.retry_after == 1
    # The same attempt again shares the running check; another account or address has its
    # own pair score, up to the address threshold.
    admitted.append(await throttle.admit("a", "1.1.1.1", "guess-0"))
    admitted += [await throttle.admit("b", "1.1.1.1", f"guess-{i}") for i in range(2)]
    with pytest.raises(TooManyRequests):
        await throttle.admit("c", "1.1.1.1", "guess")  # the address has 5 running
    admitted.append(await throttle.admit("c", "2.2.2.2", "guess"))
    for admission in admitted:
        await throttle.settle(admission)
    assert throttle._pending == {}


async def test_admission_changes_nothing_one_attempt_at_a_time() -> None:
    """Alone, an attempt is admitted whatever the score: `check` decides, as before."""
    clock = Clock()
    throttle = make(clock)
    await fail(throttle, clock, 3)
    assert locked_for(throttle) is not None
    await throttle.settle(await throttle.admit("a", "1.1.1.1", "alone"))
    clock.now += 10_000
    assert locked_for(throttle) is None
