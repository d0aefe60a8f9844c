"""HTTP Basic credentials (RFC 7617), parsed without trusting the input."""

from __future__ import annotations

import binascii
from binascii import a2b_base64
from dataclasses import dataclass

from tokenserver.domain.secrets import Secret
from tokenserver.errors import BadRequest, Unauthorized

# Just under the HTTP server's own limit for a header (aiohttp's 8190 bytes), so that a longer
# header still gets this JSON error: a robot's password may be a workload's OIDC ID token,
# about 2.8 kB from GitHub (3.8 kB in Basic) and larger from some issuers.
MAX_AUTHORIZATION_LENGTH = 8000


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: Secret


def parse_basic(header: str | None) -> Credentials | None:
    """Credentials from an Authorization header; None when there is no header.

    Raises Unauthorized for another scheme or an empty user or password (the client should
    retry with Basic credentials), BadRequest when the Basic payload cannot be decoded.
    """
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise BadRequest("Authorization header too long")
    scheme, _, payload = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("unsupported authorization scheme: use Basic")
    try:
        decoded = a2b_base64(payload.strip(), strict_mode=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadRequest("malformed Basic credentials: not base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise BadRequest("malformed Basic credentials: expected username:password")
    if not username or not password:
        raise Unauthorized("authentication required: empty username or password")
    return Credentials(username, Secret(password))
