"""The token endpoint's use case: authenticate, authorize each scope, sign the JWT."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial

from tokenserver.domain.credentials import Credentials
from tokenserver.domain.exchange import Exchange
from tokenserver.domain.federation import Identity
from tokenserver.domain.memo import ENTRY_BYTES, STR_BYTES, Memo
from tokenserver.domain.models import ANONYMOUS, NEVER, Principal, Robot
from tokenserver.domain.names import project_of, quote_hint, shell_expanded
from tokenserver.domain.permissions import Grants, grant_actions
from tokenserver.domain.policy import NOTHING, token_actions
from tokenserver.domain.scopes import Scope, format_scope, parse_scopes, scopes_bytes
from tokenserver.domain.secrets import Secret
from tokenserver.domain.text import quote
from tokenserver.errors import BadRequest, FederationRefused, TokenServerError, Unauthorized
from tokenserver.keys import JwsSigner, SigningKey
from tokenserver.services.access import AccessService
from tokenserver.services.auth import Authenticator
from tokenserver.services.exchange import TokenExchange
from tokenserver.services.ports import Store
from tokenserver.services.refresh import RefreshTokenService
from tokenserver.services.temporary_secrets import IssuedSecret
from tokenserver.services.turns import TurnBatch

log = logging.getLogger("tokenserver.token")

_json_string = json.encoder.encode_basestring_ascii  # a str as a JSON string literal
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
# The memos of distinct grants (their JSON) and of robots' answers: the usual requests (a few
# scopes, well under a kilobyte each) fill the entries long before the bytes; a request too
# large to keep (many long scopes) is computed each time.
_MEMO_ENTRIES = 4096
_MEMO_BYTES = 4 << 20
_MEMO_ENTRY_BYTES = 16 << 10


class _RandomIds:
    """Random token ids (`jti`): 120 bits as 20 base64url characters, drawn from the OS a
    thousand at a time, so a token costs a slice instead of a system call and an encoding.

    NOTE: a process that forked would share the unused ids; tokenserver's workers are started
    as new processes (`serve --workers`), never forked.
    """

    _BYTES, _CHARS, _BATCH = 15, 20, 1024

    def __init__(self) -> None:
        self._ids, self._offset = "", 0

    def __call__(self) -> str:
        start = self._offset
        if start >= len(self._ids):
            self._ids = base64.urlsafe_b64encode(os.urandom(self._BYTES * self._BATCH)).decode()
            start = 0
        self._offset = start + self._CHARS
        return self._ids[start : start + self._CHARS]


# NOTE: IssuedToken and TokenRequest are not frozen: they live for one request, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs a microsecond per token.
@dataclass(slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str
    access: tuple[Scope, ...]
    refresh_token: Secret | None = None

    @property
    def scope(self) -> str:
        """The OAuth2 `scope` answer: the granted scopes that carry actions."""
        return " ".join(format_scope(s) for s in self.access if s.actions)


class Grant(StrEnum):
    """How a token request authenticates: the `grant` of the logs and of the token metrics."""

    BASIC = "basic"  # GET with Basic credentials
    ANONYMOUS = "anonymous"  # GET without
    PASSWORD = "password"  # noqa: S105 (a grant type, not a password); POST, OAuth2
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a grant type); POST, OAuth2
    TOKEN_EXCHANGE = "token_exchange"  # noqa: S105 (a grant type); POST, RFC 8693


# What the log says of a token request's outcome: a %-format and its arguments, formatted only
# if the line is written; or a function that describes it then.
Outcome = tuple[str, tuple[object, ...]]
LazyOutcome = Outcome | Callable[[], Outcome]


@dataclass(slots=True)
class TokenRequest:
    """One token request, GET or POST, as the HTTP layer read it. TokenService sets `outcome`
    when its logger takes `info`; the HTTP layer writes it, with what it knows of the request
    (status, time, request id), as the request's one log line."""

    grant: Grant
    scopes: Sequence[str]
    service: str | None
    address: str
    credentials: Credentials | None = None
    refresh_token: Secret | None = None
    client_id: str = ""
    offline: bool = False
    outcome: LazyOutcome | None = None


