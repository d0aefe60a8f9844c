"""The Robot Accounts web page: static files shipped in the package, and the session login
it uses. Everything else the page does goes through the documented /api/v2.0 endpoints."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from tokenserver.domain.models import Principal
from tokenserver.domain.secrets import Secret
from tokenserver.errors import BadRequest, Unauthorized
from tokenserver.http.api import rt
from tokenserver.http.appkeys import CLIENT, FORWARDED_HTTPS
from tokenserver.http.callers import CSRF_HEADER, SESSION_COOKIE
from tokenserver.http.input import json_object
from tokenserver.services.sessions import csrf_token

STATIC = Path(__file__).parent / "static"
# The page's modules and style sheet: only these names are served.
_FILES = {
    **{
        f"{name}.js": "text/javascript"
        for name in (
            "app",
            "core",
            "permissions",
            "robots",
            "projects",
            "federation",
            "webhooks",
            "pullsecrets",
        )
    },
    "app.css": "text/css",
}
# NOTE: the page needs nothing from elsewhere: scripts, styles, images and connections are
# limited to this origin, and no other site may frame it (clickjacking).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: web.Request) -> web.Response:
    return web.Response(
        body=(STATIC / "index.html").read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers=_PAGE_HEADERS,
    )


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound()
    return web.Response(
        body=(STATIC / name).read_bytes(),
        content_type=_FILES[name],
        charset="utf-8",
        headers=_PAGE_HEADERS,
    )


def _session_json(request: web.Request, principal: Principal, session: Secret) -> dict[str, object]:
    assert principal.user is not None  # sessions belong to users only
    return {
        "username": principal.name,
        "user_id": principal.user.id,
        "sysadmin": principal.sysadmin,
        "csrf_token": csrf_token(session),
        "name_prefix": rt(request).settings.robots.name_prefix,
        # The robot dialog shows what an empty token lifetime means, and the bound.
        "token_lifetime": rt(request).settings.token.lifetime,
        "token_max_lifetime": rt(request).settings.token.max_lifetime,
        # The Kubernetes pull secret's default registry, as the command line's.
        "registry": rt(request).settings.server.registry_host,
    }


async def login(request: web.Request) -> web.Response:
    """POST /c/login with JSON {"principal", "password"}: a session cookie for a user.

    JSON only: a cross-site form cannot send it without a CORS preflight, which fails, so a
    page elsewhere cannot log a visitor in under its own account (login CSRF).
    """
    if request.content_type != "application/json":
        raise BadRequest("expected an application/json body")
    data = await json_object(request)
    username, password = data.get("principal"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise Unauthorized("user name and password are required")
    runtime = rt(request)
    session, principal = await runtime.sessions.login(username, Secret(password), request[CLIENT])
    response = web.json_response(
        _session_json(request, principal, session),
        headers={CSRF_HEADER: csrf_token(session)},
    )
    response.set_cookie(
        SESSION_COOKIE,
        session.reveal(),
        max_age=runtime.settings.web.session_lifetime,
        path="/",
        httponly=True,
        samesite="Strict",
        # Behind a TLS-terminating proxy the connection here is plain HTTP; the proxy's
        # word (trusted proxies only) that the browser used HTTPS counts too.
        secure=request.secure or request.get(FORWARDED_HTTPS, False),
    )
    return response


async def current_session(request: web.Request) -> web.Response:
    """GET /c/session: who is logged in, with the CSRF token (after a page reload)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("not logged in")
    session = Secret(cookie)
    principal = await rt(request).sessions.authenticate(session)
    return web.json_response(_session_json(request, principal, session))


async def logout(request: web.Request) -> web.Response:
    """GET or POST /c/log_out: end the session (Harbor's UI uses GET)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await rt(request).sessions.logout(Secret(cookie))
    response = web.json_response({})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def add_web_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/ui/{name}", static)
    r.add_post("/c/login", login)
    r.add_get("/c/session", current_session, allow_head=False)
    r.add_get("/c/log_out", logout, allow_head=False)
    r.add_post("/c/log_out", logout)
