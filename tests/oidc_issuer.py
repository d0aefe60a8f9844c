"""A fake OIDC issuer for the tests: aiohttp on loopback serving discovery and a JWKS, with an
RSA and a P-256 key generated at start, minting ID tokens shaped like GitHub Actions', GitLab
CI's and Kubernetes' (see `github_claims`, `gitlab_claims`, `kubernetes_claims`).

Knobs (plain attributes, settable from any thread): `outage` (an HTTP status both endpoints
answer), `empty_keys` (the JWKS lists no key), `discovery_issuer` (what discovery claims to be
the issuer), `jwks_uri` (where discovery points), `extra_jwks` (raw JWKs published too),
`delay` (seconds each answer waits); `hold()`/`release()` keep answers waiting until released;
`rotate()` makes a new key and publishes it; `refuse_connections()`/`accept_connections()`
close and reopen the listening socket. Counters: `discovery_fetches`, `jwks_fetches`.

In async tests use the `oidc_issuer` fixture (tests/conftest.py) or `async with
FakeIssuer()`. In synchronous tests (end to end) `with ThreadedIssuer() as issuer:` runs it
on its own loop in a background thread; `issuer.url` and `issuer.mint(...)` work from the
test's thread, and `ThreadedIssuer.run(coroutine)` runs a coroutine (a knob) on its loop.
`write_jwks(path)` writes the published keys for an issuer's `--jwks-file`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import hashlib
import hmac
import ipaddress
import itertools
import json
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tokenserver.domain.federation import DEFAULT_MAX_TOKEN_LIFETIME, Issuer
from tokenserver.keys import PrivateKey, generate_private_key, public_jwk

T = TypeVar("T")
AUDIENCE = "tokenserver"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""A claim or header value that `mint` leaves out (`mint(claims={"exp": OMIT})`)."""


def github_claims(
    *,
    repository: str = "acme/app",
    repository_id: str = "7654321",
    repository_owner_id: str = "1234567",
    ref: str = "refs/heads/main",
    event_name: str = "push",
    environment: str | None = None,
    sha: str = "a" * 40,
    run_id: str = "9876543210",
    **more: object,
) -> dict[str, object]:
    """Claims shaped like a GitHub Actions ID token's (GitHub sends its ids as strings)."""
    owner = repository.split("/", 1)[0]
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    sub = f"repo:{repository}:" + (
        f"environment:{environment}" if environment is not None else f"ref:{ref}"
    )
    claims: dict[str, object] = {
        "sub": sub,
        "repository": repository,
        "repository_id": repository_id,
        "repository_owner": owner,
        "repository_owner_id": repository_owner_id,
        "repository_visibility": "private",
        "ref": ref,
        "ref_type": ref_type,
        "ref_protected": "true",
        "sha": sha,
        "event_name": event_name,
        "workflow": "build",
        "workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
        "job_workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
        "run_id": run_id,
        "run_number": "12",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "runner_environment": "github-hosted",
    }
    if environment is not None:
        claims["environment"] = environment
    claims.update(more)
    return claims


def gitlab_claims(
    *,
    project_path: str = "acme/app",
    project_id: str = "4242",
    namespace_id: str = "77",
    ref: str = "main",
    ref_type: str = "branch",
    sha: str = "b" * 40,
    pipeline_id: str = "1234567890",
    **more: object,
) -> dict[str, object]:
    """Claims shaped like a GitLab CI `id_tokens:` token's."""
    namespace = project_path.rsplit("/", 1)[0]
    claims: dict[str, object] = {
        "sub": f"project_path:{project_path}:ref_type:{ref_type}:ref:{ref}",
        "namespace_id": namespace_id,
        "namespace_path": namespace,
        "project_id": project_id,
        "project_path": project_path,
        "user_id": "31",
        "user_login": "ci-user",
        "pipeline_id": pipeline_id,
        "pipeline_source": "push",
        "job_id": "555",
        "ref": ref,
        "ref_type": ref_type,
        "ref_path": f"refs/heads/{ref}" if ref_type == "branch" else f"refs/tags/{ref}",
        "ref_protected": "true",
        "ci_config_ref_uri": f"gitlab.example/{project_path}//.gitlab-ci.yml@refs/heads/{ref}",
        "sha": sha,
    }
    claims.update(more)
    return claims


def kubernetes_claims(
    *,
    namespace: str = "ci",
    serviceaccount: str = "builder",
    pod: str = "builder-7d4b9",
    node: str = "node-1",
    **more: object,
) -> dict[str, object]:
    """Claims shaped like a projected Kubernetes service account token's, with the nested
    `kubernetes.io` claim (a key holding a dot)."""
    claims: dict[str, object] = {
        "sub": f"system:serviceaccount:{namespace}:{serviceaccount}",
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": serviceaccount, "uid": str(uuid.uuid4())},
            "pod": {"name": pod, "uid": str(uuid.uuid4())},
            "node": {"name": node, "uid": str(uuid.uuid4())},
        },
    }
    claims.update(more)
    return claims


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: Mapping[str, object], claims: Mapping[str, object], signature: bytes = b""
) -> str:
    """A compact JWS with exactly this header, claims and signature: for tokens no honest
    library makes (`alg: none`, HMAC with a public key, a wrong signature)."""
    return ".".join(
        (
            b64url(json.dumps(dict(header)).encode()),
            b64url(json.dumps(dict(claims)).encode()),
            b64url(signature),
        )
    )


