"""Metrics (Prometheus, via prometheus-client), request ids, the access log and the token
requests' log line."""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol, TextIO, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tokenserver.domain.models import SECONDS_PER_DAY
from tokenserver.domain.text import escape, printable, quote
from tokenserver.errors import StorageError
from tokenserver.http.appkeys import (
    CLIENT,
    FORWARDED_HTTPS,
    GRANT,
    LOGGED,
    METRICS,
    PROXIES,
    REQUEST_ID,
    RUNTIME,
    TOKEN_REQUEST,
)
from tokenserver.http.proxies import resolve
from tokenserver.runtime import Runtime
from tokenserver.services.tokens import Outcome
from tokenserver.services.turns import TurnBatch

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class _RuntimeCollector(Collector):
    """Counters the services keep themselves, read at scrape time."""

    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime()
        if runtime is None:
            return
        cache = CounterMetricFamily(
            "tokenserver_kdf_cache", "Secret verifications by cache result", labels=["result"]
        )
        cache.add_metric(["hit"], runtime.verifier.hits)
        cache.add_metric(["miss"], runtime.verifier.misses)
        yield cache
        yield CounterMetricFamily(
            "tokenserver_authentication_failures",
            "Failed authentications (token endpoint, API, web login, old passwords)",
            value=runtime.throttle.failures,
        )
        yield CounterMetricFamily(
            "tokenserver_lockouts",
            "Times an account/address pair or an address was locked out",
            value=runtime.throttle.lockouts,
        )


class _TokenStats(Collector):
    """Token request counts and latency, kept as plain numbers and turned into Prometheus
    metrics at scrape time: prometheus-client's Counter and Histogram take a lock and walk
    the buckets in Python on every request, a visible share of a warm token request. One
    event loop thread updates these, so no lock is needed."""

    BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str], int] = {}
        self._buckets = [0] * (len(self.BUCKETS) + 1)  # the last one is +Inf
        self._sum = 0.0

    def count(self, grant: str, outcome: str, seconds: float) -> None:
        key = (grant, outcome)
        self._requests[key] = self._requests.get(key, 0) + 1
        self._buckets[bisect.bisect_left(self.BUCKETS, seconds)] += 1
        self._sum += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tokenserver_token_requests",
            "Token requests by grant type and outcome",
            labels=["grant", "outcome"],
        )
        for (grant, outcome), value in sorted(self._requests.items()):
            requests.add_metric([grant, outcome], value)
        yield requests
        cumulative = list(itertools.accumulate(self._buckets))
        bounds = [repr(b) for b in self.BUCKETS] + ["+Inf"]
        yield HistogramMetricFamily(
            "tokenserver_token_request_duration_seconds",
            "Token request latency",
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=self._sum,
        )


# The windows of tokenserver_robots_expiring, by label.
EXPIRY_WINDOWS = {"1d": SECONDS_PER_DAY, "7d": 7 * SECONDS_PER_DAY, "30d": 30 * SECONDS_PER_DAY}


# How old the robot expiry counts a scrape shows may be, in seconds. /metrics answers anyone,
# and the counts scan the robot table: a storm of scrapes must not hold the database.
# Prometheus scrapes every 15 s or more, and the windows are days long.
EXPIRY_COUNTS_MAX_AGE = 15.0

ExpiryCounts = tuple[int, dict[int, int]]


