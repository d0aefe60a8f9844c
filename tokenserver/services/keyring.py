"""Signing key rotation without downtime.

1. `keys add`: a new key and certificate, published (in the bundle) but not signing.
2. `keys bundle`: writes every published certificate to the registry's rootcertbundle;
   restart the registry so that it trusts the new key.
3. `keys activate ID`: signing switches; running servers notice within KEY_POLL_SECONDS.
   Tokens signed by the previous key stay valid: its certificate is still in the bundle.
4. `keys retire ID`: a retired key stays published (in the bundle and the JWKS) until
   `published_until`, then both leave it out.

Until the first `keys add`, the keyring is empty and the configured `token.signing_key` signs,
with its certificate in `token.certificate`. From then on the keyring is the source of truth:
each entry has a certificate file of its own (the configured key's is copied), the active entry
signs, and `token.certificate` is only where `keys bundle` writes the bundle by default. So a
bundle that no longer holds the configured key's certificate (once it is retired) does not stop
a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tokenserver.config import Settings
from tokenserver.domain.models import KeyRecord, KeyState, Principal
from tokenserver.errors import BadRequest, ConfigError, NotFound
from tokenserver.keys import (
    SigningKey,
    generate_private_key,
    libtrust_kid,
    load_private_key,
    load_signing_key,
    make_certificate,
    write_certificate,
    write_private_key,
)
from tokenserver.services.access import AccessService
from tokenserver.services.audit import AuditService
from tokenserver.services.ports import Store

KEY_POLL_SECONDS = 2.0
# NOTE: distribution accepts a token up to 60 s past its `exp` (its token.Leeway), so a token
# signed just before the key was replaced stays valid that much longer than the lifetime.
RETIRED_KEY_LEEWAY = 60


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a retired key stays published, and why: a token it signed may be presented
    for `lifetime` seconds (the longest a token may last: `source` names the setting), and
    the registry accepts it `leeway` seconds past its `exp`."""

    lifetime: int
    leeway: int = RETIRED_KEY_LEEWAY
    source: str = "token.lifetime"

    @property
    def seconds(self) -> int:
        return self.lifetime + self.leeway

    def until(self, retired_at: int) -> int:
        """When a key retired at `retired_at` leaves the bundle and the JWKS."""
        return retired_at + self.seconds


