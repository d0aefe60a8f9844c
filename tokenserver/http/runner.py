"""The runner `tokenserver serve` listens with: the app, and a JSON answer to what it cannot parse.

aiohttp answers a request it cannot parse (a malformed request line or header, a line too
long, a broken chunked body, TLS sent to the plain port) itself, before any middleware runs,
from `RequestHandler.handle_error`, in text that quotes the offending bytes: a padded cookie
came back to the sender, session token included, and in text/plain where every other error is
the JSON envelope. aiohttp has no setting for this (aio-libs/aiohttp#3287); its server makes
a `RequestHandler` per connection, so the runner's server makes ours instead.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from tokenserver.errors import FRAMEWORK_ERRORS, UNKNOWN
from tokenserver.http.errors import error_response
from tokenserver.http.observability import AccessLogger


def _unparsed(status: int, error: BaseException | None) -> str:
    """The message for a request aiohttp refused: what went wrong, never what was sent."""
    if not isinstance(error, HttpProcessingError):
        return FRAMEWORK_ERRORS.get(status, UNKNOWN).message
    if isinstance(error, BadHttpMethod):
        reason = "it does not start with an HTTP method (TLS sent to a plain-HTTP port?)"
    elif isinstance(error, LineTooLong):
        reason = "a line of its head is too long"
    else:
        reason = type(error).__name__
    return f"the request is not valid HTTP/1.1: {reason}"


class JsonErrorHandler(web.RequestHandler):
    """aiohttp's connection handler, answering in the JSON envelope what it answers itself."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own logs it (ParserErrorFilter keeps the bytes out of the log), and
        # refuses when an answer is under way already; its text answer is dropped.
        super().handle_error(request, status, exc, message)
        error = FRAMEWORK_ERRORS.get(status, UNKNOWN)
        response = error_response(status, error.code, _unparsed(status, exc))
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner `tokenserver serve` serves `app` with."""
    return _JsonErrorRunner(
        app, access_log=logging.getLogger("tokenserver.access"), access_log_class=AccessLogger
    )
