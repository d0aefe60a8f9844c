"""A private PostgreSQL server for the tests: Debian's `postgresql` binaries (scripts/test-deps
installs them), a fresh cluster in a temporary directory, on a free loopback port, with a
password (scram-sha-256) like a real deployment. Nothing is assumed to be running already."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from glob import glob
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import asyncpg

from tests.helpers import free_port
from tokenserver.storage.postgres import PostgresStore

USER = "tokenserver"

T = TypeVar("T")


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self) -> None:
        bin_dir = binaries()
        assert bin_dir is not None, "PostgreSQL is not installed (scripts/test-deps installs it)"
        self._bin = bin_dir
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self._names = itertools.count(1)
        self._template: str | None = None
        # The database `emptied_database` hands out again and again and the statement that
        # empties it; a connection to it, on `_loop`, while the server runs.
        self._emptied: tuple[str, str] | None = None
        self._emptier: asyncpg.Connection | None = None
        # Statements of our own (CREATE DATABASE) run on this thread, in an event loop of its
        # own: callers may be inside one already, and a psql process each cost more than the
        # statement. One event loop, run on that one thread, so that a connection outlives
        # a call (see `emptied_database`).
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="postgres-admin")
        self._loop = asyncio.new_event_loop()
        # Not under pytest's 0700 tmp tree: the server runs as `postgres` when we are root
        # (initdb refuses root), and must reach its directory.
        self.base = Path(tempfile.mkdtemp(prefix="tokenserver-pg-"))
        self.data = self.base / "data"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            shutil.chown(self.base, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        self._options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.base} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self.resume()

    def resume(self) -> None:
        """Start the server (again)."""
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options, "-l",
                  str(self.base / "server.log"), "-w", "-t", "60", "start")  # fmt: skip

    def pause(self) -> None:
        """Stop the server, keeping its data: an outage."""
        self._call(self._close_emptier())
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _run(self, tool: str, *args: str) -> str:
        result = subprocess.run(
            [*self._as, str(self._bin / tool), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{tool} failed: {result.stdout}{result.stderr}"
        return result.stdout

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql (over the Unix socket, as the superuser)."""
        return self._run(
            "psql", "-h", str(self.base), "-p", str(self.port), "-U", USER, "-d", database,
            "-v", "ON_ERROR_STOP=1", "-At", "-c", statement,
        )  # fmt: skip

    def dump(self, database: str) -> str:
        """Everything in `database`, as SQL (pg_dump)."""
        return self._run(
            "pg_dump", "-h", str(self.base), "-p", str(self.port), "-U", USER, database
        )

    def empty_database(self) -> str:
        """A new database with nothing in it (no schema: tokenserver creates it on first
        use); its URL. For the tests of that creation and of migrations from older schemas."""
        name = self._new_name()
        self._execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def migrated_database(self) -> str:
        """A new database at the current schema, as tokenserver's first start leaves it, with
        no rows; its URL. A copy of a template migrated once per server by `PostgresStore.open`
        itself: running every migration took most of a PostgreSQL test's set-up."""
        if self._template is None:
            template = self._new_name()
            self._execute(f"CREATE DATABASE {template}")
            self._call(_migrate(self.url(template)))
            # Nothing may change it (or hold a connection that would stop the copies).
            self._execute(f"ALTER DATABASE {template} ALLOW_CONNECTIONS false")
            self._template = template
        name = self._new_name()
        # FILE_COPY: without fsync it copies a small database faster than WAL_LOG.
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self._template} STRATEGY FILE_COPY")
        return self.url(name)

    def emptied_database(self) -> str:
        """The URL of a database such as `migrated_database` makes (the current schema, no
        rows, every sequence at its start), but the same one at every call, emptied again: a
        copy per test took more than most storage contract tests themselves. Only for tests
        that reach it through stores they close before they end, and that leave its schema
        as they found it (they may change any row); nothing else may use it."""
        if self._emptied is None:
            name = urlparse(self.migrated_database()).path.lstrip("/")
            self._emptied = name, self._call(self._emptying(name))
        else:
            self._call(self._empty(*self._emptied))
        return self.url(self._emptied[0])

    async def _connect_emptier(self, name: str) -> asyncpg.Connection:
        if self._emptier is None or self._emptier.is_closed():
            self._emptier = await asyncpg.connect(
                host=str(self.base), port=self.port, user=USER, database=name
            )
        return self._emptier

    async def _emptying(self, name: str) -> str:
        """The statement that empties `name`, a copy of the migrated template."""
        conn = await self._connect_emptier(name)
        tables = await conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'tokenserver_schema'"
        )
        sequences = await conn.fetch(
            "SELECT format('%I.%I', schemaname, sequencename), start_value FROM pg_sequences "
            "WHERE schemaname = 'public'"
        )
        # The migrated copy holds no row: emptied, it is that copy again. (The names are
        # the catalog's, quoted by format().)
        counts = " + ".join(f"(SELECT count(*) FROM {t})" for (t,) in tables)  # noqa: S608
        assert not await conn.fetchval(f"SELECT {counts}"), "the migrated database holds rows"
        # The role `replica` fires no trigger: no foreign-key check (so any order deletes
        # every row) and no cache notification (no store is open to hear one).
        statement = "\n".join(
            [
                "BEGIN;",
                "SET LOCAL session_replication_role = replica;",
                # A test that left a connection in a transaction fails the next one here, at
                # once, rather than making it wait forever.
                "SET LOCAL lock_timeout = '10s';",
                *(f"DELETE FROM {table};" for (table,) in tables),  # noqa: S608
                *(f"SELECT setval('{seq}', {start}, false);" for seq, start in sequences),
                "COMMIT;",
            ]
        )
        return statement

    async def _empty(self, name: str, statement: str) -> None:
        await (await self._connect_emptier(name)).execute(statement)

    async def _close_emptier(self) -> None:
        if self._emptier is not None:
            await self._emptier.close()
            self._emptier = None

    def _new_name(self) -> str:
        return f"t{next(self._names)}_{secrets.token_hex(3)}"

    def _execute(self, statement: str) -> None:
        """Run one statement in the maintenance database, over the Unix socket."""
        self._call(self._execute_async(statement))

    async def _execute_async(self, statement: str) -> None:
        conn = await asyncpg.connect(
            host=str(self.base), port=self.port, user=USER, database="postgres"
        )
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return self._thread.submit(self._loop.run_until_complete, work).result(timeout=120)

    def stop(self) -> None:
        self._call(self._close_emptier())
        self._thread.submit(self._loop.close).result(timeout=120)
        self._thread.shutdown()
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


async def _migrate(url: str) -> None:
    await (await PostgresStore.open(url)).close()
