"""Temporary robot secrets: what a token exchange hands a workload whose job outlives its ID
token and whose clients know only a username and a password (docker login, helm, skopeo).

`tst_` and 256 random bits, stored only as SHA-256: a fast hash is enough for a random token,
and the lookup by hash runs no KDF and compares no secret in variable time. One works as the
robot's password (GET with Basic, the POST password grant, the API) until it expires, at most
`federation.session_lifetime` after it was handed out and never past the robot's own expiry,
whether the robot's secret login is on or off: it is a federated credential, as the ID token
was. It ends early when the robot's rules change, the robot is disabled or deleted, or its
secret is refreshed; each robot keeps its newest KEEP_TEMPORARY_SECRETS. A login with one is
the workload's login (its identity is logged), so its refresh tokens are federated ones, and
end with the secret at the latest.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tokenserver.domain.exchange import KEEP_TEMPORARY_SECRETS, TEMPORARY_SECRET_PREFIX
from tokenserver.domain.models import NEVER, Principal, PrincipalKind, Robot
from tokenserver.domain.secrets import Secret, token_digest
from tokenserver.errors import Unauthorized
from tokenserver.services.ports import Store
from tokenserver.services.usage import UsageTracker


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A temporary secret as the exchange answers it: the robot's name and the secret, which
    is shown this once."""

    username: str
    secret: Secret
    expires_in: int
    issued_at: str


class TemporarySecrets:
    def __init__(
        self,
        store: Store,
        usage: UsageTracker,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        *,
        lifetime: int = 3600,
    ) -> None:
        """`lifetime`: the longest a secret works, in seconds."""
        self._store = store
        self._usage = usage
        self._prefix = name_prefix
        self._clock = clock
        self._lifetime = lifetime

    async def issue(self, principal: Principal) -> IssuedSecret:
        """A new temporary secret for the robot `principal` logged in as with an ID token
        (its `identity`). Raises Unauthorized when the robot changed meanwhile (its rule
        removed, the robot disabled or deleted)."""
        robot, who = principal.robot, principal.identity
        if robot is None or who is None:
            raise Unauthorized("only a robot's federated login gets a temporary secret")
        now = int(self._clock())
        expires_at = now + self._lifetime
        if robot.expires_at != NEVER:
            expires_at = min(expires_at, robot.expires_at)
        token = TEMPORARY_SECRET_PREFIX + secrets.token_urlsafe(32)
        stored = await self._store.add_temporary_secret(
            token_digest(token), robot.id, who, now, expires_at, keep=KEEP_TEMPORARY_SECRETS
        )
        if stored is None:
            raise Unauthorized(
                f"{principal.name} changed meanwhile (its rules, or it was disabled or "
                "deleted): exchange the ID token of a new job"
            )
        return IssuedSecret(
            username=principal.name,
            secret=Secret(token),
            expires_in=expires_at - now,
            issued_at=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    async def authenticate(self, robot: Robot, password: Secret) -> Principal | None:
        """The robot, as the workload the secret was handed to, when `password` is one of its
        temporary secrets; None when it is none of them (the caller checks it as the robot's
        own secret: a chosen secret may look like one). Raises Unauthorized when it is one
        that expired, or the robot is disabled or expired."""
        found = await self._store.find_temporary_secret(token_digest(password.reveal()))
        if found is None or found.robot_id != robot.id:
            return None
        now = self._clock()
        if found.expires_at <= now:
            raise Unauthorized(
                "the temporary secret has expired: exchange a new ID token for another"
            )
        if robot.disabled:
            raise Unauthorized("robot account is disabled")
        if robot.is_expired(now):
            raise Unauthorized("robot account has expired")
        self._usage.touch(robot)
        return Principal(
            PrincipalKind.ROBOT,
            robot.full_name(self._prefix),
            robot=robot,
            valid_until=found.expires_at,
            identity=found.identity,
            temporary=True,
        )
