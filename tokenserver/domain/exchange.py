"""The token exchange (RFC 8693) at the token endpoint: what a request may hold and what it
asks for. A workload trades its OIDC ID token (the `subject_token`) for an access token of the
robot it names (`resource` or `audience`), or for a temporary secret of that robot.

Pure: the form's fields in, an `Exchange` or BadRequest out. Whether the token is the robot's
is the services' question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenserver.domain.secrets import Secret
from tokenserver.errors import BadRequest

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a URN)
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN)
# tokenserver's own token type (RFC 8693 lets a server define its own URIs): a temporary robot
# secret, a password for clients that know only username and password.
ROBOT_SECRET_TYPE = "urn:tokenserver:params:oauth:token-type:robot-secret"  # noqa: S105 (a URN)
SUBJECT_TOKEN_TYPES = (JWT_TYPE, ID_TOKEN_TYPE)

# A temporary robot secret: this prefix and 43 base64url characters (256 random bits), so that
# a leaked one is easy to recognise and the password path tells it from a robot's own secret
# without a lookup.
TEMPORARY_SECRET_PREFIX = "tst_"  # noqa: S105 (a prefix)
TEMPORARY_SECRET_LENGTH = len(TEMPORARY_SECRET_PREFIX) + 43
# The most live temporary secrets a robot keeps: the oldest are dropped.
KEEP_TEMPORARY_SECRETS = 20


@dataclass(frozen=True, slots=True)
class Exchange:
    """A token exchange as the form asked for it: the robot's full name (`robot$p+n`), the
    ID token, the registry scopes (for an access token; none for a secret), and whether a
    temporary secret is asked for instead of an access token."""

    robot: str
    subject_token: Secret
    scopes: tuple[str, ...]
    secret: bool = False


def _one(values: Sequence[str], name: str) -> str | None:
    """The field's one value; None when absent; BadRequest when given twice or empty."""
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} is given {len(values)} times: give it once")
    if not values[0]:
        raise BadRequest(f"{name} is empty")
    return values[0]


def parse_exchange(field: Callable[[str], Sequence[str]]) -> Exchange:
    """The exchange a token-exchange form asks for; `field(name)` gives every value of a form
    field. Raises BadRequest naming the field at fault (RFC 8693's invalid_request, or
    invalid_target for the robot): no subject_token or one of another type, an actor_token
    (delegation is not supported), no robot or several, an unknown requested_token_type, no
    scope for an access token, a scope for a secret (it carries the robot's permissions)."""
    token = _one(field("subject_token"), "subject_token")
    if token is None:
        raise BadRequest("subject_token is required: the workload's OIDC ID token")
    token_type = _one(field("subject_token_type"), "subject_token_type")
    if token_type not in SUBJECT_TOKEN_TYPES:
        raise BadRequest(
            f"subject_token_type must be {JWT_TYPE} or {ID_TOKEN_TYPE}: the subject_token is "
            "the workload's OIDC ID token"
        )
    if field("actor_token") or field("actor_token_type"):
        raise BadRequest("actor_token is not supported: a workload exchanges its own ID token")
    # RFC 8693 lets both name the target; here both name the one robot.
    robots = list(dict.fromkeys([*field("resource"), *field("audience")]))
    if not robots or not all(robots):
        raise BadRequest("resource (or audience) is required: the robot's full name")
    if len(robots) > 1:
        raise BadRequest("resource and audience name one robot: give its full name once")
    requested = _one(field("requested_token_type"), "requested_token_type")
    if requested not in (None, ACCESS_TOKEN_TYPE, ROBOT_SECRET_TYPE):
        raise BadRequest(
            f"requested_token_type must be {ACCESS_TOKEN_TYPE} (the default) or {ROBOT_SECRET_TYPE}"
        )
    secret = requested == ROBOT_SECRET_TYPE
    scopes = tuple(field("scope"))
    if secret and any(s.strip() for s in scopes):
        raise BadRequest(
            "scope is not taken with a robot secret: the secret carries the robot's permissions"
        )
    if not secret and not any(s.strip() for s in scopes):
        raise BadRequest("scope is required: the registry scopes the access token is for")
    return Exchange(robots[0], Secret(token), () if secret else scopes, secret)