def hmac_token(secret: bytes, header: Mapping[str, object], claims: Mapping[str, object]) -> str:
    """An HS256 token MACed with `secret`: the classic attack signs with the issuer's public
    key (its PEM, or its JWK) as the secret, hoping the verifier takes it as an HMAC key."""
    head = b64url(json.dumps(dict(header)).encode())
    body = b64url(json.dumps(dict(claims)).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


def sign(
    header: Mapping[str, object], claims: Mapping[str, object], key: PrivateKey, alg: str
) -> str:
    """A compact JWS of exactly `header` and `claims`, signed with `key` by `alg` (any
    asymmetric algorithm pyjwt knows): unlike `jwt.encode`, it checks nothing, so a test can
    sign what an issuer should never send."""
    head = b64url(json.dumps(dict(header)).encode())
    body = b64url(json.dumps(dict(claims)).encode())
    algorithm = jwt.algorithms.get_default_algorithms()[alg]
    signature = algorithm.sign(f"{head}.{body}".encode(), key)
    return f"{head}.{body}.{b64url(signature)}"


@functools.cache
def shared_keys() -> tuple[PrivateKey, PrivateKey]:
    """An RSA and a P-256 key generated once per test run: an RSA key costs tens of
    milliseconds, and most tests need an issuer, not a key no other test has."""
    return generate_private_key("RS256"), generate_private_key("ES256")


@dataclass(frozen=True)
class IssuerKey:
    kid: str
    alg: str
    private_key: PrivateKey

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key.public_key()), "kid": self.kid, "alg": self.alg,
                "use": "sig"}  # fmt: skip

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


_issuer_ids = itertools.count(1000)


