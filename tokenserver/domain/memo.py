"""Memos for answers to requests that repeat, bounded in bytes as well as in entries.

Their keys are chosen by callers (scopes, grants): a bound on entries alone let unique large
requests grow memory by tens of kilobytes each (a request with a hundred long scopes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

STR_BYTES = 50  # what a str costs in memory beyond its characters (CPython, ASCII)
ENTRY_BYTES = 200  # what a memo entry costs beyond its key and value (dict slots, tuples)


class Memo(Generic[K, V]):
    """Oldest out first, within `max_entries` and `max_bytes`; an entry over
    `max_entry_bytes` is not kept at all (such requests are computed each time, and cannot
    push the usual ones out). Sizes are the caller's estimates, given when an entry is added.

    A hit is one dict lookup (`get`), nothing more: the warm token path goes through it.
    """

    __slots__ = ("_bytes", "_entries", "_sizes", "get", "max_bytes", "max_entries", "max_entry")

    def __init__(self, *, max_entries: int, max_bytes: int, max_entry_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry = max_entry_bytes
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}
        self._bytes = 0
        self.get: Callable[[K], V | None] = self._entries.get

    def put(self, key: K, value: V, size: int) -> bool:
        """Remember `value` under `key` (`size`: its estimated bytes, key included); False
        if it is too large to keep."""
        if size > self.max_entry:
            return False
        self._bytes += size - self._sizes.get(key, 0)
        self._sizes[key] = size
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest, _ = self._entries.popitem(last=False)
            self._bytes -= self._sizes.pop(oldest)
        return True

    @property
    def bytes(self) -> int:
        """The estimated bytes held now (at most `max_bytes`)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self._bytes = 0
