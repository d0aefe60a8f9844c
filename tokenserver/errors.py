"""The one error hierarchy. Each class carries its Harbor error code and HTTP status.

The HTTP layer turns any `TokenServerError` into `{"errors": [{"code", "message"}]}` in one
middleware; the CLI turns it into a message on stderr and an exit status. Messages are shown to
callers as they are, so they must never contain a secret.
"""

from __future__ import annotations


class TokenServerError(Exception):
    """Base class: the request could not be served as asked."""

    code = "UNKNOWN"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(TokenServerError):
    """The input is malformed or breaks a rule (name, scope, secret, duration...)."""

    code = "BAD_REQUEST"
    status = 400


class Unauthorized(TokenServerError):
    """No valid credentials. The HTTP layer adds a `WWW-Authenticate: Basic` challenge."""

    code = "UNAUTHORIZED"
    status = 401


class Forbidden(TokenServerError):
    code = "FORBIDDEN"
    status = 403


class NotFound(TokenServerError):
    code = "NOT_FOUND"
    status = 404


class ProjectNotFound(NotFound):
    pass


class RobotNotFound(NotFound):
    pass


class UserNotFound(NotFound):
    pass


class MemberNotFound(NotFound):
    pass


class Conflict(TokenServerError):
    code = "CONFLICT"
    status = 409


class TooManyRequests(TokenServerError):
    """Locked out after repeated failures; the HTTP layer sends `Retry-After`."""

    code = "TOO_MANY_REQUESTS"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class PreconditionFailed(TokenServerError):
    code = "PRECONDITION"
    status = 412


class ConfigError(Exception):
    """The configuration is invalid. `key` is the dotted name of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
