"""The one place errors become Harbor/registry JSON: `{"errors": [{"code", "message"}]}`."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from tokenserver.domain.harbor_schema import ERROR, ERRORS
from tokenserver.domain.text import escape
from tokenserver.errors import (
    FRAMEWORK_ERRORS,
    UNKNOWN,
    NotFound,
    TokenServerError,
    TooManyRequests,
    Unauthorized,
)
from tokenserver.http.appkeys import REALM
from tokenserver.http.callers import SESSION_COOKIE

log = logging.getLogger("tokenserver.http")


def error_response(status: int, code: str, message: str) -> web.Response:
    body = ERRORS.shape(errors=[ERROR.shape(code=code, message=message)])
    return web.json_response(body, status=status)


def _unauthorized(request: web.Request, error: Unauthorized) -> web.Response:
    response = error_response(error.status, error.code, error.message)
    # NOTE: not for the web page's own requests: a Basic challenge makes the browser open
    # its login prompt (headless: wait forever) instead of handing the 401 to the page.
    if request.headers.get("X-Requested-With") != "XMLHttpRequest":
        response.headers["WWW-Authenticate"] = f'Basic realm="{request.app[REALM]}"'
    return response


def _anonymous(request: web.Request) -> bool:
    """The request carries no credentials at all (neither Basic nor the session cookie)."""
    return "Authorization" not in request.headers and not request.cookies.get(SESSION_COOKIE)


def _encoded(request: web.Request) -> bool:
    """The request has a body in a Content-Encoding other than identity.

    The server does not inflate request bodies (the app sets `auto_decompress` off): no
    registry or Harbor client compresses them, and a body that is not what its encoding
    says made aiohttp raise inside the handler's read (a 500), or answer in plain text."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    return request.can_read_body and encoding not in ("", "identity")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _encoded(request):
        error = FRAMEWORK_ERRORS[415]
        return error_response(
            error.status, error.code, "request bodies are taken uncompressed: drop Content-Encoding"
        )
    try:
        return await handler(request)
    except Unauthorized as e:
        return _unauthorized(request, e)
    except NotFound as e:
        # An anonymous caller may read public projects, but whether a private project, a
        # robot or a user exists is not for it to learn: what it cannot see asks for
        # credentials, as what exists and is private does (with the same message).
        if _anonymous(request):
            return _unauthorized(request, Unauthorized("authentication required"))
        return error_response(e.status, e.code, e.message)
    except TooManyRequests as e:
        response = error_response(e.status, e.code, e.message)
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    except TokenServerError as e:
        return error_response(e.status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        # NOTE: the declared code and message, not aiohttp's reason: it is the standard
        # library's status phrase, which changes between Python versions.
        error = FRAMEWORK_ERRORS.get(e.status, UNKNOWN)
        response = error_response(e.status, error.code, error.message)
        for name in ("Allow", "Retry-After"):
            if name in e.headers:
                response.headers[name] = e.headers[name]
        return response
    except Exception:
        log.exception("internal error serving %s %s", request.method, escape(request.path, " "))
        return error_response(UNKNOWN.status, UNKNOWN.code, UNKNOWN.message)
