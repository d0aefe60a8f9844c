"""Brute-force protection: failed authentications are counted per (account, client address)
and per client address; past a threshold the caller gets 429 with Retry-After.

Scores decay exponentially (half-life HALF_LIFE seconds), so a lock-out ends by itself and an
occasional typo never adds up. Past the threshold the wait doubles with every further failure,
up to `max_seconds`. Identical failed attempts repeated within REPEAT_WINDOW seconds count once
(helm and containerd retry a failed POST as GET). Successes are never counted, so bursts of
good requests never lock anything, and a pair's score is cleared on success. Everything is in
memory, bounded, and keyed so that no password is kept (an HMAC under a per-process key).

Guesses sent at once would all pass `check` before the first of them failed: a check that
runs the KDF is first `admit`ted, which counts the distinct attempts still running as if they
had failed, and refuses one that would pass the threshold; `settle` ends the count. The same
attempt repeated at once (a cold burst from one client with one secret, which shares one KDF
run) counts once, so good bursts are never refused.

Shared (`shared`, a store that every replica or `serve --workers` process opens): the scores
live in the database (`tokenserver.domain.lockouts`), so the thresholds hold for all of them
together as for one process. Only what costs a KDF run touches it: a failure adds to the
scores (one atomic statement each), a check about to run the KDF records itself and reads
the pair's and address's scores and the checks running anywhere, and a success clears a
pair's score known here. `check`, on every request, stays in memory: a process learns of
lockouts from its own failures and checks, and from `sync`, which the server runs every
SYNC_SECONDS. Identical retries count once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from tokenserver.domain.lockouts import HALF_LIFE, LockoutRow, lockout_key
from tokenserver.errors import TooManyRequests
from tokenserver.services.ports import LockoutStore

T = TypeVar("T")

__all__ = ["HALF_LIFE", "MAX_ENTRIES", "REPEAT_WINDOW", "SYNC_SECONDS", "Admission", "Throttle"]

REPEAT_WINDOW = 5.0
MAX_ENTRIES = 100_000
# How often a shared throttle reads the lockouts the other processes began.
SYNC_SECONDS = 0.5
# How often a shared throttle forgets what is stale in the database (of any process).
PRUNE_SECONDS = 300.0


def _keys(account: str, address: str) -> tuple[str, str]:
    """The pair's and the address's keys: digests of a fixed size (an account name can be
    kilobytes, chosen by the caller), so that MAX_ENTRIES bounds the bytes too."""
    return lockout_key("pair", f"{account}\0{address}"), lockout_key("addr", address)


@dataclass(slots=True)
class _Score:
    value: float
    at: float
    locked_until: float = 0.0

    def decayed(self, now: float) -> float:
        """The score as it stands at `now` (halved every HALF_LIFE seconds)."""
        return self.value * math.pow(0.5, (now - self.at) / HALF_LIFE)


@dataclass(frozen=True, slots=True)
class Admission:
    """A running KDF check that `Throttle.admit` counted."""

    keys: tuple[str, str]
    fingerprint: bytes


class Throttle:
    def __init__(
        self,
        *,
        pair_threshold: int,
        address_threshold: int,
        max_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        shared: LockoutStore | None = None,
    ) -> None:
        """`shared`: keep the scores there, for every process that opens it; `clock` must
        then tell seconds since the epoch, as every process's does."""
        self._pair_threshold = pair_threshold
        self._address_threshold = address_threshold
        self._max_seconds = max_seconds
        self._clock = clock
        self._shared = shared
        # Shared: what this process knows of the scores (its own failures and checks, the
        # lockouts `sync` read); else the scores themselves.
        self._scores: OrderedDict[str, _Score] = OrderedDict()
        self._recent: OrderedDict[bytes, float] = OrderedDict()
        self._key = secrets.token_bytes(32)
        # Attempts now running the KDF, by score key: {fingerprint: how many requests}.
        self._pending: dict[str, dict[bytes, int]] = {}
        # Shared: the database's record of each attempt running here.
        self._check_ids: dict[bytes, str] = {}
        # Shared: attempts being recorded, each deciding for its repeats that arrive meanwhile.
        self._starting: dict[bytes, asyncio.Future[TooManyRequests | None]] = {}
        self._pruned = -math.inf
        self.lockouts = 0
        self.failures = 0

    @property
    def shared(self) -> bool:
        return self._shared is not None

    def check(self, account: str, address: str) -> None:
        """Raise TooManyRequests while the pair or the address is locked out (as far as this
        process knows: see the module's documentation)."""
        if not self._scores:  # nobody has failed lately: the usual case
            return
        now = self._clock()
        waits = [
            s.locked_until - now
            for s in (self._scores.get(key) for key in _keys(account, address))
            if s is not None and s.locked_until > now
        ]
        if waits:
            raise TooManyRequests(
                "too many failed authentications; try again later", math.ceil(max(waits))
            )

    async def guard(
        self,
        account: str,
        address: str,
        attempt: str,
        check: Callable[[Callable[[], Awaitable[None]]], Awaitable[T]],
        refused: type[Exception],
    ) -> T:
        """Run `check` (an authentication of `account` with `attempt`, which awaits the
        `admit` it is given before its KDF runs) behind the throttle: TooManyRequests while
        locked out or past the threshold with guesses running at once; `refused` raised by
        `check` counts as a failure, a return as a success."""
        self.check(account, address)
        admitted: list[Admission] = []

        async def admit() -> None:
            admitted.append(await self.admit(account, address, attempt))

        try:
            result = await check(admit)
        except BaseException as e:
            for admission in admitted:
                await self.settle(admission)
            if isinstance(e, refused):
                await self.failed(account, address, attempt)
            raise
        for admission in admitted:
            await self.settle(admission)
        await self.succeeded(account, address)
        return result

    def _fingerprint(self, account: str, address: str, attempt: str) -> bytes:
        return hmac.new(
            self._key,
            f"{account}\0{address}\0{attempt}".encode("utf-8", "surrogatepass"),
            hashlib.sha256,
        ).digest()

    async def admit(self, account: str, address: str, attempt: str) -> Admission:
        """Before a KDF check of `attempt` for (account, address): raise TooManyRequests if
        the pair or the address is locked out, or if its score, with the distinct attempts
        still running counted as failures, has reached its threshold; otherwise count this
        one as running until `settle`. An attempt already running here is always admitted
        (it shares that run). Shared, the scores and the running attempts are every
        process's, read now."""
        fingerprint = self._fingerprint(account, address, attempt)
        keys = _keys(account, address)
        thresholds = (self._pair_threshold, self._address_threshold)
        while self._shared is not None and not self._runs_here(keys, fingerprint):
            starting = self._starting.get(fingerprint)
            if starting is None:
                return await self._admit_shared(self._shared, account, address, fingerprint)
            # The same attempt is being recorded here: its admission decides for this one.
            refused = await asyncio.shield(starting)
            if refused is not None:
                raise TooManyRequests(str(refused), refused.retry_after)
        now = self._clock()
        for key, threshold in zip(keys, thresholds, strict=True):
            running = self._pending.get(key)
            if not running or fingerprint in running:
                continue  # alone, `check` has decided; a repeat shares the running check
            self._refuse_past(threshold, self._scores.get(key), len(running), now)
        return self._run(keys, fingerprint)

    async def _admit_shared(
        self, shared: LockoutStore, account: str, address: str, fingerprint: bytes
    ) -> Admission:
        """`admit`, of an attempt not running here, with every process's scores and checks."""
        keys = _keys(account, address)
        thresholds = (self._pair_threshold, self._address_threshold)
        check_id = secrets.token_hex(16)
        started: asyncio.Future[TooManyRequests | None] = asyncio.get_running_loop().create_future()
        self._starting[fingerprint] = started
        refused: TooManyRequests | None = None
        try:
            now = self._clock()
            others = await shared.begin_check(check_id, *keys, now)
            self._learn(await shared.find_lockouts(keys), keys, now)
            self.check(account, address)
            for key, threshold, elsewhere in zip(keys, thresholds, others, strict=True):
                if elsewhere:
                    self._refuse_past(threshold, self._scores.get(key), elsewhere, now)
        except BaseException as e:
            if isinstance(e, TooManyRequests):
                refused = e
            with contextlib.suppress(Exception):
                await shared.end_check(check_id)
            raise
        else:
            self._check_ids[fingerprint] = check_id
            return self._run(keys, fingerprint)
        finally:
            # NOTE: after any other error the waiters try for themselves.
            del self._starting[fingerprint]
            started.set_result(refused)

    @staticmethod
    def _refuse_past(threshold: int, score: _Score | None, running: int, now: float) -> None:
        value = 0.0 if score is None else score.decayed(now)
        if round(value) + running >= threshold:
            # NOTE: the running checks end within a KDF run or two; then `check` decides.
            raise TooManyRequests("too many authentications at once; try again later", 1)

    def _runs_here(self, keys: tuple[str, str], fingerprint: bytes) -> bool:
        return fingerprint in self._pending.get(keys[0], ())

    def _run(self, keys: tuple[str, str], fingerprint: bytes) -> Admission:
        for key in keys:
            running = self._pending.setdefault(key, {})
            running[fingerprint] = running.get(fingerprint, 0) + 1
        return Admission(keys, fingerprint)

    async def settle(self, admission: Admission) -> None:
        """The admitted check has ended (call before `failed` or `succeeded`)."""
        for key in admission.keys:
            running = self._pending.get(key)
            if running is None:
                continue
            left = running.get(admission.fingerprint, 0) - 1
            if left > 0:
                running[admission.fingerprint] = left
            else:
                running.pop(admission.fingerprint, None)
                if not running:
                    del self._pending[key]
        check_id = self._check_ids.get(admission.fingerprint)
        if check_id is not None and not self._runs_here(admission.keys, admission.fingerprint):
            del self._check_ids[admission.fingerprint]
            assert self._shared is not None
            await self._shared.end_check(check_id)

    async def failed(self, account: str, address: str, attempt: str) -> None:
        """Count a failed authentication. `attempt` (e.g. the password) only tells repeats
        apart; it is never stored."""
        self.failures += 1
        now = self._clock()
        fingerprint = self._fingerprint(account, address, attempt)
        seen = self._recent.get(fingerprint)
        self._recent[fingerprint] = now
        self._recent.move_to_end(fingerprint)
        self._trim(self._recent)
        if seen is not None and now - seen < REPEAT_WINDOW:
            return
        thresholds = (self._pair_threshold, self._address_threshold)
        for key, threshold in zip(_keys(account, address), thresholds, strict=True):
            if self._shared is None:
                score = self._scores.get(key) or _Score(0.0, now)
                score.value = score.decayed(now) + 1
                score.at = now
            else:
                row = await self._shared.add_lockout_failure(key, now)
                score = _Score(row.score(now), now, row.locked_until)
            # NOTE: failures seconds apart have decayed a little; round so that the
            # threshold-th failure in quick succession still locks.
            excess = round(score.value - threshold)
            if excess >= 0:
                until = now + min(self._max_seconds, 2 ** min(30, excess))
                if score.locked_until <= now:
                    self.lockouts += 1
                if self._shared is not None and until > score.locked_until:
                    await self._shared.extend_lockout(key, until)
                score.locked_until = (
                    until if self._shared is None else max(until, score.locked_until)
                )
            self._keep(key, score)

    async def succeeded(self, account: str, address: str) -> None:
        """Clear the pair's score (shared: if this process knows of one)."""
        if not self._scores:
            return
        pair = _keys(account, address)[0]
        if self._scores.pop(pair, None) is not None and self._shared is not None:
            await self._shared.clear_lockout(pair)

    async def sync(self) -> None:
        """Shared: learn of the lockouts every process began (and, every PRUNE_SECONDS,
        forget what has gone stale in the database)."""
        if self._shared is None:
            return
        now = self._clock()
        for row in await self._shared.list_lockouts(now, MAX_ENTRIES):
            known = self._scores.get(row.key)
            if known is None or known.locked_until < row.locked_until:
                self._keep(row.key, _Score(row.score(now), now, row.locked_until))
        if now - self._pruned >= PRUNE_SECONDS:
            self._pruned = now
            await self._shared.prune_lockouts(now)

    def _learn(self, rows: Iterable[LockoutRow], keys: tuple[str, ...], now: float) -> None:
        """Take the database's word for these keys' scores (a key without a row has none)."""
        found = {row.key: row for row in rows}
        for key in keys:
            row = found.get(key)
            if row is None:
                self._scores.pop(key, None)
            else:
                self._keep(key, _Score(row.score(now), now, row.locked_until))

    def _keep(self, key: str, score: _Score) -> None:
        self._scores[key] = score
        self._scores.move_to_end(key)
        self._trim(self._scores)

    @staticmethod
    def _trim(entries: OrderedDict[Any, Any]) -> None:
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