class _RobotExpiry(Collector):
    """How many robots have expired and will expire soon: counts of the whole database
    (every replica reports the same), read by the scrape handler just before it renders
    (a collector cannot await a query). No per-robot label: robot names are not for
    whoever may scrape.

    The counts are kept for EXPIRY_COUNTS_MAX_AGE seconds (`clock`: monotonic), and scrapes
    that arrive while they are being counted wait for that one query (`refresh`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: ExpiryCounts | None = None
        self.clock = clock
        self._counted_at: float | None = None
        self._counting: asyncio.Task[ExpiryCounts | None] | None = None

    async def refresh(self, count: Callable[[], Awaitable[ExpiryCounts]]) -> None:
        """Set `counts`: those counted less than EXPIRY_COUNTS_MAX_AGE ago, else `count()`'s,
        one call at a time for every scrape waiting (single flight). A StorageError leaves
        the counts out (None) and is not kept: the next scrape asks again."""
        if self._counted_at is not None and self.clock() - self._counted_at < (
            EXPIRY_COUNTS_MAX_AGE
        ):
            return
        if self._counting is None:
            self._counting = asyncio.ensure_future(self._count(count))
        # NOTE: shielded: a scrape that goes away does not cancel the others' query.
        self.counts = await asyncio.shield(self._counting)

    async def _count(self, count: Callable[[], Awaitable[ExpiryCounts]]) -> ExpiryCounts | None:
        try:
            counts = await count()
        except StorageError:
            self._counted_at = None
            return None
        else:
            self._counted_at = self.clock()
            return counts
        finally:
            self._counting = None

    def collect(self) -> Iterator[Metric]:
        if self.counts is None:  # no runtime, or the database did not answer
            return
        expired, expiring = self.counts
        soon = GaugeMetricFamily(
            "tokenserver_robots_expiring",
            "Enabled robots that have not expired and will within the window",
            labels=["within"],
        )
        for label, window in EXPIRY_WINDOWS.items():
            soon.add_metric([label], expiring.get(window, 0))
        yield soon
        yield GaugeMetricFamily(
            "tokenserver_robots_expired", "Enabled robots that have expired", value=expired
        )


class Metrics:
    """One registry per application, so that several apps (tests) never collide."""

    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self.registry = CollectorRegistry()
        self.tokens = _TokenStats()
        self.registry.register(self.tokens)
        self.api_requests = Counter(
            "tokenserver_api_requests",
            "Management API requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(_RuntimeCollector(runtime))
        self.robot_expiry = _RobotExpiry()
        self.registry.register(self.robot_expiry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_token(self, grant: str, status: int, seconds: float) -> None:
        self.tokens.count(grant, _OUTCOMES.get(status, "error"), seconds)


_OUTCOMES = {200: "issued", 400: "bad_request", 401: "denied", 429: "throttled"}


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics, in Prometheus' text format. The robot expiry gauges are counted in the
    database (one aggregate query, at most every EXPIRY_COUNTS_MAX_AGE seconds); without an
    answer they are left out, and the rest is served."""
    collected = request.app[METRICS]
    runtime = request.app.get(RUNTIME)
    if runtime is not None:
        robots = runtime.robots
        await collected.robot_expiry.refresh(
            lambda: robots.expiry_counts(tuple(EXPIRY_WINDOWS.values()))
        )
    return web.Response(
        body=collected.render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


# Request ids: this process's random prefix and a counter, unique without a random draw each.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


# Answers carry secrets (a token, a new robot secret, a session's CSRF token) and account
# data: no cache, shared or the browser's, may keep one. Set on every answer that does not
# state its own caching (the web page's static files do), so that no route can forget it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id (the caller's X-Request-Id if it is sane), resolve its client
    address, and count it; keep its answer out of caches (NO_STORE)."""
    proxies = request.app[PROXIES]
    if proxies.trusted:
        client = resolve(request.remote, request.headers, proxies.trusted, proxies.header)
        request[CLIENT] = client.address
        request[FORWARDED_HTTPS] = client.https
    else:
        request[CLIENT] = request.remote or ""
    given = request.headers.get("X-Request-Id")
    request_id = (
        given if given and _SAFE_ID.fullmatch(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
    )
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    response = await handler(request)
    headers = response.headers
    headers["X-Request-Id"] = request_id
    if "Cache-Control" not in headers:
        headers.update(NO_STORE)
    metrics = request.app[METRICS]
    if request.path == "/service/token":
        seconds = time.perf_counter() - started
        metrics.count_token(request.get(GRANT, "unknown"), response.status, seconds)
        if _token_log.isEnabledFor(logging.INFO):
            request[LOGGED] = True  # here, not the access log: the line comes at the turn's end
            _token_lines.add((request, response.status, seconds, contextvars.copy_context()))
    elif request.path.startswith("/api/"):
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        metrics.api_requests.labels(request.method, template, str(response.status)).inc()
    return response


# What the access line says of a request, after what the token service says of its outcome.
_ACCESS_FIELDS = " method=%s status=%d ms=%.1f id=%s agent=%s"


def _log_tokens(lines: list[_TokenLine]) -> None:
    """The token requests answered in one turn, a line each. Where the server's own handler
    is the only way these lines go (`tokenserver serve`), each is formatted for it directly;
    otherwise (a handler or filter of someone else's: an embedding program, a test's capture)
    through `logging` as any other line, in its own request's context (a filter may read the
    request's context variables)."""
    handler = _sole_handler()
    if handler is None:
        for request, status, seconds, context in lines:
            message, args = _token_line(request, status, seconds)
            context.run(_token_log.info, message, *args)
        return
    # NOTE: the lines of a turn share their time: they are written together, at its end.
    line = handler.formatter.line
    created = time.time()
    for request, status, seconds, _ in lines:
        message, args = _token_line(request, status, seconds)
        handler.hold(line(created, "INFO", _TOKEN_LOGGER, printable(message % args)))


# A token request answered: its line's parts, and the context it was answered in.
_TokenLine = tuple[web.Request, int, float, contextvars.Context]

_TOKEN_LOGGER = "tokenserver.token"  # noqa: S105 (a logger's name)
_token_log = logging.getLogger(_TOKEN_LOGGER)


class _Direct(Protocol):
    """A handler that takes formatted lines: TurnHandler with a LineFormatter."""

    formatter: LineFormatter

    def hold(self, line: str) -> None: ...


def _sole_handler() -> _Direct | None:
    """The TurnHandler the token lines go to, when `logging` would hand them to it alone and
    unchanged: no logger on their way has a handler or a filter of its own, the root has
    that one handler, which formats them with a LineFormatter and filters nothing they
    hold, and records are logging's own (no record factory of someone else's would see
    them). (The level was checked when the line was asked for.)"""
    if logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    logger: logging.Logger | None = _token_log
    while logger is not None and logger.parent is not None:
        if logger.handlers or logger.filters or not logger.propagate:
            return None
        logger = logger.parent
    if logger is None or logger.filters or len(logger.handlers) != 1:
        return None
    handler = logger.handlers[0]
    if (
        type(handler) is not TurnHandler
        or handler.level > logging.INFO
        or not isinstance(handler.formatter, LineFormatter)
        or any(type(f) is not ParserErrorFilter for f in handler.filters)
    ):
        return None
    return cast(_Direct, handler)


# The token requests answered in this turn of the loop, logged together at its end.
_token_lines: TurnBatch[_TokenLine] = TurnBatch(_log_tokens)


def _token_line(request: web.Request, status: int, seconds: float) -> Outcome:
    """A token request's one line: the token service's outcome (who, what was asked and
    granted, or why not) and what the access line would say (method, status, time, request
    id, agent); the path is the token endpoint's. A request refused before it reached the
    service (a malformed form, a method not allowed) says what is known of it."""
    served = request.get(TOKEN_REQUEST)
    outcome = None if served is None else served.outcome
    if callable(outcome):
        outcome = outcome()
    if outcome is None:
        message, args = (
            "token denied grant=%s client=%s"
            if status < 500
            else "token failed grant=%s client=%s",
            (request.get(GRANT, "unknown"), request[CLIENT]),
        )
    else:
        message, args = outcome
    return message + _ACCESS_FIELDS, (
        *args,
        request.method,
        status,
        seconds * 1000,
        request[REQUEST_ID],
        quote(request.headers.get("User-Agent", "")[:200]),
    )


class AccessLogger(AbstractAccessLogger):
    """One line per request with its id, but for the token requests the observe middleware
    logged (their line says all this one would); never the query's secrets (there are none
    in GET token requests) nor any header but the user agent. What the caller chose (the decoded
    path, the agent) is escaped: `%0A` in a path cannot start a line of its own, a space
    cannot shift the fields."""

    @property
    def enabled(self) -> bool:
        """aiohttp skips `log` (and gathering its arguments) when this is False."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # NOTE: the address is the socket's peer or one `resolve` parsed as an IP address, the
        # method a token the HTTP parser checked, the id checked by `observe`: only the path
        # and the agent are the caller's text.
        if request.get(LOGGED):
            return
        self.logger.info(
            "%s %s %s %d %.1fms id=%s agent=%s",
            request.get(CLIENT) or request.remote,
            request.method,
            escape(request.path, " "),
            response.status,
            time * 1000,
            request.get(REQUEST_ID, "-"),
            quote(request.headers.get("User-Agent", "")[:200]),
        )


class ParserErrorFilter(logging.Filter):
    """Keeps what a client sent out of aiohttp's log of a request it could not parse.

    NOTE: aiohttp logs such a request with the parser's exception, whose message quotes the
    offending bytes: a header line too long, with a session cookie in it, put that session
    token in the log. The record keeps the error's kind, never its text or traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "could not parse a request: %s (status %d); what was sent is not logged"
            record.args = (type(error).__name__, error.code)
            record.exc_info = None
            record.exc_text = None
        return True


class _SecondCache:
    """A record's time as `datefmt` says, worked out (localtime, strftime) once per second:
    the token endpoint writes a line per request."""

    def __init__(self, datefmt: str) -> None:
        self._datefmt = datefmt
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self._datefmt, time.localtime(second))
            self._second = second
        return self._text


