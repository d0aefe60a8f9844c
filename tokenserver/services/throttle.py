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
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tokenserver.errors import TooManyRequests

T = TypeVar("T")

HALF_LIFE = 300.0
REPEAT_WINDOW = 5.0
MAX_ENTRIES = 100_000
# Longer keys (a caller-chosen account name can be kilobytes) are kept as a digest, so that
# MAX_ENTRIES bounds the bytes too.
MAX_KEY_LENGTH = 128


def _key(kind: str, text: str) -> tuple[str, str]:
    if len(text) > MAX_KEY_LENGTH:
        # NOTE: "#" and 32 hex digits: no short key has that form (a pair key holds a NUL,
        # an address key an IP address).
        text = "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return (kind, text)


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

    keys: tuple[tuple[str, str], ...]
    fingerprint: bytes


class Throttle:
    def __init__(
        self,
        *,
        pair_threshold: int,
        address_threshold: int,
        max_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pair_threshold = pair_threshold
        self._address_threshold = address_threshold
        self._max_seconds = max_seconds
        self._clock = clock
        self._scores: OrderedDict[tuple[str, str], _Score] = OrderedDict()
        self._recent: OrderedDict[bytes, float] = OrderedDict()
        self._key = secrets.token_bytes(32)
        # Attempts now running the KDF, by score key: {fingerprint: how many requests}.
        self._pending: dict[tuple[str, str], dict[bytes, int]] = {}
        self.lockouts = 0
        self.failures = 0

    def check(self, account: str, address: str) -> None:
        """Raise TooManyRequests while the pair or the address is locked out."""
        if not self._scores:  # nobody has failed lately: the usual case
            return
        now = self._clock()
        waits = [
            s.locked_until - now
            for s in (
                self._scores.get(_key("pair", f"{account}\0{address}")),
                self._scores.get(_key("addr", address)),
            )
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
        check: Callable[[Callable[[], None]], Awaitable[T]],
        refused: type[Exception],
    ) -> T:
        """Run `check` (an authentication of `account` with `attempt`, which calls the
        `admit` it is given before its KDF runs) behind the throttle: TooManyRequests while
        locked out or past the threshold with guesses running at once; `refused` raised by
        `check` counts as a failure, a return as a success."""
        self.check(account, address)
        admitted: list[Admission] = []

        def admit() -> None:
            admitted.append(self.admit(account, address, attempt))

        try:
            result = await check(admit)
        except BaseException as e:
            for admission in admitted:
                self.settle(admission)
            if isinstance(e, refused):
                self.failed(account, address, attempt)
            raise
        for admission in admitted:
            self.settle(admission)
        self.succeeded(account, address)
        return result

    def _fingerprint(self, account: str, address: str, attempt: str) -> bytes:
        return hmac.new(
            self._key, f"{account}\0{address}\0{attempt}".encode(), hashlib.sha256
        ).digest()

    def admit(self, account: str, address: str, attempt: str) -> Admission:
        """Before a KDF check of `attempt` for (account, address): raise TooManyRequests if
        the pair's or the address's score, with the distinct attempts still running counted
        as failures, has reached its threshold; otherwise count this one as running until
        `settle`. An attempt already running is always admitted (it shares that run)."""
        fingerprint = self._fingerprint(account, address, attempt)
        keys = (_key("pair", f"{account}\0{address}"), _key("addr", address))
        now = self._clock()
        for key, threshold in zip(
            keys, (self._pair_threshold, self._address_threshold), strict=True
        ):
            running = self._pending.get(key)
            if not running or fingerprint in running:
                continue  # alone, `check` has decided; a repeat shares the running check
            score = self._scores.get(key)
            value = 0.0 if score is None else score.decayed(now)
            if round(value) + len(running) >= threshold:
                # NOTE: the running checks end within a KDF run or two; then `check` decides.
                raise TooManyRequests("too many authentications at once; try again later", 1)
        for key in keys:
            running = self._pending.setdefault(key, {})
            running[fingerprint] = running.get(fingerprint, 0) + 1
        return Admission(keys, fingerprint)

    def settle(self, admission: Admission) -> None:
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

    def failed(self, account: str, address: str, attempt: str) -> None:
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
        self._add(_key("pair", f"{account}\0{address}"), self._pair_threshold, now)
        self._add(_key("addr", address), self._address_threshold, now)

    def succeeded(self, account: str, address: str) -> None:
        if self._scores:
            self._scores.pop(_key("pair", f"{account}\0{address}"), None)

    def _add(self, key: tuple[str, str], threshold: int, now: float) -> None:
        score = self._scores.get(key)
        if score is None:
            score = _Score(0.0, now)
        score.value = score.decayed(now) + 1
        score.at = now
        # NOTE: failures seconds apart have decayed a little; round so that the threshold-th
        # failure in quick succession still locks.
        excess = round(score.value - threshold)
        if excess >= 0:
            wait = min(self._max_seconds, 2 ** min(30, excess))
            if score.locked_until <= now:
                self.lockouts += 1
            score.locked_until = now + wait
        self._scores[key] = score
        self._scores.move_to_end(key)
        self._trim(self._scores)

    @staticmethod
    def _trim(entries: OrderedDict[Any, Any]) -> None:
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
