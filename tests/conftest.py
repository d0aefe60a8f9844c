"""Shared fixtures: real settings files and real generated keys in a temporary directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import PostgresServer, binaries
from tokenserver.config import Settings, load_settings, render_config
from tokenserver.keys import (
    generate_private_key,
    make_certificate,
    write_certificate,
    write_private_key,
)

MakeSettings = Callable[..., Settings]


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


def write_settings(directory: Path, **overrides: Any) -> Settings:
    """Write a config file with `overrides` (dotted keys, `.` spelled `__`), generate its key
    and certificate, and load it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenserver.toml"
    path.write_text(render_config({k.replace("__", "."): v for k, v in overrides.items()}))
    settings = load_settings(path, environ={})
    key = generate_private_key(settings.algorithm)
    write_private_key(settings.signing_key, key)
    write_certificate(settings.certificate, make_certificate(key, settings.issuer))
    return settings


@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    counter = iter(range(1000))

    def make(**overrides: Any) -> Settings:
        return write_settings(tmp_path / f"ts{next(counter)}", **overrides)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()
