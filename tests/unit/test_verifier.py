from __future__ import annotations

import asyncio
import os
import threading

import pytest

from tests.helpers import FAST_KDF_COST
from tokenserver.domain.secrets import (
    DEFAULT_KDF_COST,
    KdfCost,
    Secret,
    generate_secret,
    hash_secret,
    verify_secret,
)
from tokenserver.services.verifier import SecretVerifier


async def test_hashes_at_the_production_cost_unless_given_another() -> None:
    verifier = SecretVerifier(cache_size=10, cache_ttl=60)
    secret = generate_secret()
    try:
        stored = await verifier.hash(secret)
        assert stored.startswith("scrypt$14$8$5$")
        assert verifier.dummy_hash("nobody").startswith("scrypt$14$8$5$")
        assert not verifier.needs_rehash(stored)
        assert not verifier.needs_rehash(verifier.dummy_hash("nobody"))
    finally:
        verifier.close()


async def test_an_injected_cost_makes_its_hashes_and_dummies_and_decides_rehashing() -> None:
    """With another cost, what the verifier makes and what it checks unknown accounts against
    are both at that cost, so an unknown account still costs what a known one does; a hash
    at any other cost (the production one too) is what it would rehash."""
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    try:
        stored = await verifier.hash(secret)
        dummy = verifier.dummy_hash("nobody")
        assert stored.startswith(FAST_KDF_COST.prefix) and dummy.startswith(FAST_KDF_COST.prefix)
        assert stored.split("$")[:4] == dummy.split("$")[:4] == ["scrypt", "4", "1", "1"]
        assert await verifier.verify(secret, stored)
        assert not await verifier.verify(secret, dummy)
        assert not verifier.needs_rehash(stored)
        assert not verifier.needs_rehash(dummy)
        production = hash_secret(secret, DEFAULT_KDF_COST)
        assert verifier.needs_rehash(production)
        # A stored hash is verified at its own cost, whatever the verifier's.
        assert await verifier.verify(secret, production)
        assert verify_secret(secret.reveal(), stored)
    finally:
        verifier.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_success_is_cached_and_failure_is_not() -> None:
    clock = FakeClock()
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, clock=clock, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    stored = await verifier.hash(secret)
    assert await verifier.verify(secret, stored)
    assert (verifier.hits, verifier.misses) == (0, 1)
    assert await verifier.verify(secret, stored)
    assert (verifier.hits, verifier.misses) == (1, 1)
    assert not await verifier.verify(Secret("wrong"), stored)
    assert not await verifier.verify(Secret("wrong"), stored)
    assert (verifier.hits, verifier.misses) == (1, 3)
    verifier.close()


async def test_a_new_hash_never_hits_the_old_entry() -> None:
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    old = await verifier.hash(secret)
    assert await verifier.verify(secret, old)
    new = await verifier.hash(generate_secret())
    assert not await verifier.verify(secret, new)
    verifier.close()


async def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, clock=clock, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    stored = await verifier.hash(secret)
    await verifier.verify(secret, stored)
    clock.now += 61
    assert await verifier.verify(secret, stored)
    assert verifier.hits == 0
    verifier.close()


async def test_the_cache_is_bounded() -> None:
    verifier = SecretVerifier(cache_size=2, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    secrets = [generate_secret() for _ in range(3)]
    hashes = [await verifier.hash(s) for s in secrets]
    for s, h in zip(secrets, hashes, strict=True):
        await verifier.verify(s, h)
    await verifier.verify(secrets[0], hashes[0])
    assert verifier.hits == 0  # the oldest was evicted
    await verifier.verify(secrets[2], hashes[2])
    assert verifier.hits == 1
    verifier.close()


async def test_size_zero_disables_the_cache() -> None:
    verifier = SecretVerifier(cache_size=0, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    stored = await verifier.hash(secret)
    await verifier.verify(secret, stored)
    await verifier.verify(secret, stored)
    assert verifier.hits == 0
    verifier.close()


async def test_concurrent_checks_of_one_secret_share_one_kdf_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from tokenserver.domain.secrets import verify_secret as real
    from tokenserver.services import verifier as module

    runs = []

    def counting(secret: str, stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
        runs.append(stored)
        return real(secret, stored, cost)

    monkeypatch.setattr(module, "verify_secret", counting)
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    secret = generate_secret()
    stored = await verifier.hash(secret)
    results = await asyncio.gather(*(verifier.verify(secret, stored) for _ in range(20)))
    assert results == [True] * 20
    assert len(runs) == 1
    wrong = await asyncio.gather(*(verifier.verify(Secret("nope"), stored) for _ in range(5)))
    assert wrong == [False] * 5
    assert len(runs) == 2
    verifier.close()


async def test_kdf_threads_run_below_the_event_loop_priority() -> None:
    """A cold-login burst must not starve the event loop: the KDF threads are niced."""
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    try:
        await verifier.hash(generate_secret())  # starts a KDF thread
        kdf_niceness = await asyncio.get_running_loop().run_in_executor(
            verifier._executor, niceness
        )
    finally:
        verifier.close()
    assert kdf_niceness == min(19, loop_niceness + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_niceness


async def test_attack_long_secrets_do_not_grow_the_verification_cache() -> None:
    """Entries are keyed by the stored hash (never by what the caller sent) and hold a
    32-byte MAC: a 4 kB secret costs what a short one does, and failures are not kept."""
    verifier = SecretVerifier(cache_size=10, cache_ttl=60, kdf_cost=FAST_KDF_COST)
    long_secret = Secret("Aa1" + "x" * 4000)
    stored = await verifier.hash(long_secret)
    assert await verifier.verify(long_secret, stored)
    for i in range(20):
        assert not await verifier.verify(Secret(f"Wrong{i}" + "y" * 4000), stored)
    assert list(verifier._cache) == [stored]
    assert len(verifier._cache[stored][0]) == 32
    assert not verifier._in_flight
    verifier.close()
