"""Verifying a workload's OIDC ID token against a trusted issuer (robot federation).

`IdTokenVerifier.verify` checks, in this order, and refuses at the first failure
(`FederationRefused`, whose reason is safe to log and never holds the token):
1. size and shape: at most 8 KiB, three base64url segments, JSON objects;
2. `alg` is one of ALGORITHMS (never `none`, never an HMAC), no `crit` header, a `kid`;
3. `iss` is exactly the issuer's URL: no key is looked up for any other issuer, so no fetch
   ever goes to an address a caller chose;
4. the key named by `kid`, of the type `alg` needs (RSA for RS256, P-256 for ES256);
5. the signature (pyjwt, with exactly the header's algorithm);
6. `aud` is exactly one of the issuer's audiences (a string or a one-element list);
7. `exp` and `iat` are present, `nbf` when present, all with LEEWAY seconds of skew, by the
   injected clock; `exp - iat` is at most the issuer's maximum lifetime.
The claims are the answer; matching them against a robot's rules is the caller's
(`tokenserver.domain.claims.match_rule`).

Keys come from the issuer's `jwks_file` when it has one, else from OIDC discovery
(`{url}/.well-known/openid-configuration`, whose `issuer` must be the URL exactly) and the
JWKS it names. They are cached per issuer by `kid`:
- an unknown `kid` fetches again, at most once per REFETCH_INTERVAL per issuer (however many
  tokens with made-up kids arrive), and concurrent verifications share one fetch;
- a fetch that fails, or answers no usable key, changes nothing: the cached keys keep working;
- a successful fetch replaces the set (a key the issuer dropped is no longer accepted), and
  keys older than KEYS_MAX_AGE are refreshed in the background while they keep serving.
Fetches have a timeout, a size limit, verify TLS (against the issuer's `ca_file` when set)
and follow no redirect; `http://` is fetched only from a loopback host.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tokenserver.domain.claims import MAX_TOKEN_BYTES, unverified
from tokenserver.domain.federation import ALGORITHMS, Issuer
from tokenserver.domain.hosts import is_loopback
from tokenserver.domain.text import escape, truncate
from tokenserver.errors import FederationRefused
from tokenserver.keys import PublicKey

log = logging.getLogger("tokenserver.oidc")

# Clock skew allowed on `exp`, `iat` and `nbf`.
LEEWAY = 60
# An unknown kid fetches an issuer's keys again at most this often.
REFETCH_INTERVAL = 60.0
# Known keys are refreshed (in the background) once they are this old.
KEYS_MAX_AGE = 3600.0
DEFAULT_HTTP_TIMEOUT = 5.0
# A discovery document or JWKS is a few kilobytes; anything much larger is not one.
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 100
MIN_RSA_BITS = 2048
DISCOVERY_PATH = "/.well-known/openid-configuration"

# NOTE: pyjwt verifies with exactly the algorithm the header names, among these only.
_JWS = jwt.PyJWS(algorithms=list(ALGORITHMS), options={"enforce_minimum_key_length": True})


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key of an issuer, and the one algorithm it verifies."""

    algorithm: str
    public_key: PublicKey


class KeyFetchError(Exception):
    """An issuer's keys could not be fetched or read (logged; the cached keys stay)."""


def _shown(text: str, limit: int = 80) -> str:
    return "'" + truncate(escape(text, "'"), limit) + "'"


def _b64url_int(value: object, size: int | None = None) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url string")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError("not base64url") from e
    if size is not None and len(data) != size:
        raise ValueError("wrong length")
    return int.from_bytes(data, "big")


