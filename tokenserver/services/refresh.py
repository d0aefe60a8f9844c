"""Refresh tokens (OAuth2 `offline` access, what `docker login` stores instead of a password).

Opaque, random (256 bits), stored only as SHA-256: a fast hash is enough for a random token,
and lookup by hash means no secret is compared in variable time. Never rotated: docker never
updates its stored copy, so a refresh grant returns the same token. Revoked when the robot's
secret is refreshed (with a grace period: when the previous secret ends, for those issued to
it or to the secret it was) or the robot is disabled or deleted (the user's password changed or the
user deleted); a robot that has expired cannot use its tokens. A token unused for the idle
limit stops working. A legacy robot's token grants what the JWT it was issued for granted, and
ends when that JWT expires.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from tokenserver.domain.models import SECONDS_PER_DAY, Principal, PrincipalKind, RefreshToken
from tokenserver.domain.secrets import Secret, token_digest
from tokenserver.errors import NotFound, Unauthorized
from tokenserver.services.federated_login import INVALID_CREDENTIALS
from tokenserver.services.legacy import legacy_principal
from tokenserver.services.ports import Store
from tokenserver.services.robots import RobotService
from tokenserver.services.throttle import Throttle
from tokenserver.services.usage import UsageTracker

TOKEN_PREFIX = "tsr_"  # noqa: S105 (makes leaked tokens easy to recognise)
KEEP_PER_ACCOUNT = 50
INVALID_REFRESH_TOKEN = "invalid refresh token"  # noqa: S105 (a message)
# A use is recorded only when the recorded one is older than this: one write an hour per token
# at most, not one per refresh (the idle limit is counted in days).
USE_GRANULARITY = 3600


class RefreshTokenService:
    def __init__(
        self,
        store: Store,
        robots: RobotService,
        usage: UsageTracker,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        throttle: Throttle | None = None,
        *,
        idle_days: int = 90,
        legacy: bool = False,
        federated_lifetime: int = 3600,
    ) -> None:
        """`idle_days`: a token unused that long stops working. `legacy`: legacy robots may
        log in (their tokens stop working when that is turned off, as their logins do).
        `federated_lifetime`: seconds a token issued to a federated login (an ID token as the
        password) works: no runner keeps a long-lived credential."""
        self._federated_lifetime = federated_lifetime
        self._throttle = throttle
        self._idle_seconds = idle_days * SECONDS_PER_DAY
        self._legacy = legacy
        self._store = store
        self._robots = robots
        self._usage = usage
        self._prefix = name_prefix
        self._clock = clock

    async def issue(self, principal: Principal, client_id: str) -> Secret:
        """A new refresh token for a robot or user (the newest KEEP_PER_ACCOUNT are kept).

        A legacy robot's token keeps what its JWT granted and when the JWT ends
        (`principal.valid_until`): non-secret, and all a refresh needs to rebuild the same
        principal. A federated login's token ends `federated_lifetime` after it is issued (or
        with the credential it logged in with, a temporary secret, if that ends first), and
        with any change of the robot's rules (the store revokes it). Raises Unauthorized if the
        robot or user was deleted since its login was checked."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        robot = principal.robot
        now = int(self._clock())
        federated = principal.identity is not None
        expires_at = principal.valid_until
        if federated:
            expires_at = now + self._federated_lifetime
            if principal.valid_until is not None:
                expires_at = min(expires_at, principal.valid_until)
        try:
            await self._store.add_refresh_token(
                token_digest(token),
                client_id[:200],
                now,
                robot_id=robot.id if robot else None,
                user_id=principal.user.id if principal.user else None,
                keep=KEEP_PER_ACCOUNT,
                expires_at=expires_at,
                federated=federated,
                identity=principal.identity,
                previous_secret=principal.previous_secret,
                legacy_access=(
                    tuple(a for p in robot.permissions for a in p.access)
                    if robot is not None and robot.legacy
                    else None
                ),
            )
        except NotFound:
            # Its robot or user was deleted since the login was checked (a deletion racing
            # `docker login`, or a replica's read cache): answered as a deleted one's login.
            raise Unauthorized(INVALID_CREDENTIALS) from None
        return Secret(token)

    async def authenticate(self, token: Secret, address: str = "") -> Principal:
        """`_authenticate`, with failures counted by the brute-force throttle for `address`
        (the client).

        A valid token is never refused by a lock-out: 256 random bits cannot be guessed, and
        one address is often many clients (NAT, CI runners), whose tokens must keep working
        while someone there sends bad ones. Every bad token is counted (the address's score
        also guards password logins) and gets 429 while the address is locked out, else 401.
        A success does not clear the score: anyone could clear it with a token of their own.
        """
        try:
            return await self._authenticate(token)
        except Unauthorized:
            if self._throttle is not None:
                try:
                    self._throttle.check("refresh_token", address)
                finally:
                    await self._throttle.failed("refresh_token", address, token.reveal())
            raise

    async def _authenticate(self, token: Secret) -> Principal:
        """The robot or user a refresh token belongs to. Raises Unauthorized if it is unknown,
        revoked, idle too long or past its legacy JWT's end, or its robot is disabled or
        expired."""
        now = self._clock()
        found = await self._store.find_refresh_token(token_digest(token.reveal()))
        if found is None or not found.is_usable(now, self._idle_seconds):
            raise Unauthorized(INVALID_REFRESH_TOKEN)
        if found.robot_id is not None:
            robot = await self._store.find_robot_by_id(found.robot_id)
            if robot is None or robot.disabled:
                raise Unauthorized(INVALID_REFRESH_TOKEN)
            if robot.legacy:
                # As at its login: only what the JWT granted, never the stored policies, until
                # the JWT's exp (`is_usable` above). A token without that record (or with
                # legacy logins turned off) grants nothing.
                if found.legacy_access is None or not self._legacy:
                    raise Unauthorized(INVALID_REFRESH_TOKEN)
                principal = legacy_principal(robot, found.legacy_access, found.expires_at)
            elif robot.is_expired(now) or not (found.federated or robot.secret_login):
                # A token from a secret login ends when secret logins are turned off (the
                # store deletes them then; this covers one issued meanwhile).
                raise Unauthorized(INVALID_REFRESH_TOKEN)
            elif found.previous_secret:
                # Issued to the secret a refresh with a grace period replaced (or to a login
                # with it since): it works while that secret does, and its tokens end with it.
                until = robot.previous_secret_until(now)
                if until is None:
                    raise Unauthorized(INVALID_REFRESH_TOKEN)
                principal = Principal(
                    PrincipalKind.ROBOT,
                    robot.full_name(self._prefix),
                    robot=robot,
                    valid_until=until,
                    previous_secret=True,
                )
            else:
                principal = Principal(
                    PrincipalKind.ROBOT,
                    robot.full_name(self._prefix),
                    robot=robot,
                    identity=found.identity,
                )
            self._usage.touch(robot)
        else:
            user = await self._store.find_user_by_id(found.user_id or 0)
            if user is None:
                raise Unauthorized(INVALID_REFRESH_TOKEN)
            principal = Principal(PrincipalKind.USER, user.username, user=user)
        if found.last_used_at + USE_GRANULARITY <= now:
            self._usage.touch_refresh_token(found.id, int(now))
        return principal

    async def list(self, actor: Principal, robot_ref: str) -> list[RefreshToken]:
        """A robot's refresh tokens (never the tokens themselves), newest first."""
        robot = await self._robots.get(actor, robot_ref)
        return await self._store.list_refresh_tokens(robot_id=robot.id)

    async def revoke(self, actor: Principal, robot_ref: str, token_id: int | None = None) -> int:
        """Revoke one of a robot's refresh tokens, or all of them; the number revoked."""
        return await self._robots.revoke_refresh_tokens(actor, robot_ref, token_id)
