"""Work gathered during one turn of the event loop and done together at its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TurnBatch(Generic[T]):
    """Items added during one turn of the running loop, handed to `run` in one list once the
    turn's ready callbacks have run.

    NOTE: under load a turn serves tens of token requests. Doing one kind of work for all of
    them back to back (signing, logging) keeps its code and data in the CPU's caches; done in
    the middle of each request, the same work ran markedly slower (scripts/BENCHMARK.md).
    The cost to each request is the wait for the rest of its turn.
    """

    def __init__(self, run: Callable[[list[T]], None]) -> None:
        self._run = run
        self._items: list[T] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, item: T) -> None:
        """Hold `item` for the end of this turn; call from a coroutine or callback on the
        running loop."""
        loop = asyncio.get_running_loop()
        items = self._items
        if not items or self._loop is not loop:
            # NOTE: a batch left by another loop stays that loop's: its callback holds it.
            items = self._items = []
            self._loop = loop
            loop.call_soon(self._flush, items)
        items.append(item)

    def _flush(self, items: list[T]) -> None:
        if items is self._items:
            self._items = []
        self._run(items)
