"""Webhook auth headers sealed at rest: AES-256-GCM under a key kept in a file beside the
signing key, never in the database (`webhooks.secret_key`).

A sealed header is `v1:` and base64url(nonce || ciphertext || tag), with a fresh random
96-bit nonce each time. The associated data binds it to its policy's id and its target's
address: a value copied into another policy's row, or kept under an address someone changed
in the database, does not open, so the credential is never sent where it was not given for."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenserver.errors import ConfigError

KEY_SETTING = "webhooks.secret_key"
KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "v1:"

log = logging.getLogger("tokenserver.webhooks")


def _associated_data(policy_id: int, address: str) -> bytes:
    return json.dumps(["tokenserver webhook auth_header", policy_id, address]).encode()


def _decode_key(data: bytes, path: Path) -> bytes:
    try:
        key = base64.b64decode(data.strip(), validate=True)
        found = f"{len(key)} bytes" if key else "an empty file"
    except ValueError:
        key, found = b"", "text that is not base64"
    if len(key) != KEY_BYTES:
        raise ConfigError(
            KEY_SETTING,
            f"{path} must hold {KEY_BYTES} random bytes in base64 (as 'openssl rand -base64 "
            f"{KEY_BYTES}' writes them), found {found}",
        )
    return key


def read_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The key in `path`, created (mode 0600) if there is no such file; whether it was
    created. Never overwrites a file. Raises ConfigError naming webhooks.secret_key."""
    try:
        return _decode_key(path.read_bytes(), path), False
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ConfigError(KEY_SETTING, f"cannot read {path}: {e.strerror}") from None
    key = secrets.token_bytes(KEY_BYTES)
    # NOTE: written whole under another name, then linked into place: a replica starting at
    # the same moment reads either no file or the whole key, never half of one, and a key
    # another wrote first is kept (link never replaces a file).
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(key) + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return read_or_create_key(path)[0], False
    except OSError as e:
        raise ConfigError(KEY_SETTING, f"cannot create {path}: {e.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    return key, True


class HeaderSeal:
    """Seals and opens the auth headers of webhook targets with the key in `path`, read (or
    created) once by `load()`; `seal` and `open` need it loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._aead: AESGCM | None = None

    async def load(self) -> bool:
        """Read the key, creating it if there is none yet (off the event loop); at once
        when loaded already. Whether it created the file. Raises ConfigError naming
        webhooks.secret_key."""
        if self._aead is not None:
            return False
        key, created = await asyncio.to_thread(read_or_create_key, self.path)
        if created:
            # NOTE: debug only: the server logs nothing before it says where it serves;
            # `tokenserver init` makes the key and says so.
            log.debug("generated %s %s", KEY_SETTING, self.path)
        self._aead = AESGCM(key)
        return created

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise RuntimeError("HeaderSeal.load() was not awaited")
        return self._aead

    def seal(self, header: str, policy_id: int, address: str) -> str:
        """`header` sealed for the target at `address` of policy `policy_id`; "" stays ""."""
        if not header:
            return ""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher().encrypt(
            nonce, header.encode(), _associated_data(policy_id, address)
        )
        return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str, policy_id: int, address: str) -> str | None:
        """The header `seal` sealed for this policy and address; None when it does not open
        (another key, another policy's or address's value, a value stored in clear)."""
        if not sealed.startswith(VERSION):
            return None
        text = sealed.removeprefix(VERSION)
        try:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if len(data) <= NONCE_BYTES:
                return None
            header = self._cipher().decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(policy_id, address)
            )
            return header.decode()
        except (ValueError, InvalidTag):  # bad base64 or UTF-8 too
            return None
