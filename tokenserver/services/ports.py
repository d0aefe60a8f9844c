"""Storage contracts the services depend on. Adapters live in `tokenserver.storage`.

Names say what happens when nothing matches: `find_*` returns None; the services' `get` (with
authorization) and `resolve` (without) raise the matching `*NotFound`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from tokenserver.domain.federation import (
    Condition,
    FederationFailure,
    FederationLogin,
    FederationRule,
    Identity,
    Issuer,
    TemporarySecret,
)
from tokenserver.domain.lockouts import LockoutRow
from tokenserver.domain.models import (
    AuditEntry,
    KeyRecord,
    KeyState,
    Level,
    Member,
    Project,
    RefreshToken,
    Robot,
    User,
    WebSession,
)
from tokenserver.domain.permissions import Access, Permission
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.roles import Role
from tokenserver.domain.webhooks import Delivery, DeliveryStatus, Target, WebhookPolicy


@dataclass(frozen=True, slots=True)
class NewRobot:
    name: str
    project_id: int | None
    level: Level
    description: str
    secret_hash: str
    duration: int
    expires_at: int
    creation_time: int
    permissions: tuple[Permission, ...]
    disabled: bool = False
    legacy_id: int | None = None
    legacy_project_id: int | None = None
    # Seconds its tokens last; None: token.lifetime.
    token_lifetime: int | None = None


@dataclass(frozen=True, slots=True)
class RobotChanges:
    """Fields to change on a robot; None leaves a field as it is."""

    description: str | None = None
    duration: int | None = None
    expires_at: int | None = None
    disabled: bool | None = None
    secret_hash: str | None = None
    permissions: tuple[Permission, ...] | None = None
    # NOTE: unchecked here; `set_secret_login` turns it off only for a robot with rules.
    secret_login: bool | None = None
    # Seconds its tokens last; FOLLOW_GLOBAL (0) clears it (token.lifetime from then on).
    token_lifetime: int | None = None
    # End the previous secret kept by a refresh with a grace period (a disabled robot, or an
    # expired one given a new expiry: neither brings it back).
    drop_previous_secret: bool = False


@dataclass(frozen=True, slots=True)
class AuditScope:
    """Which audit entries a list may show: every entry (the default), those of one project
    (`project_id`), or those of the projects where user `member_id` is a member in one of
    `roles`. Entries of no project are shown only to the first."""

    project_id: int | None = None
    member_id: int | None = None
    roles: tuple[Role, ...] = ()


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    email: str
    realname: str
    comment: str
    password_hash: str
    sysadmin: bool


@dataclass(frozen=True, slots=True)
class NewIssuer:
    name: str
    url: str
    audiences: tuple[str, ...]
    jwks_file: str | None
    ca_file: str | None
    max_token_lifetime: int
    created_at: int


@dataclass(frozen=True, slots=True)
class NewRule:
    """A federation rule to store: its issuer (by id) and its conditions."""

    issuer_id: int
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class IssuerRemoval:
    """How removing an issuer ended: `removed`, or refused because the rules of `robots`
    robots use it (0 and not removed: there was no such issuer)."""

    removed: bool
    robots: int = 0


@dataclass(frozen=True, slots=True)
class NewWebhookPolicy:
    """A webhook policy to store, or what a policy becomes (an update replaces every field
    but its project, creator and creation time)."""

    project_id: int | None
    name: str
    description: str
    targets: tuple[Target, ...]
    event_types: tuple[str, ...]
    enabled: bool
    creator: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How a claimed delivery's try ended: its new status, what to show about it, and, when
    PENDING, when it is tried next."""

    status: DeliveryStatus
    message: str
    next_attempt_at: int = 0


class UserChange(Enum):
    """How a change that could leave no system admin ended."""

    DONE = "done"
    MISSING = "missing"  # no such user
    LAST_SYSADMIN = "last sysadmin"  # refused: the user is the only system admin left


