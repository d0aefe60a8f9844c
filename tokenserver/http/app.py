"""`create_app(settings)`: one application for `tokenserver serve` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from tokenserver.config import Settings
from tokenserver.http.api import add_routes
from tokenserver.http.appkeys import METRICS, PROXIES, REALM, RUNTIME, TOKENS
from tokenserver.http.errors import error_middleware
from tokenserver.http.health import health, ready
from tokenserver.http.input import MAX_BODY_BYTES
from tokenserver.http.observability import Metrics, metrics, observe
from tokenserver.http.proxies import ProxySettings
from tokenserver.http.token import oauth_token, token
from tokenserver.http.webui import add_web_routes
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.keyring import KEY_POLL_SECONDS
from tokenserver.services.throttle import SYNC_SECONDS
from tokenserver.services.usage import FLUSH_SECONDS
from tokenserver.services.webhooks import HttpSender, WebhookDelivery

# How often a server looks for robots whose expiry notices are due.
EXPIRY_SWEEP_SECONDS = 60


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


async def _sync_lockouts(runtime: Runtime) -> None:
    """Learn of the lockouts the other processes on the database began."""
    while True:
        try:
            await runtime.throttle.sync()
        except Exception:
            logging.getLogger("tokenserver").exception("could not read the shared lockouts")
        await asyncio.sleep(SYNC_SECONDS)


async def _sweep_expiry(runtime: Runtime) -> None:
    """Queue the robots' expiry notices as they fall due (each once, whichever replica
    sweeps first)."""
    while True:
        try:
            await runtime.robot_events.sweep_expiry()
        except Exception:
            logging.getLogger("tokenserver").exception("could not sweep robots' expiry")
        await asyncio.sleep(EXPIRY_SWEEP_SECONDS)


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    create_database: bool = True,
    shared_lockouts: bool = False,
) -> web.Application:
    """The server; `clock` is the token path's time, `create_database` whether a missing
    database is created, `shared_lockouts` whether other processes serve its SQLite database
    too (see `open_runtime`). It logs nothing at start: `tokenserver serve` says where it
    serves once it listens there."""
    app = web.Application(
        middlewares=[observe, error_middleware],
        client_max_size=MAX_BODY_BYTES,
        # Bodies are read as sent: a compressed one is refused (http/errors.py).
        handler_args={"auto_decompress": False},
    )
    app[METRICS] = Metrics(lambda: app.get(RUNTIME))
    app[REALM] = settings.server.realm
    app[PROXIES] = ProxySettings(settings.server.trusted_proxies, settings.server.forwarded_header)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(
            settings,
            sign=True,
            clock=clock,
            create_database=create_database,
            shared_lockouts=shared_lockouts,
        ) as runtime:
            assert runtime.tokens is not None
            app[RUNTIME] = runtime
            app[TOKENS] = runtime.tokens
            sender = HttpSender()
            delivery = WebhookDelivery(runtime.store, sender, clock, seal=runtime.header_seal)
            runtime.robot_events.wake = delivery.wake
            tasks = [
                asyncio.create_task(_flush_usage(runtime)),
                asyncio.create_task(_follow_keyring(runtime)),
                asyncio.create_task(delivery.run()),
                asyncio.create_task(_sweep_expiry(runtime)),
            ]
            if runtime.throttle.shared:
                tasks.append(asyncio.create_task(_sync_lockouts(runtime)))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await sender.close()

    app.cleanup_ctx.append(runtime_ctx)
    # NOTE: no HEAD (405 with Allow: GET, POST): a HEAD answer has no body, so a token, and
    # with offline_token=true a stored refresh token, would be issued for nobody.
    app.router.add_get("/service/token", token, allow_head=False)
    app.router.add_post("/service/token", oauth_token)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    add_routes(app)
    if settings.web.enabled:
        add_web_routes(app)
    return app