# `log.format = "text"`: the time, the level, the logger and the message.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LineFormatter(logging.Formatter):
    """A formatter that also writes a line from its parts, without a LogRecord (the token
    lines: `_log_tokens`); `format` writes a record's line the same way."""

    def line(self, created: float, level: str, name: str, message: str) -> str:
        """The line of a record of `level` (its name: "INFO") from logger `name`, created at
        `created`, saying `message` (printable: already escaped)."""
        raise NotImplementedError


class TextFormatter(LineFormatter):
    """`log.format = "text"` (TEXT_FORMAT): one line per record, tracebacks aside."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._seconds = _SecondCache(self.default_time_format)

    def line(self, created: float, level: str, name: str, message: str) -> str:
        milliseconds = int((created - int(created)) * 1000)  # as LogRecord works out msecs
        return f"{self._seconds(created)},{milliseconds:03d} {level} {name} {message}"

    def format(self, record: logging.LogRecord) -> str:
        # NOTE: what logging.Formatter.format writes with TEXT_FORMAT, without the style's
        # lookup of each field by name. A record with a traceback or a stack goes that way.
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = printable(record.getMessage())
        return f"{self.formatTime(record)} {record.levelname} {record.name} {record.message}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # What logging.Formatter writes by default: `2026-11-30 05:00:00,000`.
        return f"{self._seconds(record.created)},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        # NOTE: call sites escape what callers sent (tokenserver.domain.text), so their
        # messages are printable and pass unchanged; this catches a message that still holds
        # a control character (a library's, a field missed). JsonFormatter does the same.
        record.message = printable(record.message)
        return super().formatMessage(record)


class JsonFormatter(LineFormatter):
    """`log.format = "json"`: one JSON object per line."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _SecondCache("%Y-%m-%dT%H:%M:%S")

    def line(self, created: float, level: str, name: str, message: str) -> str:
        return json.dumps(self._entry(created, level, name, message))

    def format(self, record: logging.LogRecord) -> str:
        entry = self._entry(
            record.created, record.levelname, record.name, printable(record.getMessage())
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)

    def _entry(self, created: float, level: str, name: str, message: str) -> dict[str, str]:
        return {
            "time": self._seconds(created),
            "level": level.lower(),
            "logger": name,
            "message": message,
        }