class LockoutStore(Protocol):
    """Failure scores and running checks shared by every process serving one database
    (replicas, `serve --workers`): see `tokenserver.domain.lockouts`. Keys are
    `lockout_key` digests; times are seconds since the epoch."""

    async def add_lockout_failure(self, key: str, now: float) -> LockoutRow:
        """Add a failure at `now` to `key`'s score, in one statement: failures added at once
        by several processes all count. The row as this failure left it."""
        ...

    async def extend_lockout(self, key: str, until: float) -> None:
        """Lock `key` out until `until`, unless it already is until later (a row that is
        gone stays gone)."""
        ...

    async def clear_lockout(self, key: str) -> None:
        """Forget `key`'s score and lockout."""
        ...

    async def find_lockouts(self, keys: Sequence[str]) -> list[LockoutRow]:
        """The rows of those of `keys` that have one."""
        ...

    async def list_lockouts(self, now: float, limit: int) -> list[LockoutRow]:
        """At most `limit` rows locked out at `now`, the latest-ending first."""
        ...

    async def begin_check(
        self, check_id: str, pair: str, address: str, now: float
    ) -> tuple[int, int]:
        """Record a check (a KDF run) starting at `now` for the `pair` and `address` keys;
        how many other checks run for each (those begun CHECK_STALE_SECONDS ago or more are
        not counted: their process died). Recorded before it counts: of two checks begun at
        once, each in its own process, at least one counts the other."""
        ...

    async def end_check(self, check_id: str) -> None:
        """The check has ended."""
        ...

    async def prune_lockouts(self, now: float) -> None:
        """Forget checks gone stale and scores that have decayed to nothing, unlocked."""
        ...


