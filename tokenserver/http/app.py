"""`create_app(settings)`: one application for `tokenserver serve` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from tokenserver.config import Settings
from tokenserver.domain.credentials import parse_basic
from tokenserver.http.api import RUNTIME, add_routes
from tokenserver.http.errors import REALM, error_middleware
from tokenserver.http.input import MAX_BODY_BYTES
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.tokens import TokenService
from tokenserver.services.usage import FLUSH_SECONDS

TOKENS = web.AppKey("tokens", TokenService)


async def token(request: web.Request) -> web.Response:
    """GET /service/token (REFERENCE.md §1)."""
    query = request.query
    issued = await request.app[TOKENS].request(
        parse_basic(request.headers.get("Authorization")),
        query.getall("scope", []),
        query.get("service"),
        request.remote or "",
    )
    return web.json_response(
        {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _flush_usage(runtime: Runtime) -> None:
    """Write robots' last use every FLUSH_SECONDS; open_runtime writes the rest at exit."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await runtime.usage.flush()
        except Exception:
            logging.getLogger("tokenserver").exception("could not record robot use")


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[REALM] = settings.realm

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(settings, sign=True) as runtime:
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
            flusher = asyncio.create_task(_flush_usage(runtime))
            try:
                yield
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_get("/service/token", token)
    app.router.add_get("/healthz", health)
    add_routes(app)
    return app
