"""Reading a JSON export of Harbor's `project`, `robot`, `role_permission` and
`permission_policy` rows into a plan of what to create. Pure: every row is checked before
anything is written, and a bad row is named in the error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokenserver.domain.harbor_json import MAX_TIME
from tokenserver.domain.lifetimes import LONGEST_TOKEN_LIFETIME, MIN_ROBOT_TOKEN_LIFETIME
from tokenserver.domain.models import (
    LEGACY_PREFIX,
    NEVER,
    SECONDS_PER_DAY,
    Level,
    duration_error,
)
from tokenserver.domain.names import NAME_PATTERN
from tokenserver.domain.permissions import (
    ALL_PROJECTS,
    SYSTEM_NAMESPACE,
    Access,
    Effect,
    PermissionKind,
    check_access,
)
from tokenserver.domain.secrets import harbor_hash
from tokenserver.errors import BadRequest, TokenServerError

# Legacy robots' JWTs may carry only these.
LEGACY_ACCESS = frozenset(
    {
        ("repository", "pull"),
        ("repository", "push"),
        ("helm-chart", "read"),
        ("helm-chart-version", "create"),
    }
)
# The stored "hash" of a legacy robot: it has no secret, only a JWT; no secret matches this.
LEGACY_SECRET = "legacy"  # noqa: S105


@dataclass(frozen=True, slots=True)
class ProjectRow:
    harbor_id: int
    name: str
    public: bool
    creation_time: int


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """A permission entry before project ids are known: `harbor_project_id` for a named
    project, None for `*` and for system entries."""

    kind: PermissionKind
    harbor_project_id: int | None
    access: tuple[Access, ...]


@dataclass(frozen=True, slots=True)
class RobotRow:
    harbor_id: int
    name: str  # short name
    level: Level
    harbor_project_id: int | None
    description: str
    secret_hash: str
    duration: int
    expires_at: int
    disabled: bool
    creation_time: int
    entries: tuple[PlannedEntry, ...]
    legacy: bool
    # Seconds its tokens last (tokenserver's column; Harbor has none): None, token.lifetime.
    token_lifetime: int | None = None


@dataclass(frozen=True, slots=True)
class ImportPlan:
    projects: tuple[ProjectRow, ...]
    robots: tuple[RobotRow, ...]


def _rows(data: Mapping[str, Any], table: str) -> list[dict[str, Any]]:
    rows = data.get(table) or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BadRequest(f"{table}: expected an array of row objects")
    return rows


def _int(row: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = row.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{where}: {key!r} must be an integer")
    return value


def _text(row: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = row.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{where}: {key!r} must be a string")
    return value


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "t", "1"))


def _time(value: Any, where: str) -> int:
    """psql's JSON timestamps ("2021-01-02T03:04:05.678" in UTC) or Unix seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
    raise BadRequest(f"{where}: creation_time must be a timestamp")