def jwk_key(jwk: Mapping[str, object]) -> VerificationKey:
    """The verification key a JWK describes; ValueError when it is none we accept: RSA of at
    least MIN_RSA_BITS for RS256, EC on P-256 for ES256, meant for signatures (`use` sig,
    `key_ops` with verify, `alg` when given matching the type)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        algorithm = "RS256"
        n = _b64url_int(jwk.get("n"))
        e = _b64url_int(jwk.get("e"))
        if n.bit_length() < MIN_RSA_BITS:
            raise ValueError(f"RSA key shorter than {MIN_RSA_BITS} bits")
        public_key: PublicKey = rsa.RSAPublicNumbers(e, n).public_key()
    elif kty == "EC" and jwk.get("crv") == "P-256":
        algorithm = "ES256"
        x = _b64url_int(jwk.get("x"), 32)
        y = _b64url_int(jwk.get("y"), 32)
        public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    else:
        raise ValueError("neither an RSA key nor an EC key on P-256")
    if jwk.get("alg", algorithm) != algorithm:
        raise ValueError(f"a {kty} key for another algorithm than {algorithm}")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signature key (use)")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise ValueError("not a verification key (key_ops)")
    return VerificationKey(algorithm, public_key)


def jwks_keys(document: object) -> dict[str, VerificationKey]:
    """The usable keys of a JWKS document, by kid. Keys without a kid, keys we do not accept
    and kids that appear twice (which key would it be?) are left out; KeyFetchError when the
    document is not a JWKS at all."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFetchError("not a JWKS (no list of keys)")
    found: dict[str, VerificationKey] = {}
    twice: set[str] = set()
    for jwk in document["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = jwk_key(jwk)
        except (ValueError, TypeError) as e:
            log.info("JWKS key %s left out: %s", _shown(kid), e)
            continue
        if kid in found:
            twice.add(kid)
        found[kid] = key
    for kid in twice:
        log.warning("JWKS key %s left out: its kid names two keys", _shown(kid))
        del found[kid]
    return found


def fetchable(url: str) -> bool:
    """Whether keys may be fetched from `url`: https, or http on a loopback host (a test's
    issuer, a node-local proxy)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback(host)


def keys_url_allowed(issuer_url: str, jwks_uri: str) -> bool:
    """Whether an issuer's discovery document may send the key fetch to `jwks_uri`: https,
    or plain http only for an http issuer on loopback and on its own host and port. Never a
    downgrade: an https issuer's keys come over https, and a discovery document cannot aim
    a plain request at another local service."""
    try:
        keys, own = urlsplit(jwks_uri), urlsplit(issuer_url)
        keys_port, own_port = keys.port, own.port
    except ValueError:
        return False
    if not fetchable(jwks_uri):
        return False
    if keys.scheme == "https":
        return True
    return own.scheme == "http" and (keys.hostname, keys_port) == (own.hostname, own_port)


def _read_jwks_file(path: str) -> object:
    try:
        with Path(path).open("rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as e:
        raise KeyFetchError(f"the JWKS file {path} could not be read: {e.strerror}") from e
    if len(data) > MAX_DOCUMENT_BYTES:
        raise KeyFetchError(f"the JWKS file {path} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise KeyFetchError(f"the JWKS file {path} is not JSON") from e


@dataclass(eq=False)
class _IssuerKeys:
    """One issuer's cached keys. `source` is what they were fetched by: when the issuer's
    settings change (removed and added again, another JWKS file or CA), they are dropped."""

    source: tuple[object, ...]
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    fetched_at: float | None = None  # the last fetch that answered keys
    attempted_at: float | None = None  # the last fetch started
    fetch: asyncio.Task[None] | None = None


def _number(claims: Mapping[str, object], name: str) -> float | int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class IdTokenVerifier:
    """Verifies ID tokens of trusted issuers (see the module's doc for the checks).

    `http_timeout` bounds each request to an issuer (discovery, JWKS); `clock` gives the
    time of every check (token times, fetch intervals, key age). One instance serves the
    whole process: it holds the key caches and one HTTP session; `close()` releases them.
    """

    def __init__(
        self,
        *,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http_timeout = http_timeout
        self._clock = clock
        self._issuers: dict[str, _IssuerKeys] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ssl_contexts: dict[str | None, ssl.SSLContext] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def verify(self, token: str, issuer: Issuer) -> dict[str, object]:
        """The claims of `token`, an ID token `issuer` signed for one of its audiences and
        still valid; FederationRefused (with its reason) otherwise. Raises nothing else."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
            raise FederationRefused(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
        parsed = unverified(token)
        if parsed is None:
            raise FederationRefused("the token is not a JWT")
        header, claims = parsed.header, parsed.claims
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            shown = _shown(alg, 20) if isinstance(alg, str) else "no algorithm"
            raise FederationRefused(
                f"the token's algorithm is {shown}: only {', '.join(ALGORITHMS)} are allowed"
            )
        if "crit" in header:
            # RFC 7515: an extension we do not know of but must understand: refuse.
            raise FederationRefused("the token's header has critical extensions (crit)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise FederationRefused("the token's header names no key (kid)")
        iss = claims.get("iss")
        if iss != issuer.url:
            shown = _shown(iss) if isinstance(iss, str) else "missing or not text"
            raise FederationRefused(f"the token's iss is {shown}, not the issuer's URL")
        key = await self._key(issuer, kid)
        if key.algorithm != alg:
            raise FederationRefused(
                f"the key {_shown(kid)} is for {key.algorithm}, the token says {alg}"
            )
        try:
            _JWS.decode_complete(token, key=key.public_key, algorithms=[alg])
        except jwt.PyJWTError:
            raise FederationRefused("the token's signature is invalid") from None
        except Exception:
            log.exception("pyjwt failed on a token of issuer %s", escape(issuer.name))
            raise FederationRefused("the token's signature is invalid") from None
        try:
            self._check_audience(claims, issuer)
            self._check_times(claims, issuer)
        except FederationRefused as refused:
            refused.signed = True  # a genuine token of the issuer: say why
            raise
        return claims

    @staticmethod
    def _check_audience(claims: Mapping[str, object], issuer: Issuer) -> None:
        aud = claims.get("aud")
        if isinstance(aud, list):
            # NOTE: a token for several audiences could be replayed by any of them.
            if len(aud) != 1:
                raise FederationRefused(
                    "the token's aud must be one audience, it lists "
                    + ("none" if not aud else str(len(aud)))
                )
            aud = aud[0]
        if not isinstance(aud, str):
            raise FederationRefused("the token has no aud")
        if aud not in issuer.audiences:
            raise FederationRefused(f"the token's aud {_shown(aud)} is not accepted")

    def _check_times(self, claims: Mapping[str, object], issuer: Issuer) -> None:
        now = self._clock()
        exp = _number(claims, "exp")
        iat = _number(claims, "iat")
        if exp is None:
            raise FederationRefused("the token has no exp (a number)")
        if iat is None:
            raise FederationRefused("the token has no iat (a number)")
        if now >= exp + LEEWAY:
            raise FederationRefused("the token expired")
        if iat > now + LEEWAY:
            raise FederationRefused("the token's iat is in the future")
        if "nbf" in claims:
            nbf = _number(claims, "nbf")
            if nbf is None:
                raise FederationRefused("the token's nbf is not a number")
            if nbf > now + LEEWAY:
                raise FederationRefused("the token is not valid yet (nbf)")
        if exp <= iat:
            raise FederationRefused("the token's exp is not after its iat")
        if exp - iat > issuer.max_token_lifetime:
            raise FederationRefused(
                f"the token lives longer (exp - iat) than the issuer's maximum of "
                f"{issuer.max_token_lifetime} seconds"
            )

    # Keys.

    def _entry(self, issuer: Issuer) -> _IssuerKeys:
        source = (issuer.id, issuer.jwks_file, issuer.ca_file)
        entry = self._issuers.get(issuer.url)
        if entry is None or entry.source != source:
            entry = _IssuerKeys(source)
            self._issuers[issuer.url] = entry
        return entry

    def _may_fetch(self, entry: _IssuerKeys, now: float) -> bool:
        if entry.fetch is not None:
            return False
        last = entry.attempted_at
        # A clock set back must not stop fetches for as long as it went back.
        return last is None or now - last >= REFETCH_INTERVAL or now < last

    def _start_fetch(self, issuer: Issuer, entry: _IssuerKeys, now: float) -> asyncio.Task[None]:
        entry.attempted_at = now
        task = asyncio.get_running_loop().create_task(self._fetch(issuer, entry))
        entry.fetch = task
        self._tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if entry.fetch is task:
                entry.fetch = None

        task.add_done_callback(done)
        return task

    async def _key(self, issuer: Issuer, kid: str) -> VerificationKey:
        entry = self._entry(issuer)
        now = self._clock()
        key = entry.keys.get(kid)
        if key is not None:
            stale = entry.fetched_at is not None and now - entry.fetched_at >= KEYS_MAX_AGE
            if stale and self._may_fetch(entry, now):
                self._start_fetch(issuer, entry, now)  # not awaited: the key serves meanwhile
            return key
        task = entry.fetch
        if task is None and self._may_fetch(entry, now):
            task = self._start_fetch(issuer, entry, now)
        if task is not None:
            # NOTE: wait() neither cancels the fetch when this caller gives up (the others
            # wait for it too) nor raises what it raised.
            await asyncio.wait((task,))
        key = entry.keys.get(kid)
        if key is not None:
            return key
        if not entry.keys:
            raise FederationRefused("the issuer's keys are unavailable")
        raise FederationRefused(f"the issuer has no key {_shown(kid)}")

    async def _fetch(self, issuer: Issuer, entry: _IssuerKeys) -> None:
        """Fetch `issuer`'s keys into `entry`; never raises (failures are logged)."""
        try:
            if issuer.jwks_file is not None:
                document = await asyncio.to_thread(_read_jwks_file, issuer.jwks_file)
            else:
                document = await self._discover(issuer)
            keys = jwks_keys(document)
            if not keys:
                # NOTE: an empty set is most likely the issuer's passing mistake: caching it
                # would refuse every token until the next fetch is allowed.
                raise KeyFetchError("the JWKS holds no usable key")
            entry.keys = keys
            entry.fetched_at = self._clock()
        except Exception as e:  # whatever went wrong, the cached keys stay
            detail = str(e) if isinstance(e, KeyFetchError) else f"{type(e).__name__}: {e}"
            log.warning(
                "could not fetch the keys of issuer %s (%s): %s; %d cached keys stay",
                escape(issuer.name),
                escape(issuer.url),
                escape(truncate(detail, 300)),
                len(entry.keys),
            )

    async def _discover(self, issuer: Issuer) -> object:
        if not fetchable(issuer.url):
            raise KeyFetchError("the issuer's URL is neither https nor http on a loopback host")
        config = await self._get_json(issuer.url.rstrip("/") + DISCOVERY_PATH, issuer)
        if not isinstance(config, dict):
            raise KeyFetchError("the discovery document is not a JSON object")
        if config.get("issuer") != issuer.url:
            # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was
            # fetched for, exactly.
            raise KeyFetchError("the discovery document's issuer is not the issuer's URL")
        jwks_uri = config.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not keys_url_allowed(issuer.url, jwks_uri):
            raise KeyFetchError(
                "the discovery document's jwks_uri is not an https URL (or, for an http "
                "issuer on loopback, on the issuer's own host and port)"
            )
        return await self._get_json(jwks_uri, issuer)

    async def _ssl_context(self, ca_file: str | None) -> ssl.SSLContext:
        context = self._ssl_contexts.get(ca_file)
        if context is None:
            # Loading a CA bundle reads files: off the event loop.
            context = await asyncio.to_thread(ssl.create_default_context, cafile=ca_file)
            self._ssl_contexts[ca_file] = context
        return context

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._http_timeout),
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            )
        return self._session

    async def _get_json(self, url: str, issuer: Issuer) -> Any:
        context = await self._ssl_context(issuer.ca_file)
        async with self._http().get(url, ssl=context, allow_redirects=False) as response:
            if response.status != 200:
                raise KeyFetchError(f"{url} answered HTTP {response.status}")
            length = response.content_length
            if length is not None and length > MAX_DOCUMENT_BYTES:
                raise KeyFetchError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeyFetchError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(bytes(body))
        except (ValueError, RecursionError) as e:
            raise KeyFetchError(f"{url} answered no JSON") from e

    async def close(self) -> None:
        """Stop fetches in flight and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
