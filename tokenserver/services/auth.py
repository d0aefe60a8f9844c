"""Authentication: Basic credentials to a principal (a robot or a user)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from tokenserver.domain.credentials import Credentials
from tokenserver.domain.exchange import TEMPORARY_SECRET_LENGTH, TEMPORARY_SECRET_PREFIX
from tokenserver.domain.models import Principal, PrincipalKind, Robot
from tokenserver.domain.names import parse_robot_name
from tokenserver.errors import FederationRefused, Unauthorized
from tokenserver.services.federated_login import INVALID_CREDENTIALS, FederatedLogin
from tokenserver.services.legacy import LegacyAuthenticator
from tokenserver.services.ports import Store
from tokenserver.services.temporary_secrets import TemporarySecrets
from tokenserver.services.throttle import Throttle
from tokenserver.services.usage import UsageTracker
from tokenserver.services.verifier import SecretVerifier


class Authenticator:
    def __init__(
        self,
        store: Store,
        verifier: SecretVerifier,
        usage: UsageTracker,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        legacy: LegacyAuthenticator | None = None,
        throttle: Throttle | None = None,
        federation: FederatedLogin | None = None,
        temporary: TemporarySecrets | None = None,
    ) -> None:
        self._throttle = throttle
        self._federation = federation
        self._temporary = temporary
        self._legacy = legacy
        self._store = store
        self._verifier = verifier
        self._usage = usage
        self._prefix = name_prefix
        self._clock = clock

    async def authenticate(self, credentials: Credentials, address: str = "") -> Principal:
        """`_authenticate`, behind the brute-force throttle for `address` (the client); an ID
        token of a robot with federation rules (`_federated`) before it."""
        federated = await self._federated(credentials, address)
        if federated is None:
            federated = await self._temporary_login(credentials)
        if federated is not None:
            return federated
        if self._throttle is None:
            return await self._authenticate(credentials)
        return await self._throttle.guard(
            credentials.username,
            address,
            credentials.password.reveal(),
            lambda admit: self._authenticate(credentials, admit),
            Unauthorized,
        )

    async def _federated(self, credentials: Credentials, address: str) -> Principal | None:
        """The robot, when the password is an ID token one of its rules admits; None when it
        is not for that path (`FederatedLogin.authenticate`).

        As a refresh token is, a genuine ID token is never refused by a lock-out (no one can
        guess an issuer's signature, and a CI runner's address is often many runners'); every
        refused one counts in the lock-outs, gets 429 while the robot and address are locked
        out, and otherwise costs the KDF runs a wrong secret does: a refusal must not tell,
        by its speed, a robot with rules from one that does not exist."""
        if self._federation is None or credentials.password.reveal().count(".") != 2:
            return None  # not a JWT: the secret path, at no extra cost
        robot = await self._robot(credentials.username)
        if robot is None:
            return None
        try:
            return await self._federation.authenticate(robot, credentials.password)
        except FederationRefused:
            username, password = credentials.username, credentials.password
            try:
                if self._throttle is not None:
                    self._throttle.check(username, address)
                await self._verifier.match(password, self._verifier.dummy_hash(username), None)
            finally:
                if self._throttle is not None:
                    await self._throttle.failed(username, address, password.reveal())
            raise

    async def _robot(self, username: str) -> Robot | None:
        """The robot `username` names, if any (one query; the SQLite row cache answers it)."""
        parsed = parse_robot_name(self._prefix, username)
        return await self._store.find_robot(parsed.project, parsed.name) if parsed else None

    async def _temporary_login(self, credentials: Credentials) -> Principal | None:
        """The robot, when the password is one of its temporary secrets (`tst_`, from a token
        exchange), looked up by its hash, whether the robot's secret login is on or off; None
        otherwise (the secret path checks it, and counts it if wrong). As a refresh token is,
        a valid one is never refused by a lock-out: 256 random bits cannot be guessed, and a
        CI runner's address is often many runners'."""
        password = credentials.password.reveal()
        # NOTE: the length first: most passwords fail it, and the check is all they pay.
        if (
            self._temporary is None
            or len(password) != TEMPORARY_SECRET_LENGTH
            or not password.startswith(TEMPORARY_SECRET_PREFIX)
        ):
            return None
        robot = await self._robot(credentials.username)
        if robot is None:
            return None
        return await self._temporary.authenticate(robot, credentials.password)

    async def _authenticate(
        self, credentials: Credentials, admit: Callable[[], Awaitable[None]] | None = None
    ) -> Principal:
        """The robot or user these credentials belong to. Raises Unauthorized otherwise.

        Robots and users are read from storage on every call, so a change made by another
        process (the CLI while the server runs) counts on the very next request (on PostgreSQL
        replicas, once its notification has arrived: see storage/pg_cache.py). An unknown
        account runs the same KDF work as a known one, in bursts too: it is checked against a
        stand-in hash of its own name (`dummy_hash`), so concurrent requests share a KDF run
        exactly when they would for a known account. Whether a robot is disabled or expired
        is told only to a caller who knows its secret.

        The account decides how the password is checked, never the password's shape: a
        stored legacy robot by its JWT, then (when that is not it: a manual secret that looks
        like a JWT, a system robot of the same name, a wrong password) an ordinary account by
        the KDF, which a legacy robot's stored hash never matches. (ID tokens and temporary
        secrets are looked at before, in `authenticate`.)
        """
        if self._legacy is not None:
            legacy = await self._legacy.authenticate(credentials.username, credentials.password)
            if legacy is not None:
                return legacy
        robot = await self._robot(credentials.username)
        user = None if robot else await self._store.find_user(credentials.username)
        # A previous secret kept by a refresh with a grace period is tried only while it
        # works. Every account is checked by `match`, so that a wrong password costs the
        # same (two KDF runs) whether or not the robot has one, or exists.
        previous_until = None
        if robot is not None and robot.previous_secret_hash is not None:
            previous_until = robot.previous_secret_until(self._clock())
        stored = (
            robot.secret_hash
            if robot
            else user.password_hash
            if user
            else self._verifier.dummy_hash(credentials.username)
        )
        matched = await self._verifier.match(
            credentials.password,
            stored,
            robot.previous_secret_hash if robot and previous_until is not None else None,
            admit,
        )
        if matched is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        with_previous = matched == "previous"
        if robot is not None:
            if not robot.secret_login:
                raise Unauthorized(
                    "secret login is turned off for this robot: log in with an ID token"
                )
            if robot.disabled:
                raise Unauthorized("robot account is disabled")
            if robot.is_expired(self._clock()):
                raise Unauthorized("robot account has expired")
            if with_previous:
                # Its tokens and refresh tokens end with the previous secret.
                self._usage.touch(robot)
                return Principal(
                    PrincipalKind.ROBOT,
                    robot.full_name(self._prefix),
                    robot=robot,
                    valid_until=previous_until,
                    previous_secret=True,
                )
            if self._verifier.needs_rehash(robot.secret_hash):
                # Imported from Harbor: replace its PBKDF2 with our KDF now that we know the
                # secret. Not a new secret, so refresh tokens stay valid.
                # Only over the hash read: a refresh while the KDF ran keeps its new secret.
                await self._store.rehash_robot_secret(
                    robot.id, robot.secret_hash, await self._verifier.hash(credentials.password)
                )
            self._usage.touch(robot)
            return Principal(PrincipalKind.ROBOT, robot.full_name(self._prefix), robot=robot)
        if user is not None:
            return Principal(PrincipalKind.USER, user.username, user=user)
        raise Unauthorized(INVALID_CREDENTIALS)
