"""The SQLite adapter (aiosqlite, one connection, WAL, autocommit statements).

Every write is one statement, so it is atomic on its own; deletes cascade through foreign keys.
The queries themselves are shared with PostgreSQL (`tokenserver.storage.sql`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from tokenserver.domain.names import NAME_MAX_LENGTH
from tokenserver.errors import Conflict, StorageError, TokenServerError
from tokenserver.storage.sql import SqlStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "StorageError"]

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

# v3: refresh tokens end after token.refresh_token_idle_days unused (last_used_at; tokens from
# before start counting at the upgrade), and a legacy robot's at its JWT's exp (expires_at),
# granting only what that JWT granted (legacy_access). A legacy robot's token stored before
# could be held to neither: they are dropped (the robot logs in again with its JWT).
_SCHEMA_V3 = """
ALTER TABLE refresh_token ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_token ADD COLUMN expires_at INTEGER;
ALTER TABLE refresh_token ADD COLUMN legacy_access TEXT;
UPDATE refresh_token SET last_used_at = CAST(strftime('%s', 'now') AS INTEGER);
DELETE FROM refresh_token WHERE robot_id IN (SELECT id FROM robot WHERE legacy_id IS NOT NULL);
"""

# v4: a project keeps Harbor's metadata keys besides `public` (a JSON object of strings); users
# can be deleted, and their memberships (and the projects they own) are found by user.
_SCHEMA_V4 = """
ALTER TABLE project ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE INDEX member_user ON member (user_id);
CREATE INDEX project_owner ON project (owner_id);
"""

# v5: an audit entry names the project it concerned (NULL: a system operation, and every
# entry written before: their resource text cannot tell a project apart from a later one of
# the same name), so that project members can read their project's log. Lists filter and
# sort in the database: by project and by time.
_SCHEMA_V5 = """
ALTER TABLE audit_log ADD COLUMN project_id INTEGER;
CREATE INDEX audit_log_project ON audit_log (project_id, op_time, id);
CREATE INDEX audit_log_time ON audit_log (op_time, id);
"""

# v6: robot federation. Issuers the system admin trusts (audiences a JSON array); each robot's
# rules (conditions a JSON array), which keep their issuer from being removed; its newest
# refused federated logins; the single-use `jti`s of token exchanges (their SHA-256) until they
# expire; the temporary robot secrets token exchanges hand out (their SHA-256, and the workload
# they were handed to as JSON), dropped with their robot. A robot's secret login can be turned
# off; a refresh token says whether a federated login got it.
_SCHEMA_V6 = """
CREATE TABLE federation_issuer (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    url                TEXT    NOT NULL UNIQUE,
    audiences          TEXT    NOT NULL,
    jwks_file          TEXT,
    ca_file            TEXT,
    max_token_lifetime INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE TABLE federation_rule (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id    INTEGER NOT NULL REFERENCES robot(id) ON DELETE CASCADE,
    issuer_id   INTEGER NOT NULL REFERENCES federation_issuer(id),
    conditions  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX federation_rule_robot ON federation_rule (robot_id);
CREATE INDEX federation_rule_issuer ON federation_rule (issuer_id);
CREATE TABLE federation_failure (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id    INTEGER NOT NULL REFERENCES robot(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    issuer      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    reason      TEXT    NOT NULL
);
CREATE INDEX federation_failure_robot ON federation_failure (robot_id, id);
CREATE TABLE federation_login (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id    INTEGER NOT NULL REFERENCES robot(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    issuer      TEXT    NOT NULL,
    iss         TEXT    NOT NULL,
    sub         TEXT    NOT NULL,
    aud         TEXT    NOT NULL,
    rule_id     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    jti         TEXT    NOT NULL,
    repository  TEXT    NOT NULL,
    ref         TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    run_id      TEXT    NOT NULL
);
CREATE INDEX federation_login_robot ON federation_login (robot_id, id);
CREATE TABLE federation_jti (
    -- SHA-256 of the token's iss and jti: kept by the issuer's URL, not its row, so that
    -- removing and adding an issuer again does not make its used tokens new.
    token_key   TEXT    NOT NULL PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX federation_jti_expiry ON federation_jti (expires_at);
CREATE TABLE temporary_secret (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id    INTEGER NOT NULL REFERENCES robot(id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    identity    TEXT    NOT NULL
);
CREATE INDEX temporary_secret_robot ON temporary_secret (robot_id, id);
CREATE INDEX temporary_secret_expiry ON temporary_secret (expires_at);
ALTER TABLE robot ADD COLUMN secret_login INTEGER NOT NULL DEFAULT 1;
ALTER TABLE refresh_token ADD COLUMN federated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_token ADD COLUMN identity TEXT;
"""

# v7: a robot's own token lifetime in seconds (NULL: token.lifetime), bounded by the
# configuration (token.max_lifetime), not by the schema: lowering it caps, keeps the value.
_SCHEMA_V7 = """
ALTER TABLE robot ADD COLUMN token_lifetime INTEGER;
"""

# v8: webhook policies for robot events (a project's, or the system's: project_id NULL; targets
# and event types as JSON); each delivery of an event to a target (queued in the transaction of
# the change, claimed by a server with a lease, tried again with backoff); and the expiry
# notices sent, once per robot, kind and expiry time.
_SCHEMA_V8 = """
CREATE TABLE webhook_policy (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER REFERENCES project(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    targets       TEXT    NOT NULL,
    event_types   TEXT    NOT NULL,
    creator       TEXT    NOT NULL,
    enabled       INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE UNIQUE INDEX webhook_policy_name ON webhook_policy (ifnull(project_id, 0), name);
CREATE TABLE webhook_delivery (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    policy_id       INTEGER NOT NULL REFERENCES webhook_policy(id) ON DELETE CASCADE,
    event_type      TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    status_message  TEXT    NOT NULL DEFAULT '',
    creation_time   INTEGER NOT NULL,
    update_time     INTEGER NOT NULL,
    start_time      INTEGER,
    end_time        INTEGER
);
CREATE INDEX webhook_delivery_policy ON webhook_delivery (policy_id, id);
CREATE INDEX webhook_delivery_due ON webhook_delivery (status, next_attempt_at);
CREATE TABLE webhook_notice (
    robot_id    INTEGER NOT NULL REFERENCES robot(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (robot_id, kind, expires_at)
);
"""

# v9: rotation with a grace period. A robot keeps the hash of the secret a refresh replaced and
# until when it works (both NULL: none); a refresh token says whether it ends with that
# previous secret. Robots are counted and listed by expiry (metrics, `robot list --expiring`).
_SCHEMA_V9 = """
ALTER TABLE robot ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE robot ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE refresh_token ADD COLUMN previous_secret INTEGER NOT NULL DEFAULT 0;
CREATE INDEX robot_expiry ON robot (expires_at);
"""

# v10: failure scores and running checks shared by the processes serving one database
# (domain/lockouts.py): keys are digests, never an account name or address.
_SCHEMA_V10 = """
CREATE TABLE lockout (
    lock_key      TEXT    PRIMARY KEY,
    weight        REAL NOT NULL,
    base          INTEGER NOT NULL,
    locked_until  REAL NOT NULL
);
CREATE INDEX lockout_locked ON lockout (locked_until);
CREATE TABLE lockout_check (
    id            TEXT    PRIMARY KEY,
    pair          TEXT    NOT NULL,
    address       TEXT    NOT NULL,
    started_at    REAL NOT NULL
);
CREATE INDEX lockout_check_pair ON lockout_check (pair);
CREATE INDEX lockout_check_address ON lockout_check (address);
"""

# v11: nothing (PostgreSQL's version 11 makes writes notify the replicas' read caches; this
# cache is validated by the database's own version instead). Kept so that both number alike.
_SCHEMA_V11 = ""

# v12: a user's email is unique where it is not empty (Harbor's `harbor_user.email` is UNIQUE).
# Users that already shared an email keep it: all but the oldest holder of each (lowest id) are
# marked `email_shared` and left out of the index, so the upgrade neither fails nor loses a
# row; changing such a user's email clears the mark (`update_user_profile`), and the server
# names them at start until then.
_SCHEMA_V12 = """
ALTER TABLE users ADD COLUMN email_shared INTEGER NOT NULL DEFAULT 0;
UPDATE users SET email_shared = 1 WHERE email <> '' AND EXISTS
    (SELECT 1 FROM users older WHERE older.email = users.email AND older.id < users.id);
CREATE UNIQUE INDEX users_email ON users (email) WHERE email <> '' AND email_shared = 0;
"""

MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1,
    2: _SCHEMA_V2,
    3: _SCHEMA_V3,
    4: _SCHEMA_V4,
    5: _SCHEMA_V5,
    6: _SCHEMA_V6,
    7: _SCHEMA_V7,
    8: _SCHEMA_V8,
    9: _SCHEMA_V9,
    10: _SCHEMA_V10,
    11: _SCHEMA_V11,
    12: _SCHEMA_V12,
}
SCHEMA_VERSION = max(MIGRATIONS)


_MISSING = object()
_T = TypeVar("_T")


class _ReadCache:
    """Rows the token path reads on every request, kept while the database is unchanged.

    Validity is SQLite's own `PRAGMA data_version`, read on a second connection: it changes
    whenever any connection (this process's, the CLI's, another worker's) commits. That read
    touches only the WAL index in shared memory and spares the thread hop and row decoding of a
    query, but it is still five system calls (locks on the WAL index, a stat).

    So it is read at most once per turn of the event loop. A turn runs callbacks that were all
    queued before it started, and a callback queued after the read (a request that arrived, a
    write that finished) runs after `_expire`, which the read queues: every reader of a kept
    version was triggered before that version was read. A change anywhere is seen by every
    request that starts after it, exactly as without the cache; under steady writes it misses.
    """

    def __init__(self, path: Path, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._version: int | None = None
        self._fresh = False  # `_version` was read in this turn of the event loop
        self._probe: sqlite3.Connection | None = None
        if size > 0:
            self._probe = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._probe.execute("PRAGMA busy_timeout=0")

    def version(self) -> int | None:
        """The database's version now; None if it cannot be told (then nothing is cached)."""
        if self._fresh:
            return self._version
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
        self._fresh = True
        asyncio.get_running_loop().call_soon(self._expire)
        return version

    def _expire(self) -> None:
        self._fresh = False

    def get(self, key: tuple[object, ...]) -> object:
        found = self._entries.get(key, _MISSING)
        if found is not _MISSING:
            self._entries.move_to_end(key)
        return found

    def put(self, version: int, key: tuple[object, ...], value: object) -> None:
        """Keep `value`, read after `version` was seen, unless the database moved on since.

        A key holding a name longer than any stored name can be (a caller's kilobytes of
        user name) is not kept: `size` then bounds the bytes too, and such a lookup finds
        nothing anyway.
        """
        if version != self._version or any(
            isinstance(part, str) and len(part) > NAME_MAX_LENGTH for part in key
        ):
            return
        self._entries[key] = value
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()


def _no_database(path: Path) -> str:
    # NOTE: the likelier mistake comes first: a server on PostgreSQL whose URL was not set in
    # this shell (`init` would make a second, empty server).
    return (
        f"no database at {path}; set database.url (TOKENSERVER_DATABASE_URL) if this server's "
        "database is elsewhere, or run 'tokenserver init' to create a new server"
    )


class SqliteStore(SqlStore):
    """Implements `Store`. Open with `await SqliteStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, cache: _ReadCache | None = None) -> None:
        self._db = db
        self._transaction_lock = asyncio.Lock()
        # Whether the current task runs the open transaction (see `_statement`).
        self._in_transaction: ContextVar[bool] = ContextVar(
            "tokenserver_sqlite_transaction", default=False
        )
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
    async def open(
        cls, path: Path, cache_size: int = 10_000, *, create: bool = True
    ) -> SqliteStore:
        """Open and bring the schema up to date. A missing database is created (mode 0600)
        only if `create`; else a missing file, or one holding no tokenserver schema, raises
        StorageError (only `tokenserver init` creates a database: a command run with the
        wrong configuration must not start an empty one beside the real one).

        `cache_size` rows (robots, projects, users, members) are kept for the token path while
        the database is unchanged (see `_ReadCache`); 0 turns that off.
        """
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        elif not path.exists():
            raise StorageError(_no_database(path))
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open database {path}: {e}") from None
        store = cls(db)
        try:
            await store._migrate(path, create)
            store._cache = _ReadCache(path, cache_size)
        except BaseException:
            await db.close()
            raise
        return store

    async def _migrate(self, path: Path, create: bool) -> None:
        try:
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._db.execute("PRAGMA foreign_keys=ON")
            rows = await self._db.execute_fetchall("PRAGMA user_version")
            version = next(iter(rows))[0]
            if version == 0 and not create:
                # NOTE: checked before journal_mode=WAL, which would write to an empty file.
                raise StorageError(_no_database(path))
            await self._db.execute_fetchall("PRAGMA journal_mode=WAL")  # a row to read
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_transaction.get():
            # Within this task's transaction: a savepoint, undone alone if the block fails.
            await self._db.execute("SAVEPOINT nested")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK TO nested")
                await self._db.execute("RELEASE nested")
                raise
            await self._db.execute("RELEASE nested")
            return
        async with self._transaction_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            token = self._in_transaction.set(True)
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction.reset(token)
            await self._db.execute("COMMIT")

    async def _statement(self, run: Callable[[], Awaitable[_T]]) -> _T:
        """`run()`, kept out of another task's open transaction.

        NOTE: every task shares the one connection, so a statement sent while another task's
        transaction is open would join it: committed with it, or silently undone by its
        rollback (a user deletion answered 200 and then rolled back). Such a statement waits
        for the transaction to end. With none open it is sent at once: aiosqlite queues it
        before `run()` first yields, so no transaction can begin in between."""
        if self._transaction_lock.locked() and not self._in_transaction.get():
            async with self._transaction_lock:
                return await run()
        return await run()

    async def _rows(self, sql: str, args: Iterable[object] = ()) -> Sequence[Any]:
        return list(await self._statement(lambda: self._db.execute_fetchall(sql, tuple(args))))

    async def _execute(
        self, sql: str, args: Iterable[object] = (), *, refused: TokenServerError | None = None
    ) -> int:
        try:
            cursor = await self._statement(lambda: self._db.execute(sql, tuple(args)))
        except sqlite3.IntegrityError:
            if refused is None:
                raise
            raise refused from None
        return cursor.rowcount

    async def _execute_many(self, sql: str, args: Iterable[Sequence[object]]) -> None:
        await self._statement(lambda: self._db.executemany(sql, args))

    async def _insert(
        self,
        sql: str,
        args: Iterable[object],
        conflict: str,
        missing: TokenServerError | None = None,
    ) -> int:
        try:
            cursor = await self._statement(lambda: self._db.execute(sql, tuple(args)))
        except sqlite3.IntegrityError as e:
            if missing is not None and e.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
                raise missing from None
            raise Conflict(conflict) from None
        assert cursor.lastrowid is not None
        return cursor.lastrowid
