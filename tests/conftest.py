"""Shared fixtures: real settings files and real generated keys in a temporary directory.

Secrets are hashed at a cheap KDF cost (`FAST_KDF_COST`) unless a test is marked
`production_kdf` or is an end-to-end test: the production cost is what the hashing tests,
the KDF-work tests and the real `tokenserver serve` processes use (but those of the log
tests, tests/cli/test_log_injection.py); anywhere else it only makes the suite slow.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.helpers import FAST_KDF_COST, FakeClock
from tests.oidc_issuer import FakeIssuer, ThreadedIssuer
from tests.postgres import PostgresServer, binaries
from tokenserver.config import Settings, load_settings, render_config
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost
from tokenserver.keys import (
    PrivateKey,
    generate_private_key,
    make_certificate,
    write_certificate,
    write_private_key,
)
from tokenserver.storage.sqlite import SqliteStore

MakeSettings = Callable[..., Settings]
MEMORY = Path("/dev/shm")


E2E = Path(__file__).parent / "e2e"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A directory of tests that `-m` deselects whatever their other markers are is not
    collected at all: importing the end-to-end modules (schemathesis builds its tests there)
    took seconds of every worker of `-m "not e2e"`, and the others as long under `-m e2e`.
    A test is end-to-end exactly when it lives in tests/e2e (tests/e2e/conftest.py marks it)."""
    if collection_path.parent != E2E.parent or not collection_path.is_dir():
        return None
    return True if _deselects(config.option.markexpr, collection_path == E2E) else None


def _deselects(markexpr: str, e2e: bool) -> bool:
    """Whether `markexpr` is false for every test that has the `e2e` marker (or has not, as
    `e2e` says), whatever its other markers. Unsure (a marker with arguments, many names, an
    older pytest) is False."""
    if not markexpr:
        return False
    from _pytest.mark.expression import Expression

    expression = Expression.compile(markexpr)
    idents = getattr(expression, "idents", None)  # pytest 9
    if idents is None:
        return False
    others = sorted(set(idents()) - {"e2e"})
    if len(others) > 8:
        return False
    for values in itertools.product((False, True), repeat=len(others)):
        marked = dict(zip(others, values, strict=True), e2e=e2e)
        try:
            if expression.evaluate(functools.partial(_has, marked)):
                return False
        except LookupError:
            return False
    return True


def _has(marked: dict[str, bool], name: str, /, **kwargs: object) -> bool:
    if kwargs:
        raise LookupError(name)  # a marker with arguments: not decided here
    return marked[name]