def _tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key: (cert, key)."""
    key = generate_private_key("ES256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake OIDC issuer")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "issuer.crt", directory / "issuer.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeIssuer:
    """See the module's doc. `clock` is the time tokens are minted at (a test's FakeClock,
    or the wall clock); `tls` serves https with a self-signed certificate in `ca_file`;
    `path` is the URL's path (GitHub Enterprise's `/_services/token`); without `fresh_keys`
    the starting keys are the run's `shared_keys()` (the kids are still its own)."""

    def __init__(
        self,
        *,
        tls: bool = False,
        clock: Callable[[], float] = time.time,
        audience: str = AUDIENCE,
        path: str = "",
        fresh_keys: bool = True,
    ) -> None:
        self.clock = clock
        self.audience = audience
        self.tls = tls
        self._path = path.rstrip("/")
        if fresh_keys:
            rsa_key, ec_key = generate_private_key("RS256"), generate_private_key("ES256")
        else:
            rsa_key, ec_key = shared_keys()
        self.rsa = IssuerKey(f"rsa-{uuid.uuid4().hex[:8]}", "RS256", rsa_key)
        self.ec = IssuerKey(f"ec-{uuid.uuid4().hex[:8]}", "ES256", ec_key)
        # Every key ever made signs (a rotated-out key can still mint); `published` are in
        # the JWKS.
        self.keys: dict[str, IssuerKey] = {self.rsa.kid: self.rsa, self.ec.kid: self.ec}
        self.published: list[IssuerKey] = [self.rsa, self.ec]
        # Knobs.
        self.outage: int | None = None
        self.empty_keys = False
        self.discovery_issuer: str | None = None
        self.jwks_uri: str | None = None
        self.extra_jwks: list[dict[str, object]] = []
        self.delay = 0.0
        # Counters.
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.held = 0  # answers waiting for release()
        self._gate: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: str | None = None
        self._server_ssl: ssl.SSLContext | None = None
        if tls:
            self._directory = tempfile.TemporaryDirectory(prefix="oidc-issuer-")
            cert, key = _tls_files(Path(self._directory.name))
            self.ca_file = str(cert)
            self._server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._server_ssl.load_cert_chain(cert, key)

    # Serving.

    @property
    def url(self) -> str:
        """The issuer's URL: what its tokens' `iss` and its discovery document say."""
        if not self._port:
            raise RuntimeError("the fake issuer is not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}{self._path}"

    def issuer(self, name: str = "fake", **overrides: Any) -> Issuer:
        """The `Issuer` a system admin would configure for this fake."""
        fields: dict[str, Any] = {
            "id": next(_issuer_ids),
            "name": name,
            "url": self.url,
            "audiences": (self.audience,),
            "ca_file": self.ca_file,
            "max_token_lifetime": DEFAULT_MAX_TOKEN_LIFETIME,
        }
        fields.update(overrides)
        return Issuer(**fields)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get(self._path + "/.well-known/openid-configuration", self._discovery)
        app.router.add_get(self._path + "/jwks", self._jwks)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self.accept_connections()

    async def accept_connections(self) -> None:
        """Listen (again, on the same port once it had one)."""
        assert self._runner is not None
        if self._site is not None:
            return
        self._site = web.TCPSite(
            self._runner, "127.0.0.1", self._port, ssl_context=self._server_ssl
        )
        await self._site.start()
        if not self._port:
            self._port = self._runner.addresses[0][1]

    async def refuse_connections(self) -> None:
        """Close the listening socket: fetches find the port closed (connection refused)."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._gate is not None:
            self._gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        if self._directory is not None:
            self._directory.cleanup()

    async def __aenter__(self) -> FakeIssuer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def hold(self) -> None:
        """From now on answers wait until `release()`: a slow issuer, as slow as a test needs."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        """Let held answers go (callable from any thread)."""
        gate = self._gate
        self._gate = None
        if gate is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(gate.set)

    async def _answer(self, body: object) -> web.Response:
        gate = self._gate
        if gate is not None:
            self.held += 1
            try:
                await gate.wait()
            finally:
                self.held -= 1
        if self.delay and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.delay)
        if self.outage is not None:
            return web.json_response({"error": "outage"}, status=self.outage)
        return web.json_response(body)

    async def _discovery(self, request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        return await self._answer(
            {
                "issuer": self.discovery_issuer if self.discovery_issuer is not None else self.url,
                "jwks_uri": self.jwks_uri if self.jwks_uri is not None else self.url + "/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return await self._answer(self.jwks())

    # Keys and tokens.

    def jwks(self) -> dict[str, object]:
        """The JWKS as served now (the knobs included)."""
        if self.empty_keys:
            return {"keys": []}
        return {"keys": [key.jwk() for key in self.published] + list(self.extra_jwks)}

    def write_jwks(self, path: Path | str) -> Path:
        """Write the JWKS (as served now) to `path`, for an issuer's JWKS file."""
        target = Path(path)
        target.write_text(json.dumps(self.jwks()))
        return target

    def rotate(self, alg: str = "RS256", *, keep_old: bool = True) -> IssuerKey:
        """A new key for `alg`, published; the previous ones stay published unless
        `keep_old` is False (they can still mint: a token the issuer no longer vouches for)."""
        key = IssuerKey(f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, generate_private_key(alg))
        self.keys[key.kid] = key
        self.published = [*self.published, key] if keep_old else [key]
        if alg == "RS256":
            self.rsa = key
        else:
            self.ec = key
        return key

    def claims(
        self,
        claims: Mapping[str, object] | None = None,
        *,
        lifetime: int = 300,
        audience: str | list[str] | None = None,
        issued_at: float | None = None,
    ) -> dict[str, object]:
        """The claims `mint` signs: iss, aud, iat, nbf, exp, jti, then `claims` over them
        (a value OMIT leaves that claim out)."""
        now = int(self.clock() if issued_at is None else issued_at)
        payload: dict[str, object] = {
            "iss": self.url,
            "aud": self.audience if audience is None else audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        payload.update(claims or {})
        return {k: v for k, v in payload.items() if v is not OMIT}

    def mint(
        self,
        claims: Mapping[str, object] | None = None,
        *,
        alg: str = "RS256",
        kid: str | None = None,
        lifetime: int = 300,
        audience: str | list[str] | None = None,
        issued_at: float | None = None,
        header: Mapping[str, object] | None = None,
    ) -> str:
        """An ID token signed by this issuer's current key for `alg` (RSA for RS* and PS*, P-256
        for the others), or by the key `kid` (a
        `kid` it never made is put in the header and signed with the current key), living
        `lifetime` seconds from `issued_at` (the clock's now), for `audience` (the issuer's
        default). `header` adds or (with OMIT) removes header fields."""
        current = self.rsa if alg.startswith(("RS", "PS")) else self.ec
        key = self.keys.get(kid, current) if kid is not None else current
        headers: dict[str, object] = {
            "alg": alg,
            "typ": "JWT",
            "kid": kid if kid is not None else key.kid,
        }
        headers.update(header or {})
        payload = self.claims(claims, lifetime=lifetime, audience=audience, issued_at=issued_at)
        headers = {k: v for k, v in headers.items() if v is not OMIT}
        return sign(headers, payload, key.private_key, alg)


class ThreadedIssuer:
    """A FakeIssuer on its own event loop in a background thread, for synchronous tests:
    `with ThreadedIssuer() as issuer: issuer.mint(...)`."""

    def __init__(self, **options: Any) -> None:
        self.issuer = FakeIssuer(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-oidc-issuer", daemon=True
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the issuer's loop and answer its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def __enter__(self) -> FakeIssuer:
        self._thread.start()
        self.run(self.issuer.start())
        return self.issuer

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.run(self.issuer.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
