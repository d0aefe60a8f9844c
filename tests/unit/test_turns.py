"""TurnBatch: what is added during one turn of the event loop is handed over together at its
end, on whatever loop is running."""

from __future__ import annotations

import asyncio

from tokenserver.services.turns import TurnBatch


async def test_a_turns_items_are_handed_over_together_after_its_callbacks() -> None:
    batches: list[list[int]] = []
    batch: TurnBatch[int] = TurnBatch(batches.append)
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    for i in range(3):
        batch.add(i)
    loop.call_soon(seen.append, f"callback after {len(batches)} batches")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[0, 1, 2]]
    batch.add(3)
    batch.add(4)
    await asyncio.sleep(0)
    assert batches == [[0, 1, 2], [3, 4]]
    assert seen == ["callback after 0 batches"]


async def test_an_item_added_while_a_batch_runs_goes_in_the_next() -> None:
    batches: list[list[int]] = []

    def run(items: list[int]) -> None:
        batches.append(items)
        if 99 not in items:
            batch.add(99)

    batch: TurnBatch[int] = TurnBatch(run)
    batch.add(1)
    await asyncio.sleep(0)
    assert batches == [[1]]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[1], [99]]


def test_attack_a_loop_closed_with_a_batch_pending_does_not_stall_the_next_loop() -> None:
    """A loop that stops before its turn ends (a test's, a server's at exit) leaves its batch
    behind: the next loop's items must still be handed over, and never mixed with those."""
    batches: list[list[str]] = []
    batch: TurnBatch[str] = TurnBatch(batches.append)

    first = asyncio.new_event_loop()

    def add_then_stop() -> None:
        batch.add("left behind")
        first.stop()

    first.call_soon(add_then_stop)
    first.run_forever()  # stops at the end of the turn that added the item, before its batch
    first.close()

    async def add_and_wait() -> None:
        batch.add("next loop")
        await asyncio.sleep(0)

    asyncio.run(add_and_wait())
    assert batches == [["next loop"]]
