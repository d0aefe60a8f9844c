"""The one place errors become Harbor/registry JSON: `{"errors": [{"code", "message"}]}`."""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

from tokenserver.domain.text import escape
from tokenserver.errors import TokenServerError, TooManyRequests, Unauthorized

log = logging.getLogger("tokenserver.http")

REALM = web.AppKey("realm", str)


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)


def _status_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.upper().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "UNKNOWN"


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
        response = error_response(e.status, _status_code(e.status), e.reason)
        for name in ("Allow", "Retry-After"):
            if name in e.headers:
                response.headers[name] = e.headers[name]
        return response
    except Exception:
        log.exception("internal error serving %s %s", request.method, escape(request.path, " "))
        return error_response(500, "UNKNOWN", "internal server error")
