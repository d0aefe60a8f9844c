"""Projects, robots, users, members and principals as the services see them, and Harbor's
expiry rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tokenserver.domain.federation import Identity
from tokenserver.domain.permissions import Access, Permission
from tokenserver.domain.roles import Role
from tokenserver.errors import BadRequest

NEVER = -1
# Legacy robots were always named robot$<name>, whatever the configured prefix is now.
LEGACY_PREFIX = "robot$"
# A hundred years: longer is "never" (-1) in all but name, and an expiry far enough out
# cannot be shown as a date (`robot list` failed on year 275817).
MAX_DURATION_DAYS = 36500
SECONDS_PER_DAY = 86400
# The longest a refreshed secret's predecessor may keep working (`keep_previous_for`).
MAX_KEEP_PREVIOUS = 30 * SECONDS_PER_DAY


class Level(StrEnum):
    PROJECT = "project"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    public: bool
    creation_time: int
    update_time: int
    owner_id: int | None = None
    owner_name: str = ""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Robot:
    """A stored robot. `name` is the short name: the prefix and project are not part of it.
    System robots have no project (`project_id` and `project_name` are None)."""

    id: int
    name: str
    project_id: int | None
    project_name: str | None
    description: str
    secret_hash: str
    duration: int
    expires_at: int
    disabled: bool
    creation_time: int
    update_time: int
    permissions: tuple[Permission, ...]
    level: Level = Level.PROJECT
    last_used_at: int | None = None
    # A legacy (pre-Harbor 2.2) robot: its Harbor robot and project ids, which its JWT names.
    legacy_id: int | None = None
    legacy_project_id: int | None = None
    # Whether the robot's project is public, read with the robot (saves a query per token).
    project_public: bool = False
    # Whether its secret logs it in; off, only its federation rules do (a robot with rules).
    secret_login: bool = True
    # Seconds its registry tokens last; None: token.lifetime (see domain/lifetimes.py).
    token_lifetime: int | None = None
    # The secret a refresh with a grace period replaced (its hash) and until when it keeps
    # working; None when there is none. See `previous_secret_until`.
    previous_secret_hash: str | None = None
    previous_secret_expires_at: int | None = None

    @property
    def legacy(self) -> bool:
        return self.legacy_id is not None

    def full_name(self, prefix: str) -> str:
        if self.legacy:
            return f"{LEGACY_PREFIX}{self.name}"
        if self.project_name is None:
            return f"{prefix}{self.name}"
        return f"{prefix}{self.project_name}+{self.name}"

    def is_expired(self, now: float) -> bool:
        return self.expires_at != NEVER and self.expires_at <= now

    def previous_secret_until(self, now: float) -> int | None:
        """When the previous secret stops working, if it works at `now`: never past the
        robot's own expiry, and not at all while the robot is disabled or expired; None when
        it does not work (none kept, its time is over, revoked)."""
        until = self.previous_secret_expires_at
        if until is None or self.previous_secret_hash is None or self.disabled:
            return None
        if self.expires_at != NEVER:
            until = min(until, self.expires_at)
        return until if until > now else None

    def own_project(self) -> Project | None:
        """The robot's project as far as authorization needs it (id, name, public), without
        another query; None for a system robot."""
        if self.project_id is None or self.project_name is None:
            return None
        return Project(self.project_id, self.project_name, self.project_public, 0, 0)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str
    realname: str
    comment: str
    password_hash: str
    sysadmin: bool
    creation_time: int
    update_time: int


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    project_id: int
    user_id: int
    username: str
    role: Role


class KeyState(StrEnum):
    PUBLISHED = "published"  # in the registry's bundle, not signing yet (or any more)
    ACTIVE = "active"  # signing
    RETIRED = "retired"  # leaves the bundle once tokens it signed have expired


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A signing key of the keyring: where its files are and where it is in its life."""

    id: int
    key_path: str
    cert_path: str
    state: KeyState
    created_at: int
    retired_at: int | None = None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A web page login: only the SHA-256 of the session token (the cookie) is stored."""

    id: int
    user_id: int
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A stored refresh token: only the SHA-256 of the token itself is kept. It belongs to
    exactly one robot or one user."""

    id: int
    robot_id: int | None
    user_id: int | None
    client_id: str
    created_at: int
    # Recorded at most about once an hour (services/refresh.py), not on every use.
    last_used_at: int = 0
    # A legacy robot's token ends with the JWT it was issued for (its `exp`; None: never) and
    # grants what that JWT granted (`legacy_access`); None for every other token.
    expires_at: int | None = None
    legacy_access: tuple[Access, ...] | None = None
    # Issued to a login with an ID token (robot federation): revoked when the robot's rules
    # change; the others when its secret login is turned off.
    federated: bool = False
    # The workload a federated login was (None for the others): the token's requests are
    # logged as it, as the login was.
    identity: Identity | None = None
    # Ends with the robot's previous secret: issued to a login with it, or to one with the
    # secret that a refresh with a grace period made the previous one.
    previous_secret: bool = False

    def is_usable(self, now: float, idle_seconds: int) -> bool:
        """Not idle for `idle_seconds` (counted from its last recorded use) and not past its
        own expiry."""
        if self.last_used_at + idle_seconds <= now:
            return False
        return self.expires_at is None or self.expires_at > now


