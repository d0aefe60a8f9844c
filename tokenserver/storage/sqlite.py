"""The SQLite adapter (aiosqlite, one connection, WAL, autocommit statements).

Every write is one statement, so it is atomic on its own; deletes cascade through foreign keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from tokenserver.domain.models import (
    AuditEntry,
    KeyRecord,
    KeyState,
    Level,
    Member,
    Project,
    RefreshToken,
    Robot,
    User,
    WebSession,
)
from tokenserver.domain.permissions import Access, Effect, Permission
from tokenserver.domain.roles import Role
from tokenserver.errors import Conflict, TokenServerError
from tokenserver.services.ports import NewRobot, NewUser, RobotChanges

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    realname      TEXT    NOT NULL DEFAULT '',
    comment       TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    sysadmin      INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS project (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    public        INTEGER NOT NULL DEFAULT 0,
    owner_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS member (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    UNIQUE (project_id, user_id)
);
CREATE TABLE IF NOT EXISTS robot (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    project_id    INTEGER REFERENCES project(id) ON DELETE CASCADE,
    level         TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    secret_hash   TEXT    NOT NULL,
    duration      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    permissions   TEXT    NOT NULL,
    last_used_at  INTEGER,
    legacy_id     INTEGER,
    legacy_project_id INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS robot_legacy_name ON robot (name) WHERE legacy_id IS NOT NULL;
-- System robots have no project: their names are unique among themselves.
CREATE UNIQUE INDEX IF NOT EXISTS robot_name ON robot (ifnull(project_id, 0), name);
-- The token path looks robots up by (project, name): a plain index the planner can use.
CREATE INDEX IF NOT EXISTS robot_project_name ON robot (project_id, name);
CREATE TABLE IF NOT EXISTS refresh_token (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id      INTEGER REFERENCES robot(id) ON DELETE CASCADE,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,
    client_id     TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    CHECK ((robot_id IS NULL) != (user_id IS NULL))
);
CREATE INDEX IF NOT EXISTS refresh_token_robot ON refresh_token (robot_id);
CREATE INDEX IF NOT EXISTS refresh_token_user ON refresh_token (user_id);
CREATE TABLE IF NOT EXISTS signing_key (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_path      TEXT    NOT NULL,
    cert_path     TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);
CREATE TABLE IF NOT EXISTS audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    op_time       INTEGER NOT NULL,
    operator      TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    outcome       TEXT    NOT NULL
);
"""

# Each entry upgrades the database from the version before it; a database records its version
# in PRAGMA user_version. Version 1 is the first released schema: never edit a released entry,
# append the next one.
# v2: web page sessions (only the token's hash), dropped with their user.
_SCHEMA_V2 = """
CREATE TABLE web_session (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX web_session_user ON web_session(user_id);
"""

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}
SCHEMA_VERSION = max(MIGRATIONS)

_PROJECT_COLUMNS = (
    "p.id, p.name, p.public, p.creation_time, p.update_time, p.owner_id, ifnull(u.username, '')"
)
_PROJECT_FROM = "project p LEFT JOIN users u ON u.id = p.owner_id"
_ROBOT_COLUMNS = (
    "r.id, r.name, r.project_id, p.name, r.level, r.description, r.secret_hash, r.duration, "
    "r.expires_at, r.disabled, r.creation_time, r.update_time, r.permissions, r.last_used_at, "
    "r.legacy_id, r.legacy_project_id, ifnull(p.public, 0)"
)
_ROBOT_FROM = "robot r LEFT JOIN project p ON p.id = r.project_id"
_USER_COLUMNS = (
    "id, username, email, realname, comment, password_hash, sysadmin, creation_time, update_time"
)
_MEMBER_COLUMNS = "m.id, m.project_id, m.user_id, u.username, m.role"
_MEMBER_FROM = "member m JOIN users u ON u.id = m.user_id"


class StorageError(TokenServerError):
    """The database could not be used (corrupt, newer schema, unwritable)."""