@dataclass(slots=True)
class ExchangeRequest:
    """A token exchange (RFC 8693, POST) as the HTTP layer read it; `outcome` as in
    TokenRequest."""

    exchange: Exchange
    service: str | None
    address: str
    client_id: str = ""
    offline: bool = False
    outcome: Outcome | None = None


# What `TokenSigner.sign` takes, held for a batch (`sign_soon`).
_SignArgs = tuple[str, Sequence[Scope], float, Secret | None, int | None, int | None]


class TokenSigner:
    """Signs registry tokens with a key loaded once. A token lasts `lifetime` seconds, or as
    long as its robot's own lifetime asks, never longer than `max_lifetime` (None: no longer
    than `lifetime`)."""

    def __init__(
        self,
        key: SigningKey,
        *,
        issuer: str,
        service: str,
        lifetime: int,
        max_lifetime: int | None = None,
        kid_format: str = "libtrust",
        x5c: bool = False,
    ) -> None:
        self._issuer = issuer
        self._service = service
        self._lifetime = lifetime
        self._max_lifetime = lifetime if max_lifetime is None else max_lifetime
        self._kid_format = kid_format
        self._x5c = x5c
        self._issued_second, self._issued_at = -1, ""
        # NOTE: aud is a plain string; distribution 2.8 rejects a JSON list there.
        self._claims_prefix = f'{{"iss":{_json_string(issuer)},"aud":{_json_string(service)},"sub":'
        self._access_json: Memo[tuple[Scope, ...], str] = Memo(
            max_entries=_MEMO_ENTRIES, max_bytes=_MEMO_BYTES, max_entry_bytes=_MEMO_ENTRY_BYTES
        )
        self._token_id = _RandomIds()
        self._batch: TurnBatch[tuple[_SignArgs, asyncio.Future[IssuedToken]]] = TurnBatch(
            self._sign_batch
        )
        self.set_key(key)

    def set_key(self, key: SigningKey) -> None:
        """Sign with `key` from now on (key rotation)."""
        headers: dict[str, object] = {
            "kid": key.thumbprint if self._kid_format == "thumbprint" else key.kid
        }
        if self._x5c:
            # NOTE: distribution tries x5c before kid (2.8 and 3.x): the certificate must be
            # in its rootcertbundle.
            headers["x5c"] = [base64.b64encode(key.certificate_der).decode()]
        self._key, self._jws = key, JwsSigner(key, headers)

    @property
    def key(self) -> SigningKey:
        return self._key

    def sign_soon(
        self,
        subject: str,
        access: Sequence[Scope],
        now: float,
        refresh_token: Secret | None = None,
        lifetime: int | None = None,
        until: int | None = None,
    ) -> asyncio.Future[IssuedToken]:
        """`sign`, done at the end of this turn of the event loop with every other token asked
        for in it (`TurnBatch`): the ECDSA code run back to back costs about 22 us a signature
        on the benchmark's machine, against 39 us run in the middle of each request."""
        future: asyncio.Future[IssuedToken] = asyncio.get_running_loop().create_future()
        self._batch.add(((subject, access, now, refresh_token, lifetime, until), future))
        return future

    def _sign_batch(self, batch: list[tuple[_SignArgs, asyncio.Future[IssuedToken]]]) -> None:
        for args, future in batch:
            if future.cancelled():
                continue
            try:
                future.set_result(self.sign(*args))
            except Exception as e:  # its request fails (a 500) rather than wait forever
                future.set_exception(e)

    def sign(
        self,
        subject: str,
        access: Sequence[Scope],
        now: float,
        refresh_token: Secret | None = None,
        lifetime: int | None = None,
        until: int | None = None,
    ) -> IssuedToken:
        """The token for `subject` granting `access`, issued at `now`, lasting `lifetime`
        seconds (a robot's own: None is the signer's) capped at the signer's maximum, so that
        a lifetime stored before the maximum was lowered never outlasts it, and ending by
        `until` (when its account's credential ends) at the latest."""
        issued = int(now)
        if lifetime is None:
            lifetime = self._lifetime
        elif lifetime > self._max_lifetime:
            lifetime = self._max_lifetime
        if until is not None and issued + lifetime > until:
            lifetime = max(1, until - issued)
        access = tuple(access)
        access_json = self._access_json.get(access)
        if access_json is None:
            access_json = _compact_json(
                [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in access]
            )
            self._access_json.put(
                access, access_json, ENTRY_BYTES + len(access_json) + scopes_bytes(access)
            )
        # The claims as JSON, built from parts: the fixed ones were encoded once, the access
        # list once per distinct grant; jti (base64url) and the numbers need no escaping.
        token = self._jws.sign(
            f'{self._claims_prefix}{_json_string(subject)},"exp":{issued + lifetime},'
            f'"nbf":{issued},"iat":{issued},"jti":"{self._token_id()}",'
            f'"access":{access_json}}}'
        )
        if issued != self._issued_second:  # strftime is dear; tokens share their second
            self._issued_second = issued
            self._issued_at = datetime.fromtimestamp(issued, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return IssuedToken(
            token=token,
            expires_in=lifetime,
            issued_at=self._issued_at,
            access=tuple(access),
            refresh_token=refresh_token,
        )


def _ends(principal: Principal) -> int | None:
    """When the principal stops being able to log in on its own: its robot's expiry, its
    credential's end (a legacy robot's JWT, a temporary secret); None: not bounded. A token
    never outlives it (a robot expiring in five minutes gets no day-long token)."""
    robot = principal.robot
    ends = principal.valid_until
    if robot is not None and robot.expires_at != NEVER:
        ends = robot.expires_at if ends is None else min(ends, robot.expires_at)
    return ends


def _formatted(scopes: Sequence[Scope]) -> str:
    return " ".join(format_scope(s) for s in scopes)


def _presented(fields: Sequence[tuple[str, str]]) -> str:
    """What a refused ID token said it was (iss, sub, aud), for the log line."""
    return "".join(f" {name}={quote(value)}" for name, value in fields)


def _identified(who: Identity) -> str:
    """Which workload a federated login was, for the log line: never the token."""
    fields = [("iss", who.iss), ("sub", who.sub), ("aud", who.aud), ("rule", str(who.rule_id))]
    fields += [
        (name, value)
        for name, value in (
            ("jti", who.jti),
            ("repository", who.repository),
            ("ref", who.ref),
            ("sha", who.sha),
            ("run_id", who.run_id),
        )
        if value
    ]
    return _presented(fields)


def _missing_reason(projects: Sequence[str]) -> str:
    """Why a push to a project nobody created gets no actions: the registry says only
    "denied", so the operator's log says which project is missing."""
    if len(projects) == 1:
        return f"project {projects[0]} does not exist"
    return f"projects {', '.join(projects)} do not exist"


class TokenService:
    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        refresh: RefreshTokenService,
        access: AccessService,
        signer: TokenSigner,
        *,
        service: str,
        name_prefix: str,
        clock: Callable[[], float] = time.time,
        exchange: TokenExchange | None = None,
    ) -> None:
        self._name_prefix = name_prefix
        self._store = store
        self._authenticator = authenticator
        self._exchange = exchange
        self._refresh = refresh
        self._access = access
        self._signer = signer
        self._service = service
        self._clock = clock
        self._grant_memo: Memo[
            tuple[int, tuple[Scope, ...]],
            tuple[weakref.ref[Robot], tuple[Scope, ...], tuple[str, ...]],
        ] = Memo(
            max_entries=_MEMO_ENTRIES,
            max_bytes=_MEMO_BYTES,
            max_entry_bytes=_MEMO_ENTRY_BYTES,
        )

    async def request(self, req: TokenRequest) -> IssuedToken:
        """Serve one token request (GET or POST /service/token). Every outcome is described
        in `req.outcome` for the log (when `tokenserver.token` takes `info`), never a secret.

        Raises BadRequest (wrong service, malformed scope) and Unauthorized (bad credentials
        or refresh token, or anonymous without a scope: the `docker login` probe must be
        challenged).
        """
        account = req.credentials.username if req.credentials else ""
        scopes: list[Scope] = []
        try:
            if req.service is not None and req.service != self._service:
                raise BadRequest(f"unknown service {req.service!r}")
            scopes = parse_scopes(req.scopes)
            refresh = None
            if req.refresh_token is not None:
                principal = await self._refresh.authenticate(req.refresh_token, req.address)
                refresh = req.refresh_token  # never rotated: the same one comes back
            elif req.credentials is not None:
                principal = await self._authenticator.authenticate(req.credentials, req.address)
                if req.offline and not principal.temporary:
                    refresh = await self._refresh.issue(principal, req.client_id)
            elif scopes:
                principal = ANONYMOUS
            else:
                raise Unauthorized("authentication required")
            account = principal.name
            granted, missing = await self._grant(principal, scopes)
            issued = await self._sign(principal, granted, refresh)
        except TokenServerError as e:
            req.outcome = self._denied(req.grant, account, req.address, scopes, req.scopes, e)
            raise
        if log.isEnabledFor(logging.INFO):
            # NOTE: described when the line is written, with the other lines of its turn
            # (`TurnBatch`): the arguments cost more than the line.
            req.outcome = partial(
                self._issued, req.grant, principal, req.address, scopes, granted, refresh, missing
            )
        return issued

    def _sign(
        self, principal: Principal, granted: Sequence[Scope], refresh: Secret | None
    ) -> asyncio.Future[IssuedToken]:
        """The token for `principal`: its robot's own lifetime, never past its end."""
        robot = principal.robot
        return self._signer.sign_soon(
            principal.name,
            granted,
            self._clock(),
            refresh,
            None if robot is None else robot.token_lifetime,
            _ends(principal),
        )

    @staticmethod
    def _issued(
        grant: Grant,
        principal: Principal,
        address: str,
        scopes: Sequence[Scope],
        granted: Sequence[Scope],
        refresh: Secret | None,
        missing: Sequence[str],
    ) -> Outcome:
        """An issued token, for the log: who (the workload too, for a federated login), what
        was asked and granted; never the token."""
        return (
            "token issued grant=%s account=%s client=%s scopes=%s granted=%s%s%s%s",
            (
                grant,
                quote(principal.name),
                address,
                quote(_formatted(scopes)),
                quote(_formatted(granted)),
                " refresh_token=yes" if refresh is not None else "",
                # NOTE: only here, never in the answer: whether a project exists is not for a
                # caller who may not see it.
                " reason=" + quote(_missing_reason(missing)) if missing else "",
                "" if principal.identity is None else _identified(principal.identity),
            ),
        )

    def _denied(
        self,
        grant: Grant,
        account: str,
        address: str,
        scopes: Sequence[Scope],
        asked: Sequence[str],
        e: TokenServerError,
    ) -> Outcome | None:
        """A refused token request, for the log (None when the log does not take it); its
        status is the error's, which the HTTP layer writes."""
        # NOTE: the account, the scopes and the reason hold the caller's text: quoted and
        # escaped, so that one request stays one line (the client is the socket's peer).
        if not log.isEnabledFor(logging.INFO):
            return None
        # NOTE: a user may be called `robot`, but no user's name holds a `+`.
        hint = (
            quote_hint(self._name_prefix, account)
            if isinstance(e, Unauthorized)
            and "+" in account
            and shell_expanded(self._name_prefix, account)
            else None
        )
        return (
            "token denied grant=%s account=%s client=%s scopes=%s reason=%s%s%s",
            (
                grant,
                quote(account),
                address,
                quote(_formatted(scopes) or " ".join(asked)[:200]),
                quote(e.reason if isinstance(e, FederationRefused) else e.message),
                "" if hint is None else " hint=" + quote(hint),
                _presented(e.presented) if isinstance(e, FederationRefused) else "",
            ),
        )

    async def exchange(self, req: ExchangeRequest) -> IssuedToken | IssuedSecret:
        """Serve a token exchange (RFC 8693): an access token for the scopes asked, or a
        temporary secret of the robot. Every outcome is described in `req.outcome` for the
        log, never a token or secret.

        Raises BadRequest (wrong service, malformed scope, not a robot's name), TooManyRequests
        (locked out), Unauthorized (the ID token refused or taken before, the robot unknown,
        disabled or expired)."""
        grant = Grant.TOKEN_EXCHANGE
        account = req.exchange.robot[:200]
        scopes: list[Scope] = []
        try:
            if self._exchange is None:
                raise BadRequest("this server takes no token exchange")
            if req.service is not None and req.service != self._service:
                raise BadRequest(f"unknown service {req.service!r}")
            scopes = parse_scopes(req.exchange.scopes)
            principal = await self._exchange.authenticate(req.exchange, req.address)
            account = principal.name
            if req.exchange.secret:
                secret = await self._exchange.issue_secret(principal)
            else:
                refresh = (
                    await self._refresh.issue(principal, req.client_id) if req.offline else None
                )
                granted, missing = await self._grant(principal, scopes)
                issued = await self._sign(principal, granted, refresh)
        except TokenServerError as e:
            req.outcome = self._denied(grant, account, req.address, scopes, req.exchange.scopes, e)
            raise
        if req.exchange.secret:
            req.outcome = (
                "robot secret issued grant=%s account=%s client=%s expires_in=%d%s",
                (
                    grant,
                    quote(account),
                    req.address,
                    secret.expires_in,
                    "" if principal.identity is None else _identified(principal.identity),
                ),
            )
            return secret
        req.outcome = self._issued(grant, principal, req.address, scopes, granted, refresh, missing)
        return issued

    async def _grant(
        self, principal: Principal, scopes: Sequence[Scope]
    ) -> tuple[list[Scope], tuple[str, ...]]:
        """Deny by default: an unknown type or resource gets no actions, never an error.
        Returns the grant and the projects asked for that do not exist (for the log).

        A robot's answer is remembered with the Robot object it was computed for. The store
        hands out the same object only while the database is unchanged (SQLite's read cache),
        and a fresh one after any change, so a remembered answer is never stale; without such
        a cache every request simply computes it.

        NOTE: the memo holds the Robot weakly. Held strongly, every database write (which
        any caller can cause: a refused API call writes an audit row) left one more copy of
        a robot alive in the memo, up to its entry limit: a robot whose permissions fill a
        64 KiB body grew the server by a quarter of a megabyte per write and token request.
        """
        robot = principal.robot
        if robot is None:
            return await self._compute_grant(principal, scopes)
        key = (id(robot), tuple(scopes))
        found = self._grant_memo.get(key)
        if found is not None and found[0]() is robot:
            return list(found[1]), found[2]
        granted, missing = await self._compute_grant(principal, scopes)
        self._grant_memo.put(
            key,
            (weakref.ref(robot), tuple(granted), missing),
            ENTRY_BYTES
            + scopes_bytes(key[1])
            + scopes_bytes(granted)
            + sum(STR_BYTES + len(name) for name in missing),
        )
        return granted, missing

    async def _compute_grant(
        self, principal: Principal, scopes: Sequence[Scope]
    ) -> tuple[list[Scope], tuple[str, ...]]:
        system = self._access.system_grants(principal)
        by_project: dict[str, Grants] = {}
        missing: tuple[str, ...] = ()  # rare: no list made for it per request
        granted = []
        for scope in scopes:
            project_grants = NOTHING
            if scope.type != "registry":
                name = project_of(scope.name)
                if name not in by_project:
                    own = principal.robot.own_project() if principal.robot else None
                    project = (
                        own if own is not None and own.name == name
                        else await self._store.find_project(name)
                    )  # fmt: skip
                    if project is None:
                        missing += (name,)
                    by_project[name] = (
                        NOTHING
                        if project is None
                        else await self._access.project_grants(principal, project)
                    )
                project_grants = by_project[name]
            permitted = token_actions(scope, project_grants, system)
            granted.append(Scope(scope.type, scope.name, grant_actions(scope.actions, permitted)))
        return granted, missing
