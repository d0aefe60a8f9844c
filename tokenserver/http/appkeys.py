"""Every typed key of the application's and the request's state, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tokenserver.http.proxies import ProxySettings
from tokenserver.runtime import Runtime
from tokenserver.services.tokens import ExchangeRequest, TokenRequest, TokenService

if TYPE_CHECKING:
    # NOTE: observability reads METRICS in its middleware, so it cannot be imported here.
    from tokenserver.http.observability import Metrics

# ---- application state, set by create_app ---------------------------------------------------

RUNTIME = web.AppKey("runtime", Runtime)
TOKENS = web.AppKey("tokens", TokenService)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
REALM = web.AppKey("realm", str)
PROXIES = web.AppKey("proxies", ProxySettings)

# ---- request state, set by the observe middleware and the token handlers --------------------

# The client's address, resolved once per request by the observe middleware: lockouts, logs
# and handlers use it, never request.remote.
CLIENT = web.RequestKey("client", str)
# A trusted proxy says the client came over HTTPS (set only behind trusted proxies).
FORWARDED_HTTPS = web.RequestKey("forwarded_https", bool)
REQUEST_ID = web.RequestKey("request_id", str)
# The token request's grant type (a `Grant`, or "unknown"), a label of the token metrics.
GRANT = web.RequestKey("grant", str)
# The token request the handler gave the token service: its `outcome` is the log line's.
TOKEN_REQUEST: web.RequestKey[TokenRequest | ExchangeRequest] = web.RequestKey("token_request")
# The observe middleware wrote the request's line (a token request's): the access log skips it.
LOGGED = web.RequestKey("logged", bool)
