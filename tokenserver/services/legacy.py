"""Legacy (pre-Harbor 2.2) robots: `robot$<name>` whose password is an RS256 JWT that the old
Harbor signed with its token key. Permissions and expiry come from the JWT;
the stored robot must exist, match the JWT's ids and be enabled."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tokenserver.domain.harbor_export import LEGACY_ACCESS
from tokenserver.domain.models import LEGACY_PREFIX, Principal, PrincipalKind, Robot
from tokenserver.domain.permissions import Access, Permission, PermissionKind
from tokenserver.domain.secrets import Secret
from tokenserver.errors import ConfigError, Unauthorized
from tokenserver.services.ports import Store
from tokenserver.services.usage import UsageTracker

_RESOURCE = re.compile(r"/project/(\d+)/([a-z-]+)")
_FAR = 2**62  # later than any exp that matters


def load_legacy_key(path: Path) -> rsa.RSAPublicKey:
    """The old Harbor token key's public half, from a PEM public key or certificate."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError("legacy.verification_key", f"cannot read {path}: {e.strerror}") from None
    key: object
    try:
        key = (
            x509.load_pem_x509_certificate(data).public_key()
            if b"CERTIFICATE" in data
            else serialization.load_pem_public_key(data)
        )
    except ValueError as e:
        raise ConfigError("legacy.verification_key", f"cannot load {path}: {e}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError("legacy.verification_key", "Harbor's legacy tokens need an RSA key")
    return key


def legacy_principal(robot: Robot, access: Sequence[Access], valid_until: int | None) -> Principal:
    """A legacy robot as its JWT made it: exactly the JWT's `access` in its own project (never
    the stored policies), ending at the JWT's `exp` (`valid_until`, None: never). The login and
    a refresh token issued at that login build the same principal."""
    assert robot.project_name is not None
    permission = Permission(
        robot.project_name, tuple(access), PermissionKind.PROJECT, robot.project_id
    )
    return Principal(
        PrincipalKind.ROBOT,
        robot.full_name(LEGACY_PREFIX),
        robot=dataclasses.replace(robot, permissions=(permission,)),
        valid_until=valid_until,
    )


class LegacyAuthenticator:
    def __init__(self, store: Store, usage: UsageTracker, key: rsa.RSAPublicKey) -> None:
        self._store = store
        self._usage = usage
        self._key = key

    async def authenticate(self, username: str, password: Secret) -> Principal | None:
        """The legacy robot `username` when `password` is its JWT. None when `username` names
        no legacy robot or the password is not a valid JWT for it: the caller then goes on
        with ordinary accounts (the account decides, never the password's shape). Raises
        Unauthorized when the JWT is right but the robot is disabled."""
        if not username.startswith(LEGACY_PREFIX):
            return None
        robot = await self._store.find_legacy_robot(username[len(LEGACY_PREFIX) :])
        if robot is None or robot.project_name is None:
            return None
        try:
            # NOTE: `exp` is checked when present; Harbor left it out for robots that never
            # expire. The issuer of the old Harbor is not known here: the signature decides.
            claims = jwt.decode(
                password.reveal(),
                self._key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_iss": False},
            )
        except jwt.InvalidTokenError:
            return None
        if claims.get("id") != robot.legacy_id or claims.get("pid") != robot.legacy_project_id:
            return None
        if robot.disabled:
            raise Unauthorized("robot account is disabled")
        access = []
        for entry in claims.get("access") or []:
            if not isinstance(entry, dict):
                continue
            match = _RESOURCE.fullmatch(str(entry.get("resource", "")))
            action = entry.get("action")
            # Only the legacy set, and only in the robot's own project.
            if (
                match
                and int(match.group(1)) == robot.legacy_project_id
                and (match.group(2), action) in LEGACY_ACCESS
            ):
                access.append(Access(match.group(2), str(action)))
        self._usage.touch(robot)
        exp = claims.get("exp")  # pyjwt checked that it is a number, when present
        # Clamped: a refresh token stores it, and a database column holds 64 bits.
        return legacy_principal(robot, access, None if exp is None else min(int(exp), _FAR))
