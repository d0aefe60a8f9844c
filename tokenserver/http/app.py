"""`create_app(settings)`: one application for `tokenserver serve` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from tokenserver.config import Settings
from tokenserver.domain.credentials import Credentials, parse_basic
from tokenserver.domain.secrets import Secret
from tokenserver.errors import BadRequest, Unauthorized
from tokenserver.http.api import RUNTIME, add_routes
from tokenserver.http.errors import REALM, error_middleware
from tokenserver.http.input import MAX_BODY_BYTES, form_fields
from tokenserver.http.observability import GRANT, METRICS, NO_STORE, Metrics, observe
from tokenserver.http.proxies import CLIENT, PROXIES, ProxySettings
from tokenserver.http.webui import add_web_routes
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.keyring import KEY_POLL_SECONDS
from tokenserver.services.tokens import IssuedToken, TokenRequest, TokenService
from tokenserver.services.usage import FLUSH_SECONDS

TOKENS = web.AppKey("tokens", TokenService)


def _token_response(issued: IssuedToken, *, oauth: bool) -> web.Response:
    """GET answers `token` too, POST (OAuth2) `scope`; both the rest.

    Built by hand: json.dumps escaped the JWT (two copies in a GET answer) character by
    character, a visible share of a warm request (scripts/bench). The JWT (base64url and dots)
    and issued_at (digits and -:TZ) need no escaping by construction; the refresh token and the
    scope go through json.dumps.
    """
    token = issued.token
    head = '{"scope": ' + json.dumps(issued.scope) if oauth else '{"token": "' + token + '"'
    refresh = (
        ""
        if issued.refresh_token is None
        else ', "refresh_token": ' + json.dumps(issued.refresh_token.reveal())
    )
    body = (
        f'{head}, "access_token": "{token}", "expires_in": {issued.expires_in}, '
        f'"issued_at": "{issued.issued_at}"{refresh}}}'
    )
    # NOTE: `observe` adds Cache-Control: no-store, as to every answer.
    # NOTE: observe would add NO_STORE; given here, in the constructor, it costs less on the
    # hottest path (scripts/bench).
    return web.Response(body=body.encode(), content_type="application/json", headers=NO_STORE)


async def token(request: web.Request) -> web.Response:
    """GET /service/token (REFERENCE.md §1)."""
    query = request.query
    request[GRANT] = "basic" if "Authorization" in request.headers else "anonymous"
    credentials = parse_basic(request.headers.get("Authorization"))
    issued = await request.app[TOKENS].request(
        TokenRequest(
            grant=request[GRANT],
            credentials=credentials,
            scopes=query.getall("scope", []),
            service=query.get("service"),
            address=request[CLIENT],
            client_id=query.get("client_id", ""),
            offline=query.get("offline_token", "").lower() == "true",
        )
    )
    return _token_response(issued, oauth=False)


async def oauth_token(request: web.Request) -> web.Response:
    """POST /service/token: OAuth2 password and refresh_token grants (REFERENCE.md §2)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("expected an application/x-www-form-urlencoded form")
    form = await form_fields(request)

    def field(name: str) -> str | None:
        return form.get(name)

    grant = field("grant_type")
    request[GRANT] = grant if grant in ("password", "refresh_token") else "unknown"
    credentials = None
    refresh = None
    if grant == "password":
        username, password = field("username"), field("password")
        if not username or not password:
            raise Unauthorized("the password grant needs username and password")
        credentials = Credentials(username, Secret(password))
    elif grant == "refresh_token":
        token = field("refresh_token")
        if not token:
            raise Unauthorized("the refresh_token grant needs refresh_token")
        refresh = Secret(token)
    else:
        raise BadRequest("grant_type must be password or refresh_token")
    scopes = form.getall("scope", [])
    issued = await request.app[TOKENS].request(
        TokenRequest(
            grant=grant,
            credentials=credentials,
            refresh_token=refresh,
            scopes=scopes,
            service=field("service"),
            address=request[CLIENT],
            client_id=field("client_id") or "",
            offline=field("access_type") == "offline",
        )
    )
    return _token_response(issued, oauth=True)


async def health(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """The database answers and the signing key is loaded: ready for traffic."""
    runtime = request.app.get(RUNTIME)
    problems = []
    if runtime is None or runtime.tokens is None:
        problems.append("signing key not loaded")
    else:
        try:
            await runtime.store.ping()
        except Exception:
            problems.append("database does not answer")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def _flush_usage(runtime: Runtime) -> None:
    """Write robots' last use every FLUSH_SECONDS; open_runtime writes the rest at exit."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await runtime.usage.flush()
        except Exception:
            logging.getLogger("tokenserver").exception("could not record robot use")


async def _follow_keyring(runtime: Runtime) -> None:
    """Switch signing keys when `tokenserver keys activate` changes the active key."""
    assert runtime.signer is not None
    signer = runtime.signer
    log = logging.getLogger("tokenserver")
    seen: int | None = None
    while True:
        await asyncio.sleep(KEY_POLL_SECONDS)
        try:
            record = await runtime.keyring.active()
            if record is None or record.id == seen:
                continue
            key = await asyncio.to_thread(runtime.keyring.load, record)
            seen = record.id
            if key.kid != signer.key.kid:
                signer.set_key(key)
                log.info("signing with key %d (kid %s)", record.id, key.kid)
        except Exception:
            log.exception("could not follow the keyring")


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The server; `clock` is the token path's time (see `open_runtime`)."""
    app = web.Application(middlewares=[observe, error_middleware], client_max_size=MAX_BODY_BYTES)
    app[METRICS] = Metrics(lambda: app.get(RUNTIME))
    app[REALM] = settings.realm
    app[PROXIES] = ProxySettings(settings.trusted_proxies, settings.forwarded_header)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(settings, sign=True, clock=clock) as runtime:
            assert runtime.tokens is not None
            app[RUNTIME] = runtime
            app[TOKENS] = runtime.tokens
            logging.getLogger("tokenserver").info(
                "serving on %s:%d, realm %s, service %s, issuer %s, %s",
                settings.host,
                settings.port,
                settings.realm,
                settings.service,
                settings.issuer,
                settings.algorithm,
            )
            tasks = [
                asyncio.create_task(_flush_usage(runtime)),
                asyncio.create_task(_follow_keyring(runtime)),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.cleanup_ctx.append(runtime_ctx)
    # NOTE: no HEAD (405 with Allow: GET, POST): a HEAD answer has no body, so a token, and
    # with offline_token=true a stored refresh token, would be issued for nobody.
    app.router.add_get("/service/token", token, allow_head=False)
    app.router.add_post("/service/token", oauth_token)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    add_routes(app)
    if settings.web_enabled:
        add_web_routes(app)
    return app
