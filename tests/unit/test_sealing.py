"""Sealed webhook auth headers (tokenserver/sealing.py): what opens, and everything that
must not: another policy's or address's value, another key, a tampered or clear value."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tokenserver.errors import ConfigError
from tokenserver.sealing import HeaderSeal, read_or_create_key

HEADER = "Bearer rcv-Tok3n ünïcode"
URL = "https://hooks.example.com/robots"


@pytest.fixture
async def seal(tmp_path: Path) -> HeaderSeal:
    made = HeaderSeal(tmp_path / "keys" / "webhook.key")
    await made.load()
    return made


async def test_a_sealed_header_opens_for_its_policy_and_address_only(
    seal: HeaderSeal, tmp_path: Path
) -> None:
    sealed = seal.seal(HEADER, 7, URL)
    assert sealed.startswith("v1:") and "rcv" not in sealed
    assert seal.open(sealed, 7, URL) == HEADER
    assert seal.seal(HEADER, 7, URL) != sealed  # a fresh nonce each time
    assert seal.seal("", 7, URL) == ""
    other = HeaderSeal(tmp_path / "other.key")
    await other.load()
    body = sealed.removeprefix("v1:")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    refused = {
        "another policy": seal.open(sealed, 8, URL),
        "another address": seal.open(sealed, 7, URL + "/"),
        "another key": other.open(sealed, 7, URL),
        "tampered": seal.open("v1:" + flipped, 7, URL),
        "truncated": seal.open(sealed[:20], 7, URL),
        "not base64": seal.open("v1:***", 7, URL),
        "another version": seal.open("v2:" + body, 7, URL),
        "stored in clear": seal.open(HEADER, 7, URL),
        "empty": seal.open("v1:", 7, URL),
    }
    assert refused == dict.fromkeys(refused)


async def test_a_seal_whose_key_is_not_loaded_refuses_to_work(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="load"):
        HeaderSeal(tmp_path / "k").seal(HEADER, 1, URL)


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "webhook.key"
    key, created = read_or_create_key(path)
    assert created and len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert base64.b64decode(path.read_bytes().strip()) == key
    assert read_or_create_key(path) == (key, False)
    assert [p.name for p in path.parent.iterdir()] == ["webhook.key"]  # no temporary left


def test_a_key_that_cannot_be_read_or_created_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("a file where the directory should be")
    with pytest.raises(ConfigError, match=r"webhooks\.secret_key: cannot read .*Not a directory"):
        read_or_create_key(tmp_path / "keys" / "webhook.key")
    # NOTE: /proc takes no new directory, even from root (who may write anywhere else).
    with pytest.raises(ConfigError, match=r"webhooks\.secret_key: cannot create /proc/"):
        read_or_create_key(Path("/proc/tokenserver-keys/webhook.key"))