def _permissions_to_json(permissions: tuple[Permission, ...]) -> str:
    return json.dumps(
        [
            {
                "kind": p.kind,
                "namespace": p.namespace,
                "project_id": p.project_id,
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
            project_id=p.get("project_id"),
            access=tuple(Access(r, a, Effect(e)) for r, a, e in p["access"]),
        )
        for p in json.loads(text)
    )


def _project(row: Any) -> Project:
    return Project(row[0], row[1], bool(row[2]), row[3], row[4], row[5], row[6])


def _robot(row: Any) -> Robot:
    return Robot(
        id=row[0],
        name=row[1],
        project_id=row[2],
        project_name=row[3],
        level=Level(row[4]),
        description=row[5],
        secret_hash=row[6],
        duration=row[7],
        expires_at=row[8],
        disabled=bool(row[9]),
        creation_time=row[10],
        update_time=row[11],
        permissions=_permissions_from_json(row[12]),
        last_used_at=row[13],
        legacy_id=row[14],
        legacy_project_id=row[15],
        project_public=bool(row[16]),
    )


def _user(row: Any) -> User:
    return User(
        id=row[0],
        username=row[1],
        email=row[2],
        realname=row[3],
        comment=row[4],
        password_hash=row[5],
        sysadmin=bool(row[6]),
        creation_time=row[7],
        update_time=row[8],
    )


def _member(row: Any) -> Member:
    return Member(row[0], row[1], row[2], row[3], Role(row[4]))


_MISSING = object()
_T = TypeVar("_T")


class _ReadCache:
    """Rows the token path reads on every request, kept while the database is unchanged.

    Validity is SQLite's own `PRAGMA data_version`, read on a second connection: it changes
    whenever any connection (this process's, the CLI's, another worker's) commits. That read is
    a few microseconds on the event loop, touches only the WAL index in shared memory, and
    spares the thread hop and row decoding of a query. So a change anywhere is seen on the very
    next request, exactly as without the cache; under steady writes it simply misses.
    """

    def __init__(self, path: Path, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._version: int | None = None
        self._probe: sqlite3.Connection | None = None
        if size > 0:
            self._probe = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._probe.execute("PRAGMA busy_timeout=0")

    def version(self) -> int | None:
        """The database's version now; None if it cannot be told (then nothing is cached)."""
        if self._probe is None:
            return None
        try:
            row = self._probe.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        version: int = row[0]
        if version != self._version:
            self._entries.clear()
            self._version = version
        return version

    def get(self, key: tuple[object, ...]) -> object:
        found = self._entries.get(key, _MISSING)
        if found is not _MISSING:
            self._entries.move_to_end(key)
        return found

    def put(self, version: int, key: tuple[object, ...], value: object) -> None:
        """Keep `value`, read after `version` was seen, unless the database moved on since."""
        if version != self._version:
            return
        self._entries[key] = value
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()


class SqliteStore:
    """Implements `Store`. Open with `await SqliteStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, cache: _ReadCache | None = None) -> None:
        self._db = db
        self._transaction_lock = asyncio.Lock()
        self._cache = cache

    async def _cached(self, key: tuple[object, ...], load: Callable[[], Awaitable[_T]]) -> _T:
        """`load()`, or its result from the read cache if the database has not changed.

        Inside a transaction of this connection the cache is bypassed: uncommitted changes are
        visible to this connection but do not change the version.
        """
        if self._cache is None or self._transaction_lock.locked():
            return await load()
        version = self._cache.version()
        if version is None:
            return await load()
        found = self._cache.get(key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = await load()
        self._cache.put(version, key, value)
        return value

    @classmethod
    async def open(cls, path: Path, cache_size: int = 10_000) -> SqliteStore:
        """Open (creating with mode 0600 if missing) and bring the schema up to date.

        `cache_size` rows (robots, projects, users, members) are kept for the token path while
        the database is unchanged (see `_ReadCache`); 0 turns that off.
        """
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
            store._cache = _ReadCache(path, cache_size)
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
            for target in range(version + 1, SCHEMA_VERSION + 1):
                # One transaction a step: a failed upgrade leaves the previous version intact.
                await self._db.executescript(
                    f"BEGIN; {MIGRATIONS[target]} PRAGMA user_version={target}; COMMIT;"
                )
        except sqlite3.DatabaseError as e:
            raise StorageError(f"cannot use database {path}: {e}") from None

    async def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        await self._db.close()

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        await self._rows("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._transaction_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _rows(self, sql: str, args: Iterable[object] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, tuple(args)))

    async def _write(self, sql: str, args: Iterable[object], conflict: str) -> aiosqlite.Cursor:
        try:
            return await self._db.execute(sql, tuple(args))
        except sqlite3.IntegrityError:
            raise Conflict(conflict) from None

    # ---- projects -------------------------------------------------------------------------

    async def create_project(
        self, name: str, public: bool, owner_id: int | None, now: int
    ) -> Project:
        cursor = await self._write(
            "INSERT INTO project (name, public, owner_id, creation_time, update_time) "
            "VALUES (?,?,?,?,?)",
            (name, int(public), owner_id, now, now),
            f"project {name!r} already exists",
        )
        assert cursor.lastrowid is not None
        created = await self.find_project_by_id(cursor.lastrowid)
        assert created is not None
        return created

    async def _projects(self, where: str, args: Iterable[object]) -> list[Project]:
        rows = await self._rows(
            f"SELECT {_PROJECT_COLUMNS} FROM {_PROJECT_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_project(r) for r in rows]

    async def find_project(self, name: str) -> Project | None:
        async def load() -> Project | None:
            found = await self._projects("p.name = ?", (name,))
            return found[0] if found else None

        return await self._cached(("project", name), load)

    async def find_project_by_id(self, project_id: int) -> Project | None:
        found = await self._projects("p.id = ?", (project_id,))
        return found[0] if found else None

    async def list_projects(self, name_contains: str = "") -> list[Project]:
        return await self._projects("instr(p.name, ?) > 0 ORDER BY p.name", (name_contains,))

    async def update_project(self, project_id: int, public: bool, now: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE project SET public = ?, update_time = ? WHERE id = ?",
            (int(public), now, project_id),
        )
        return cursor.rowcount > 0

    async def delete_project(self, project_id: int) -> bool:
        cursor = await self._db.execute("DELETE FROM project WHERE id = ?", (project_id,))
        return cursor.rowcount > 0

    # ---- robots ---------------------------------------------------------------------------

    async def create_robot(self, robot: NewRobot) -> Robot:
        cursor = await self._write(
            "INSERT INTO robot (name, project_id, level, description, secret_hash, duration, "
            "expires_at, creation_time, update_time, permissions, disabled, legacy_id, "
            "legacy_project_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                robot.name,
                robot.project_id,
                robot.level.value,
                robot.description,
                robot.secret_hash,
                robot.duration,
                robot.expires_at,
                robot.creation_time,
                robot.creation_time,
                _permissions_to_json(robot.permissions),
                int(robot.disabled),
                robot.legacy_id,
                robot.legacy_project_id,
            ),
            f"robot {robot.name!r} already exists"
            + (" in this project" if robot.project_id is not None else ""),
        )
        assert cursor.lastrowid is not None
        created = await self.find_robot_by_id(cursor.lastrowid)
        assert created is not None
        return created

    async def _robots(self, where: str, args: Iterable[object]) -> list[Robot]:
        rows = await self._rows(
            f"SELECT {_ROBOT_COLUMNS} FROM {_ROBOT_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_robot(r) for r in rows]

    async def find_legacy_robot(self, name: str) -> Robot | None:
        found = await self._robots("r.legacy_id IS NOT NULL AND r.name = ?", (name,))
        return found[0] if found else None

    async def find_robot(self, project_name: str | None, name: str) -> Robot | None:
        async def load() -> Robot | None:
            if project_name is None:
                found = await self._robots("r.project_id IS NULL AND r.name = ?", (name,))
            else:
                found = await self._robots(
                    "p.name = ? AND r.name = ? AND r.legacy_id IS NULL", (project_name, name)
                )
            return found[0] if found else None

        return await self._cached(("robot", project_name, name), load)

    async def find_robot_by_id(self, robot_id: int) -> Robot | None:
        async def load() -> Robot | None:
            found = await self._robots("r.id = ?", (robot_id,))
            return found[0] if found else None

        return await self._cached(("robot_id", robot_id), load)

    async def list_robots(self, project_id: int | None, name_contains: str = "") -> list[Robot]:
        where = "r.project_id IS NULL" if project_id is None else "r.project_id = ?"
        args: tuple[object, ...] = () if project_id is None else (project_id,)
        return await self._robots(
            f"{where} AND instr(r.name, ?) > 0 ORDER BY r.id", (*args, name_contains)
        )

    async def update_robot(self, robot_id: int, now: int, changes: RobotChanges) -> bool:
        permissions = (
            None if changes.permissions is None else _permissions_to_json(changes.permissions)
        )
        cursor = await self._db.execute(
            "UPDATE robot SET description = ifnull(?, description), "
            "duration = ifnull(?, duration), expires_at = ifnull(?, expires_at), "
            "disabled = ifnull(?, disabled), secret_hash = ifnull(?, secret_hash), "
            "permissions = ifnull(?, permissions), update_time = ? WHERE id = ?",
            (
                changes.description,
                changes.duration,
                changes.expires_at,
                None if changes.disabled is None else int(changes.disabled),
                changes.secret_hash,
                permissions,
                now,
                robot_id,
            ),
        )
        return cursor.rowcount > 0

    async def delete_robot(self, robot_id: int) -> bool:
        cursor = await self._db.execute("DELETE FROM robot WHERE id = ?", (robot_id,))
        return cursor.rowcount > 0

    async def record_robot_use(self, last_used: dict[int, int]) -> None:
        await self._db.executemany(
            "UPDATE robot SET last_used_at = max(ifnull(last_used_at, 0), ?) WHERE id = ?",
            [(when, robot_id) for robot_id, when in last_used.items()],
        )

    # ---- users ----------------------------------------------------------------------------

    async def create_user(self, user: NewUser, now: int) -> User:
        cursor = await self._write(
            "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, "
            "creation_time, update_time) VALUES (?,?,?,?,?,?,?,?)",
            (
                user.username,
                user.email,
                user.realname,
                user.comment,
                user.password_hash,
                int(user.sysadmin),
                now,
                now,
            ),
            f"user {user.username!r} already exists",
        )
        assert cursor.lastrowid is not None
        created = await self.find_user_by_id(cursor.lastrowid)
        assert created is not None
        return created

    async def _users(self, where: str, args: Iterable[object]) -> list[User]:
        rows = await self._rows(
            f"SELECT {_USER_COLUMNS} FROM users WHERE {where}",  # noqa: S608
            args,
        )
        return [_user(r) for r in rows]

    async def find_user(self, username: str) -> User | None:
        async def load() -> User | None:
            found = await self._users("username = ?", (username,))
            return found[0] if found else None

        return await self._cached(("user", username), load)

    async def find_user_by_id(self, user_id: int) -> User | None:
        async def load() -> User | None:
            found = await self._users("id = ?", (user_id,))
            return found[0] if found else None

        return await self._cached(("user_id", user_id), load)

    async def list_users(self, username_contains: str = "") -> list[User]:
        return await self._users("instr(username, ?) > 0 ORDER BY id", (username_contains,))

    async def update_user_password(self, user_id: int, password_hash: str, now: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE users SET password_hash = ?, update_time = ? WHERE id = ?",
            (password_hash, now, user_id),
        )
        return cursor.rowcount > 0

    # ---- members --------------------------------------------------------------------------

    async def add_member(self, project_id: int, user_id: int, role: Role, now: int) -> Member:
        cursor = await self._write(
            "INSERT INTO member (project_id, user_id, role, creation_time, update_time) "
            "VALUES (?,?,?,?,?)",
            (project_id, user_id, int(role), now, now),
            "the user is already a member of the project",
        )
        assert cursor.lastrowid is not None
        created = await self.find_member_by_id(project_id, cursor.lastrowid)
        assert created is not None
        return created

    async def _members(self, where: str, args: Iterable[object]) -> list[Member]:
        rows = await self._rows(
            f"SELECT {_MEMBER_COLUMNS} FROM {_MEMBER_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_member(r) for r in rows]

    async def find_member(self, project_id: int, user_id: int) -> Member | None:
        async def load() -> Member | None:
            found = await self._members("m.project_id = ? AND m.user_id = ?", (project_id, user_id))
            return found[0] if found else None

        return await self._cached(("member", project_id, user_id), load)

    async def find_member_by_id(self, project_id: int, member_id: int) -> Member | None:
        found = await self._members("m.project_id = ? AND m.id = ?", (project_id, member_id))
        return found[0] if found else None

    async def list_members(self, project_id: int, name_contains: str = "") -> list[Member]:
        return await self._members(
            "m.project_id = ? AND instr(u.username, ?) > 0 ORDER BY m.id",
            (project_id, name_contains),
        )

    async def update_member(self, project_id: int, member_id: int, role: Role, now: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE member SET role = ?, update_time = ? WHERE project_id = ? AND id = ?",
            (int(role), now, project_id, member_id),
        )
        return cursor.rowcount > 0

    async def delete_member(self, project_id: int, member_id: int) -> bool:
        cursor = await self._db.execute(
            "DELETE FROM member WHERE project_id = ? AND id = ?", (project_id, member_id)
        )
        return cursor.rowcount > 0

    # ---- refresh tokens -------------------------------------------------------------------

    async def add_refresh_token(
        self,
        token_hash: str,
        client_id: str,
        now: int,
        *,
        robot_id: int | None = None,
        user_id: int | None = None,
        keep: int,
    ) -> RefreshToken:
        cursor = await self._db.execute(
            "INSERT INTO refresh_token (robot_id, user_id, token_hash, client_id, created_at) "
            "VALUES (?,?,?,?,?)",
            (robot_id, user_id, token_hash, client_id, now),
        )
        column, owner = ("robot_id", robot_id) if robot_id is not None else ("user_id", user_id)
        await self._db.execute(
            f"DELETE FROM refresh_token WHERE {column} = ? AND id NOT IN "  # noqa: S608
            f"(SELECT id FROM refresh_token WHERE {column} = ? ORDER BY id DESC LIMIT ?)",
            (owner, owner, keep),
        )
        assert cursor.lastrowid is not None
        return RefreshToken(cursor.lastrowid, robot_id, user_id, client_id, now)

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        async def load() -> RefreshToken | None:
            rows = await self._rows(
                "SELECT id, robot_id, user_id, client_id, created_at FROM refresh_token "
                "WHERE token_hash = ?",
                (token_hash,),
            )
            return RefreshToken(*rows[0]) if rows else None

        return await self._cached(("refresh_token", token_hash), load)

    # ---- web sessions -----------------------------------------------------------------------

    async def add_session(self, token_hash: str, user_id: int, now: int, expires_at: int) -> None:
        await self._db.execute(
            "INSERT INTO web_session (token_hash, user_id, created_at, expires_at) "
            "VALUES (?,?,?,?)",
            (token_hash, user_id, now, expires_at),
        )

    async def find_session(self, token_hash: str, now: int) -> WebSession | None:
        rows = await self._rows(
            "SELECT id, user_id, created_at, expires_at FROM web_session "
            "WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now),
        )
        return WebSession(*rows[0]) if rows else None

    async def delete_sessions(
        self, *, token_hash: str | None = None, user_id: int | None = None, before: int = 0
    ) -> None:
        await self._db.execute(
            "DELETE FROM web_session WHERE token_hash = ? OR user_id = ? OR expires_at <= ?",
            (token_hash, user_id, before),
        )

    async def list_refresh_tokens(
        self, *, robot_id: int | None = None, user_id: int | None = None
    ) -> list[RefreshToken]:
        rows = await self._rows(
            "SELECT id, robot_id, user_id, client_id, created_at FROM refresh_token "
            "WHERE robot_id IS ? AND user_id IS ? ORDER BY id DESC",
            (robot_id, user_id),
        )
        return [RefreshToken(*r) for r in rows]

    async def delete_refresh_tokens(
        self,
        *,
        robot_id: int | None = None,
        user_id: int | None = None,
        token_id: int | None = None,
    ) -> int:
        cursor = await self._db.execute(
            "DELETE FROM refresh_token WHERE robot_id IS ? AND user_id IS ? "
            "AND (? IS NULL OR id = ?)",
            (robot_id, user_id, token_id, token_id),
        )
        return cursor.rowcount

    # ---- signing keys ---------------------------------------------------------------------

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._rows(
            "SELECT id, key_path, cert_path, state, created_at, retired_at FROM signing_key "
            "ORDER BY id"
        )
        return [KeyRecord(r[0], r[1], r[2], KeyState(r[3]), r[4], r[5]) for r in rows]

    async def add_key(self, key_path: str, cert_path: str, state: KeyState, now: int) -> KeyRecord:
        cursor = await self._db.execute(
            "INSERT INTO signing_key (key_path, cert_path, state, created_at) VALUES (?,?,?,?)",
            (key_path, cert_path, state.value, now),
        )
        assert cursor.lastrowid is not None
        return KeyRecord(cursor.lastrowid, key_path, cert_path, state, now)

    async def activate_key(self, key_id: int) -> bool:
        # One statement: the new key becomes active and every other active one published.
        cursor = await self._db.execute(
            "UPDATE signing_key SET state = CASE WHEN id = ? THEN 'active' ELSE 'published' END "
            "WHERE (id = ? AND state != 'retired') OR (state = 'active' AND "
            "EXISTS (SELECT 1 FROM signing_key WHERE id = ? AND state != 'retired'))",
            (key_id, key_id, key_id),
        )
        return cursor.rowcount > 0

    async def retire_key(self, key_id: int, now: int) -> bool:
        cursor = await self._db.execute(
            "UPDATE signing_key SET state = 'retired', retired_at = ? "
            "WHERE id = ? AND state = 'published'",
            (now, key_id),
        )
        return cursor.rowcount > 0

    # ---- audit log ------------------------------------------------------------------------

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._db.execute(
            "INSERT INTO audit_log (op_time, operator, operation, resource_type, resource, "
            "outcome) VALUES (?,?,?,?,?,?)",
            (
                entry.op_time,
                entry.operator,
                entry.operation,
                entry.resource_type,
                entry.resource,
                entry.outcome,
            ),
        )

    async def list_audit(self, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
        rows = await self._rows(
            "SELECT op_time, operator, operation, resource_type, resource, outcome, id "
            "FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = (await self._rows("SELECT count(*) FROM audit_log"))[0][0]
        return [AuditEntry(*r) for r in rows], total
