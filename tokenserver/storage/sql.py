"""What the SQL adapters share: the row mapping and every query, written once.

Queries use `?` placeholders and portable SQL (coalesce, CASE, RETURNING-free inserts); an
adapter supplies how statements run (`_rows`, `_execute`, `_execute_many`, `_insert`) and the
few spellings that differ between databases (`_CONTAINS`, `_GREATEST`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from tokenserver.domain.federation import (
    KEEP_FAILURES,
    KEEP_LOGINS,
    FederationFailure,
    FederationLogin,
    FederationRule,
    Identity,
    Issuer,
    TemporarySecret,
)
from tokenserver.domain.federation import Condition as RuleCondition
from tokenserver.domain.lockouts import (
    BASE_SPAN,
    CARRY,
    CHECK_STALE_SECONDS,
    LockoutRow,
    failure_weight,
)
from tokenserver.domain.models import (
    MAX_AUDIT_FIELD,
    NEVER,
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
from tokenserver.domain.permissions import Access, Effect, Permission, PermissionKind
from tokenserver.domain.query import EVERYTHING, Condition, Kind, Op, Query
from tokenserver.domain.roles import Role

# NOTE: declared with the other errors; re-exported for code that imports it from here.
from tokenserver.domain.text import printable, truncate
from tokenserver.domain.webhooks import Delivery, DeliveryStatus, Target, WebhookPolicy
from tokenserver.errors import (
    Conflict,
    NotFound,
    ProjectNotFound,
    RobotNotFound,
    TokenServerError,
    UserNotFound,
)
from tokenserver.errors import StorageError as StorageError
from tokenserver.services.ports import (
    AuditScope,
    DeliveryOutcome,
    IssuerRemoval,
    NewIssuer,
    NewRobot,
    NewRule,
    NewUser,
    NewWebhookPolicy,
    RobotChanges,
    UserChange,
)

_PROJECT_COLUMNS = (
    "p.id, p.name, p.public, p.creation_time, p.update_time, p.owner_id, coalesce(u.username, '')"
)
_PROJECT_FROM = "project p LEFT JOIN users u ON u.id = p.owner_id"
_ROBOT_COLUMNS = (
    "r.id, r.name, r.project_id, p.name, r.level, r.description, r.secret_hash, r.duration, "
    "r.expires_at, r.disabled, r.creation_time, r.update_time, r.permissions, r.last_used_at, "
    "r.legacy_id, r.legacy_project_id, coalesce(p.public, FALSE), r.secret_login, "
    "r.token_lifetime, r.previous_secret_hash, r.previous_secret_expires_at"
)
_ROBOT_FROM = "robot r LEFT JOIN project p ON p.id = r.project_id"
_USER_COLUMNS = (
    "id, username, email, realname, comment, password_hash, sysadmin, creation_time, update_time"
)
_MEMBER_COLUMNS = "m.id, m.project_id, m.user_id, u.username, m.role"
_MEMBER_FROM = "member m JOIN users u ON u.id = m.user_id"
_AUDIT_COLUMNS = "op_time, operator, operation, resource_type, resource, outcome, id, project_id"
# The SQL of each audit query key (domain/harbor_query.py: AUDIT_EXT_KEYS).
_AUDIT_EXPRESSIONS = {
    "id": "id",
    "project_id": "project_id",
    "operation": "operation",
    "resource_type": "resource_type",
    "resource": "resource",
    "username": "operator",
    "op_time": "op_time",
    "op_desc": "(operation || ' ' || resource_type || ': ' || resource)",
    "op_result": "(outcome = 'success')",
}
_REFRESH_COLUMNS = (
    "id, robot_id, user_id, client_id, created_at, last_used_at, expires_at, legacy_access, "
    "federated, identity, previous_secret"
)
_ISSUER_COLUMNS = "id, name, url, audiences, jwks_file, ca_file, max_token_lifetime, created_at"
_RULE_COLUMNS = "fr.id, fr.robot_id, fi.name, fr.conditions, fr.created_at"
_RULE_FROM = "federation_rule fr JOIN federation_issuer fi ON fi.id = fr.issuer_id"
_FAILURE_COLUMNS = "id, robot_id, at, issuer, subject, reason"
_TEMPORARY_COLUMNS = "id, robot_id, created_at, expires_at, identity"
_IDENTITY_FIELDS = frozenset(f.name for f in dataclasses.fields(Identity))
_LOGIN_FIELDS = (
    "issuer", "iss", "sub", "aud", "rule_id", "expires_at",
    "jti", "repository", "ref", "sha", "run_id",
)  # fmt: skip

_POLICY_COLUMNS = (
    "id, project_id, name, description, targets, event_types, creator, enabled, "
    "creation_time, update_time"
)
_DELIVERY_COLUMNS = (
    "id, policy_id, event_type, event_id, payload, target, status, attempts, next_attempt_at, "
    "status_message, creation_time, update_time, start_time, end_time"
)
# Deliveries a server may take: waiting, or held by a server whose lease ran out.
_DELIVERY_DUE = (
    f"{{d}}status IN ('{DeliveryStatus.PENDING}', '{DeliveryStatus.RUNNING}') "
    "AND {d}next_attempt_at <= ? AND coalesce({d}lease_until, 0) < ?"
)
# The due deliveries with their turn: each project's (and the system's) in rotation, so that
# one project's many failing targets, and their retries, cannot hold back another project's
# events; within a project, first tries before retries, then oldest first.
_DELIVERY_TURNS = (
    "SELECT d.id, d.attempts > 0 AS retry, row_number() OVER ("  # noqa: S608
    "PARTITION BY coalesce(p.project_id, 0) ORDER BY d.attempts > 0, d.id) AS turn "
    "FROM webhook_delivery d JOIN webhook_policy p ON p.id = d.policy_id "
    f"WHERE {_DELIVERY_DUE.format(d='d.')}"
)

# Whether a system admin other than the user `?` exists.
_ANOTHER_SYSADMIN = (
    "EXISTS (SELECT 1 FROM users other WHERE other.sysadmin = TRUE AND other.id <> ?)"
)

_T = TypeVar("_T")


def _metadata_to_json(metadata: Mapping[str, str] | None) -> str:
    return json.dumps(dict(metadata or {}), separators=(",", ":"), sort_keys=True)


def _metadata_from_json(text: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(text).items()}


def _permissions_to_json(permissions: tuple[Permission, ...]) -> str:
    return json.dumps(
        [
            {
                "kind": p.kind,
                "namespace": p.namespace,
                "project_id": p.project_id,
                "access": [[a.resource, a.action, a.effect.value] for a in p.access],
                # Left out when it is every repository: the text of an entry without patterns
                # stays what it was (replace_robot_permissions compares it).
                **({"repositories": list(p.repositories)} if p.repositories else {}),
            }
            for p in permissions
        ],
        separators=(",", ":"),
    )


def _permissions_from_json(text: str) -> tuple[Permission, ...]:
    return tuple(
        Permission(
            namespace=p["namespace"],
            kind=PermissionKind(p["kind"]),
            project_id=p.get("project_id"),
            access=tuple(Access(r, a, Effect(e)) for r, a, e in p["access"]),
            repositories=tuple(p.get("repositories", ())),
        )
        for p in json.loads(text)
    )


def _project(row: Any) -> Project:
    return Project(row[0], row[1], bool(row[2]), row[3], row[4], row[5], row[6])


def _robot(row: Any) -> Robot:
    return Robot(
        id=row[0],
        name=row[1],
        project_id=row[2],
        project_name=row[3],
        level=Level(row[4]),
        description=row[5],
        secret_hash=row[6],
        duration=row[7],
        expires_at=row[8],
        disabled=bool(row[9]),
        creation_time=row[10],
        update_time=row[11],
        permissions=_permissions_from_json(row[12]),
        last_used_at=row[13],
        legacy_id=row[14],
        legacy_project_id=row[15],
        project_public=bool(row[16]),
        secret_login=bool(row[17]),
        token_lifetime=row[18],
        previous_secret_hash=row[19],
        previous_secret_expires_at=row[20],
    )


def _user(row: Any) -> User:
    return User(
        id=row[0],
        username=row[1],
        email=row[2],
        realname=row[3],
        comment=row[4],
        password_hash=row[5],
        sysadmin=bool(row[6]),
        creation_time=row[7],
        update_time=row[8],
    )


def _member(row: Any) -> Member:
    return Member(row[0], row[1], row[2], row[3], Role(row[4]))


def _access_to_json(access: tuple[Access, ...] | None) -> str | None:
    if access is None:
        return None
    return json.dumps([[a.resource, a.action] for a in access], separators=(",", ":"))


def _access_from_json(text: str | None) -> tuple[Access, ...] | None:
    if text is None:
        return None
    return tuple(Access(resource, action) for resource, action in json.loads(text))


def _refresh_token(row: Any) -> RefreshToken:
    return RefreshToken(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        _access_from_json(row[7]),
        bool(row[8]),
        None if row[9] is None else _identity_from_json(row[9]),
        bool(row[10]),
    )


def _issuer(row: Any) -> Issuer:
    return Issuer(
        id=row[0],
        name=row[1],
        url=row[2],
        audiences=tuple(json.loads(row[3])),
        jwks_file=row[4],
        ca_file=row[5],
        max_token_lifetime=row[6],
        created_at=row[7],
    )


def _conditions_to_json(conditions: Sequence[RuleCondition]) -> str:
    return json.dumps([[c.claim, list(c.patterns)] for c in conditions], separators=(",", ":"))


def _conditions_from_json(text: str) -> tuple[RuleCondition, ...]:
    return tuple(RuleCondition(claim, tuple(patterns)) for claim, patterns in json.loads(text))


def _rule(row: Any) -> FederationRule:
    return FederationRule(row[0], row[1], row[2], _conditions_from_json(row[3]), row[4])


def _identity_to_json(identity: Identity) -> str:
    return json.dumps(
        {name: getattr(identity, name) for name in sorted(_IDENTITY_FIELDS)},
        separators=(",", ":"),
    )


def _identity_from_json(text: str) -> Identity:
    # NOTE: only the fields this version knows: a field added later is dropped, not an error.
    stored = json.loads(text)
    return Identity(**{k: v for k, v in stored.items() if k in _IDENTITY_FIELDS})


def _temporary_secret(row: Any) -> TemporarySecret:
    return TemporarySecret(row[0], row[1], row[2], row[3], _identity_from_json(row[4]))


def _target_to_json(target: Target) -> dict[str, Any]:
    return {
        "type": target.type,
        "address": target.address,
        "auth_header": target.auth_header,
        "skip_cert_verify": target.skip_cert_verify,
        "payload_format": target.payload_format,
    }


def _target_from_json(data: dict[str, Any]) -> Target:
    return Target(
        address=data["address"],
        auth_header=data.get("auth_header", ""),
        skip_cert_verify=bool(data.get("skip_cert_verify", False)),
        type=data.get("type", "http"),
        payload_format=data.get("payload_format", "Default"),
    )


def _policy(row: Any) -> WebhookPolicy:
    return WebhookPolicy(
        id=row[0],
        project_id=row[1],
        name=row[2],
        description=row[3],
        targets=tuple(_target_from_json(t) for t in json.loads(row[4])),
        event_types=tuple(json.loads(row[5])),
        creator=row[6],
        enabled=bool(row[7]),
        creation_time=row[8],
        update_time=row[9],
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row[0],
        policy_id=row[1],
        event_type=row[2],
        event_id=row[3],
        payload=row[4],
        target=_target_from_json(json.loads(row[5])),
        status=DeliveryStatus(row[6]),
        attempts=row[7],
        next_attempt_at=row[8],
        status_message=row[9],
        creation_time=row[10],
        update_time=row[11],
        start_time=row[12],
        end_time=row[13],
    )


def _marks(values: Sequence[object]) -> str:
    """The placeholders of an IN list of `values`."""
    return ",".join("?" * len(values))


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    """`ids` in lists of at most `size`: within any database's limit on parameters."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _stored_text(text: str) -> str:
    """Text a failure record keeps: escaped by its maker (a reason quotes the token's values,
    escaped, and must not be escaped twice), printable whatever it is given, bounded."""
    return truncate(printable(text), MAX_AUDIT_FIELD)