class KeyringService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        access: AccessService,
        audit: AuditService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._access = access
        self._audit = audit
        self._clock = clock

    async def keys(self) -> list[KeyRecord]:
        return await self._store.list_keys()

    async def active(self) -> KeyRecord | None:
        return next((k for k in await self._store.list_keys() if k.state is KeyState.ACTIVE), None)

    def load(self, record: KeyRecord | None) -> SigningKey:
        """The signing key of a keyring entry, or the configured one for None. Raises
        ConfigError naming the entry and its file."""
        if record is None:
            s = self._settings.token
            return load_signing_key(s.signing_key, s.certificate, s.algorithm)
        try:
            return load_signing_key(self.path(record.key_path), self.path(record.cert_path))
        except ConfigError as e:
            raise ConfigError(f"keyring key {record.id}", e.reason) from None

    def path(self, stored: str) -> Path:
        """A keyring file's path as stored: relative to the config file's directory (so a
        server moved or restored elsewhere, keys/ with it, finds its keys), or absolute."""
        return self._settings.config_path.parent / stored

    def _stored(self, path: Path) -> str:
        base = self._settings.config_path.parent
        return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)

    async def add(self, actor: Principal, algorithm: str | None = None) -> KeyRecord:
        async with self._audit.operation(actor, "create", "signing-key", "new"):
            self._access.require_system(actor, "configuration", "update")
            now = int(self._clock())
            directory = self._settings.token.signing_key.parent
            if not await self._store.list_keys():
                # The configured key becomes the keyring's first, active entry, with a copy of
                # its certificate: `token.certificate` is where `keys bundle` writes, so it
                # will not hold this certificate once the key is retired.
                configured = self.load(None)
                certificate = directory / f"token-{now}-1.crt"
                write_certificate(
                    certificate, x509.load_der_x509_certificate(configured.certificate_der)
                )
                await self._store.add_key(
                    self._stored(self._settings.token.signing_key),
                    self._stored(certificate),
                    KeyState.ACTIVE,
                    now,
                )
            stem = f"token-{now}-{len(await self._store.list_keys()) + 1}"
            key = generate_private_key(algorithm or self._settings.token.algorithm)
            write_private_key(directory / f"{stem}.key", key)
            write_certificate(
                directory / f"{stem}.crt", make_certificate(key, self._settings.token.issuer)
            )
            return await self._store.add_key(
                self._stored(directory / f"{stem}.key"),
                self._stored(directory / f"{stem}.crt"),
                KeyState.PUBLISHED,
                now,
            )

    async def signing_key(self) -> SigningKey:
        """The key that signs: the active entry, or the configured one while the keyring is
        empty (then checked against `token.algorithm`). Raises ConfigError if its files cannot
        be used. The configured pair is not looked at once the keyring has entries."""
        return self.load(await self.active())

    def kid(self, record: KeyRecord, retention: Retention) -> str | None:
        """An entry's libtrust key ID, from its private key alone (older versions recorded
        `token.certificate` as the configured key's certificate: it may have left that
        file). None for a key no longer published whose file is gone (destroying a retired
        key is good practice); ConfigError for a key still published that cannot be read."""
        try:
            return libtrust_kid(load_private_key(self.path(record.key_path)).public_key())
        except ConfigError:
            if self.is_published(record, retention):
                raise
            return None

    async def retention(self) -> Retention:
        """How long a retired key stays published after its retirement: the one rule that
        `bundle`, `jwks` and the message of `keys retire` follow. The longest a token may
        last now: token.lifetime, or a robot's own token_lifetime as far as token.max_lifetime
        lets it (a token signed before a robot's was lowered may be cut short by as much)."""
        token = self._settings.token
        longest = await self._store.longest_token_lifetime()
        if longest is not None and min(longest, token.max_lifetime) > token.lifetime:
            return Retention(min(longest, token.max_lifetime), source="a robot's token_lifetime")
        return Retention(token.lifetime)

    @staticmethod
    def published_until(record: KeyRecord, retention: Retention) -> int | None:
        """When the registry may stop trusting this key: None while it is not retired."""
        if record.state is not KeyState.RETIRED:
            return None
        return retention.until(record.retired_at or 0)

    def is_published(self, record: KeyRecord, retention: Retention) -> bool:
        """Whether the registry must still trust this key now."""
        until = self.published_until(record, retention)
        return until is None or until > self._clock()

    async def published(self) -> list[SigningKey]:
        """Every key the registry must trust now, by id: the configured key while the keyring
        is empty."""
        records = await self._store.list_keys()
        if not records:
            return [self.load(None)]
        retention = await self.retention()
        return [self.load(r) for r in records if self.is_published(r, retention)]

    async def bundle(self) -> bytes:
        """The rootcertbundle (distribution 2.x): the certificates of `published()`."""
        return b"".join(
            x509.load_der_x509_certificate(k.certificate_der).public_bytes(
                serialization.Encoding.PEM
            )
            for k in await self.published()
        )

    async def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS (distribution 3.x's `auth.token.jwks`): the keys of `published()`, each
        with the `kid` the tokens carry."""
        thumbprint = self._settings.token.kid_format == "thumbprint"
        return {
            "keys": [k.jwk(k.thumbprint if thumbprint else k.kid) for k in await self.published()]
        }

    async def activate(self, actor: Principal, key_id: int) -> None:
        async with self._audit.operation(actor, "activate", "signing-key", str(key_id)):
            self._access.require_system(actor, "configuration", "update")
            record = next((k for k in await self._store.list_keys() if k.id == key_id), None)
            if record is None:
                raise NotFound(f"key {key_id} not found")
            self.load(record)  # refuse a key that cannot be used before it signs
            if not await self._store.activate_key(key_id):
                raise BadRequest(f"key {key_id} is retired")

    async def retire(self, actor: Principal, key_id: int) -> int:
        """Retire a key that no longer signs; returns `published_until` for it."""
        async with self._audit.operation(actor, "retire", "signing-key", str(key_id)):
            self._access.require_system(actor, "configuration", "update")
            record = next((k for k in await self._store.list_keys() if k.id == key_id), None)
            if record is None:
                raise NotFound(f"key {key_id} not found")
            if record.state is KeyState.ACTIVE:
                raise BadRequest(f"key {key_id} is signing: activate another key first")
            now = int(self._clock())
            if not await self._store.retire_key(key_id, now):
                raise BadRequest(f"key {key_id} is already retired")
            return (await self.retention()).until(now)
