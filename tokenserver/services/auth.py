"""Authentication of a token request's credentials."""

from __future__ import annotations

import time
from collections.abc import Callable

from tokenserver.domain.credentials import Credentials
from tokenserver.domain.models import Robot
from tokenserver.domain.names import parse_robot_name
from tokenserver.domain.secrets import DUMMY_HASH
from tokenserver.errors import Unauthorized
from tokenserver.services.ports import Store
from tokenserver.services.verifier import SecretVerifier

INVALID_CREDENTIALS = "invalid username or password"


class Authenticator:
    def __init__(
        self,
        store: Store,
        verifier: SecretVerifier,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._prefix = name_prefix
        self._clock = clock

    async def authenticate(self, credentials: Credentials) -> Robot:
        """The robot these credentials belong to. Raises Unauthorized otherwise.

        The robot is read from storage on every call, so a change made by another process (the
        CLI while the server runs) counts on the very next request. An unknown account runs the
        same KDF work as a known one. Whether a robot is disabled or expired is told only to a
        caller who knows its secret.
        """
        parsed = parse_robot_name(self._prefix, credentials.username)
        robot = await self._store.find_robot(parsed.project, parsed.name) if parsed else None
        matches = await self._verifier.verify(
            credentials.password, robot.secret_hash if robot else DUMMY_HASH
        )
        if robot is None or not matches:
            raise Unauthorized(INVALID_CREDENTIALS)
        if robot.disabled:
            raise Unauthorized("robot account is disabled")
        if robot.is_expired(self._clock()):
            raise Unauthorized("robot account has expired")
        return robot