def _owner(robot_id: int | None, user_id: int | None) -> tuple[str, tuple[object, ...]]:
    """The WHERE clause for a robot's or a user's refresh tokens (`= NULL` never matches)."""
    clauses, args = [], []
    for column, value in (("robot_id", robot_id), ("user_id", user_id)):
        if value is None:
            clauses.append(f"{column} IS NULL")
        else:
            clauses.append(f"{column} = ?")
            args.append(value)
    return " AND ".join(clauses), tuple(args)


def _lockout_row(row: Any) -> LockoutRow:
    return LockoutRow(str(row[0]), float(row[1]), int(row[2]), float(row[3]))


# The tables each kind of cached read (the first item of its `_cached`/`_first` key) reads:
# a change to one of them drops those rows from a PostgreSQL replica's read cache (its
# migrations make every write to these tables notify). A kind not listed is never cached there.
CACHED_READS: dict[str, tuple[str, ...]] = {
    "project": ("project", "users"),
    "robot": ("robot", "project"),
    "robot_id": ("robot", "project"),
    "legacy_robot": ("robot", "project"),
    "user": ("users",),
    "user_id": ("users",),
    "member": ("member", "users"),
    "refresh_token": ("refresh_token",),
    "issuer": ("federation_issuer",),
    "issuer_url": ("federation_issuer",),
    "federation_rules": ("federation_rule", "federation_issuer"),
    "temporary_secret": ("temporary_secret",),
}


