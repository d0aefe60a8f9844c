"""Many writers on one database: WAL and a busy timeout, never "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3

from tokenserver.config import Settings
from tokenserver.storage.sqlite import SqliteStore


async def test_fifty_concurrent_writers(settings: Settings) -> None:
    first = await SqliteStore.open(settings.database.path)
    await first.close()

    async def writer(n: int) -> None:
        # Each writer has its own connection, as separate processes (CLI, servers) do.
        store = await SqliteStore.open(settings.database.path)
        try:
            for i in range(5):
                await store.create_project(f"w{n}-{i}", False, None, 0)
        finally:
            await store.close()

    await asyncio.gather(*(writer(n) for n in range(50)))
    with sqlite3.connect(settings.database.path) as db:
        assert db.execute("SELECT count(*) FROM project").fetchone()[0] == 250
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
