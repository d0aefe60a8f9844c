"""The SQLite store's read cache never serves a row that changed: any commit, from this
connection or another process's, is seen by the next read that starts after it."""

from __future__ import annotations

import asyncio
import sqlite3

from tokenserver.config import Settings
from tokenserver.domain.models import Level
from tokenserver.services.ports import NewRobot, RobotChanges
from tokenserver.storage.sqlite import SqliteStore


async def _store_with_robot(settings: Settings, cache_size: int = 100) -> SqliteStore:
    store = await SqliteStore.open(settings.database.path, cache_size=cache_size)
    project = await store.create_project("p", False, None, 0)
    await store.create_robot(
        NewRobot(
            name="ci",
            project_id=project.id,
            level=Level.PROJECT,
            description="",
            secret_hash="h1",
            duration=-1,
            expires_at=-1,
            creation_time=0,
            permissions=(),
        )
    )
    return store


async def test_own_writes_are_seen_at_once(settings: Settings) -> None:
    store = await _store_with_robot(settings)
    try:
        first = await store.find_robot("p", "ci")
        assert first is not None and not first.disabled
        assert await store.find_robot("p", "ci") is first  # served from the cache
        await store.update_robot(first.id, 1, RobotChanges(disabled=True, secret_hash="h2"))
        changed = await store.find_robot("p", "ci")
        assert changed is not None and changed.disabled and changed.secret_hash == "h2"
        await store.delete_robot(first.id)
        assert await store.find_robot("p", "ci") is None
    finally:
        await store.close()


async def test_another_process_write_is_seen_at_once(settings: Settings) -> None:
    store = await _store_with_robot(settings)
    try:
        assert (await store.find_robot("p", "ci")) is not None
        assert (await store.find_project("p")) is not None
        # Another process (the CLI, another worker) writes through its own connection. Its
        # news reaches this process through I/O (a request that arrives after the commit), so
        # in a later turn of the event loop: the version is read once per turn.
        with sqlite3.connect(settings.database.path) as other:
            other.execute("UPDATE robot SET disabled = 1, secret_hash = 'h3'")
            other.execute("UPDATE project SET public = 1")
        await asyncio.sleep(0)
        robot = await store.find_robot("p", "ci")
        assert robot is not None and robot.disabled and robot.secret_hash == "h3"
        project = await store.find_project("p")
        assert project is not None and project.public
        with sqlite3.connect(settings.database.path) as other:
            other.execute("DELETE FROM robot")
        await asyncio.sleep(0)
        assert await store.find_robot("p", "ci") is None
    finally:
        await store.close()


async def test_work_started_after_a_commit_sees_it_even_in_a_busy_turn(settings: Settings) -> None:
    """The version is read once per loop turn; work queued after that read (here a task, as
    a request that arrives is) still reads afresh."""
    store = await _store_with_robot(settings)
    try:
        assert (await store.find_robot("p", "ci")) is not None  # reads the version this turn
        with sqlite3.connect(settings.database.path) as other:
            other.execute("UPDATE robot SET disabled = 1")
        later = asyncio.create_task(store.find_robot("p", "ci"))
        robot = await later
        assert robot is not None and robot.disabled
    finally:
        await store.close()


async def test_uncommitted_changes_in_a_transaction_are_read(settings: Settings) -> None:
    store = await _store_with_robot(settings)
    try:
        robot = await store.find_robot("p", "ci")
        assert robot is not None
        async with store.transaction():
            await store.update_robot(robot.id, 1, RobotChanges(description="inside"))
            inside = await store.find_robot("p", "ci")
            assert inside is not None and inside.description == "inside"
        after = await store.find_robot("p", "ci")
        assert after is not None and after.description == "inside"
    finally:
        await store.close()


async def test_cache_is_bounded_and_can_be_off(settings: Settings) -> None:
    store = await _store_with_robot(settings, cache_size=0)
    try:
        first = await store.find_robot("p", "ci")
        again = await store.find_robot("p", "ci")
        assert first == again and first is not again  # read afresh every time
    finally:
        await store.close()
    store = await SqliteStore.open(settings.database.path, cache_size=2)
    try:
        for name in ("a", "b", "c"):
            await store.create_project(name, False, None, 0)
        a = await store.find_project("a")
        await store.find_project("b")
        await store.find_project("c")  # evicts "a", the least recently used
        assert await store.find_project("a") is not a
    finally:
        await store.close()


async def test_revoked_refresh_token_and_deleted_robot_by_id(settings: Settings) -> None:
    store = await _store_with_robot(settings)
    try:
        robot = await store.find_robot("p", "ci")
        assert robot is not None
        await store.add_refresh_token("hash", "docker", 0, robot_id=robot.id, keep=5)
        assert await store.find_refresh_token("hash") is not None
        assert await store.find_robot_by_id(robot.id) is not None
        with sqlite3.connect(settings.database.path) as other:
            other.execute("DELETE FROM refresh_token")
        await asyncio.sleep(0)
        assert await store.find_refresh_token("hash") is None
        with sqlite3.connect(settings.database.path) as other:
            other.execute("DELETE FROM robot")
        await asyncio.sleep(0)
        assert await store.find_robot_by_id(robot.id) is None
    finally:
        await store.close()


async def test_attack_long_names_are_not_kept_in_the_read_cache(settings: Settings) -> None:
    """Unknown user names of kilobytes (a Basic header holds up to 4 kB) were each kept
    under their name; a name longer than any stored one is now looked up, not kept."""
    store = await _store_with_robot(settings, cache_size=10_000)
    try:
        assert store._cache is not None
        for i in range(300):
            assert await store.find_user(f"{i:04d}" + "u" * 3000) is None
            assert await store.find_project(f"{i:04d}" + "p" * 400) is None
        held = sum(
            len(part) for key in store._cache._entries for part in key if isinstance(part, str)
        )
        assert held < 1000
        assert await store.find_robot("p", "ci") is await store.find_robot("p", "ci")
        assert ("robot", "p", "ci") in store._cache._entries  # usual names are still kept
    finally:
        await store.close()