class SqlStore:
    """Implements `Store` on top of an adapter's four statement primitives."""

    # `instr`/`strpos`: true when the column contains the parameter (no LIKE escaping).
    _CONTAINS = "instr({column}, ?) > 0"
    # The same, ASCII letters in any case (SQLite's lower() folds only ASCII).
    _FOLDED_CONTAINS = "instr(lower({column}), lower(?)) > 0"
    # How text compares by code point (SQLite's default BINARY collation does).
    _BYTEWISE = ""
    _GREATEST = "max"
    # The JSON object in the text column with the parameter's keys set (a JSON object too).
    _JSON_MERGE = "json_patch({column}, ?)"
    # A JSON object column without the key `?`, and whether it holds it. NOTE: not by JSON
    # path, which SQLite cannot spell for every key (a quote in it).
    _JSON_REMOVE = "json_patch({column}, json_object(?, NULL))"
    _JSON_HAS = "EXISTS (SELECT 1 FROM json_each({column}) AS e WHERE e.key = ?)"
    # What a claim's row selection adds to take rows no other claim holds (PostgreSQL's
    # FOR UPDATE SKIP LOCKED; SQLite runs one writer at a time anyway).
    _SKIP_LOCKED = ""
    # The claim's condition on the ids its subquery `{ids}` selects (evaluated once).
    _CLAIMED_IDS = "id IN ({ids})"

    # ---- what an adapter provides ---------------------------------------------------------

    def transaction(self) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def _rows(self, sql: str, args: Iterable[object] = ()) -> Sequence[Any]:
        raise NotImplementedError

    async def _execute(
        self, sql: str, args: Iterable[object] = (), *, refused: TokenServerError | None = None
    ) -> int:
        """Run one statement; the number of rows it changed. With `refused`, a constraint
        the statement breaks (a foreign key a concurrent change made it break) raises
        `refused` (inside a transaction, only the statement is undone)."""
        raise NotImplementedError

    async def _execute_many(self, sql: str, args: Iterable[Sequence[object]]) -> None:
        raise NotImplementedError

    async def _insert(
        self,
        sql: str,
        args: Iterable[object],
        conflict: str,
        missing: TokenServerError | None = None,
    ) -> int:
        """Insert one row; its id. A foreign key naming no row (it was just deleted) raises
        `missing` if given; any other constraint violation raises Conflict(`conflict`)."""
        raise NotImplementedError

    async def _cached(self, key: tuple[object, ...], load: Callable[[], Awaitable[_T]]) -> _T:
        """`load()`, or a result known to be current (adapters with a read cache)."""
        return await load()

    async def sync_cache(self) -> None:
        """Return once this store's reads honour every change committed before the call, by
        any process (PostgreSQL: once its read cache has heard of them). Reads start out
        current on adapters without a cache, or with one validated on every read (SQLite)."""

    def _first(
        self, key: tuple[object, ...] | None, query: Callable[[], Awaitable[list[_T]]]
    ) -> Awaitable[_T | None]:
        """The first row `query()` finds, or None; through the read cache under `key`, if any."""

        async def load() -> _T | None:
            found = await query()
            return found[0] if found else None

        return load() if key is None else self._cached(key, load)

    async def close(self) -> None:
        raise NotImplementedError

    @asynccontextmanager
    async def _sysadmins_serialized(self) -> AsyncIterator[None]:
        """Run the block's statements one block at a time across every process sharing the
        database, each statement seeing what the blocks before committed: a change that may
        leave no system admin checks the others in its statement, and two such changes at
        once must not both see the other's admin still there. SQLite runs every writing
        statement under the database's one write lock already."""
        yield

    def _webhook_policies_serialized(self) -> AbstractAsyncContextManager[None]:
        """Run the block as one transaction, one block at a time across every process
        sharing the database: a policy is counted and added as one step (SQLite's
        transactions take the write lock at once)."""
        return self.transaction()

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        await self._rows("SELECT 1")

    def _contains(self, column: str) -> str:
        return self._CONTAINS.format(column=column)

    # ---- projects -------------------------------------------------------------------------

    async def create_project(
        self,
        name: str,
        public: bool,
        owner_id: int | None,
        now: int,
        metadata: Mapping[str, str] | None = None,
    ) -> Project:
        # One transaction: a project whose owner is deleted meanwhile must not be left behind
        # with its name taken and no member.
        async with self.transaction():
            project_id = await self._insert(
                "INSERT INTO project (name, public, owner_id, creation_time, update_time, "
                "metadata) VALUES (?,?,?,?,?,?)",
                (name, public, owner_id, now, now, _metadata_to_json(metadata)),
                f"project {name!r} already exists",
                UserNotFound(f"user {owner_id} not found"),
            )
            if owner_id is not None:
                await self._insert(
                    "INSERT INTO member (project_id, user_id, role, creation_time, update_time) "
                    "VALUES (?,?,?,?,?)",
                    (project_id, owner_id, int(Role.PROJECT_ADMIN), now, now),
                    "the user is already a member of the project",
                    UserNotFound(f"user {owner_id} not found"),
                )
            created = await self.find_project_by_id(project_id)
        assert created is not None
        return created

    async def _projects(self, where: str, args: Iterable[object]) -> list[Project]:
        rows = await self._rows(
            f"SELECT {_PROJECT_COLUMNS} FROM {_PROJECT_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_project(r) for r in rows]

    async def find_project(self, name: str) -> Project | None:
        return await self._first(("project", name), lambda: self._projects("p.name = ?", (name,)))

    async def find_project_by_id(self, project_id: int) -> Project | None:
        return await self._first(None, lambda: self._projects("p.id = ?", (project_id,)))

    async def list_projects(self, name_contains: str = "") -> list[Project]:
        return await self._projects(f"{self._contains('p.name')} ORDER BY p.name", (name_contains,))

    async def update_project(
        self,
        project_id: int,
        public: bool | None,
        now: int,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        # NOTE: the keys are merged in the statement, so that two updates setting different
        # keys at once both count (as Harbor's per-key rows do).
        merged = self._JSON_MERGE.format(column="metadata")
        changed = await self._execute(
            f"UPDATE project SET public = coalesce(?, public), metadata = {merged}, "  # noqa: S608
            "update_time = ? WHERE id = ?",
            (public, _metadata_to_json(metadata), now, project_id),
        )
        return changed > 0

    async def add_project_metadata(self, project_id: int, key: str, value: str, now: int) -> bool:
        # NOTE: checked and set in one statement, so that of two adds at once one fails.
        merged = self._JSON_MERGE.format(column="metadata")
        has = self._JSON_HAS.format(column="metadata")
        changed = await self._execute(
            f"UPDATE project SET metadata = {merged}, update_time = ? "  # noqa: S608
            f"WHERE id = ? AND NOT {has}",
            (_metadata_to_json({key: value}), now, project_id, key),
        )
        return changed > 0

    async def delete_project_metadata(self, project_id: int, key: str, now: int) -> bool:
        removed = self._JSON_REMOVE.format(column="metadata")
        changed = await self._execute(
            f"UPDATE project SET metadata = {removed}, update_time = ? WHERE id = ?",  # noqa: S608
            (key, now, project_id),
        )
        return changed > 0

    async def project_metadata(self, project_ids: Collection[int]) -> dict[int, dict[str, str]]:
        ids = sorted(set(project_ids))
        if not ids:
            return {}
        rows = await self._rows(
            f"SELECT id, metadata FROM project WHERE id IN ({','.join('?' * len(ids))})",  # noqa: S608
            ids,
        )
        return {row[0]: _metadata_from_json(row[1]) for row in rows}

    async def delete_project(self, project_id: int) -> bool:
        return await self._execute("DELETE FROM project WHERE id = ?", (project_id,)) > 0

    # ---- robots ---------------------------------------------------------------------------

    async def create_robot(self, robot: NewRobot) -> Robot:
        robot_id = await self._insert(
            "INSERT INTO robot (name, project_id, level, description, secret_hash, duration, "
            "expires_at, creation_time, update_time, permissions, disabled, legacy_id, "
            "legacy_project_id, token_lifetime) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                robot.name,
                robot.project_id,
                robot.level.value,
                robot.description,
                robot.secret_hash,
                robot.duration,
                robot.expires_at,
                robot.creation_time,
                robot.creation_time,
                _permissions_to_json(robot.permissions),
                robot.disabled,
                robot.legacy_id,
                robot.legacy_project_id,
                robot.token_lifetime,
            ),
            f"robot {robot.name!r} already exists"
            + (" in this project" if robot.project_id is not None else ""),
        )
        created = await self.find_robot_by_id(robot_id)
        assert created is not None
        return created

    async def _robots(self, where: str, args: Iterable[object]) -> list[Robot]:
        rows = await self._rows(
            f"SELECT {_ROBOT_COLUMNS} FROM {_ROBOT_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_robot(r) for r in rows]

    async def find_legacy_robot(self, name: str) -> Robot | None:
        # Cached: with legacy robots on, every robot$ login asks (services/legacy.py).
        return await self._first(
            ("legacy_robot", name),
            lambda: self._robots("r.legacy_id IS NOT NULL AND r.name = ?", (name,)),
        )

    async def find_robot(self, project_name: str | None, name: str) -> Robot | None:
        where, args = (
            ("r.project_id IS NULL AND r.name = ?", (name,))
            if project_name is None
            else ("p.name = ? AND r.name = ? AND r.legacy_id IS NULL", (project_name, name))
        )
        return await self._first(("robot", project_name, name), lambda: self._robots(where, args))

    async def find_robot_by_id(self, robot_id: int) -> Robot | None:
        return await self._first(
            ("robot_id", robot_id), lambda: self._robots("r.id = ?", (robot_id,))
        )

    async def list_robots(self, project_id: int | None, name_contains: str = "") -> list[Robot]:
        where = "r.project_id IS NULL" if project_id is None else "r.project_id = ?"
        args: tuple[object, ...] = () if project_id is None else (project_id,)
        return await self._robots(
            f"{where} AND {self._contains('r.name')} ORDER BY r.id", (*args, name_contains)
        )

    async def update_robot(self, robot_id: int, now: int, changes: RobotChanges) -> bool:
        permissions = (
            None if changes.permissions is None else _permissions_to_json(changes.permissions)
        )
        # Disabling the robot or turning its secret login off ends the previous secret too:
        # turning either back on brings back only the current one.
        drop = (
            changes.drop_previous_secret
            or changes.disabled is True
            or changes.secret_login is False
        )
        changed = await self._execute(
            "UPDATE robot SET description = coalesce(?, description), "
            "duration = coalesce(?, duration), expires_at = coalesce(?, expires_at), "
            "disabled = coalesce(?, disabled), secret_hash = coalesce(?, secret_hash), "
            "permissions = coalesce(?, permissions), secret_login = coalesce(?, secret_login), "
            # NOTE: None keeps the lifetime, 0 (FOLLOW_GLOBAL) clears it.
            "token_lifetime = nullif(coalesce(?, token_lifetime, 0), 0), "
            "previous_secret_hash = CASE WHEN ? THEN NULL ELSE previous_secret_hash END, "
            "previous_secret_expires_at = CASE WHEN ? THEN NULL "
            "ELSE previous_secret_expires_at END, "
            "update_time = ? WHERE id = ?",
            (
                changes.description,
                changes.duration,
                changes.expires_at,
                changes.disabled,
                changes.secret_hash,
                permissions,
                changes.secret_login,
                changes.token_lifetime,
                drop,
                drop,
                now,
                robot_id,
            ),
        )
        return changed > 0

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
        async with self.transaction():
            if keep_previous_until is not None and not await self._may_keep_previous(
                robot_id, now, replacing
            ):
                # Asked to keep the secret replaced, which may not be kept: no previous secret,
                # and the tokens of secret logins end with the secrets they came from; what a
                # refresh with a grace period keeps (federated logins) stays.
                await self._execute(
                    "UPDATE robot SET secret_hash = ?, expires_at = coalesce(?, expires_at), "
                    "previous_secret_hash = NULL, previous_secret_expires_at = NULL, "
                    "update_time = ? WHERE id = ?",
                    (secret_hash, expires_at, now, robot_id),
                )
                await self._execute(
                    "DELETE FROM refresh_token WHERE robot_id = ? AND federated = FALSE",
                    (robot_id,),
                )
                return True
            if keep_previous_until is None:
                changed = await self._execute(
                    "UPDATE robot SET secret_hash = ?, expires_at = coalesce(?, expires_at), "
                    "previous_secret_hash = NULL, previous_secret_expires_at = NULL, "
                    "update_time = ? WHERE id = ?",
                    (secret_hash, expires_at, now, robot_id),
                )
                if changed:
                    await self._execute("DELETE FROM refresh_token WHERE robot_id = ?", (robot_id,))
                    await self._execute(
                        "DELETE FROM temporary_secret WHERE robot_id = ?", (robot_id,)
                    )
                return changed > 0
            # NOTE: one statement reads the secret it replaces: two refreshes at once leave
            # one of the secrets they replaced as the previous one, never a secret nobody saw.
            changed = await self._execute(
                "UPDATE robot SET previous_secret_hash = secret_hash, "
                "previous_secret_expires_at = ?, secret_hash = ?, "
                "expires_at = coalesce(?, expires_at), update_time = ? WHERE id = ?",
                (keep_previous_until, secret_hash, expires_at, now, robot_id),
            )
            if changed:
                # The tokens of the secret before the previous one end with it (at most one
                # previous secret); those of the secret just replaced end with it from now on.
                await self._execute(
                    "DELETE FROM refresh_token WHERE robot_id = ? AND previous_secret = TRUE",
                    (robot_id,),
                )
                await self._execute(
                    "UPDATE refresh_token SET previous_secret = TRUE "
                    "WHERE robot_id = ? AND federated = FALSE",
                    (robot_id,),
                )
            return changed > 0

    async def _may_keep_previous(self, robot_id: int, now: int, replacing: str | None) -> bool:
        """In a transaction, with the robot's row held: whether its current secret may become
        the previous one. Not when the robot is disabled, expired or its secret login off
        (each ended the previous secret; a refresh that read the robot before must not bring
        one back), nor when its secret is no longer `replacing` (the one the caller read,
        None: any), which another change replaced meanwhile. True for a missing robot (the
        write then finds nothing)."""
        if await self._lock_robot(robot_id) is None:
            return True
        rows = await self._rows(
            "SELECT secret_hash, disabled, secret_login, expires_at FROM robot WHERE id = ?",
            (robot_id,),
        )
        secret_hash, disabled, secret_login, expires = rows[0]
        return (
            (replacing is None or secret_hash == replacing)
            and not disabled
            and bool(secret_login)
            and (expires == NEVER or expires > now)
        )

    async def rehash_robot_secret(self, robot_id: int, replacing: str, secret_hash: str) -> bool:
        changed = await self._execute(
            "UPDATE robot SET secret_hash = ? WHERE id = ? AND secret_hash = ?",
            (secret_hash, robot_id, replacing),
        )
        return changed > 0

    async def revoke_previous_secret(self, robot_id: int, now: int) -> bool:
        async with self.transaction():
            changed = await self._execute(
                "UPDATE robot SET previous_secret_hash = NULL, previous_secret_expires_at = NULL, "
                "update_time = ? WHERE id = ? AND previous_secret_hash IS NOT NULL",
                (now, robot_id),
            )
            if changed:
                await self._execute(
                    "DELETE FROM refresh_token WHERE robot_id = ? AND previous_secret = TRUE",
                    (robot_id,),
                )
            return changed > 0

    async def count_robot_expiries(
        self, now: int, windows: Sequence[int]
    ) -> tuple[int, dict[int, int]]:
        # NOTE: sum(CASE ...) rather than count(*) FILTER: one spelling for both databases.
        expiring = ", ".join(
            "coalesce(sum(CASE WHEN expires_at > ? AND expires_at <= ? THEN 1 ELSE 0 END), 0)"
            for _ in windows
        )
        args: list[object] = [now]
        for window in windows:
            args += [now, now + window]
        rows = await self._rows(
            "SELECT coalesce(sum(CASE WHEN expires_at <= ? THEN 1 ELSE 0 END), 0)"  # noqa: S608
            f"{', ' if windows else ''}{expiring} "
            "FROM robot WHERE expires_at <> -1 AND disabled = FALSE",
            args,
        )
        row = rows[0]
        return int(row[0]), {w: int(row[i + 1]) for i, w in enumerate(windows)}

    async def list_expiring_robots(
        self, now: int, until: int, project_id: int | None = None
    ) -> list[Robot]:
        where = (
            "r.expires_at <> -1 AND r.expires_at > ? AND r.expires_at <= ? AND r.disabled = FALSE"
        )
        args: tuple[object, ...] = (now, until)
        if project_id is not None:
            where, args = f"{where} AND r.project_id = ?", (*args, project_id)
        return await self._robots(f"{where} ORDER BY r.expires_at, r.id", args)

    async def replace_robot_permissions(
        self,
        robot_id: int,
        now: int,
        expected: tuple[Permission, ...],
        permissions: tuple[Permission, ...],
    ) -> bool:
        # NOTE: the JSON form is canonical (one writer, fixed key order and separators), so
        # comparing the text compares the permissions.
        changed = await self._execute(
            "UPDATE robot SET permissions = ?, update_time = ? WHERE id = ? AND permissions = ?",
            (_permissions_to_json(permissions), now, robot_id, _permissions_to_json(expected)),
        )
        return changed > 0

    async def longest_token_lifetime(self) -> int | None:
        rows = await self._rows("SELECT max(token_lifetime) FROM robot")
        longest: int | None = rows[0][0]
        return longest

    async def delete_robot(self, robot_id: int) -> bool:
        return await self._execute("DELETE FROM robot WHERE id = ?", (robot_id,)) > 0

    async def record_robot_use(self, last_used: dict[int, int]) -> None:
        await self._execute_many(
            f"UPDATE robot SET last_used_at = {self._GREATEST}(coalesce(last_used_at, 0), ?) "  # noqa: S608
            "WHERE id = ?",
            [(when, robot_id) for robot_id, when in last_used.items()],
        )

    # ---- users ----------------------------------------------------------------------------

    async def create_user(self, user: NewUser, now: int) -> User:
        user_id = await self._insert(
            "INSERT INTO users (username, email, realname, comment, password_hash, sysadmin, "
            "creation_time, update_time) VALUES (?,?,?,?,?,?,?,?)",
            (
                user.username,
                user.email,
                user.realname,
                user.comment,
                user.password_hash,
                user.sysadmin,
                now,
                now,
            ),
            f"user {user.username!r} already exists",
        )
        created = await self.find_user_by_id(user_id)
        assert created is not None
        return created

    async def _users(self, where: str, args: Iterable[object]) -> list[User]:
        rows = await self._rows(
            f"SELECT {_USER_COLUMNS} FROM users WHERE {where}",  # noqa: S608
            args,
        )
        return [_user(r) for r in rows]

    async def find_user(self, username: str) -> User | None:
        return await self._first(
            ("user", username), lambda: self._users("username = ?", (username,))
        )

    async def find_user_by_id(self, user_id: int) -> User | None:
        return await self._first(("user_id", user_id), lambda: self._users("id = ?", (user_id,)))

    async def list_users(self, username_contains: str = "") -> list[User]:
        return await self._users(f"{self._contains('username')} ORDER BY id", (username_contains,))

    async def update_user_password(self, user_id: int, password_hash: str, now: int) -> bool:
        changed = await self._execute(
            "UPDATE users SET password_hash = ?, update_time = ? WHERE id = ?",
            (password_hash, now, user_id),
        )
        return changed > 0

    async def update_user_profile(
        self, user_id: int, email: str, realname: str, comment: str, now: int
    ) -> bool:
        changed = await self._execute(
            "UPDATE users SET email = ?, realname = ?, comment = ?, update_time = ? WHERE id = ?",
            (email, realname, comment, now, user_id),
        )
        return changed > 0

    async def set_user_sysadmin(self, user_id: int, sysadmin: bool, now: int) -> UserChange:
        async with self._sysadmins_serialized():
            changed = await self._execute(
                "UPDATE users SET sysadmin = ?, update_time = ? WHERE id = ? AND "  # noqa: S608
                f"(? OR sysadmin = FALSE OR {_ANOTHER_SYSADMIN})",
                (sysadmin, now, user_id, sysadmin, user_id),
            )
            return await self._user_change(changed, user_id)

    async def delete_user(self, user_id: int) -> UserChange:
        async with self._sysadmins_serialized():
            changed = await self._execute(
                f"DELETE FROM users WHERE id = ? AND (sysadmin = FALSE OR {_ANOTHER_SYSADMIN})",  # noqa: S608
                (user_id, user_id),
            )
            return await self._user_change(changed, user_id)

    async def _user_change(self, changed: int, user_id: int) -> UserChange:
        if changed:
            return UserChange.DONE
        rows = await self._rows("SELECT 1 FROM users WHERE id = ?", (user_id,))
        return UserChange.LAST_SYSADMIN if rows else UserChange.MISSING

    # ---- members --------------------------------------------------------------------------

    async def add_member(self, project_id: int, user_id: int, role: Role, now: int) -> Member:
        gone = UserNotFound(f"user {user_id} not found")
        try:
            member_id = await self._insert(
                "INSERT INTO member (project_id, user_id, role, creation_time, update_time) "
                "VALUES (?,?,?,?,?)",
                (project_id, user_id, int(role), now, now),
                "the user is already a member of the project",
                gone,
            )
            created = await self.find_member_by_id(project_id, member_id)
            if created is None:  # inserted, then taken by the deletion of its user or project
                raise gone
        except UserNotFound:
            if await self.find_project_by_id(project_id) is None:
                raise ProjectNotFound(f"project {project_id} not found") from None
            raise
        return created

    async def _members(self, where: str, args: Iterable[object]) -> list[Member]:
        rows = await self._rows(
            f"SELECT {_MEMBER_COLUMNS} FROM {_MEMBER_FROM} WHERE {where}",  # noqa: S608
            args,
        )
        return [_member(r) for r in rows]

    async def find_member(self, project_id: int, user_id: int) -> Member | None:
        return await self._first(
            ("member", project_id, user_id),
            lambda: self._members("m.project_id = ? AND m.user_id = ?", (project_id, user_id)),
        )

    async def find_member_by_id(self, project_id: int, member_id: int) -> Member | None:
        return await self._first(
            None, lambda: self._members("m.project_id = ? AND m.id = ?", (project_id, member_id))
        )

    async def list_members(self, project_id: int, name_contains: str = "") -> list[Member]:
        return await self._members(
            f"m.project_id = ? AND {self._contains('u.username')} ORDER BY m.id",
            (project_id, name_contains),
        )

    async def update_member(self, project_id: int, member_id: int, role: Role, now: int) -> bool:
        changed = await self._execute(
            "UPDATE member SET role = ?, update_time = ? WHERE project_id = ? AND id = ?",
            (int(role), now, project_id, member_id),
        )
        return changed > 0

    async def delete_member(self, project_id: int, member_id: int) -> bool:
        changed = await self._execute(
            "DELETE FROM member WHERE project_id = ? AND id = ?", (project_id, member_id)
        )
        return changed > 0

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
        token_id = await self._insert(
            "INSERT INTO refresh_token (robot_id, user_id, token_hash, client_id, created_at, "
            "last_used_at, expires_at, legacy_access, federated, identity, previous_secret) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                robot_id,
                user_id,
                token_hash,
                client_id,
                now,
                now,
                expires_at,
                _access_to_json(legacy_access),
                federated,
                None if identity is None else _identity_to_json(identity),
                previous_secret,
            ),
            "refresh token already stored",
        )
        column, owner = ("robot_id", robot_id) if robot_id is not None else ("user_id", user_id)
        await self._execute(
            f"DELETE FROM refresh_token WHERE {column} = ? AND id NOT IN "  # noqa: S608
            f"(SELECT id FROM refresh_token WHERE {column} = ? ORDER BY id DESC LIMIT ?)",
            (owner, owner, keep),
        )
        return RefreshToken(
            token_id,
            robot_id,
            user_id,
            client_id,
            now,
            now,
            expires_at,
            legacy_access,
            federated,
            identity,
            previous_secret,
        )

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        async def load() -> RefreshToken | None:
            rows = await self._rows(
                f"SELECT {_REFRESH_COLUMNS} FROM refresh_token WHERE token_hash = ?",  # noqa: S608
                (token_hash,),
            )
            return _refresh_token(rows[0]) if rows else None

        return await self._cached(("refresh_token", token_hash), load)

    async def record_refresh_token_use(self, last_used: dict[int, int]) -> None:
        await self._execute_many(
            "UPDATE refresh_token SET last_used_at = ? WHERE id = ? AND last_used_at < ?",
            [(when, token_id, when) for token_id, when in last_used.items()],
        )

    async def list_refresh_tokens(
        self, *, robot_id: int | None = None, user_id: int | None = None
    ) -> list[RefreshToken]:
        where, args = _owner(robot_id, user_id)
        rows = await self._rows(
            f"SELECT {_REFRESH_COLUMNS} FROM refresh_token WHERE {where} "  # noqa: S608
            "ORDER BY id DESC",
            args,
        )
        return [_refresh_token(r) for r in rows]

    async def delete_refresh_tokens(
        self,
        *,
        robot_id: int | None = None,
        user_id: int | None = None,
        token_id: int | None = None,
    ) -> int:
        where, args = _owner(robot_id, user_id)
        if token_id is not None:
            where, args = f"{where} AND id = ?", (*args, token_id)
        return await self._execute(f"DELETE FROM refresh_token WHERE {where}", args)  # noqa: S608

    # ---- robot federation -----------------------------------------------------------------

    async def add_issuer(self, issuer: NewIssuer) -> Issuer:
        issuer_id = await self._insert(
            "INSERT INTO federation_issuer (name, url, audiences, jwks_file, ca_file, "
            "max_token_lifetime, created_at) VALUES (?,?,?,?,?,?,?)",
            (
                issuer.name,
                issuer.url,
                json.dumps(list(issuer.audiences), separators=(",", ":")),
                issuer.jwks_file,
                issuer.ca_file,
                issuer.max_token_lifetime,
                issuer.created_at,
            ),
            f"an issuer named {issuer.name!r} or with the URL {issuer.url!r} exists already",
        )
        return Issuer(
            issuer_id,
            issuer.name,
            issuer.url,
            issuer.audiences,
            issuer.jwks_file,
            issuer.ca_file,
            issuer.max_token_lifetime,
            issuer.created_at,
        )

    async def _issuers(self, where: str, args: Iterable[object]) -> list[Issuer]:
        rows = await self._rows(
            f"SELECT {_ISSUER_COLUMNS} FROM federation_issuer WHERE {where}",  # noqa: S608
            args,
        )
        return [_issuer(r) for r in rows]

    async def find_issuer(self, name: str) -> Issuer | None:
        return await self._first(("issuer", name), lambda: self._issuers("name = ?", (name,)))

    async def find_issuer_by_url(self, url: str) -> Issuer | None:
        # Cached: every federated login asks.
        return await self._first(("issuer_url", url), lambda: self._issuers("url = ?", (url,)))

    async def list_issuers(self) -> list[Issuer]:
        return await self._issuers(f"1 = 1 ORDER BY name{self._BYTEWISE}", ())

    async def delete_issuer(self, name: str) -> IssuerRemoval:
        # NOTE: the rule check is in the statement; a rule committed by another replica after
        # its snapshot still makes it fail on the foreign key: in use either way.
        for _ in range(3):
            try:
                removed = await self._execute(
                    "DELETE FROM federation_issuer WHERE name = ? AND NOT EXISTS "
                    "(SELECT 1 FROM federation_rule r WHERE r.issuer_id = federation_issuer.id)",
                    (name,),
                    refused=Conflict("in use"),
                )
            except Conflict:
                removed = 0
            if removed:
                return IssuerRemoval(True)
            rows = await self._rows(
                "SELECT i.id, count(DISTINCT r.robot_id) FROM federation_issuer i "
                "LEFT JOIN federation_rule r ON r.issuer_id = i.id WHERE i.name = ? GROUP BY i.id",
                (name,),
            )
            if not rows:
                return IssuerRemoval(False)
            if rows[0][1]:
                return IssuerRemoval(False, rows[0][1])
            # Its last rules were removed meanwhile: try again.
        return IssuerRemoval(False)

    async def _rules(self, where: str, args: Iterable[object]) -> list[FederationRule]:
        rows = await self._rows(
            f"SELECT {_RULE_COLUMNS} FROM {_RULE_FROM} WHERE {where} ORDER BY fr.id",  # noqa: S608
            args,
        )
        return [_rule(r) for r in rows]

    async def list_federation_rules(self, robot_id: int) -> list[FederationRule]:
        # Cached: every federated login of the robot asks.
        return await self._cached(
            ("federation_rules", robot_id), lambda: self._rules("fr.robot_id = ?", (robot_id,))
        )

    async def _lock_robot(self, robot_id: int) -> bool | None:
        """In a transaction: hold the robot's row until it ends, so that changes to its rules
        and its secret login run one after the other, each seeing what the one before
        committed (PostgreSQL's row lock; SQLite's transactions run one at a time anyway).
        Its `secret_login`; None if the robot does not exist."""
        if not await self._execute(
            "UPDATE robot SET secret_login = secret_login WHERE id = ?", (robot_id,)
        ):
            return None
        rows = await self._rows("SELECT secret_login FROM robot WHERE id = ?", (robot_id,))
        return bool(rows[0][0])

    async def _rules_changed(self, robot_id: int, now: int) -> None:
        """After a change to the robot's rules: its tokens from federated logins and its
        temporary secrets end."""
        await self._execute(
            "DELETE FROM refresh_token WHERE robot_id = ? AND federated = TRUE", (robot_id,)
        )
        await self._execute("DELETE FROM temporary_secret WHERE robot_id = ?", (robot_id,))
        await self._execute("UPDATE robot SET update_time = ? WHERE id = ?", (now, robot_id))

    async def _insert_rule(self, robot_id: int, rule: NewRule, now: int) -> int:
        return await self._insert(
            "INSERT INTO federation_rule (robot_id, issuer_id, conditions, created_at) "
            "VALUES (?,?,?,?)",
            (robot_id, rule.issuer_id, _conditions_to_json(rule.conditions), now),
            "federation rule already stored",
            NotFound(f"issuer {rule.issuer_id} not found"),
        )

    @staticmethod
    def _needs_rules(robot_id: int) -> Conflict:
        return Conflict(
            f"robot {robot_id} logs in only with its federation rules (its secret login is "
            "off): it must keep at least one; turn its secret login on first"
        )

    async def replace_federation_rules(
        self, robot_id: int, rules: Sequence[NewRule], now: int
    ) -> list[FederationRule]:
        async with self.transaction():
            secret_login = await self._lock_robot(robot_id)
            if secret_login is None:
                raise RobotNotFound(f"robot {robot_id} not found")
            stored = await self._rows(
                "SELECT issuer_id, conditions FROM federation_rule WHERE robot_id = ? ORDER BY id",
                (robot_id,),
            )
            wanted = [(r.issuer_id, _conditions_to_json(r.conditions)) for r in rules]
            if [(row[0], row[1]) for row in stored] != wanted:
                if not rules and not secret_login:
                    raise self._needs_rules(robot_id)
                await self._execute("DELETE FROM federation_rule WHERE robot_id = ?", (robot_id,))
                for rule in rules:
                    await self._insert_rule(robot_id, rule, now)
                await self._rules_changed(robot_id, now)
            return await self._rules("fr.robot_id = ?", (robot_id,))

    async def add_federation_rule(
        self, robot_id: int, rule: NewRule, now: int, limit: int
    ) -> FederationRule:
        async with self.transaction():
            if await self._lock_robot(robot_id) is None:
                raise RobotNotFound(f"robot {robot_id} not found")
            counted = await self._rows(
                "SELECT count(*) FROM federation_rule WHERE robot_id = ?", (robot_id,)
            )
            if counted[0][0] >= limit:
                raise Conflict(
                    f"robot {robot_id} has {counted[0][0]} federation rules: at most {limit}"
                )
            rule_id = await self._insert_rule(robot_id, rule, now)
            await self._rules_changed(robot_id, now)
            added = await self._rules("fr.id = ?", (rule_id,))
        return added[0]

    async def delete_federation_rule(self, robot_id: int, rule_id: int, now: int) -> bool:
        async with self.transaction():
            secret_login = await self._lock_robot(robot_id)
            if secret_login is None:
                return False
            if not await self._execute(
                "DELETE FROM federation_rule WHERE robot_id = ? AND id = ?", (robot_id, rule_id)
            ):
                return False
            if not secret_login:
                left = await self._rows(
                    "SELECT 1 FROM federation_rule WHERE robot_id = ?", (robot_id,)
                )
                if not left:
                    raise self._needs_rules(robot_id)
            await self._rules_changed(robot_id, now)
        return True

    async def set_secret_login(self, robot_id: int, enabled: bool, now: int) -> bool:
        async with self.transaction():
            if await self._lock_robot(robot_id) is None:
                return False
            if not enabled:
                rules = await self._rows(
                    "SELECT 1 FROM federation_rule WHERE robot_id = ?", (robot_id,)
                )
                if not rules:
                    raise Conflict(
                        f"robot {robot_id} has no federation rules: without its secret it "
                        "could not log in at all; add a rule first"
                    )
            # Off, the previous secret ends with the current one's logins (and its refresh
            # tokens, none of them federated): on again, only the current secret works.
            await self._execute(
                "UPDATE robot SET secret_login = ?, update_time = ?, "
                "previous_secret_hash = CASE WHEN ? THEN previous_secret_hash END, "
                "previous_secret_expires_at = CASE WHEN ? THEN previous_secret_expires_at END "
                "WHERE id = ?",
                (enabled, now, enabled, enabled, robot_id),
            )
            if not enabled:
                await self._execute(
                    "DELETE FROM refresh_token WHERE robot_id = ? AND federated = FALSE",
                    (robot_id,),
                )
        return True

    async def add_federation_failure(
        self, robot_id: int, at: int, issuer: str, subject: str, reason: str
    ) -> None:
        try:
            await self._insert(
                "INSERT INTO federation_failure (robot_id, at, issuer, subject, reason) "
                "VALUES (?,?,?,?,?)",
                (robot_id, at, _stored_text(issuer), _stored_text(subject), _stored_text(reason)),
                "federation failure already stored",
                RobotNotFound(f"robot {robot_id} not found"),
            )
        except RobotNotFound:
            return
        await self._execute(
            "DELETE FROM federation_failure WHERE robot_id = ? AND id NOT IN "
            "(SELECT id FROM federation_failure WHERE robot_id = ? ORDER BY id DESC LIMIT ?)",
            (robot_id, robot_id, KEEP_FAILURES),
        )

    async def list_federation_failures(self, robot_id: int) -> list[FederationFailure]:
        rows = await self._rows(
            f"SELECT {_FAILURE_COLUMNS} FROM federation_failure WHERE robot_id = ? "  # noqa: S608
            "ORDER BY id DESC",
            (robot_id,),
        )
        return [FederationFailure(*r) for r in rows]

    async def add_federation_login(self, robot_id: int, at: int, identity: Identity) -> None:
        values = [getattr(identity, name) for name in _LOGIN_FIELDS]
        try:
            await self._insert(
                f"INSERT INTO federation_login (robot_id, at, {', '.join(_LOGIN_FIELDS)}) "  # noqa: S608
                f"VALUES (?,?,{','.join('?' * len(_LOGIN_FIELDS))})",
                # NOTE: an Identity's text is escaped already (the token path makes it so).
                (
                    robot_id,
                    at,
                    *(truncate(v, MAX_AUDIT_FIELD) if isinstance(v, str) else v for v in values),
                ),
                "federation login already stored",
                RobotNotFound(f"robot {robot_id} not found"),
            )
        except RobotNotFound:
            return
        await self._execute(
            "DELETE FROM federation_login WHERE robot_id = ? AND id NOT IN "
            "(SELECT id FROM federation_login WHERE robot_id = ? ORDER BY id DESC LIMIT ?)",
            (robot_id, robot_id, KEEP_LOGINS),
        )

    async def list_federation_logins(self, robot_id: int) -> list[FederationLogin]:
        rows = await self._rows(
            f"SELECT id, robot_id, at, {', '.join(_LOGIN_FIELDS)} "  # noqa: S608
            "FROM federation_login WHERE robot_id = ? ORDER BY id DESC",
            (robot_id,),
        )
        return [
            FederationLogin(
                r[0], r[1], r[2], Identity(**dict(zip(_LOGIN_FIELDS, r[3:], strict=True)))
            )
            for r in rows
        ]

    async def use_jti(self, iss: str, jti: str, expires_at: int, now: int) -> bool:
        await self._execute("DELETE FROM federation_jti WHERE expires_at <= ?", (now,))
        # NOTE: a NUL cannot be in a URL a token was verified for: the pair is unambiguous.
        key = hashlib.sha256(f"{iss}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()
        inserted = await self._execute(
            "INSERT INTO federation_jti (token_key, expires_at) VALUES (?,?) "
            "ON CONFLICT DO NOTHING",
            (key, expires_at),
        )
        return inserted > 0

    # ---- shared lockouts (domain/lockouts.py) ---------------------------------------------

    async def add_lockout_failure(self, key: str, now: float) -> LockoutRow:
        base, weight = failure_weight(now)
        # NOTE: a row of this period adds; of the period before, it is carried over; of the
        # period after (a replica whose clock is behind), this failure is carried into it; a
        # row older still has decayed to nothing. Every right-hand side reads the old row.
        rows = await self._rows(
            "INSERT INTO lockout (lock_key, weight, base, locked_until) VALUES (?, ?, ?, 0) "  # noqa: S608
            "ON CONFLICT (lock_key) DO UPDATE SET weight = CASE "
            "WHEN lockout.base = excluded.base THEN lockout.weight + excluded.weight "
            "WHEN lockout.base = excluded.base - ? THEN lockout.weight * ? + excluded.weight "
            "WHEN lockout.base = excluded.base + ? THEN lockout.weight + excluded.weight * ? "
            "WHEN lockout.base > excluded.base THEN lockout.weight "
            "ELSE excluded.weight END, "
            f"base = {self._GREATEST}(lockout.base, excluded.base) "
            "RETURNING lock_key, weight, base, locked_until",
            (key, weight, base, BASE_SPAN, CARRY, BASE_SPAN, CARRY),
        )
        return _lockout_row(rows[0])

    async def extend_lockout(self, key: str, until: float) -> None:
        await self._execute(
            "UPDATE lockout SET locked_until = ? WHERE lock_key = ? AND locked_until < ?",
            (until, key, until),
        )

    async def clear_lockout(self, key: str) -> None:
        await self._execute("DELETE FROM lockout WHERE lock_key = ?", (key,))

    async def find_lockouts(self, keys: Sequence[str]) -> list[LockoutRow]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = await self._rows(
            f"SELECT lock_key, weight, base, locked_until FROM lockout WHERE lock_key IN ({marks})",  # noqa: S608
            tuple(keys),
        )
        return [_lockout_row(r) for r in rows]

    async def list_lockouts(self, now: float, limit: int) -> list[LockoutRow]:
        rows = await self._rows(
            "SELECT lock_key, weight, base, locked_until FROM lockout WHERE locked_until > ? "
            "ORDER BY locked_until DESC LIMIT ?",
            (now, limit),
        )
        return [_lockout_row(r) for r in rows]

    async def begin_check(
        self, check_id: str, pair: str, address: str, now: float
    ) -> tuple[int, int]:
        # NOTE: two statements, each committed on its own: the insert is visible to every
        # count that starts after it.
        await self._execute(
            "INSERT INTO lockout_check (id, pair, address, started_at) VALUES (?, ?, ?, ?)",
            (check_id, pair, address, now),
        )
        rows = await self._rows(
            "SELECT coalesce(sum(CASE WHEN pair = ? THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN address = ? THEN 1 ELSE 0 END), 0) FROM lockout_check "
            "WHERE (pair = ? OR address = ?) AND started_at > ? AND id <> ?",
            (pair, address, pair, address, now - CHECK_STALE_SECONDS, check_id),
        )
        return int(rows[0][0]), int(rows[0][1])

    async def end_check(self, check_id: str) -> None:
        await self._execute("DELETE FROM lockout_check WHERE id = ?", (check_id,))

    async def prune_lockouts(self, now: float) -> None:
        await self._execute(
            "DELETE FROM lockout_check WHERE started_at <= ?", (now - CHECK_STALE_SECONDS,)
        )
        # NOTE: three periods on, a score is below 2^-24 of its failures: nothing.
        await self._execute(
            "DELETE FROM lockout WHERE base < ? AND locked_until < ?",
            (now - 3 * BASE_SPAN, now),
        )

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
        async with self.transaction():
            if await self._lock_robot(robot_id) is None:
                return None
            admitted = await self._rows(
                "SELECT 1 FROM robot r JOIN federation_rule fr ON fr.robot_id = r.id "
                "WHERE r.id = ? AND r.disabled = FALSE AND fr.id = ?",
                (robot_id, identity.rule_id),
            )
            if not admitted:
                return None
            await self._execute("DELETE FROM temporary_secret WHERE expires_at <= ?", (now,))
            secret_id = await self._insert(
                "INSERT INTO temporary_secret (robot_id, token_hash, created_at, expires_at, "
                "identity) VALUES (?,?,?,?,?)",
                (robot_id, token_hash, now, expires_at, _identity_to_json(identity)),
                "temporary secret already stored",
            )
            await self._execute(
                "DELETE FROM temporary_secret WHERE robot_id = ? AND id NOT IN "
                "(SELECT id FROM temporary_secret WHERE robot_id = ? ORDER BY id DESC LIMIT ?)",
                (robot_id, robot_id, keep),
            )
        return TemporarySecret(secret_id, robot_id, now, expires_at, identity)

    async def find_temporary_secret(self, token_hash: str) -> TemporarySecret | None:
        async def load() -> TemporarySecret | None:
            rows = await self._rows(
                f"SELECT {_TEMPORARY_COLUMNS} FROM temporary_secret "  # noqa: S608
                "WHERE token_hash = ?",
                (token_hash,),
            )
            return _temporary_secret(rows[0]) if rows else None

        # Cached: a client sends the secret with every token request.
        return await self._cached(("temporary_secret", token_hash), load)

    async def list_temporary_secrets(self, robot_id: int, now: int) -> list[TemporarySecret]:
        rows = await self._rows(
            f"SELECT {_TEMPORARY_COLUMNS} FROM temporary_secret "  # noqa: S608
            "WHERE robot_id = ? AND expires_at > ? ORDER BY id DESC",
            (robot_id, now),
        )
        return [_temporary_secret(r) for r in rows]

    async def delete_temporary_secrets(self, robot_id: int) -> int:
        return await self._execute("DELETE FROM temporary_secret WHERE robot_id = ?", (robot_id,))

    # ---- web sessions ---------------------------------------------------------------------

    async def add_session(
        self, token_hash: str, user_id: int, now: int, expires_at: int, *, keep: int | None = None
    ) -> None:
        await self._insert(
            "INSERT INTO web_session (token_hash, user_id, created_at, expires_at) "
            "VALUES (?,?,?,?)",
            (token_hash, user_id, now, expires_at),
            "session already stored",
        )
        if keep is not None:
            await self._execute(
                "DELETE FROM web_session WHERE user_id = ? AND id NOT IN "
                "(SELECT id FROM web_session WHERE user_id = ? ORDER BY id DESC LIMIT ?)",
                (user_id, user_id, keep),
            )

    async def find_session(self, token_hash: str, now: int) -> WebSession | None:
        rows = await self._rows(
            "SELECT id, user_id, created_at, expires_at FROM web_session "
            "WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now),
        )
        return WebSession(rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None

    async def delete_sessions(
        self, *, token_hash: str | None = None, user_id: int | None = None, before: int = 0
    ) -> None:
        await self._execute(
            "DELETE FROM web_session WHERE token_hash = ? OR user_id = ? OR expires_at <= ?",
            (token_hash, user_id, before),
        )

    # ---- signing keys ---------------------------------------------------------------------

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._rows(
            "SELECT id, key_path, cert_path, state, created_at, retired_at FROM signing_key "
            "ORDER BY id"
        )
        return [KeyRecord(r[0], r[1], r[2], KeyState(r[3]), r[4], r[5]) for r in rows]

    async def add_key(self, key_path: str, cert_path: str, state: KeyState, now: int) -> KeyRecord:
        key_id = await self._insert(
            "INSERT INTO signing_key (key_path, cert_path, state, created_at) VALUES (?,?,?,?)",
            (key_path, cert_path, state.value, now),
            "signing key already stored",
        )
        return KeyRecord(key_id, key_path, cert_path, state, now)

    async def activate_key(self, key_id: int) -> bool:
        # One statement: the new key becomes active and every other active one published.
        changed = await self._execute(
            "UPDATE signing_key SET state = CASE WHEN id = ? THEN 'active' ELSE 'published' END "
            "WHERE (id = ? AND state != 'retired') OR (state = 'active' AND "
            "EXISTS (SELECT 1 FROM signing_key WHERE id = ? AND state != 'retired'))",
            (key_id, key_id, key_id),
        )
        return changed > 0

    async def retire_key(self, key_id: int, now: int) -> bool:
        changed = await self._execute(
            "UPDATE signing_key SET state = 'retired', retired_at = ? "
            "WHERE id = ? AND state = 'published'",
            (now, key_id),
        )
        return changed > 0

    # ---- webhooks -------------------------------------------------------------------------

    @staticmethod
    def _policy_args(policy: NewWebhookPolicy) -> tuple[object, ...]:
        return (
            policy.name,
            policy.description,
            json.dumps([_target_to_json(t) for t in policy.targets], separators=(",", ":")),
            json.dumps(list(policy.event_types), separators=(",", ":")),
            policy.enabled,
        )

    async def add_webhook_policy(
        self, policy: NewWebhookPolicy, now: int, most: int
    ) -> WebhookPolicy | None:
        async with self._webhook_policies_serialized():
            counted = await self._rows(
                "SELECT count(*) FROM webhook_policy WHERE coalesce(project_id, 0) = ?",
                (policy.project_id or 0,),
            )
            if counted[0][0] >= most:
                return None
            policy_id = await self._insert(
                "INSERT INTO webhook_policy (name, description, targets, event_types, enabled, "
                "project_id, creator, creation_time, update_time) VALUES (?,?,?,?,?,?,?,?,?)",
                (*self._policy_args(policy), policy.project_id, policy.creator, now, now),
                f"notification policy named {policy.name} already exists",
                ProjectNotFound(f"project {policy.project_id} not found"),
            )
        created = await self.find_webhook_policy(policy_id)
        assert created is not None
        return created

    async def _policies(self, where: str, args: Iterable[object]) -> list[WebhookPolicy]:
        rows = await self._rows(
            f"SELECT {_POLICY_COLUMNS} FROM webhook_policy WHERE {where} ORDER BY id",  # noqa: S608
            args,
        )
        return [_policy(r) for r in rows]

    async def find_webhook_policy(self, policy_id: int) -> WebhookPolicy | None:
        found = await self._policies("id = ?", (policy_id,))
        return found[0] if found else None

    async def list_webhook_policies(self, project_id: int | None) -> list[WebhookPolicy]:
        if project_id is None:
            return await self._policies("project_id IS NULL", ())
        return await self._policies("project_id = ?", (project_id,))

    async def count_webhook_policies_with_auth_headers(self) -> int:
        # NOTE: counted here, not by matching the stored JSON text in SQL: its spacing is the
        # writer's. Read once at start-up; a deployment has a few policies per project.
        rows = await self._rows("SELECT targets FROM webhook_policy", ())
        return sum(any(t.get("auth_header") for t in json.loads(row[0])) for row in rows)

    async def update_webhook_policy(
        self, policy_id: int, policy: NewWebhookPolicy, now: int
    ) -> bool:
        changed = await self._execute(
            "UPDATE webhook_policy SET name = ?, description = ?, targets = ?, "
            "event_types = ?, enabled = ?, update_time = ? WHERE id = ?",
            (*self._policy_args(policy), now, policy_id),
            refused=Conflict(f"notification policy named {policy.name} already exists"),
        )
        return changed > 0

    async def delete_webhook_policy(self, policy_id: int) -> bool:
        return await self._execute("DELETE FROM webhook_policy WHERE id = ?", (policy_id,)) > 0

    async def retarget_webhook_deliveries(
        self, policy_id: int, targets: tuple[Target, ...], now: int, dropped: str
    ) -> int:
        rows = await self._rows(
            "SELECT id, target FROM webhook_delivery WHERE policy_id = ? AND status IN (?, ?)",
            (policy_id, DeliveryStatus.PENDING.value, DeliveryStatus.RUNNING.value),
        )
        current = {t.address: t for t in targets}
        moved: dict[str, list[int]] = {}
        gone: list[int] = []
        for delivery_id, text in rows:
            target = current.get(_target_from_json(json.loads(text)).address)
            if target is None:
                gone.append(delivery_id)
            else:
                as_json = json.dumps(_target_to_json(target), separators=(",", ":"))
                moved.setdefault(as_json, []).append(delivery_id)
        unfinished = (DeliveryStatus.PENDING.value, DeliveryStatus.RUNNING.value)
        for as_json, ids in moved.items():
            for chunk in _chunks(ids):
                await self._execute(
                    f"UPDATE webhook_delivery SET target = ? WHERE id IN ({_marks(chunk)}) "  # noqa: S608
                    "AND status IN (?, ?)",
                    (as_json, *chunk, *unfinished),
                )
        dropped_count = 0
        for chunk in _chunks(gone):
            # NOTE: a try in flight (its lease runs) is left to finish; if it failed, the
            # next claim finds the address gone from the policy and drops it then.
            dropped_count += await self._execute(
                "UPDATE webhook_delivery SET status = ?, status_message = ?, "  # noqa: S608
                "lease_owner = NULL, lease_until = NULL, update_time = ?, end_time = ? "
                f"WHERE id IN ({_marks(chunk)}) AND status IN (?, ?) "
                "AND coalesce(lease_until, 0) < ?",
                (DeliveryStatus.ERROR.value, dropped, now, now, *chunk, *unfinished, now),
            )
        return dropped_count

    async def enqueue_webhook_event(
        self,
        project_id: int | None,
        event_type: str,
        event_id: str,
        payload: str,
        now: int,
    ) -> int:
        queued = 0
        for policy in await self.list_webhook_policies(project_id):
            if not policy.enabled or event_type not in policy.event_types:
                continue
            for target in policy.targets:
                try:
                    await self._insert_delivery(
                        policy.id, event_type, event_id, payload, target, now
                    )
                except NotFound:
                    break  # the policy was deleted meanwhile: nothing to send it
                queued += 1
        return queued

    async def _insert_delivery(
        self,
        policy_id: int,
        event_type: str,
        event_id: str,
        payload: str,
        target: Target,
        now: int,
    ) -> None:
        await self._insert(
            "INSERT INTO webhook_delivery (policy_id, event_type, event_id, payload, "
            "target, status, next_attempt_at, creation_time, update_time) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (
                policy_id,
                event_type,
                event_id,
                payload,
                json.dumps(_target_to_json(target), separators=(",", ":")),
                DeliveryStatus.PENDING.value,
                now,
                now,
                now,
            ),
            "webhook delivery already stored",
            NotFound(f"webhook policy {policy_id} not found"),
        )

    async def claim_webhook_deliveries(
        self, owner: str, now: int, lease_until: int, limit: int
    ) -> list[Delivery]:
        # NOTE: the selection and the outer WHERE repeat the condition: on PostgreSQL a row
        # another claim took between the ranking and the update is checked again as that
        # claim left it. The ids are selected once (PostgreSQL: an array, not a semi-join
        # the planner may run again, each run locking more rows): at most `limit`.
        ids = (
            f"SELECT d.id FROM webhook_delivery d JOIN ({_DELIVERY_TURNS}) t ON t.id = d.id "  # noqa: S608
            f"WHERE {_DELIVERY_DUE.format(d='d.')} ORDER BY t.turn, t.retry, d.id "
            f"LIMIT ?{self._SKIP_LOCKED}"
        )
        await self._execute(
            "UPDATE webhook_delivery SET status = ?, lease_owner = ?, lease_until = ?, "  # noqa: S608
            "attempts = attempts + 1, start_time = coalesce(start_time, ?), update_time = ? "
            f"WHERE {self._CLAIMED_IDS.format(ids=ids)} AND {_DELIVERY_DUE.format(d='')}",
            (
                DeliveryStatus.RUNNING.value,
                owner,
                lease_until,
                now,
                now,
                now,
                now,
                now,
                now,
                limit,
                now,
                now,
            ),
        )
        rows = await self._rows(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery "  # noqa: S608
            "WHERE lease_owner = ? AND lease_until = ? AND status = ? ORDER BY id",
            (owner, lease_until, DeliveryStatus.RUNNING.value),
        )
        return [_delivery(r) for r in rows]

    async def finish_webhook_delivery(
        self, delivery_id: int, owner: str, now: int, outcome: DeliveryOutcome
    ) -> bool:
        done = outcome.status is not DeliveryStatus.PENDING
        changed = await self._execute(
            "UPDATE webhook_delivery SET status = ?, status_message = ?, "
            "next_attempt_at = ?, lease_owner = NULL, lease_until = NULL, update_time = ?, "
            "end_time = ? WHERE id = ? AND lease_owner = ?",
            (
                outcome.status.value,
                outcome.message,
                outcome.next_attempt_at if not done else now,
                now,
                now if done else None,
                delivery_id,
                owner,
            ),
        )
        return changed > 0

    async def list_webhook_deliveries(
        self, policy_id: int, offset: int, limit: int
    ) -> tuple[list[Delivery], int]:
        rows = await self._rows(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery WHERE policy_id = ? "  # noqa: S608
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (policy_id, limit, offset),
        )
        counted = await self._rows(
            "SELECT count(*) FROM webhook_delivery WHERE policy_id = ?", (policy_id,)
        )
        return [_delivery(r) for r in rows], counted[0][0]

    async def find_webhook_delivery(self, delivery_id: int) -> Delivery | None:
        rows = await self._rows(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_delivery WHERE id = ?",  # noqa: S608
            (delivery_id,),
        )
        return _delivery(rows[0]) if rows else None

    async def forget_webhook_deliveries(self, before: int) -> int:
        return await self._execute(
            "DELETE FROM webhook_delivery WHERE creation_time < ? AND status IN (?, ?)",
            (before, DeliveryStatus.SUCCESS.value, DeliveryStatus.ERROR.value),
        )

    async def robots_expiring_by(self, until: int) -> list[Robot]:
        return await self._robots(
            "r.expires_at <> -1 AND r.expires_at <= ? ORDER BY r.id", (until,)
        )

    async def add_robot_notice(self, robot_id: int, kind: str, expires_at: int) -> bool:
        # NOTE: `WHERE EXISTS` also lets SQLite parse ON CONFLICT after a SELECT.
        try:
            added = await self._execute(
                "INSERT INTO webhook_notice (robot_id, kind, expires_at) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM robot WHERE id = ?) ON CONFLICT DO NOTHING",
                (robot_id, kind, expires_at, robot_id),
                refused=NotFound(f"robot {robot_id} not found"),
            )
        except NotFound:  # deleted between the check and the insert
            return False
        return added > 0

    # ---- audit log ------------------------------------------------------------------------

    async def add_audit(self, entry: AuditEntry) -> None:
        await self._insert(
            "INSERT INTO audit_log (op_time, operator, operation, resource_type, resource, "
            "outcome, project_id) VALUES (?,?,?,?,?,?,?)",
            (
                entry.op_time,
                entry.operator,
                entry.operation,
                entry.resource_type,
                entry.resource,
                entry.outcome,
                entry.project_id,
            ),
            "audit entry already stored",
        )

    def _audit_condition(self, condition: Condition) -> tuple[str, list[object]]:
        """One condition of an audit query as SQL and its arguments."""
        expression = _AUDIT_EXPRESSIONS[condition.key.name]
        # Text compares by code point on both databases, as the in-memory lists do.
        column = expression + (self._BYTEWISE if condition.key.kind is Kind.TEXT else "")
        values: list[object] = list(condition.values)
        op = condition.op
        if op is Op.CONTAINS:
            return self._FOLDED_CONTAINS.format(column=expression), values
        if op is Op.RANGE:
            bounds = [(">=", values[0]), ("<=", values[1])]
            kept = [(sign, v) for sign, v in bounds if v is not None]
            return " AND ".join(f"{column} {sign} ?" for sign, _ in kept), [v for _, v in kept]
        if op is Op.ANY:
            if not values:
                return "1 = 0", []
            return f"{column} IN ({','.join('?' * len(values))})", values
        # All of: equal to each value, so to the one value there is (none: every entry; two
        # different: none). One comparison, however long the list (SQLite's expressions
        # nest at most 1000 deep).
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            return "1 = 0", []
        return (f"{column} = ?", distinct) if distinct else ("1 = 1", [])

    def _audit_where(self, query: Query, scope: AuditScope) -> tuple[str, list[object]]:
        clauses: list[str] = ["1 = 1"]
        args: list[object] = []
        if scope.project_id is not None:
            clauses.append("project_id = ?")
            args.append(scope.project_id)
        if scope.member_id is not None:
            roles = ",".join("?" * len(scope.roles)) or "NULL"
            clauses.append(
                "project_id IN (SELECT project_id FROM member "  # noqa: S608
                f"WHERE user_id = ? AND role IN ({roles}))"
            )
            args.extend([scope.member_id, *(int(r) for r in scope.roles)])
        for condition in query.conditions:
            clause, values = self._audit_condition(condition)
            clauses.append(f"({clause})")
            args.extend(values)
        return " AND ".join(clauses), args

    def _audit_order(self, query: Query) -> str:
        terms = []
        for order in query.order:
            expression = _AUDIT_EXPRESSIONS[order.key.name]
            if order.key.kind is Kind.TEXT:
                expression += self._BYTEWISE
            # NULL first ascending and last descending on both databases, as SQLite does.
            terms.append(
                f"{expression} DESC NULLS LAST"
                if order.descending
                else f"{expression} ASC NULLS FIRST"
            )
        # Ties (entries of the same second) in the direction of the first key.
        first = query.order[0].descending if query.order else True
        return ", ".join([*terms, "id DESC" if first else "id ASC"])

    async def list_audit(
        self,
        offset: int,
        limit: int,
        query: Query = EVERYTHING,
        scope: AuditScope = AuditScope(),  # noqa: B008 (frozen)
    ) -> tuple[list[AuditEntry], int]:
        where, args = self._audit_where(query, scope)
        rows = await self._rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE {where} "  # noqa: S608
            f"ORDER BY {self._audit_order(query)} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        # NOTE: PostgreSQL finds nothing where a value cannot be stored (a NUL): no count row.
        counted = await self._rows(f"SELECT count(*) FROM audit_log WHERE {where}", args)  # noqa: S608
        return [AuditEntry(*r) for r in rows], counted[0][0] if counted else 0
