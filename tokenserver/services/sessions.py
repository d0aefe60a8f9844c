"""Web page logins: a session cookie for users (never robots), with a CSRF token derived
from it."""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import Callable

from tokenserver.domain.credentials import Credentials
from tokenserver.domain.models import LEGACY_PREFIX, Principal, PrincipalKind
from tokenserver.domain.names import parse_robot_name
from tokenserver.domain.secrets import Secret, token_digest
from tokenserver.errors import Forbidden, Unauthorized, UserNotFound
from tokenserver.services.auth import Authenticator
from tokenserver.services.federated_login import INVALID_CREDENTIALS
from tokenserver.services.ports import Store

# A user's newest sessions kept; logging in again ends the oldest beyond (as for refresh
# tokens: without a bound, every login added a row for as long as the session lives).
KEEP_PER_USER = 50

ROBOT_LOGIN_REFUSED = (
    "robot accounts cannot log in to the web interface; use them with docker, podman, helm, "
    "oras or the API"
)
SESSION_EXPIRED = "not logged in, or the session has expired: log in again"


class SessionService:
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        *,
        name_prefix: str,
        lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._prefix = name_prefix
        self._lifetime = lifetime
        self._clock = clock

    async def login(
        self, username: str, password: Secret, address: str
    ) -> tuple[Secret, Principal]:
        """Check a user's password (behind the brute-force throttle) and open a session.
        Returns the session token (the cookie's value, stored only hashed) and the user.

        Raises Unauthorized: wrong credentials, or a robot's name (robots never log in here,
        which is said before any password check, so it tells nothing about the robot).
        """
        if username.startswith(LEGACY_PREFIX) or parse_robot_name(self._prefix, username):
            raise Unauthorized(ROBOT_LOGIN_REFUSED)
        principal = await self._authenticator.authenticate(Credentials(username, password), address)
        if principal.kind is not PrincipalKind.USER or principal.user is None:
            raise Unauthorized(ROBOT_LOGIN_REFUSED)
        token = Secret(secrets.token_urlsafe(32))
        now = int(self._clock())
        await self._store.delete_sessions(before=now)  # expired ones, by the way
        try:
            await self._store.add_session(
                token_digest(token.reveal()),
                principal.user.id,
                now,
                now + self._lifetime,
                keep=KEEP_PER_USER,
            )
        except UserNotFound:  # deleted since its password was checked: as if it never was
            raise Unauthorized(INVALID_CREDENTIALS) from None
        return token, principal

    async def authenticate(self, token: Secret) -> Principal:
        """The user of a live session. Raises Unauthorized if it is unknown or expired, or
        its user is gone."""
        session = await self._store.find_session(token_digest(token.reveal()), int(self._clock()))
        user = None if session is None else await self._store.find_user_by_id(session.user_id)
        if user is None:
            raise Unauthorized(SESSION_EXPIRED)
        return Principal(PrincipalKind.USER, user.username, user=user)

    async def logout(self, token: Secret) -> None:
        await self._store.delete_sessions(token_hash=token_digest(token.reveal()))


def csrf_token(session: Secret) -> str:
    """The CSRF token of a session: derived from the session token, so it needs no storage
    and cannot be computed by a page that cannot read the (HttpOnly) cookie."""
    mac = hmac.digest(session.reveal().encode(), b"tokenserver csrf", "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_csrf(session: Secret, given: str | None) -> None:
    """Raise Forbidden unless `given` is the session's CSRF token (constant time)."""
    if not given or not given.isascii() or not hmac.compare_digest(given, csrf_token(session)):
        raise Forbidden("CSRF token missing or invalid: reload the page and try again")