class Store(LockoutStore, Protocol):
    # ---- projects -------------------------------------------------------------------------
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Run the block's statements as one transaction, all or nothing, as the command
        line's import does. SQLite shares one connection per process: the process's other
        statements wait for the commit (other processes too); PostgreSQL gives the block's
        task its own connection (others go on, isolated). Within a transaction of the same
        task, the block is a savepoint: undone alone when it raises."""
        ...

    async def create_project(
        self,
        name: str,
        public: bool,
        owner_id: int | None,
        now: int,
        metadata: Mapping[str, str] | None = None,
    ) -> Project:
        """Insert a project with its `metadata` (Harbor's keys other than `public`) and, with
        an owner, the owner as its projectAdmin member: both or neither. Raises Conflict if
        the name is taken, UserNotFound if the owner does not exist (any more)."""
        ...

    async def find_project(self, name: str) -> Project | None: ...

    async def find_project_by_id(self, project_id: int) -> Project | None: ...

    async def list_projects(self, name_contains: str = "") -> list[Project]:
        """Projects whose name contains `name_contains`, by name."""
        ...

    async def update_project(
        self,
        project_id: int,
        public: bool | None,
        now: int,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Set `public` (None: keep it) and the given `metadata` keys (the others are kept), in
        one statement. False if the project does not exist."""
        ...

    async def add_project_metadata(self, project_id: int, key: str, value: str, now: int) -> bool:
        """Set the metadata `key` the project does not hold yet, in one statement. False if the
        project holds it already or does not exist."""
        ...

    async def delete_project_metadata(self, project_id: int, key: str, now: int) -> bool:
        """Remove the metadata `key` (held or not). False if the project does not exist."""
        ...

    async def project_metadata(self, project_ids: Collection[int]) -> dict[int, dict[str, str]]:
        """The metadata of each project of `project_ids` that exists, by id."""
        ...

    async def delete_project(self, project_id: int) -> bool:
        """Delete a project, its robots and members in one statement. False if missing."""
        ...

    # ---- robots ---------------------------------------------------------------------------
    async def create_robot(self, robot: NewRobot) -> Robot:
        """Insert a robot. Raises Conflict if the name is taken at its level (project robots:
        within the project; system robots: among system robots)."""
        ...

    async def find_robot(self, project_name: str | None, name: str) -> Robot | None:
        """The robot `name` of project `project_name`, or the system robot `name` when
        `project_name` is None (the token path: one query)."""
        ...

    async def find_robot_by_id(self, robot_id: int) -> Robot | None: ...

    async def find_legacy_robot(self, name: str) -> Robot | None:
        """The legacy robot `robot$<name>`."""
        ...

    async def list_robots(self, project_id: int | None, name_contains: str = "") -> list[Robot]:
        """The project's robots (system robots when None) whose short name contains
        `name_contains`, by id."""
        ...

    async def update_robot(self, robot_id: int, now: int, changes: RobotChanges) -> bool:
        """Change the given fields. Disabling the robot or turning its secret login off ends
        its previous secret too (`drop_previous_secret`). False if the robot does not
        exist."""
        ...

    async def replace_robot_secret(
        self,
        robot_id: int,
        now: int,
        secret_hash: str,
        *,
        keep_previous_until: int | None = None,
        expires_at: int | None = None,
        replacing: str | None = None,
    ) -> bool:
        """Give the robot a new secret (and `expires_at`, None: keep it), in one transaction.
        Without `keep_previous_until`, the old secret ends at once, with every refresh token
        and temporary secret of the robot, and so does any previous secret. With it, the
        secret replaced becomes the previous one, working until then: the previous one before
        it ends with its refresh tokens, and the refresh tokens of the secret replaced (not
        those of federated logins) end with it from now on (`RefreshToken.previous_secret`).
        The secret replaced is kept only if, when written, the robot is enabled, not expired,
        its secret login on and its secret still `replacing` (the hash the caller read; None:
        whichever it is); otherwise no previous secret is kept, and the refresh tokens of
        secret logins end (those of federated logins and the temporary secrets stay, as with
        a grace period). False if the robot does not exist."""
        ...

    async def rehash_robot_secret(self, robot_id: int, replacing: str, secret_hash: str) -> bool:
        """Store `secret_hash`, a new hash of the same secret, if the robot's secret hash is
        still `replacing` (a refresh meanwhile wins: its secret is not brought back). False
        otherwise, or if the robot does not exist."""
        ...

    async def revoke_previous_secret(self, robot_id: int, now: int) -> bool:
        """End the robot's previous secret and its refresh tokens, in one transaction. False
        if it held none (or does not exist)."""
        ...

    async def count_robot_expiries(
        self, now: int, windows: Sequence[int]
    ) -> tuple[int, dict[int, int]]:
        """Enabled robots that have expired by `now`, and for each window (seconds) those
        that have not but will within it. Disabled robots count in neither."""
        ...

    async def list_expiring_robots(
        self, now: int, until: int, project_id: int | None = None
    ) -> list[Robot]:
        """Enabled robots (of the project; None: all, system robots too) that have not
        expired by `now` and will by `until`, soonest first."""
        ...

    async def replace_robot_permissions(
        self,
        robot_id: int,
        now: int,
        expected: tuple[Permission, ...],
        permissions: tuple[Permission, ...],
    ) -> bool:
        """Set the robot's permissions if they are still `expected` (compare and swap);
        False if they changed meanwhile or the robot does not exist."""
        ...

    async def longest_token_lifetime(self) -> int | None:
        """The longest token lifetime any robot has of its own (None: none has one)."""
        ...

    async def delete_robot(self, robot_id: int) -> bool:
        """False if the robot did not exist."""
        ...

    async def record_robot_use(self, last_used: dict[int, int]) -> None:
        """Raise each robot's `last_used_at` to the given Unix time (never lower it)."""
        ...

    # ---- users ----------------------------------------------------------------------------
    async def create_user(self, user: NewUser, now: int) -> User:
        """Raises Conflict if the username is taken."""
        ...

    async def find_user(self, username: str) -> User | None: ...

    async def find_user_by_id(self, user_id: int) -> User | None: ...

    async def list_users(self, username_contains: str = "") -> list[User]:
        """By id."""
        ...

    async def update_user_password(self, user_id: int, password_hash: str, now: int) -> bool: ...

    async def update_user_profile(
        self, user_id: int, email: str, realname: str, comment: str, now: int
    ) -> bool:
        """False if the user does not exist."""
        ...

    async def set_user_sysadmin(self, user_id: int, sysadmin: bool, now: int) -> UserChange:
        """Make the user a system admin or not; a demotion that would leave no system admin
        is refused (LAST_SYSADMIN), also when several run at once, on any replica."""
        ...

    async def delete_user(self, user_id: int) -> UserChange:
        """Delete the user, with its memberships, refresh tokens and web sessions, in one
        statement (projects it owns keep no owner). Refused (LAST_SYSADMIN) if it is the only
        system admin left, also when several run at once, on any replica."""
        ...

    # ---- members --------------------------------------------------------------------------
    async def add_member(self, project_id: int, user_id: int, role: Role, now: int) -> Member:
        """Raises Conflict if the user is already a member, UserNotFound or ProjectNotFound
        if the user or the project does not exist (any more)."""
        ...

    async def find_member(self, project_id: int, user_id: int) -> Member | None: ...

    async def find_member_by_id(self, project_id: int, member_id: int) -> Member | None: ...

    async def list_members(self, project_id: int, name_contains: str = "") -> list[Member]: ...

    async def update_member(
        self, project_id: int, member_id: int, role: Role, now: int
    ) -> bool: ...

    async def delete_member(self, project_id: int, member_id: int) -> bool: ...

    # ---- refresh tokens -------------------------------------------------------------------
    async def add_refresh_token(
        self,
        token_hash: str,
        client_id: str,
        now: int,
        *,
        robot_id: int | None = None,
        user_id: int | None = None,
        keep: int,
        expires_at: int | None = None,
        legacy_access: tuple[Access, ...] | None = None,
        federated: bool = False,
        identity: Identity | None = None,
        previous_secret: bool = False,
    ) -> RefreshToken:
        """Store a refresh token for a robot or a user, keeping only its `keep` newest. Its
        last use is `now`; `expires_at` and `legacy_access` are stored as given (a legacy
        robot's JWT's end and grant; None for other tokens). `federated`: issued to a login
        with an ID token (revoked when the robot's rules change), as the workload `identity`.
        `previous_secret`: issued to a login with the robot's previous secret, ending with it."""
        ...

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None: ...

    async def record_refresh_token_use(self, last_used: dict[int, int]) -> None:
        """Raise each refresh token's `last_used_at` to the given Unix time (never lower it;
        a token deleted meanwhile is skipped)."""
        ...

    async def list_refresh_tokens(
        self, *, robot_id: int | None = None, user_id: int | None = None
    ) -> list[RefreshToken]:
        """Newest first."""
        ...

    async def delete_refresh_tokens(
        self,
        *,
        robot_id: int | None = None,
        user_id: int | None = None,
        token_id: int | None = None,
    ) -> int:
        """Revoke the account's tokens (one of them with `token_id`); the number revoked."""
        ...

    # ---- robot federation -----------------------------------------------------------------
    async def add_issuer(self, issuer: NewIssuer) -> Issuer:
        """Raises Conflict if the name or the URL is taken."""
        ...

    async def find_issuer(self, name: str) -> Issuer | None: ...

    async def find_issuer_by_url(self, url: str) -> Issuer | None:
        """The issuer whose URL is exactly `url` (a token's `iss`)."""
        ...

    async def list_issuers(self) -> list[Issuer]:
        """By name."""
        ...

    async def delete_issuer(self, name: str) -> IssuerRemoval:
        """Remove the issuer unless a rule uses it, also when a rule is added at the same
        time, on any replica."""
        ...

    async def list_federation_rules(self, robot_id: int) -> list[FederationRule]:
        """The robot's rules, by id (none for a robot that does not exist)."""
        ...

    async def replace_federation_rules(
        self, robot_id: int, rules: Sequence[NewRule], now: int
    ) -> list[FederationRule]:
        """Make `rules` the robot's rules, by id, and revoke its federated refresh tokens and
        its temporary secrets, in one transaction; rules equal to the stored ones (same
        issuers and conditions, in order) are kept as they are, ids and tokens too.
        Concurrent replacements of one robot's rules run one after the other: the last one is
        the robot's rules. Raises
        RobotNotFound, NotFound (an issuer removed meanwhile), Conflict (no rules left for a
        robot whose secret login is off)."""
        ...

    async def add_federation_rule(
        self, robot_id: int, rule: NewRule, now: int, limit: int
    ) -> FederationRule:
        """Add one rule and revoke the robot's federated refresh tokens and temporary
        secrets, in one transaction.
        Raises RobotNotFound, NotFound (the issuer was removed meanwhile), Conflict (the
        robot has `limit` rules already)."""
        ...

    async def delete_federation_rule(self, robot_id: int, rule_id: int, now: int) -> bool:
        """Remove one of the robot's rules and revoke its federated refresh tokens and
        temporary secrets, in one transaction; False if the robot holds no such rule. Raises
        Conflict for the last rule of a robot whose secret login is off."""
        ...

    async def set_secret_login(self, robot_id: int, enabled: bool, now: int) -> bool:
        """Turn the robot's secret login on or off. Off, its previous secret ends and its
        refresh tokens issued to secret logins are revoked, in the same transaction; refused
        (Conflict) for a robot that has no rules, also while they are removed at the same
        time. False if the robot does not exist."""
        ...

    async def add_federation_failure(
        self, robot_id: int, at: int, issuer: str, subject: str, reason: str
    ) -> None:
        """Record a refused federated login of the robot, keeping its newest KEEP_FAILURES.
        The text comes escaped (domain/text.py `escape`: a token's `sub` is the caller's) and
        is stored as it is, bounded; text that is not printable is escaped. A robot deleted
        meanwhile records nothing."""
        ...

    async def list_federation_failures(self, robot_id: int) -> list[FederationFailure]:
        """Newest first."""
        ...

    async def add_federation_login(self, robot_id: int, at: int, identity: Identity) -> None:
        """Record a federated login of the robot (who it was), keeping its newest KEEP_LOGINS.
        The text is stored escaped and bounded; a robot deleted meanwhile records nothing."""
        ...

    async def list_federation_logins(self, robot_id: int) -> list[FederationLogin]:
        """Newest first."""
        ...

    async def use_jti(self, iss: str, jti: str, expires_at: int, now: int) -> bool:
        """True the first time the `jti` of the issuer at URL `iss` is presented (kept until
        `expires_at`, whatever happens to the issuer's configuration meanwhile), False ever
        after, across replicas: one INSERT .. ON CONFLICT DO NOTHING. The `jti`s that expired
        by `now` are forgotten. Only a SHA-256 of the pair is stored."""
        ...

    async def add_temporary_secret(
        self,
        token_hash: str,
        robot_id: int,
        identity: Identity,
        now: int,
        expires_at: int,
        *,
        keep: int,
    ) -> TemporarySecret | None:
        """Store a temporary robot secret (its hash) handed to the workload `identity`, if
        the robot still exists, is enabled and holds the rule that admitted the workload
        (`identity.rule_id`): checked with the robot's row held, so that a change of its
        rules (which revokes its temporary secrets) runs wholly before or after. The robot
        keeps its `keep` newest live secrets; every robot's secrets that expired by `now` are
        forgotten. None when refused."""
        ...

    async def find_temporary_secret(self, token_hash: str) -> TemporarySecret | None:
        """The temporary secret with this hash, expired or not."""
        ...

    async def list_temporary_secrets(self, robot_id: int, now: int) -> list[TemporarySecret]:
        """The robot's temporary secrets that have not expired by `now`, newest first."""
        ...

    async def delete_temporary_secrets(self, robot_id: int) -> int:
        """Revoke the robot's temporary secrets; how many. (A change of its rules revokes
        them too, in the same transaction.)"""
        ...

    # ---- web sessions ---------------------------------------------------------------------
    async def add_session(
        self, token_hash: str, user_id: int, now: int, expires_at: int, *, keep: int | None = None
    ) -> None:
        """Store a session; with `keep`, end the user's older sessions beyond the newest
        `keep`."""
        ...

    async def find_session(self, token_hash: str, now: int) -> WebSession | None:
        """The session with this token hash unless it has expired by `now`."""
        ...

    async def delete_sessions(
        self, *, token_hash: str | None = None, user_id: int | None = None, before: int = 0
    ) -> None:
        """Delete the session with `token_hash`, every session of `user_id`, and every session
        that expired by `before`."""
        ...

    # ---- signing keys ---------------------------------------------------------------------
    async def list_keys(self) -> list[KeyRecord]:
        """The keyring, by id (empty until the first `keys add`)."""
        ...

    async def add_key(
        self, key_path: str, cert_path: str, state: KeyState, now: int
    ) -> KeyRecord: ...

    async def activate_key(self, key_id: int) -> bool:
        """Make `key_id` the only active key (the previous one becomes published), in one
        transaction. False if it does not exist."""
        ...

    async def retire_key(self, key_id: int, now: int) -> bool: ...

    # ---- webhooks -------------------------------------------------------------------------
    async def add_webhook_policy(
        self, policy: NewWebhookPolicy, now: int, most: int
    ) -> WebhookPolicy | None:
        """The policy added; None if its project (or the system) has `most` policies already
        (counted and added as one step, also with concurrent adds). Raises Conflict if the
        name is taken in its project (or among system policies), ProjectNotFound if the
        project was deleted meanwhile."""
        ...

    async def find_webhook_policy(self, policy_id: int) -> WebhookPolicy | None: ...

    async def list_webhook_policies(self, project_id: int | None) -> list[WebhookPolicy]:
        """The project's policies (system policies when None), by id."""
        ...

    async def count_webhook_policies_with_auth_headers(self) -> int:
        """How many policies, of every project and of the system, have a target with an auth
        header stored."""
        ...

    async def update_webhook_policy(
        self, policy_id: int, policy: NewWebhookPolicy, now: int
    ) -> bool:
        """Replace the policy's name, description, targets, event types and enabled flag.
        False if it does not exist; Conflict if the name is taken."""
        ...

    async def delete_webhook_policy(self, policy_id: int) -> bool:
        """Delete the policy with its deliveries, pending ones too. False if missing."""
        ...

    async def retarget_webhook_deliveries(
        self, policy_id: int, targets: tuple[Target, ...], now: int, dropped: str
    ) -> int:
        """After the policy's targets changed to `targets`: its unfinished deliveries to an
        address it still has take that target as it is now (header, skip_cert_verify); those
        to an address it no longer has end (Error, `dropped` as their message), but for a try
        in flight under a live lease. How many ended."""
        ...

    async def enqueue_webhook_event(
        self,
        project_id: int | None,
        event_type: str,
        event_id: str,
        payload: str,
        now: int,
    ) -> int:
        """Queue one delivery per target of each enabled policy of the project (system
        policies when None) that takes `event_type`; how many. Run it in the transaction of
        the change it reports, so that both or neither are kept."""
        ...

    async def claim_webhook_deliveries(
        self, owner: str, now: int, lease_until: int, limit: int
    ) -> list[Delivery]:
        """Take up to `limit` deliveries due by `now` (pending, or running under a lease that
        ran out: their server died) for `owner` until `lease_until`, counting a try for each.
        Fairly: each project (and the system) in turn, and within one, first tries before
        retries, oldest first. Concurrent claims, on any replica, never take the same
        delivery while its lease runs."""
        ...

    async def finish_webhook_delivery(
        self, delivery_id: int, owner: str, now: int, outcome: DeliveryOutcome
    ) -> bool:
        """Record a try's outcome and release the lease, if `owner` still holds it (False:
        it ran out and another server took the delivery over)."""
        ...

    async def list_webhook_deliveries(
        self, policy_id: int, offset: int, limit: int
    ) -> tuple[list[Delivery], int]:
        """A page of the policy's deliveries, newest first, and how many it has."""
        ...

    async def find_webhook_delivery(self, delivery_id: int) -> Delivery | None: ...

    async def forget_webhook_deliveries(self, before: int) -> int:
        """Delete the finished deliveries (success or given up) created before `before`."""
        ...

    async def robots_expiring_by(self, until: int) -> list[Robot]:
        """The robots that expire (or expired) by `until`, never-expiring ones aside."""
        ...

    async def add_robot_notice(self, robot_id: int, kind: str, expires_at: int) -> bool:
        """Record that the robot's `kind` notice for its expiry `expires_at` is sent: True the
        first time, False ever after (across replicas) and for a robot that no longer
        exists."""
        ...

    # ---- audit log ------------------------------------------------------------------------
    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def list_audit(
        self,
        offset: int,
        limit: int,
        query: Query = EVERYTHING,
        scope: AuditScope = AuditScope(),
    ) -> tuple[list[AuditEntry], int]:
        """A page of the entries in `scope` meeting `query`'s conditions (keys of
        AUDIT_EXT_KEYS), in its order (none: newest first), and how many there are in all.
        Filtered, counted and paged in the database."""
        ...

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        ...

    async def close(self) -> None: ...
