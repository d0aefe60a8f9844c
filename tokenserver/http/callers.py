"""Who is calling the management API: Basic credentials (user or robot), the web page's
session cookie (with its CSRF token on changes), or nobody."""

from __future__ import annotations

from aiohttp import web

from tokenserver.domain.credentials import parse_basic
from tokenserver.domain.models import ANONYMOUS, Principal, PrincipalKind
from tokenserver.domain.secrets import Secret
from tokenserver.errors import Forbidden, Unauthorized
from tokenserver.http.appkeys import CLIENT, RUNTIME
from tokenserver.services.sessions import check_csrf

SESSION_COOKIE = "sid"
CSRF_HEADER = "X-Harbor-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def actor(request: web.Request) -> Principal:
    """The caller: a user or robot from Basic credentials, a user from the web page's session
    cookie, or anonymous without either. A change made with the cookie must carry the
    session's CSRF token in X-Harbor-CSRF-Token (403 otherwise). A robot's previous secret
    is refused here (403): it logs in to the registry only."""
    runtime = request.app[RUNTIME]
    credentials = parse_basic(request.headers.get("Authorization"))
    if credentials is not None:
        principal = await runtime.authenticator.authenticate(credentials, request[CLIENT])
        if principal.previous_secret:
            # NOTE: the previous secret is kept so that clients still on it can pull and push
            # while they move; it is the one that may have leaked (why it was refreshed).
            # With the API it could refresh the secret, make robots or rules that outlive
            # it: never a way to a credential of its own.
            raise Forbidden(
                f"the previous secret of {principal.name} only logs in to the registry: "
                "use its current secret"
            )
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return ANONYMOUS
    session = Secret(cookie)
    principal = await runtime.sessions.authenticate(session)
    if request.method not in _SAFE_METHODS:
        check_csrf(session, request.headers.get(CSRF_HEADER))
    return principal


async def authenticated(request: web.Request) -> Principal:
    """The caller, who must not be anonymous (401). Every change needs an account: asked
    first, before the body or the path is read, an anonymous caller learns nothing (neither
    whether a project exists nor what a body lacks)."""
    principal = await actor(request)
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise Unauthorized("authentication required")
    return principal
