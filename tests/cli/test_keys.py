"""`keys bundle` and `keys jwks` publish a retired key for the same window, the one `keys retire`
announces."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tokenserver.config import load_settings


def ok(config: Path, *args: str) -> str:
    result = run_cli(config, "keys", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tokenserver.toml"
    result = run_cli(path, "init")
    assert result.returncode == 0, result.stderr
    return path


def published(config: Path) -> tuple[int, int]:
    """How many keys the bundle and the JWKS hold now."""
    bundle = config.parent / "bundle.crt"
    ok(config, "bundle", "--output", str(bundle))
    jwks = json.loads(run_cli(config, "keys", "jwks").stdout)
    return bundle.read_bytes().count(b"BEGIN CERTIFICATE"), len(jwks["keys"])


def retired_ago(config: Path, seconds: int) -> None:
    """Move the retirement into the past, as if `seconds` had passed since."""
    with sqlite3.connect(config.parent / "tokenserver.db") as db:
        db.execute(
            "UPDATE signing_key SET retired_at = ? WHERE state = 'retired'",
            (int(time.time()) - seconds,),
        )


def test_attack_jwks_drops_a_retired_key_before_the_bundle_does(config: Path) -> None:
    """`keys jwks` used to leave a retired key out at once, while `keys bundle` kept it one
    token lifetime: a distribution 3.x refused tokens the previous key had just signed."""
    added = json.loads(run_cli(config, "keys", "add").stdout)
    ok(config, "activate", str(added["id"]))
    message = ok(config, "retire", "1")
    match = re.search(
        r"'keys bundle' and 'keys jwks' leave it out once (\d+) s have passed", message
    )
    assert match, message
    window = int(match.group(1))
    # one token lifetime plus distribution's 60 s leeway
    assert window == load_settings(config, environ={}).lifetime + 60
    assert published(config) == (2, 2)
    retired_ago(config, window - 30)
    assert published(config) == (2, 2)
    retired_ago(config, window + 30)
    assert published(config) == (1, 1)
