"""Failure scores shared by every process serving one database (replicas, `--workers`).

A score halves every HALF_LIFE seconds and gains 1 with each failure. Stored as it is, every
failure would be a read, a computation and a write under a lock; stored as a `weight` at a
`base` time (score = weight * 2^((base - now) / HALF_LIFE)), a failure only adds
2^((now - base) / HALF_LIFE) to the weight: one atomic statement, whichever process runs it.
`base` is the start of the BASE_SPAN-second period the failure falls in, so a weight stays
below 2^(BASE_SPAN / HALF_LIFE) per failure; a row from the period before is carried over
(times 2^(-BASE_SPAN / HALF_LIFE)), an older one has decayed to nothing and starts afresh.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

HALF_LIFE = 300.0
BASE_SPAN = 3600  # seconds; 12 half-lives
CARRY = math.pow(0.5, BASE_SPAN / HALF_LIFE)
# A running check that did not end within this many seconds belongs to a process that died.
CHECK_STALE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class LockoutRow:
    """One key's shared score, as stored."""

    key: str
    weight: float
    base: int
    locked_until: float

    def score(self, now: float) -> float:
        return self.weight * math.pow(0.5, (now - self.base) / HALF_LIFE)


def failure_weight(now: float) -> tuple[int, float]:
    """The period a failure at `now` (seconds since the epoch) falls in, and its weight
    there."""
    base = int(now // BASE_SPAN) * BASE_SPAN
    return base, math.pow(2.0, (now - base) / HALF_LIFE)


def lockout_key(kind: str, text: str) -> str:
    """The key a score is kept under: a digest, so that an account name of kilobytes, or
    one holding bytes a database cannot store, takes a fixed, storable size."""
    data = f"{kind}\0{text}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()