# An audit entry's text fields hold caller-supplied names (a project in a path, a user in a
# body): each is stored escaped and at most this long, so that a request can neither forge a
# line of the log nor fill the database with it.
MAX_AUDIT_FIELD = 256


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One management operation: who did what to which resource, and how it ended.
    `project_id` is the project the operation concerned, once it was known (None: a system
    operation, or one that failed before its project was found): that project's members see
    the entry."""

    op_time: int
    operator: str
    operation: str
    resource_type: str
    resource: str
    outcome: str
    id: int = 0
    project_id: int | None = None


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    ROBOT = "robot"
    LOCAL = "local"  # the operator at the command line, with the database in hand


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking. `name` is what tokens carry as `sub` (empty when anonymous)."""

    kind: PrincipalKind
    name: str
    user: User | None = None
    robot: Robot | None = None
    # When the credential it authenticated with stops working on its own (a legacy robot's
    # JWT `exp`); None: not bounded by the credential.
    valid_until: int | None = None
    # The workload a robot logged in as, when its password was an OIDC ID token.
    identity: Identity | None = None
    # Logged in with a temporary secret (from a token exchange): that secret is the session's
    # credential, so no refresh token is handed out for it (one would outlive the secret when
    # the secret is dropped early).
    temporary: bool = False
    # Logged in with the robot's previous secret (kept by a refresh with a grace period): its
    # refresh tokens end with that secret (`valid_until` is when it ends).
    previous_secret: bool = False

    @property
    def sysadmin(self) -> bool:
        return self.kind is PrincipalKind.LOCAL or (self.user is not None and self.user.sysadmin)

    @property
    def operator(self) -> str:
        """How the audit log names this principal."""
        return self.name or "anonymous"


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, "")
LOCAL = Principal(PrincipalKind.LOCAL, "local-admin")


def duration_error(duration: int) -> str | None:
    """Why `duration` (days) is not a robot's duration, naming the bound; None if it is one:
    -1 for never, otherwise 1 .. MAX_DURATION_DAYS."""
    if duration == NEVER or 1 <= duration <= MAX_DURATION_DAYS:
        return None
    return (
        f"duration {duration} is out of range: use -1 (never expires) or 1 to "
        f"{MAX_DURATION_DAYS} days"
    )


def check_duration(duration: int) -> int:
    """`duration` if it is a robot's duration (`duration_error`); BadRequest otherwise."""
    error = duration_error(duration)
    if error is not None:
        raise BadRequest(error)
    return duration


def expires_at(start: int, duration: int) -> int:
    """Unix seconds when a robot expires, -1 for never: `duration` days after the start of
    its expiry period (its creation, or the last time its expiry was restarted)."""
    return NEVER if duration == NEVER else start + duration * SECONDS_PER_DAY


def period_start(robot: Robot) -> int:
    """When the robot's current expiry period began: its creation, or the last
    `restart_expiry`. Derived, not stored: an expiry is always that start plus the duration
    (a period cannot start before the robot existed)."""
    if robot.duration == NEVER or robot.expires_at == NEVER:
        return robot.creation_time
    return max(robot.creation_time, robot.expires_at - robot.duration * SECONDS_PER_DAY)
