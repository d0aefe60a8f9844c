"""How long a registry token lasts: `token.lifetime` for everyone, or a robot's own
`token_lifetime` (a multi-gigabyte push outlives a 30-minute token), never longer than
`token.max_lifetime` allows now."""

from __future__ import annotations

from dataclasses import dataclass

from tokenserver.errors import BadRequest

# A robot's token_lifetime, in seconds: at least this (what token.lifetime allows too) ...
MIN_ROBOT_TOKEN_LIFETIME = 60
# ... and at most token.max_lifetime, which may be at most a week: a token cannot be revoked
# (the registry checks only its signature and exp), so a longer one outlives any change.
LONGEST_TOKEN_LIFETIME = 7 * 86400
# A robot's token_lifetime asked for as 0 (the CLI's `none`/`default`): it has none of its
# own, its tokens last token.lifetime (stored as no value).
FOLLOW_GLOBAL = 0


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    """`token.lifetime` (`default`) and `token.max_lifetime` (`maximum`)."""

    default: int
    maximum: int

    def effective(self, own: int | None) -> int:
        """Seconds the tokens of a robot whose own lifetime is `own` last (None: it has
        none). A lifetime stored before `maximum` was lowered is capped, not refused."""
        return self.default if own is None else min(own, self.maximum)

    def check(self, seconds: int) -> int | None:
        """A robot's `token_lifetime` as asked for: the value to store (None for
        FOLLOW_GLOBAL). Raises BadRequest naming the field and the bounds."""
        if seconds == FOLLOW_GLOBAL:
            return None
        if not MIN_ROBOT_TOKEN_LIFETIME <= seconds <= self.maximum:
            raise BadRequest(
                f"token_lifetime {seconds} is out of range: use {MIN_ROBOT_TOKEN_LIFETIME} to "
                f"{self.maximum} seconds (token.max_lifetime), or {FOLLOW_GLOBAL} for the "
                f"server's token.lifetime ({self.default} s)"
            )
        return seconds
