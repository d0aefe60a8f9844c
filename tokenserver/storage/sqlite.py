"""The SQLite adapter (aiosqlite, one connection, WAL, autocommit statements)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite

from tokenserver.domain.models import Project, Robot
from tokenserver.domain.permissions import Access, Effect, Permission
from tokenserver.errors import Conflict, TokenServerError
from tokenserver.services.ports import NewRobot

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS project (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    public        INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS robot (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    project_id    INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    level         TEXT    NOT NULL DEFAULT 'project',
    description   TEXT    NOT NULL DEFAULT '',
    secret_hash   TEXT    NOT NULL,
    duration      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    permissions   TEXT    NOT NULL,
    UNIQUE (project_id, name)
);
"""

_ROBOT_COLUMNS = (
    "r.id, r.name, r.project_id, p.name, r.level, r.description, r.secret_hash, r.duration, "
    "r.expires_at, r.disabled, r.creation_time, r.update_time, r.permissions"
)
_ROBOT_FROM = "robot r JOIN project p ON p.id = r.project_id"


class StorageError(TokenServerError):
    """The database could not be used (corrupt, newer schema, unwritable)."""


def _permissions_to_json(permissions: tuple[Permission, ...]) -> str:
    return json.dumps(
        [
            {
                "kind": p.kind,
                "namespace": p.namespace,
                "access": [[a.resource, a.action, a.effect.value] for a in p.access],
            }
            for p in permissions
        ],
        separators=(",", ":"),
    )


def _permissions_from_json(text: str) -> tuple[Permission, ...]:
    return tuple(
        Permission(
            namespace=p["namespace"],
            kind=p["kind"],
            access=tuple(Access(r, a, Effect(e)) for r, a, e in p["access"]),
        )
        for p in json.loads(text)
    )


def _project(row: Any) -> Project:
    return Project(row[0], row[1], bool(row[2]), row[3], row[4])


def _robot(row: Any) -> Robot:
    return Robot(
        id=row[0],
        name=row[1],
        project_id=row[2],
        project_name=row[3],
        level=row[4],
        description=row[5],
        secret_hash=row[6],
        duration=row[7],
        expires_at=row[8],
        disabled=bool(row[9]),
        creation_time=row[10],
        update_time=row[11],
        permissions=_permissions_from_json(row[12]),
    )


class SqliteStore:
    """Implements `Store`. Open with `await SqliteStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (creating with mode 0600 if missing) and bring the schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open database {path}: {e}") from None
        store = cls(db)
        try:
            await store._migrate(path)
        except BaseException:
            await db.close()
            raise
        return store

    async def _migrate(self, path: Path) -> None:
        try:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._db.execute("PRAGMA foreign_keys=ON")
            rows = await self._db.execute_fetchall("PRAGMA user_version")
            version = next(iter(rows))[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"database {path} has schema version {version}, newer than this "
                    f"tokenserver supports ({SCHEMA_VERSION}); upgrade tokenserver"
                )
            if version < SCHEMA_VERSION:
                await self._db.executescript(
                    f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
        except sqlite3.DatabaseError as e:
            raise StorageError(f"cannot use database {path}: {e}") from None

    async def close(self) -> None:
        await self._db.close()

    # ---- projects -------------------------------------------------------------------------

    async def create_project(self, name: str, public: bool, now: int) -> Project:
        try:
            cursor = await self._db.execute(
                "INSERT INTO project (name, public, creation_time, update_time) VALUES (?,?,?,?)",
                (name, int(public), now, now),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"project {name!r} already exists") from None
        assert cursor.lastrowid is not None
        return Project(cursor.lastrowid, name, public, now, now)

    async def _one_project(self, where: str, arg: object) -> Project | None:
        rows = list(
            await self._db.execute_fetchall(
                f"SELECT id, name, public, creation_time, update_time FROM project WHERE {where}",  # noqa: S608
                (arg,),
            )
        )
        return _project(rows[0]) if rows else None

    async def find_project(self, name: str) -> Project | None:
        return await self._one_project("name = ?", name)

    async def find_project_by_id(self, project_id: int) -> Project | None:
        return await self._one_project("id = ?", project_id)

    async def list_projects(self) -> list[Project]:
        rows = await self._db.execute_fetchall(
            "SELECT id, name, public, creation_time, update_time FROM project ORDER BY name"
        )
        return [_project(r) for r in rows]

    async def delete_project(self, project_id: int) -> bool:
        cursor = await self._db.execute("DELETE FROM project WHERE id = ?", (project_id,))
        return cursor.rowcount > 0

    # ---- robots ---------------------------------------------------------------------------

    async def create_robot(self, robot: NewRobot) -> Robot:
        try:
            cursor = await self._db.execute(
                "INSERT INTO robot (name, project_id, description, secret_hash, duration, "
                "expires_at, creation_time, update_time, permissions) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    robot.name,
                    robot.project_id,
                    robot.description,
                    robot.secret_hash,
                    robot.duration,
                    robot.expires_at,
                    robot.creation_time,
                    robot.creation_time,
                    _permissions_to_json(robot.permissions),
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"robot {robot.name!r} already exists in this project") from None
        assert cursor.lastrowid is not None
        created = await self.find_robot_by_id(cursor.lastrowid)
        assert created is not None
        return created

    async def _robots(self, where: str, args: tuple[object, ...]) -> list[Robot]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_ROBOT_COLUMNS} FROM {_ROBOT_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_robot(r) for r in rows]

    async def find_robot(self, project_name: str, name: str) -> Robot | None:
        found = await self._robots("p.name = ? AND r.name = ?", (project_name, name))
        return found[0] if found else None

    async def find_robot_by_id(self, robot_id: int) -> Robot | None:
        found = await self._robots("r.id = ?", (robot_id,))
        return found[0] if found else None

    async def list_robots(self, project_id: int, name_contains: str = "") -> list[Robot]:
        return await self._robots(
            "r.project_id = ? AND instr(r.name, ?) > 0 ORDER BY r.id", (project_id, name_contains)
        )

    async def update_robot(
        self,
        robot_id: int,
        now: int,
        *,
        disabled: bool | None = None,
        secret_hash: str | None = None,
    ) -> bool:
        cursor = await self._db.execute(
            "UPDATE robot SET disabled = coalesce(?, disabled), "
            "secret_hash = coalesce(?, secret_hash), update_time = ? WHERE id = ?",
            (None if disabled is None else int(disabled), secret_hash, now, robot_id),
        )
        return cursor.rowcount > 0

    async def delete_robot(self, robot_id: int) -> bool:
        cursor = await self._db.execute("DELETE FROM robot WHERE id = ?", (robot_id,))
        return cursor.rowcount > 0