def _policies(data: Mapping[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Each robot's permission policies, by Harbor robot id."""
    policies = {}
    for i, row in enumerate(_rows(data, "permission_policy")):
        policies[_int(row, "id", f"permission_policy row {i}")] = row
    by_robot: dict[int, list[dict[str, Any]]] = {}
    for i, row in enumerate(_rows(data, "role_permission")):
        where = f"role_permission row {i}"
        if row.get("role_type", "robotaccount") != "robotaccount":
            continue
        policy_id = _int(row, "permission_policy_id", where)
        if policy_id not in policies:
            raise BadRequest(f"{where}: permission_policy {policy_id} not found")
        by_robot.setdefault(_int(row, "role_id", where), []).append(policies[policy_id])
    return by_robot


def _entries(policies: list[dict[str, Any]], where: str, legacy: bool) -> tuple[PlannedEntry, ...]:
    grouped: dict[tuple[PermissionKind, int | None], list[Access]] = {}
    for policy in policies:
        scope = _text(policy, "scope", where)
        effect = _text(policy, "effect", where, "allow") or "allow"
        if effect not in ("allow", "deny"):
            raise BadRequest(f"{where}: effect {effect!r} must be allow or deny")
        entry = Access(
            _text(policy, "resource", where), _text(policy, "action", where), Effect(effect)
        )
        if scope in ("/system", SYSTEM_NAMESPACE):
            key: tuple[PermissionKind, int | None] = (PermissionKind.SYSTEM, None)
        elif scope == f"/project/{ALL_PROJECTS}":
            key = (PermissionKind.PROJECT, None)
        elif scope.startswith("/project/") and scope[9:].isdigit():
            key = (PermissionKind.PROJECT, int(scope[9:]))
        else:
            raise BadRequest(f"{where}: unsupported permission scope {scope!r}")
        grouped.setdefault(key, []).append(entry)
    entries = []
    for (kind, project), accesses in grouped.items():
        if legacy:
            accesses = [a for a in accesses if (a.resource, a.action) in LEGACY_ACCESS]
            if not accesses:
                continue
        try:
            checked = check_access(kind, accesses)
        except TokenServerError as e:
            raise BadRequest(f"{where}: {e.message}") from None
        entries.append(PlannedEntry(kind, project, checked))
    return tuple(entries)


def plan_import(data: Any) -> ImportPlan:
    """Check every row of a Harbor export and say what to create. Raises BadRequest naming
    the first bad row."""
    if not isinstance(data, dict):
        raise BadRequest("the export must be a JSON object with project and robot arrays")
    if "project" not in data and "robot" not in data:
        # NOTE: an empty object (or another tool's JSON) would "import" nothing, successfully.
        raise BadRequest("the export holds neither a 'project' nor a 'robot' table")
    projects: dict[int, ProjectRow] = {}
    for i, row in enumerate(_rows(data, "project")):
        where = f"project row {i}"
        if _bool(row.get("deleted")):
            continue
        name = _text(row, "name", where)
        if not NAME_PATTERN.fullmatch(name) or len(name) > 255:
            raise BadRequest(f"{where}: invalid project name {name!r}")
        harbor_id = _int(row, "project_id", where)
        projects[harbor_id] = ProjectRow(
            harbor_id,
            name,
            _bool(row.get("public")),
            _time(row.get("creation_time", 0), where),
        )
    policies = _policies(data)
    robots: list[RobotRow] = []
    seen: set[tuple[bool, int | None, str]] = set()
    for i, row in enumerate(_rows(data, "robot")):
        harbor_id = _int(row, "id", f"robot row {i}")
        where = f"robot row {i} (id {harbor_id})"
        raw_name = _text(row, "name", where)
        project_id = row.get("project_id") or None
        if project_id is not None and not isinstance(project_id, int):
            raise BadRequest(f"{where}: 'project_id' must be an integer")
        if project_id is not None and project_id not in projects:
            raise BadRequest(f"{where}: project {project_id} is not in the export")
        secret = row.get("secret") or ""
        legacy = not secret
        if legacy:
            name = raw_name.removeprefix(LEGACY_PREFIX)
            if project_id is None or name == raw_name:
                raise BadRequest(f"{where}: a legacy robot needs robot$<name> and a project")
            secret_hash = LEGACY_SECRET
        else:
            if project_id is not None:
                project_name, plus, name = raw_name.partition("+")
                if not plus or project_name != projects[project_id].name:
                    raise BadRequest(f"{where}: expected the name {projects[project_id].name}+...")
            else:
                name = raw_name
            try:
                secret_hash = harbor_hash(_text(row, "salt", where), _text(row, "secret", where))
            except ValueError as e:
                raise BadRequest(f"{where}: unreadable secret: {e}") from None
        if not NAME_PATTERN.fullmatch(name):
            raise BadRequest(f"{where}: invalid robot name {name!r}")
        creation = _time(row.get("creation_time", 0), where)
        expires = _int(row, "expiresat", where, NEVER)
        if expires != NEVER and not 0 <= expires <= MAX_TIME:
            raise BadRequest(f"{where}: 'expiresat' {expires} is not a time before year 10000")
        duration = row.get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration == 0:
            duration = (
                NEVER if expires == NEVER else max(1, round((expires - creation) / SECONDS_PER_DAY))
            )
        error = duration_error(duration)
        if error is not None:
            raise BadRequest(f"{where}: {error}")
        token_lifetime = row.get("token_lifetime")
        if token_lifetime is not None:
            token_lifetime = _int(row, "token_lifetime", where)
            if not MIN_ROBOT_TOKEN_LIFETIME <= token_lifetime <= LONGEST_TOKEN_LIFETIME:
                raise BadRequest(
                    f"{where}: 'token_lifetime' {token_lifetime} must be "
                    f"{MIN_ROBOT_TOKEN_LIFETIME} to {LONGEST_TOKEN_LIFETIME} seconds"
                )
        key = (legacy, None if legacy else project_id, name)
        if key in seen:
            raise BadRequest(f"{where}: duplicate robot {raw_name!r}")
        seen.add(key)
        entries = _entries(policies.get(harbor_id, []), where, legacy)
        for entry in entries:
            if entry.harbor_project_id is not None and entry.harbor_project_id not in projects:
                raise BadRequest(f"{where}: permission names project {entry.harbor_project_id}, "
                                 "which is not in the export")  # fmt: skip
        if (
            project_id is not None
            and not legacy
            and (
                len(entries) != 1
                or entries[0].kind != PermissionKind.PROJECT
                or entries[0].harbor_project_id != project_id
            )
        ):
            raise BadRequest(f"{where}: a project robot needs one permission on its project")
        robots.append(
            RobotRow(
                harbor_id=harbor_id,
                name=name,
                level=Level.PROJECT if project_id is not None else Level.SYSTEM,
                harbor_project_id=project_id,
                description=_text(row, "description", where, "")
                if row.get("description") is not None
                else "",
                secret_hash=secret_hash,
                duration=duration,
                expires_at=expires,
                disabled=_bool(row.get("disabled")),
                creation_time=creation,
                entries=entries,
                legacy=legacy,
                token_lifetime=token_lifetime,
            )
        )
    return ImportPlan(tuple(projects.values()), tuple(robots))
