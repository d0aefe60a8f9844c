"""Refresh tokens (OAuth2 `offline` access, what `docker login` stores instead of a password).

Opaque, random (256 bits), stored only as SHA-256: a fast hash is enough for a random token,
and lookup by hash means no secret is compared in variable time. Never rotated: docker never
updates its stored copy, so a refresh grant returns the same token. Revoked when the robot's
secret is refreshed or the robot is disabled or deleted (the user's password changed or the
user deleted); a robot that has expired cannot use its tokens.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from tokenserver.domain.models import Principal, PrincipalKind, RefreshToken
from tokenserver.domain.secrets import Secret, token_digest
from tokenserver.errors import NotFound, Unauthorized
from tokenserver.services.ports import Store
from tokenserver.services.robots import RobotService
from tokenserver.services.throttle import Throttle
from tokenserver.services.usage import UsageTracker

TOKEN_PREFIX = "tsr_"  # noqa: S105 (makes leaked tokens easy to recognise)
KEEP_PER_ACCOUNT = 50
INVALID_REFRESH_TOKEN = "invalid refresh token"  # noqa: S105 (a message)


class RefreshTokenService:
    def __init__(
        self,
        store: Store,
        robots: RobotService,
        usage: UsageTracker,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        throttle: Throttle | None = None,
    ) -> None:
        self._throttle = throttle
        self._store = store
        self._robots = robots
        self._usage = usage
        self._prefix = name_prefix
        self._clock = clock

    async def issue(self, principal: Principal, client_id: str) -> Secret:
        """A new refresh token for a robot or user (the newest KEEP_PER_ACCOUNT are kept)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._store.add_refresh_token(
            token_digest(token),
            client_id[:200],
            int(self._clock()),
            robot_id=principal.robot.id if principal.robot else None,
            user_id=principal.user.id if principal.user else None,
            keep=KEEP_PER_ACCOUNT,
        )
        return Secret(token)

    async def authenticate(self, token: Secret, address: str = "") -> Principal:
        """`_authenticate`, behind the brute-force throttle for `address` (the client)."""
        if self._throttle is None:
            return await self._authenticate(token)
        self._throttle.check("refresh_token", address)
        try:
            principal = await self._authenticate(token)
        except Unauthorized:
            self._throttle.failed("refresh_token", address, token.reveal())
            raise
        return principal

    async def _authenticate(self, token: Secret) -> Principal:
        """The robot or user a refresh token belongs to. Raises Unauthorized if it is unknown
        or revoked, or its robot is disabled or expired."""
        found = await self._store.find_refresh_token(token_digest(token.reveal()))
        if found is None:
            raise Unauthorized(INVALID_REFRESH_TOKEN)
        if found.robot_id is not None:
            robot = await self._store.find_robot_by_id(found.robot_id)
            if robot is None or robot.disabled or robot.is_expired(self._clock()):
                raise Unauthorized(INVALID_REFRESH_TOKEN)
            self._usage.touch(robot)
            return Principal(PrincipalKind.ROBOT, robot.full_name(self._prefix), robot=robot)
        user = await self._store.find_user_by_id(found.user_id or 0)
        if user is None:
            raise Unauthorized(INVALID_REFRESH_TOKEN)
        return Principal(PrincipalKind.USER, user.username, user=user)

    async def list(self, actor: Principal, robot_ref: str) -> list[RefreshToken]:
        """A robot's refresh tokens (never the tokens themselves), newest first."""
        robot = await self._robots.get(actor, robot_ref)
        return await self._store.list_refresh_tokens(robot_id=robot.id)

    async def revoke(self, actor: Principal, robot_ref: str, token_id: int | None = None) -> int:
        """Revoke one of a robot's refresh tokens, or all of them; the number revoked."""
        robot = await self._robots.revocable(actor, robot_ref)
        revoked = await self._store.delete_refresh_tokens(robot_id=robot.id, token_id=token_id)
        if token_id is not None and revoked == 0:
            raise NotFound(f"refresh token {token_id} not found")
        return revoked
