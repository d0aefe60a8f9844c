"""Projects and robots as the services see them, and Harbor's expiry rules."""

from __future__ import annotations

from dataclasses import dataclass

from tokenserver.domain.permissions import Permission
from tokenserver.errors import BadRequest

NEVER = -1
MAX_DURATION_DAYS = 2**31 - 1
SECONDS_PER_DAY = 86400


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    public: bool
    creation_time: int
    update_time: int


@dataclass(frozen=True, slots=True)
class Robot:
    """A stored robot. `name` is the short name: the prefix and project are not part of it."""

    id: int
    name: str
    project_id: int
    project_name: str
    description: str
    secret_hash: str
    duration: int
    expires_at: int
    disabled: bool
    creation_time: int
    update_time: int
    permissions: tuple[Permission, ...]
    level: str = "project"

    def full_name(self, prefix: str) -> str:
        return f"{prefix}{self.project_name}+{self.name}"

    def is_expired(self, now: float) -> bool:
        return self.expires_at != NEVER and self.expires_at <= now


def check_duration(duration: int) -> int:
    """Harbor's `duration` in days: -1 for never, otherwise 1 .. 2^31-1."""
    if duration != NEVER and not 1 <= duration <= MAX_DURATION_DAYS:
        raise BadRequest(
            f"invalid duration {duration}: use -1 (never expires) or 1..{MAX_DURATION_DAYS} days"
        )
    return duration


def expires_at(creation_time: int, duration: int) -> int:
    """Unix seconds when a robot expires, -1 for never. Always counted from creation."""
    return NEVER if duration == NEVER else creation_time + duration * SECONDS_PER_DAY
