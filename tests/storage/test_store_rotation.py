"""The storage contract for rotation with a grace period and for robots by expiry (issue
19): the same tests on SQLite and PostgreSQL (the `store` fixture of the contract suite)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.postgres import PostgresServer
from tests.storage.test_postgres import at_version, database_name
from tests.storage.test_store_contract import new_robot
from tests.storage.test_store_contract import store as store  # the fixture
from tokenserver.services.ports import RobotChanges, Store
from tokenserver.storage.postgres import SCHEMA_VERSION as POSTGRES_VERSION
from tokenserver.storage.postgres import PostgresStore
from tokenserver.storage.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tokenserver.storage.sqlite import SCHEMA_VERSION as SQLITE_VERSION
from tokenserver.storage.sqlite import SqliteStore

DAY = 86400


async def _robot_with_tokens(store: Store) -> int:
    project = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", project.id, secret_hash="first"))
    await store.add_refresh_token("secret-login", "docker", 10, robot_id=robot.id, keep=50)
    await store.add_refresh_token(
        "federated-login", "docker", 10, robot_id=robot.id, keep=50, federated=True
    )
    return robot.id


async def test_a_refresh_keeping_the_previous_secret_keeps_it_and_its_tokens(store: Store) -> None:
    robot_id = await _robot_with_tokens(store)
    assert await store.replace_robot_secret(robot_id, 20, "second", keep_previous_until=500)
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None
    assert (robot.secret_hash, robot.previous_secret_hash) == ("second", "first")
    assert robot.previous_secret_expires_at == 500
    token = await store.find_refresh_token("secret-login")
    assert token is not None and token.previous_secret
    federated = await store.find_refresh_token("federated-login")
    assert federated is not None and not federated.previous_secret


async def test_a_third_refresh_drops_the_oldest_secret_and_its_tokens(store: Store) -> None:
    robot_id = await _robot_with_tokens(store)
    assert await store.replace_robot_secret(robot_id, 20, "second", keep_previous_until=500)
    await store.add_refresh_token("second-login", "docker", 30, robot_id=robot_id, keep=50)
    assert await store.replace_robot_secret(robot_id, 40, "third", keep_previous_until=600)
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None
    assert (robot.secret_hash, robot.previous_secret_hash) == ("third", "second")
    assert robot.previous_secret_expires_at == 600
    assert await store.find_refresh_token("secret-login") is None  # the first secret's
    kept = await store.find_refresh_token("second-login")
    assert kept is not None and kept.previous_secret


async def test_a_refresh_without_grace_ends_everything_the_old_secrets_gave(store: Store) -> None:
    robot_id = await _robot_with_tokens(store)
    assert await store.replace_robot_secret(robot_id, 20, "second", keep_previous_until=500)
    assert await store.replace_robot_secret(robot_id, 30, "third", expires_at=9 * DAY)
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None
    assert (robot.secret_hash, robot.previous_secret_hash) == ("third", None)
    assert (robot.previous_secret_expires_at, robot.expires_at) == (None, 9 * DAY)
    assert await store.list_refresh_tokens(robot_id=robot_id) == []


async def test_revoking_the_previous_secret_ends_its_tokens_only(store: Store) -> None:
    robot_id = await _robot_with_tokens(store)
    assert not await store.revoke_previous_secret(robot_id, 15)  # none yet
    assert await store.replace_robot_secret(robot_id, 20, "second", keep_previous_until=500)
    await store.add_refresh_token("second-login", "docker", 30, robot_id=robot_id, keep=50)
    assert await store.revoke_previous_secret(robot_id, 40)
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None
    assert (robot.previous_secret_hash, robot.previous_secret_expires_at) == (None, None)
    assert await store.find_refresh_token("secret-login") is None
    assert await store.find_refresh_token("second-login") is not None
    assert await store.find_refresh_token("federated-login") is not None
    assert not await store.revoke_previous_secret(robot_id, 50)


async def test_dropping_the_previous_secret_with_a_change(store: Store) -> None:
    robot_id = await _robot_with_tokens(store)
    assert await store.replace_robot_secret(robot_id, 20, "second", keep_previous_until=500)
    assert await store.update_robot(robot_id, 30, RobotChanges(description="kept"))
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None and robot.previous_secret_hash == "first"
    assert await store.update_robot(
        robot_id, 40, RobotChanges(disabled=True, drop_previous_secret=True)
    )
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None and robot.disabled
    assert (robot.previous_secret_hash, robot.previous_secret_expires_at) == (None, None)


async def test_missing_robots_have_no_secrets_to_replace(store: Store) -> None:
    assert not await store.replace_robot_secret(999, 1, "x")
    assert not await store.replace_robot_secret(999, 1, "x", keep_previous_until=5)
    assert not await store.revoke_previous_secret(999, 1)


async def test_refreshes_at_once_leave_one_previous_secret_someone_held(store: Store) -> None:
    # Each refresh reads the secret it replaces in its own statement: whatever the order,
    # the robot ends with one of the new secrets and, as its previous one, the secret that
    # the last refresh replaced: one that was the robot's, never a secret nobody held.
    robot_id = await _robot_with_tokens(store)
    new = [f"new-{i}" for i in range(8)]
    results = await asyncio.gather(
        *(store.replace_robot_secret(robot_id, 20, h, keep_previous_until=500) for h in new)
    )
    assert all(results)
    robot = await store.find_robot_by_id(robot_id)
    assert robot is not None
    assert robot.secret_hash in new
    assert robot.previous_secret_hash in ["first", *new]
    assert robot.previous_secret_hash != robot.secret_hash


async def test_robots_are_counted_and_listed_by_expiry(store: Store) -> None:
    now = 1_000_000
    project = await store.create_project("p", False, None, 1)
    other = await store.create_project("q", False, None, 1)
    for name, expires, project_id, disabled in (
        ("hour", now + 3600, project.id, False),
        ("days", now + 3 * DAY, other.id, False),
        ("weeks", now + 20 * DAY, project.id, False),
        ("months", now + 60 * DAY, project.id, False),
        ("never", -1, project.id, False),
        ("gone", now - 1, project.id, False),
        ("now", now, other.id, False),
        ("off-gone", now - 1, project.id, True),
        ("off-soon", now + 3600, project.id, True),
        ("system", now + 2 * DAY, None, False),
    ):
        await store.create_robot(
            new_robot(name, project_id, expires_at=expires, duration=1, disabled=disabled)
        )
    windows = (DAY, 7 * DAY, 30 * DAY)
    assert await store.count_robot_expiries(now, windows) == (
        2,
        {DAY: 1, 7 * DAY: 3, 30 * DAY: 4},
    )
    soon = await store.list_expiring_robots(now, now + 7 * DAY)
    assert [r.name for r in soon] == ["hour", "system", "days"]
    mine = await store.list_expiring_robots(now, now + 30 * DAY, project.id)
    assert [r.name for r in mine] == ["hour", "weeks"]
    assert await store.list_expiring_robots(now, now) == []


async def test_no_robots_count_zero(store: Store) -> None:
    assert await store.count_robot_expiries(5, (DAY,)) == (0, {DAY: 0})


# ---- schema 9: databases made by the release before are upgraded ----------------------------

_V8_ROWS = (
    "INSERT INTO project (id, name, public, creation_time, update_time) "
    "VALUES (1, 'lib', {false}, 1, 1); "
    "INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at, "
    "creation_time, update_time, permissions, token_lifetime) "
    "VALUES (1, 'ci', 1, 'project', 'h', 7, 2000000000, 1, 1, '[]', 600); "
    "INSERT INTO refresh_token (robot_id, token_hash, client_id, created_at, last_used_at) "
    "VALUES (1, 'plain', 'docker', 1, 1);"
)


async def _upgraded_keeps_and_rotates(store: Store) -> None:
    """What a database of schema 8 holds after the upgrade: its robot with no previous
    secret, its refresh token not tied to one; a refresh can keep one, robots are counted."""
    robot = await store.find_robot_by_id(1)
    assert robot is not None and (robot.name, robot.token_lifetime) == ("ci", 600)
    assert (robot.previous_secret_hash, robot.previous_secret_expires_at) == (None, None)
    token = await store.find_refresh_token("plain")
    assert token is not None and not token.previous_secret
    assert await store.replace_robot_secret(1, 5, "h2", keep_previous_until=50)
    token = await store.find_refresh_token("plain")
    assert token is not None and token.previous_secret
    assert await store.count_robot_expiries(1_999_999_000, (DAY,)) == (0, {DAY: 1})


async def test_a_sqlite_database_of_schema_8_gets_previous_secrets(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 9):
            db.executescript(SQLITE_MIGRATIONS[version])
        db.executescript(_V8_ROWS.format(false=0))
        db.execute("PRAGMA user_version=8")
    opened = await SqliteStore.open(path)
    try:
        await _upgraded_keeps_and_rotates(opened)
    finally:
        await opened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SQLITE_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_postgresql_database_of_schema_8_gets_previous_secrets(
    postgres: PostgresServer,
) -> None:
    url = at_version(postgres, 8, _V8_ROWS.format(false="false"))
    opened = await PostgresStore.open(url)
    try:
        await _upgraded_keeps_and_rotates(opened)
    finally:
        await opened.close()
    versions = postgres.sql(
        "SELECT version FROM tokenserver_schema ORDER BY version", database_name(url)
    )
    assert versions.split() == [str(v) for v in range(1, POSTGRES_VERSION + 1)]
