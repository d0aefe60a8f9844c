"""What an issuer and a robot's federation rules may be (robot federation; the shapes are in
`tokenserver.domain.federation`, the matching in `tokenserver.domain.claims`).

Everything here is pure: a value is checked and returned, or BadRequest says which rule it
breaks, naming the value. Files an issuer names (its JWKS, its CA bundle) are read by the
service.

A rule must pin something its issuer does not already: an issuer's every token carries its
`iss` and one of its audiences, so a rule with no other condition (or only wildcards) admits
every workload of that issuer, every repository on github.com. On GitHub and GitLab, names
(`repository`, `project_path`) can be taken again by someone else after a rename or deletion:
a rule that pins none of their numeric ids is accepted with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from tokenserver.domain.federation import Condition, FederationRule, Issuer
from tokenserver.domain.hosts import is_loopback
from tokenserver.domain.text import truncate
from tokenserver.errors import BadRequest

MAX_RULES = 20  # per robot
MAX_CONDITIONS = 32  # per rule
MAX_PATTERNS = 16  # per condition
MAX_CLAIM_LENGTH = 255
MAX_PATTERN_LENGTH = 255

MAX_AUDIENCES = 10
MAX_AUDIENCE_LENGTH = 255
MAX_URL_LENGTH = 255
MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME = 60, 86400
ISSUER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")

# Claims a condition may not name: the verification checks them itself (times, replay), and
# a pattern on them would only make a rule that stops matching by itself.
REFUSED_CLAIMS = frozenset({"exp", "iat", "nbf", "jti"})
# Claims every token of the issuer holds with the same values: they pin nothing.
ISSUER_CLAIMS = frozenset({"iss", "aud"})

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# Names that can change hands, and the ids that cannot, by platform.
_GITHUB_NAMES = ("repository", "repository_owner")
_GITHUB_IDS = ("repository_owner_id", "repository_id")
_GITLAB_NAMES = ("project_path", "namespace_path")
_GITLAB_IDS = ("project_id", "namespace_id")

# A JWT: three base64url segments (header, claims, signature; an unsigned one has none).
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# No control character (C0, DEL, C1) belongs in a pattern or an audience, nor a lone surrogate
# (what a command line's undecodable bytes become), which no database can encode.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NO_CONTROL = "must not hold control characters or invalid Unicode"


def _shown(text: str) -> str:
    """A caller's value in a message: quoted, escaped and short."""
    return repr(truncate(text, 80))


def jwt_shaped(text: str) -> bool:
    """Whether `text` reads as a JWT (a robot with rules takes such a password for a token)."""
    return _JWT_SHAPE.fullmatch(text) is not None


# ---- issuers ---------------------------------------------------------------------------------


