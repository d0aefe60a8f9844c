"""Secret hashing and verification off the event loop, with a cache of successes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from tokenserver.domain.secrets import (
    DEFAULT_KDF_COST,
    KdfCost,
    Secret,
    dummy_hash,
    hash_secret,
    needs_rehash,
    verify_secret,
)

KDF_NICENESS = 5


def _lower_priority() -> None:
    """Run this KDF thread at a lower CPU priority than the event loop (Linux nice values are
    per thread): a burst of cold logins then takes the CPU the loop leaves, instead of
    delaying warm requests, which need a few hundred microseconds each."""
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)  # inherited from the loop's thread
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + KDF_NICENESS))


class SecretVerifier:
    """Runs the KDF in a small thread pool and remembers successful verifications.

    The cache is keyed by the stored hash, which is salted afresh whenever a secret is set, so a
    refreshed secret can never hit an old entry. It holds an HMAC of the secret under a key that
    lives only in this process, never the secret. Callers load the robot from storage on every
    request, so disabling, deleting or expiry need no invalidation here.

    `kdf_cost` is the cost of the hashes it makes, and so of what unknown accounts are
    checked against and of what needs rehashing; verification reads the stored hash's own.
    """

    def __init__(
        self,
        *,
        cache_size: int,
        cache_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        workers: int | None = None,
        kdf_cost: KdfCost = DEFAULT_KDF_COST,
    ) -> None:
        self.kdf_cost = kdf_cost
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._mac_key = secrets.token_bytes(32)
        self._executor = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 2,
            thread_name_prefix="kdf",
            initializer=_lower_priority,
        )
        self.hits = 0
        self.misses = 0
        self._in_flight: dict[tuple[str, bytes], asyncio.Future[bool]] = {}

    def _mac(self, secret: str) -> bytes:
        # Keyed BLAKE2b is a MAC (RFC 7693) and, built into CPython, a third of the cost of
        # an OpenSSL HMAC on the warm path.
        return hashlib.blake2b(secret.encode(), key=self._mac_key, digest_size=32).digest()

    async def hash(self, secret: Secret) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, hash_secret, secret, self.kdf_cost)

    def dummy_hash(self, account: str) -> str:
        """The stand-in hash an unknown `account` is checked against: it costs what checking a
        hash made by `hash` costs."""
        return dummy_hash(account, self.kdf_cost)

    def needs_rehash(self, stored: str) -> bool:
        """True for a stored hash that `hash` would not have made (imported from Harbor)."""
        return needs_rehash(stored, self.kdf_cost)

    def _hit(self, mac: bytes, stored: str, now: float) -> bool:
        entry = self._cache.get(stored)
        if entry is not None and entry[1] > now and hmac.compare_digest(entry[0], mac):
            self._cache.move_to_end(stored)
            self.hits += 1
            return True
        return False

    async def match(
        self,
        secret: Secret,
        current: str,
        previous: str | None,
        on_miss: Callable[[], Awaitable[None]] | None = None,
    ) -> str | None:
        """Which of two stored hashes `secret` matches ("current", "previous"), None for
        neither: `verify` against `current`, then `previous` (None: there is none). Both are
        looked up in the cache before any KDF runs, so a client still on the previous secret
        costs no KDF run once its secret is cached.

        A wrong secret costs two KDF runs, with a previous hash or without one (then against
        a stand-in of its own, `dummy_hash`): the time a refusal takes must not tell a robot
        whose secret is being rotated from any other account, or from a name that does not
        exist (those are checked against a stand-in `current`)."""
        if previous is not None:
            mac = self._mac(secret.reveal())
            if self._hit(mac, previous, self._clock()):
                return "previous"
        if await self.verify(secret, current, on_miss):
            return "current"
        # NOTE: a stand-in per current hash (so per account): concurrent wrong guesses share
        # its run exactly when they would share a previous hash's.
        second = self.dummy_hash(f"previous\0{current}") if previous is None else previous
        if await self.verify(secret, second) and previous is not None:
            return "previous"
        return None

    async def verify(
        self, secret: Secret, stored: str, on_miss: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """True if `secret` matches the stored hash. Only successes are cached. `on_miss` is
        awaited before the KDF runs (not on a cache hit); what it raises is raised."""
        mac = self._mac(secret.reveal())
        now = self._clock()
        if self._hit(mac, stored, now):
            return True
        self.misses += 1
        if on_miss is not None:
            await on_miss()
        # Concurrent checks of the same secret against the same hash share one KDF run: a
        # burst of requests from one robot with a cold cache costs one verification, not N.
        key = (stored, mac)
        pending = self._in_flight.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(
                loop.run_in_executor(
                    self._executor, verify_secret, secret.reveal(), stored, self.kdf_cost
                )
            )
            self._in_flight[key] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(key, None))
        ok = await asyncio.shield(pending)
        if ok and self._cache_size > 0:
            self._cache[stored] = (mac, now + self._cache_ttl)
            self._cache.move_to_end(stored)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return ok

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
