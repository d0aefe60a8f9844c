"""The one error hierarchy, and every error code tokenserver puts on the wire, declared once.

Each code is an `ErrorCode`: the string clients match on, the HTTP status it travels with and
the message sent when the raiser gives none. A code is never derived from anything (the
standard library's status phrases change between Python versions: 3.13 renamed 413's). Each
`TokenServerError` class names its code; `FRAMEWORK_ERRORS` names the code of each error the
HTTP framework raises by itself (unmatched route, wrong method, body too large...).

The HTTP layer turns any `TokenServerError` into `{"errors": [{"code", "message"}]}` in one
middleware; the CLI turns it into a message on stderr and an exit status. Messages are shown to
callers as they are, so they must never contain a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    message: str


_DECLARED: dict[str, ErrorCode] = {}
ERROR_CODES: Mapping[str, ErrorCode] = MappingProxyType(_DECLARED)
"""Every wire error code, by code."""


def declare(code: str, status: int, message: str) -> ErrorCode:
    """Declare a wire error code; declaring one twice is a programming error."""
    if code in _DECLARED:
        raise ValueError(f"error code {code} is declared twice")
    _DECLARED[code] = ErrorCode(code, status, message)
    return _DECLARED[code]


# NOTE: the codes and framework messages are what Python 3.11's status phrases gave when they
# were derived from them, so that no client sees a change; they stay so on any Python.
UNKNOWN = declare("UNKNOWN", 500, "internal server error")
BAD_REQUEST = declare("BAD_REQUEST", 400, "Bad Request")
UNAUTHORIZED = declare("UNAUTHORIZED", 401, "Unauthorized")
FORBIDDEN = declare("FORBIDDEN", 403, "Forbidden")
NOT_FOUND = declare("NOT_FOUND", 404, "Not Found")
CONFLICT = declare("CONFLICT", 409, "Conflict")
PRECONDITION = declare("PRECONDITION", 412, "Precondition Failed")
TOO_MANY_REQUESTS = declare("TOO_MANY_REQUESTS", 429, "Too Many Requests")
SERVICE_UNAVAILABLE = declare("SERVICE_UNAVAILABLE", 503, "Service Unavailable")

# Raised by aiohttp itself (never by tokenserver's code), one per web.HTTPError class. Where
# tokenserver has its own code for a status, the framework's error uses it, except 412 and 500,
# whose framework codes predate the declarations and are kept.
_FRAMEWORK_ONLY = (
    declare("PAYMENT_REQUIRED", 402, "Payment Required"),
    declare("METHOD_NOT_ALLOWED", 405, "Method Not Allowed"),
    declare("NOT_ACCEPTABLE", 406, "Not Acceptable"),
    declare("PROXY_AUTHENTICATION_REQUIRED", 407, "Proxy Authentication Required"),
    declare("REQUEST_TIMEOUT", 408, "Request Timeout"),
    declare("GONE", 410, "Gone"),
    declare("LENGTH_REQUIRED", 411, "Length Required"),
    declare("PRECONDITION_FAILED", 412, "Precondition Failed"),
    declare("REQUEST_ENTITY_TOO_LARGE", 413, "Request Entity Too Large"),
    declare("REQUEST_URI_TOO_LONG", 414, "Request-URI Too Long"),
    declare("UNSUPPORTED_MEDIA_TYPE", 415, "Unsupported Media Type"),
    declare("REQUESTED_RANGE_NOT_SATISFIABLE", 416, "Requested Range Not Satisfiable"),
    declare("EXPECTATION_FAILED", 417, "Expectation Failed"),
    declare("MISDIRECTED_REQUEST", 421, "Misdirected Request"),
    declare("UNPROCESSABLE_ENTITY", 422, "Unprocessable Entity"),
    declare("FAILED_DEPENDENCY", 424, "Failed Dependency"),
    declare("UPGRADE_REQUIRED", 426, "Upgrade Required"),
    declare("PRECONDITION_REQUIRED", 428, "Precondition Required"),
    declare("REQUEST_HEADER_FIELDS_TOO_LARGE", 431, "Request Header Fields Too Large"),
    declare("UNAVAILABLE_FOR_LEGAL_REASONS", 451, "Unavailable For Legal Reasons"),
    declare("INTERNAL_SERVER_ERROR", 500, "Internal Server Error"),
    declare("NOT_IMPLEMENTED", 501, "Not Implemented"),
    declare("BAD_GATEWAY", 502, "Bad Gateway"),
    declare("GATEWAY_TIMEOUT", 504, "Gateway Timeout"),
    declare("HTTP_VERSION_NOT_SUPPORTED", 505, "HTTP Version Not Supported"),
    declare("VARIANT_ALSO_NEGOTIATES", 506, "Variant Also Negotiates"),
    declare("INSUFFICIENT_STORAGE", 507, "Insufficient Storage"),
    declare("NOT_EXTENDED", 510, "Not Extended"),
    declare("NETWORK_AUTHENTICATION_REQUIRED", 511, "Network Authentication Required"),
)
FRAMEWORK_ERRORS: Mapping[int, ErrorCode] = MappingProxyType(
    {
        e.status: e
        for e in (
            BAD_REQUEST,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            CONFLICT,
            TOO_MANY_REQUESTS,
            SERVICE_UNAVAILABLE,
            *_FRAMEWORK_ONLY,
        )
    }
)
"""The code of an error status the HTTP framework raises, by status; UNKNOWN for others."""


class TokenServerError(Exception):
    """Base class: the request could not be served as asked."""

    error: ClassVar[ErrorCode] = UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status


class BadRequest(TokenServerError):
    """The input is malformed or breaks a rule (name, scope, secret, duration...)."""

    error = BAD_REQUEST


class Unauthorized(TokenServerError):
    """No valid credentials. The HTTP layer adds a `WWW-Authenticate: Basic` challenge."""

    error = UNAUTHORIZED


class FederationRefused(Unauthorized):
    """A workload's ID token was refused (robot federation): not a JWT, a wrong algorithm,
    issuer, key, signature, audience or time, or no rule of the robot matched. A 401 on the
    wire, like a wrong secret.

    `reason` says why in one printable line: safe to log and to keep for the robot's managers,
    never the token. The message sent to the caller is the reason unless `message` says
    otherwise (the token path may say less to the caller than to the robot's managers)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else f"ID token refused: {reason}")
        self.reason = reason
        # What the token said it was (iss, sub, aud; escaped, shortened) for the log, once the
        # token path knows; never the token.
        self.presented: tuple[tuple[str, str], ...] = ()
        # Whether the token's signature was good (refused for its audience, times or claims):
        # only then may the caller and the robot's managers be told why. Before that, anyone
        # could have written it.
        self.signed = False


class Forbidden(TokenServerError):
    error = FORBIDDEN


class NotFound(TokenServerError):
    error = NOT_FOUND


class ProjectNotFound(NotFound):
    pass


class RobotNotFound(NotFound):
    pass


class UserNotFound(NotFound):
    pass


class MemberNotFound(NotFound):
    pass


class Conflict(TokenServerError):
    error = CONFLICT


class TooManyRequests(TokenServerError):
    """Locked out after repeated failures; the HTTP layer sends `Retry-After`."""

    error = TOO_MANY_REQUESTS

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class PreconditionFailed(TokenServerError):
    error = PRECONDITION


class StorageError(TokenServerError):
    """The database could not be used (unreachable, corrupt, newer schema, unwritable)."""

    error = SERVICE_UNAVAILABLE


class ConfigError(Exception):
    """The configuration is invalid. `key` is the dotted name of the offending key.

    Not a TokenServerError on purpose: that hierarchy is "this request could not be served",
    and its messages are shown to HTTP callers as they are. A ConfigError is the operator's
    mistake, found at start-up (the CLI exits 2), and its message names files on the server;
    should one ever escape while serving a request, it must be a logged 500, not shown."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.reason = message
