"""The token endpoint: GET /service/token (Docker's token flow) and POST (OAuth2, and the
RFC 8693 token exchange)."""

from __future__ import annotations

import json

from aiohttp import web
from multidict import MultiDictProxy

from tokenserver.domain.credentials import Credentials, parse_basic
from tokenserver.domain.exchange import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    ROBOT_SECRET_TYPE,
    parse_exchange,
)
from tokenserver.domain.secrets import Secret
from tokenserver.errors import BadRequest, Unauthorized
from tokenserver.http.appkeys import CLIENT, GRANT, TOKEN_REQUEST, TOKENS
from tokenserver.http.input import form_fields
from tokenserver.http.observability import NO_STORE
from tokenserver.services.temporary_secrets import IssuedSecret
from tokenserver.services.tokens import ExchangeRequest, Grant, IssuedToken, TokenRequest

_OAUTH_GRANTS = {grant.value: grant for grant in (Grant.PASSWORD, Grant.REFRESH_TOKEN)}
_OAUTH_GRANTS[GRANT_TYPE] = Grant.TOKEN_EXCHANGE


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
    # NOTE: `observe` would add NO_STORE, as to every answer; given here, in the constructor,
    # it costs less on the hottest path (scripts/bench).
    return web.Response(body=body.encode(), content_type="application/json", headers=NO_STORE)


async def token(request: web.Request) -> web.Response:
    """GET /service/token: distribution's token protocol, as docker, skopeo and podman use it."""
    query = request.query
    grant = Grant.BASIC if "Authorization" in request.headers else Grant.ANONYMOUS
    request[GRANT] = grant
    credentials = parse_basic(request.headers.get("Authorization"))
    served = request[TOKEN_REQUEST] = TokenRequest(
        grant=grant,
        credentials=credentials,
        scopes=query.getall("scope", []),
        service=query.get("service"),
        address=request[CLIENT],
        client_id=query.get("client_id", ""),
        offline=query.get("offline_token", "").lower() == "true",
    )
    issued = await request.app[TOKENS].request(served)
    return _token_response(issued, oauth=False)


async def oauth_token(request: web.Request) -> web.Response:
    """POST /service/token: OAuth2 password and refresh_token grants."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadRequest("expected an application/x-www-form-urlencoded form")
    form = await form_fields(request)

    def field(name: str) -> str | None:
        return form.get(name)

    grant = _OAUTH_GRANTS.get(field("grant_type") or "")
    request[GRANT] = grant if grant is not None else "unknown"
    credentials = None
    refresh = None
    if grant is Grant.PASSWORD:
        username, password = field("username"), field("password")
        if not username or not password:
            raise Unauthorized("the password grant needs username and password")
        credentials = Credentials(username, Secret(password))
    elif grant is Grant.REFRESH_TOKEN:
        token = field("refresh_token")
        if not token:
            raise Unauthorized("the refresh_token grant needs refresh_token")
        refresh = Secret(token)
    elif grant is Grant.TOKEN_EXCHANGE:
        return await _exchange(request, form)
    else:
        raise BadRequest(f"grant_type must be password, refresh_token or {GRANT_TYPE}")
    served = request[TOKEN_REQUEST] = TokenRequest(
        grant=grant,
        credentials=credentials,
        refresh_token=refresh,
        scopes=form.getall("scope", []),
        service=field("service"),
        address=request[CLIENT],
        client_id=field("client_id") or "",
        offline=field("access_type") == "offline",
    )
    issued = await request.app[TOKENS].request(served)
    return _token_response(issued, oauth=True)


# The exchange's fields that may come more than once (RFC 8693: several targets; scopes as the
# other grants take them); any other field twice is a 400.
_REPEATABLE = frozenset({"scope", "resource", "audience"})


async def _exchange(request: web.Request, form: MultiDictProxy[str]) -> web.Response:
    """The RFC 8693 token exchange: an access token (`issued_token_type` access_token,
    `token_type` Bearer, the password grant's fields besides), or a temporary robot secret
    (`issued_token_type` tokenserver's robot-secret URN, `token_type` N_A: it is a password,
    not a bearer token; `username` names the robot it is the password of)."""
    for name in form:
        if name not in _REPEATABLE and (count := len(form.getall(name))) > 1:
            # NOTE: the first value would win here, where a proxy or an audit may read the last.
            raise BadRequest(f"{name[:100]} is given {count} times: give it once")
    exchange = parse_exchange(lambda name: form.getall(name, []))
    served = request[TOKEN_REQUEST] = ExchangeRequest(
        exchange,
        service=form.get("service"),
        address=request[CLIENT],
        client_id=form.get("client_id") or "",
        offline=form.get("access_type") == "offline",
    )
    issued = await request.app[TOKENS].exchange(served)
    body: dict[str, object]
    if isinstance(issued, IssuedSecret):
        body = {
            "access_token": issued.secret.reveal(),
            "issued_token_type": ROBOT_SECRET_TYPE,
            "token_type": "N_A",
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
            "username": issued.username,
        }
    else:
        body = {
            "access_token": issued.token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "scope": issued.scope,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        }
        if issued.refresh_token is not None:
            body["refresh_token"] = issued.refresh_token.reveal()
    return web.json_response(body, headers=NO_STORE)
