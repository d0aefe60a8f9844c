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
    TokenServerError,
    TooManyRequests,
    Unauthorized,
)
from tokenserver.http.appkeys import REALM

log = logging.getLogger("tokenserver.http")


def error_response(status: int, code: str, message: str) -> web.Response:
    body = ERRORS.shape(errors=[ERROR.shape(code=code, message=message)])
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Unauthorized as e:
        response = error_response(e.status, e.code, e.message)
        # NOTE: not for the web page's own requests: a Basic challenge makes the browser open
        # its login prompt (headless: wait forever) instead of handing the 401 to the page.
        if request.headers.get("X-Requested-With") != "XMLHttpRequest":
            response.headers["WWW-Authenticate"] = f'Basic realm="{request.app[REALM]}"'
        return response
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