def server_handler(stream: TextIO, form: str = "text") -> TurnHandler:
    """The handler `tokenserver serve` logs through: lines in `form` ("text" or "json")
    written to `stream` once per turn of the event loop, with nothing a client sent in
    aiohttp's parser errors."""
    handler = TurnHandler(stream)
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    handler.addFilter(ParserErrorFilter())
    return handler


class TurnHandler(logging.StreamHandler[TextIO]):
    """Writes the lines logged during one turn of the event loop with one write at its end,
    rather than a write (a system call) per line: under load a turn serves about ten token
    requests, each logged. A line logged outside the loop's thread, or with no loop running,
    is written at once, after those held; `flush` (logging's shutdown at exit calls it)
    writes what is held. A process killed outright loses at most its last turn's lines."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._held.append(line)
            self.flush()
            return
        if not self._held:
            loop.call_soon(self.flush)
        self._held.append(line)

    def hold(self, line: str) -> None:
        """Write `line` (formatted, without its terminator) with the others of this turn; call
        on the running loop."""
        # NOTE: under the lock, as `emit` is: a line another thread logs and writes at
        # once must not empty the held lines between this check and this append (the line
        # would then wait with no flush to come).
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            if not self._held:
                asyncio.get_running_loop().call_soon(self.flush)
            self._held.append(line + self.terminator)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            held, self._held = self._held, []
            try:
                if held:
                    self.stream.write("".join(held))
                self.stream.flush()
            except (OSError, ValueError):
                # NOTE: a closed or broken stream: there is nowhere left to say so, and
                # raising in the loop's callback would log, and come back here, again.
                pass