def pytest_configure(config: pytest.Config) -> None:
    """With workers (pytest-xdist), `tmp_path` is under a directory the main process chooses
    before anything is collected: there, `-m` deselecting every end-to-end test decides it (see
    `pytest_collection_finish`). That also decides whether schemathesis' plugin, which builds
    the end-to-end API tests, is loaded: importing it took a fifth of a second of every
    process of the fast loop, which collects none of them."""
    if _deselects(config.option.markexpr, e2e=True):
        _temporary_files_in_memory()
    else:
        config.pluginmanager.import_plugin("schemathesis.pytest.plugin")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without end-to-end tests, temporary files (tmp_path, the PostgreSQL cluster) go to
    memory where a tmpfs is mounted: the tests' databases write and sync on every commit, which
    on this disk took half the time of a SQLite test and 0.25 s per CREATE DATABASE. End-to-end
    runs keep the disk, for the registries, daemons and images they store."""
    if not any(item.get_closest_marker("e2e") for item in session.items):
        _temporary_files_in_memory()


def _temporary_files_in_memory() -> None:
    if "TMPDIR" in os.environ or not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK | os.X_OK)):
        return
    tempfile.tempdir = str(MEMORY)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the whole run; tests take fresh databases from it."""
    if binaries() is None and not os.environ.get("CI"):
        # In CI this is a failure (scripts/test-deps installs PostgreSQL), never a skip.
        pytest.skip("PostgreSQL is not installed: run scripts/test-deps")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def write_settings(
    directory: Path,
    *,
    kdf_cost: KdfCost = DEFAULT_KDF_COST,
    own_key: bool = False,
    **overrides: Any,
) -> Settings:
    """Write a config file with `overrides` (dotted keys, `.` spelled `__`), its key and
    certificate, and load it, hashing new secrets at `kdf_cost`. The key is generated once per
    process for each algorithm (a certificate for each issuer), or for these settings alone
    if `own_key`: for a test that needs two servers whose keys differ."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenserver.toml"
    path.write_text(render_config({k.replace("__", "."): v for k, v in overrides.items()}))
    settings = load_settings(path, environ={}).replace(kdf_cost=kdf_cost)
    token = settings.token
    made = _new_key_pair if own_key else _key_pair
    key, certificate = made(token.algorithm, token.issuer)
    write_private_key(token.signing_key, key)
    write_certificate(token.certificate, certificate)
    return settings


def _new_key_pair(algorithm: str, issuer: str) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_private_key(algorithm)
    return key, make_certificate(key, issuer)


_key_pair = functools.cache(_new_key_pair)


def with_migrated_database(settings: Settings) -> Settings:
    """`settings`, its SQLite database made if there is none yet: at the current schema with no
    rows, as the first start of tokenserver leaves it. For the tests that do not test that
    creation: a copy of a database that `SqliteStore.open` migrated once per process costs
    a fifth of running every migration again."""
    path = settings.database.path
    if settings.database.url or path.exists():
        return settings
    path.parent.mkdir(parents=True, exist_ok=True)
    # The mode SqliteStore.open gives a database it creates.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(_migrated_sqlite())
    return settings


@functools.cache
def _migrated_sqlite() -> bytes:
    path = Path(tempfile.mkdtemp(prefix="tokenserver-migrated-")) / "tokenserver.db"

    async def migrate() -> None:
        await (await SqliteStore.open(path)).close()

    try:
        # On a thread of its own: the caller may be running an event loop already.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, migrate()).result()
        # Closed, the database is whole in its file (no -wal beside it).
        return path.read_bytes()
    finally:
        shutil.rmtree(path.parent)


@pytest.fixture
def kdf_cost(request: pytest.FixtureRequest) -> KdfCost:
    """The cost of the secret hashes a test makes: the production cost for the tests marked
    `production_kdf` and for end-to-end tests, a cheap one for the rest."""
    node = request.node
    if node.get_closest_marker("production_kdf") or node.get_closest_marker("e2e"):
        return DEFAULT_KDF_COST
    return FAST_KDF_COST


@pytest.fixture
def make_settings(tmp_path: Path, kdf_cost: KdfCost) -> MakeSettings:
    counter = iter(range(1000))

    def make(*, own_key: bool = False, **overrides: Any) -> Settings:
        directory = tmp_path / f"ts{next(counter)}"
        return write_settings(directory, kdf_cost=kdf_cost, own_key=own_key, **overrides)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def oidc_clock() -> FakeClock:
    """The time of the fake OIDC issuer's tokens; give it to the verifier under test too."""
    return FakeClock()


@pytest.fixture
async def oidc_issuer(oidc_clock: FakeClock) -> AsyncIterator[FakeIssuer]:
    """A fake OIDC issuer on loopback (tests/oidc_issuer.py), minting at `oidc_clock`'s time."""
    async with FakeIssuer(clock=oidc_clock, fresh_keys=False) as issuer:
        yield issuer


@pytest.fixture
def threaded_oidc_issuer() -> Iterator[FakeIssuer]:
    """A fake OIDC issuer in a background thread, for synchronous (end-to-end) tests; its
    tokens are minted at the wall clock's time."""
    with ThreadedIssuer() as issuer:
        yield issuer
