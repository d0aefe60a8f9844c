"""The claims of a workload's ID token, before and after its signature is checked: reading a
JWT-shaped string without verifying it, reaching a (nested) claim by a dotted path, and
matching a robot's rule against the claims.

Pure: no I/O, no pyjwt. Nothing here says a token is genuine; `tokenserver.services.oidc`
does. `unverified` only tells the token path whether a password is a JWT and which issuer it
names, so that no key is fetched and no signature checked for a token no robot could accept.

Rule matching, stated once:
- A rule's conditions are ANDed; each condition's patterns are ORed; a rule without
  conditions matches nothing (a rule must pin something).
- A pattern is exact, or a glob when it holds `*`, `?` or `[`: `*` matches any run of
  characters, `/` included (`refs/heads/*` matches `refs/heads/feature/x`), `?` one
  character, `[abc]`/`[a-z]` one of a set and `[!abc]` one outside it; `[*]`, `[?]` and `[[]`
  match those characters themselves. Matching is case-sensitive and covers the whole value.
- A claim is compared as text when it is a string, an integer (`1234567`: GitHub's ids are
  numbers) or a boolean (`true`/`false`: GitHub's `ref_protected`). A missing claim, null, a
  fraction, a list or an object matches no pattern.
- A token whose `event_name` is `pull_request_target` matches no rule at all (NEVER_MATCHES):
  that GitHub event runs with the base repository's identity on behalf of anyone's fork.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tokenserver.domain.federation import Condition
from tokenserver.domain.text import escape, truncate

# The HTTP layer's header limit: a GitHub token in Basic is ~2.8 kB and larger ones exist.
MAX_TOKEN_BYTES = 8192

# Claim values no rule admits, whatever its conditions say.
NEVER_MATCHES: Mapping[str, frozenset[str]] = {
    "event_name": frozenset({"pull_request_target"}),
}

# A reason is shown to the robot's managers and logged: one short printable line.
MAX_REASON = 300
_SHOWN = 100

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Unverified:
    """The header and claims of a JWT-shaped string, as sent: nothing here is checked."""

    header: dict[str, object]
    claims: dict[str, object]


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _segment(segment: str) -> dict[str, object] | None:
    """A base64url segment (unpadded, canonical) holding a JSON object, or None."""
    if len(segment) % 4 == 1 or not _SEGMENT.fullmatch(segment):
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    # NOTE: one spelling per value: a segment whose unused bits are set decodes like another
    # one; pyjwt refuses it, so what we read is what pyjwt verifies.
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != segment:
        return None
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None
    return value if isinstance(value, dict) else None


def unverified(token: str) -> Unverified | None:
    """The header and claims of `token` when it is JWT-shaped: at most MAX_TOKEN_BYTES, three
    unpadded base64url segments, the first two JSON objects (NaN and Infinity refused), the
    third (the signature) possibly empty. None for anything else; never raises. Nothing is
    verified: the claims are what the sender wrote."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return None
    if not _SEGMENT.fullmatch(parts[2]):
        return None
    header = _segment(parts[0])
    if header is None:
        return None
    claims = _segment(parts[1])
    if claims is None:
        return None
    return Unverified(header=header, claims=claims)


def claim_value(claims: Mapping[str, object], dotted: str) -> object | None:
    """The claim at the dotted path `dotted`, or None when there is none (or it is null).

    Keys may hold dots themselves (Kubernetes' `kubernetes.io`): at each level the longest
    run of the path's remaining parts that is a key wins, then the rest of the path goes on
    inside its value. So `kubernetes.io.serviceaccount.name` is
    `claims["kubernetes.io"]["serviceaccount"]["name"]`, and a claim named
    `kubernetes.io.namespace` itself would be preferred to `["kubernetes.io"]["namespace"]`.
    There is no second try with a shorter key: one path, one value. Lists are not entered.
    """
    parts = dotted.split(".")
    value: object = claims
    start = 0
    while start < len(parts):
        if not isinstance(value, Mapping):
            return None
        for end in range(len(parts), start, -1):
            key = ".".join(parts[start:end])
            if key in value:
                value = value[key]
                start = end
                break
        else:
            return None
    return value


def claim_text(value: object) -> str | None:
    """A claim as the text patterns are matched against: a string itself, an integer in
    decimal, a boolean as `true`/`false`; None for anything else (null, fraction, list,
    object), which no pattern matches."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # past the interpreter's digit limit: no pattern is that long
            return None
    return None


def pattern_matches(pattern: str, text: str) -> bool:
    """Whether `text` is `pattern` (exact) or matches it as a glob (see the module's doc)."""
    if _GLOB.search(pattern) is None:
        return text == pattern
    return fnmatchcase(text, pattern)


def _shown(text: str) -> str:
    """`text` quoted for a reason: printable, one line, at most about _SHOWN characters."""
    return "'" + truncate(escape(text, "'"), _SHOWN) + "'"


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float):
        return "a fraction"
    return "not text"


def _reason(text: str) -> str:
    return truncate(text, MAX_REASON)


def match_rule(conditions: tuple[Condition, ...], claims: Mapping[str, object]) -> str | None:
    """None when `claims` satisfy every condition; else why not, naming the first claim that
    did not match (and the value the token holds, escaped and shortened): a printable line of
    at most MAX_REASON characters, for the log and the robot's managers."""
    for name, refused in NEVER_MATCHES.items():
        text = claim_text(claim_value(claims, name))
        if text is not None and text in refused:
            return _reason(f"claim {_shown(name)} is {_shown(text)}, which no rule admits")
    if not conditions:
        return "the rule has no conditions"
    for condition in conditions:
        value = claim_value(claims, condition.claim)
        if value is None:
            return _reason(f"claim {_shown(condition.claim)} did not match: it is missing or null")
        text = claim_text(value)
        if text is None:
            return _reason(f"claim {_shown(condition.claim)} did not match: it is {_kind(value)}")
        if not any(pattern_matches(pattern, text) for pattern in condition.patterns):
            return _reason(f"claim {_shown(condition.claim)} did not match: it is {_shown(text)}")
    return None


def single_audience(claims: Mapping[str, object]) -> str | None:
    """The token's one audience: `aud` when it is a string or a list of exactly one string;
    None otherwise (absent, empty, several audiences, not text)."""
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    return aud if isinstance(aud, str) else None
