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
from typing import Any

import asyncpg

from tests.helpers import free_port
from tokenserver.storage.postgres import PostgresStore

USER = "tokenserver"


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
        # Statements of our own (CREATE DATABASE) run on this thread, in an event loop of its
        # own: callers may be inside one already, and a psql process each cost more than the
        # statement.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="postgres-admin")
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

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        self._thread.submit(asyncio.run, work).result(timeout=120)

    def stop(self) -> None:
        self._thread.shutdown()
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


async def _migrate(url: str) -> None:
    await (await PostgresStore.open(url)).close()