def check_issuer_name(name: str) -> str:
    if not ISSUER_NAME.fullmatch(name):
        raise BadRequest(
            f"invalid issuer name {_shown(name)}: 1 to 63 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def check_issuer_url(url: str) -> str:
    """`url` as given (a token's `iss` is compared with it exactly) if it is an issuer's URL:
    https, or http on a loopback address; a host; no user, query or fragment."""
    where = f"issuer URL {_shown(url)}"
    if not url or len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"{where}: give 1 to {MAX_URL_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise BadRequest(f"{where}: only printable ASCII without spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError as e:
        raise BadRequest(f"{where}: not a URL ({e})") from None
    if parts.scheme not in ("https", "http") or not host:
        raise BadRequest(f"{where}: must be https://HOST[/PATH]")
    if "@" in parts.netloc:
        raise BadRequest(f"{where}: must not hold a user name or password")
    if "?" in url or "#" in url:
        raise BadRequest(f"{where}: must not hold a query or a fragment")
    if parts.scheme == "http" and not is_loopback(host, by_name=False):
        raise BadRequest(
            f"{where}: http:// is allowed only on a loopback address (127.0.0.1, [::1]); "
            "use https://"
        )
    return url


def check_audiences(audiences: Sequence[str]) -> tuple[str, ...]:
    """The audiences, each once, in order: 1 to MAX_AUDIENCES non-empty strings without
    control characters."""
    if not 1 <= len(audiences) <= MAX_AUDIENCES:
        raise BadRequest(f"an issuer takes 1 to {MAX_AUDIENCES} audiences")
    for audience in audiences:
        if not audience or len(audience) > MAX_AUDIENCE_LENGTH:
            raise BadRequest(
                f"audience {_shown(audience)}: give 1 to {MAX_AUDIENCE_LENGTH} characters"
            )
        if _CONTROL.search(audience):
            raise BadRequest(f"audience {_shown(audience)}: {_NO_CONTROL}")
    return tuple(dict.fromkeys(audiences))


def check_max_token_lifetime(seconds: int) -> int:
    if not MIN_TOKEN_LIFETIME <= seconds <= MAX_TOKEN_LIFETIME:
        raise BadRequest(
            f"max token lifetime {seconds}: must be {MIN_TOKEN_LIFETIME} to "
            f"{MAX_TOKEN_LIFETIME} seconds"
        )
    return seconds


def platform(issuer_url: str) -> str | None:
    """ "github" or "gitlab" when the issuer is one (by its URL), else None."""
    if issuer_url == GITHUB_ISSUER or issuer_url.rstrip("/").endswith("/_services/token"):
        return "github"
    try:
        host = urlsplit(issuer_url).hostname or ""
    except ValueError:
        return None
    return "gitlab" if "gitlab" in host else None


# ---- rules -----------------------------------------------------------------------------------


def check_claim(claim: str) -> str:
    """A condition's claim: a dotted path (`kubernetes.io.namespace`) of printable
    characters, no empty part, not a claim the verification owns (REFUSED_CLAIMS)."""
    where = f"claim {_shown(claim)}"
    if not claim or len(claim) > MAX_CLAIM_LENGTH:
        raise BadRequest(f"{where}: give 1 to {MAX_CLAIM_LENGTH} characters")
    if not claim.isprintable() or any(not part for part in claim.split(".")):
        raise BadRequest(
            f"{where}: must be a claim name or a dotted path to a nested claim (a.b), "
            "printable, with no empty part"
        )
    if claim in REFUSED_CLAIMS:
        raise BadRequest(
            f"{where}: exp, iat, nbf and jti are checked by the verification itself; a rule "
            "cannot name them"
        )
    return claim


def check_pattern(claim: str, pattern: str) -> str:
    where = f"claim {_shown(claim)}: pattern {_shown(pattern)}"
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise BadRequest(f"{where}: give 1 to {MAX_PATTERN_LENGTH} characters")
    if _CONTROL.search(pattern):
        raise BadRequest(f"{where}: {_NO_CONTROL}")
    return pattern


def conditions(claims: Mapping[str, object]) -> tuple[Condition, ...]:
    """A rule's conditions from its JSON form: each claim maps to a pattern or a list of
    patterns (any of them may match). Raises BadRequest naming the claim at fault."""
    if not claims:
        raise BadRequest("a rule needs at least one claim condition")
    if len(claims) > MAX_CONDITIONS:
        raise BadRequest(f"a rule takes at most {MAX_CONDITIONS} claim conditions")
    found = []
    for claim, value in claims.items():
        check_claim(claim)
        if isinstance(value, str):
            patterns: list[object] = [value]
        elif isinstance(value, list):
            patterns = value
        else:
            raise BadRequest(f"claim {_shown(claim)}: give a pattern or a list of patterns")
        if not 1 <= len(patterns) <= MAX_PATTERNS:
            raise BadRequest(f"claim {_shown(claim)}: give 1 to {MAX_PATTERNS} patterns")
        checked = []
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise BadRequest(f"claim {_shown(claim)}: each pattern must be a string")
            checked.append(check_pattern(claim, pattern))
        found.append(Condition(claim, tuple(dict.fromkeys(checked))))
    return tuple(found)


def claims_from_pairs(pairs: Iterable[str]) -> dict[str, object]:
    """A rule's claims in their JSON form (see `conditions`) from the command line's
    `KEY=PATTERN` arguments (the first `=` ends the key); a KEY given several times takes any
    of its patterns."""
    claims: dict[str, list[str]] = {}
    for pair in pairs:
        claim, sep, pattern = pair.partition("=")
        if not sep:
            raise BadRequest(f"claim condition {_shown(pair)}: give KEY=PATTERN")
        claims.setdefault(claim, []).append(pattern)
    return {
        claim: patterns[0] if len(patterns) == 1 else patterns for claim, patterns in claims.items()
    }


def claims_json(rule_conditions: Iterable[Condition]) -> dict[str, str | list[str]]:
    """The JSON form of conditions (the inverse of `conditions`): one pattern as a string,
    several as a list."""
    return {
        c.claim: c.patterns[0] if len(c.patterns) == 1 else list(c.patterns)
        for c in rule_conditions
    }


def only_wildcards(pattern: str) -> bool:
    """Whether the glob `pattern` admits any value at all (`*`, `**`, `?*`...)."""
    return bool(pattern) and set(pattern) <= {"*", "?"}


def _pins(condition: Condition) -> bool:
    """Whether the condition narrows the issuer's tokens: on a claim that varies, with no
    pattern that takes anything."""
    return condition.claim not in ISSUER_CLAIMS and not any(
        only_wildcards(p) for p in condition.patterns
    )


def check_rule(rule_conditions: Sequence[Condition]) -> tuple[Condition, ...]:
    """The conditions if they make a rule; BadRequest when they pin nothing beyond the
    issuer's `iss` and `aud`."""
    if not any(_pins(c) for c in rule_conditions):
        raise BadRequest(
            "a rule must pin a claim beyond iss and aud with a pattern that is not only "
            "wildcards: every token of the issuer holds its iss and aud, so such a rule would "
            "admit all of them (on github.com, every repository in the world). Add a condition "
            "such as repository_owner_id, project_id or sub"
        )
    return tuple(rule_conditions)


def _exact(pattern: str) -> bool:
    """Whether `pattern` admits one value only (no glob character at all)."""
    return not any(char in pattern for char in "*?[")


def _pinned(rule_conditions: Sequence[Condition], claims: Sequence[str]) -> bool:
    """Whether the rule pins one of the immutable id `claims` to exact values: a glob on an
    id (`1*`, `[0-9]*`) admits other owners' ids as well."""
    return any(c.claim in claims and all(_exact(p) for p in c.patterns) for c in rule_conditions)


def rule_warning(issuer_url: str, rule_conditions: Sequence[Condition]) -> str | None:
    """Why a valid rule is weaker than it looks, or None: on GitHub or GitLab (by the issuer,
    or by the claims the rule names), a rule that pins no immutable id."""
    named = {c.claim for c in rule_conditions}
    kind = platform(issuer_url)
    if (kind == "github" or named & set(_GITHUB_NAMES)) and not _pinned(
        rule_conditions, _GITHUB_IDS
    ):
        return (
            "pins no repository_owner_id or repository_id to exact values: it admits the "
            "tokens of any repository whose other claims match (on github.com, anyone's), and "
            "an owner or repository name can be registered again by someone else after a "
            "rename or deletion"
        )
    if (kind == "gitlab" or named & set(_GITLAB_NAMES)) and not _pinned(
        rule_conditions, _GITLAB_IDS
    ):
        return (
            "pins no project_id or namespace_id to exact values: it admits the tokens of any "
            "project whose other claims match (on gitlab.com, anyone's), and a project or "
            "group path can be taken by someone else after a rename or deletion"
        )
    return None


def rule_warnings(rules: Iterable[FederationRule], issuers: Mapping[str, Issuer]) -> list[str]:
    """The warnings of a robot's rules (`issuers` by name), each naming its rule."""
    found = []
    for rule in rules:
        issuer = issuers.get(rule.issuer)
        warning = rule_warning(issuer.url if issuer else "", rule.conditions)
        if warning is not None:
            found.append(f"rule {rule.id} (issuer {rule.issuer}): {warning}")
    return found
