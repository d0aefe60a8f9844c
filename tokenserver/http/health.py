"""Probes for the orchestrator: alive (/healthz) and ready for traffic (/readyz)."""

from __future__ import annotations

from aiohttp import web

from tokenserver.http.appkeys import RUNTIME


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
