"""Harbor v2.0's JSON shapes of our models (robot, robot export, project)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tokenserver.domain.models import (
    MAX_AUDIT_FIELD,
    AuditEntry,
    Member,
    Project,
    RefreshToken,
    Robot,
    User,
)
from tokenserver.domain.permissions import Permission
from tokenserver.domain.roles import Role
from tokenserver.domain.secrets import Secret
from tokenserver.domain.text import truncate

# Project metadata keys Harbor defines; tokenserver uses only `public` and accepts the others
# so that existing clients (Terraform's provider sends several) work unchanged.
PROJECT_METADATA_KEYS = (
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "retention_id",
    "proxy_speed_kb",
)


# The times a date can show (years 1 to 9999).
MIN_TIME, MAX_TIME = -62135596800, 253402300799


def iso_time(unix: float) -> str:
    """Harbor's date-time format: RFC 3339, UTC, milliseconds. A time past the years a date
    can show is shown as the last (or first) one: stored data from before durations were
    bounded may hold one, and a listing must not fail on it."""
    unix = min(max(unix, MIN_TIME), MAX_TIME)
    # NOTE: isoformat, not strftime's %Y, which writes year 1 as "1".
    moment = datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "." + (f"{int(unix * 1000) % 1000:03d}Z")


def permission_json(permission: Permission) -> dict[str, Any]:
    return {
        "kind": permission.kind,
        "namespace": permission.namespace,
        "access": [
            {"resource": a.resource, "action": a.action, "effect": a.effect.value}
            for a in permission.access
        ],
    }


def robot_json(robot: Robot, prefix: str) -> dict[str, Any]:
    return {
        "id": robot.id,
        "name": robot.full_name(prefix),
        "description": robot.description,
        "expires_at": robot.expires_at,
        "duration": robot.duration,
        "level": robot.level,
        "disable": robot.disabled,
        "editable": not robot.legacy,
        # tokenserver: a legacy (pre-Harbor 2.2) robot, which logs in with a JWT.
        "legacy": robot.legacy,
        "creation_time": iso_time(robot.creation_time),
        "update_time": iso_time(robot.update_time),
        "permissions": [permission_json(p) for p in robot.permissions],
        # tokenserver: when the robot last authenticated (null: never).
        "last_used_at": None if robot.last_used_at is None else iso_time(robot.last_used_at),
    }


def robot_export_json(robot: Robot, prefix: str, secret: Secret) -> dict[str, Any]:
    """What Harbor returns on creation and its UI's "Export to File" saves."""
    return {
        "id": robot.id,
        "name": robot.full_name(prefix),
        "secret": secret.reveal(),
        "creation_time": iso_time(robot.creation_time),
        "expires_at": robot.expires_at,
    }


def project_json(project: Project, role: Role | None = None) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "name": project.name,
        "owner_id": project.owner_id,
        "owner_name": project.owner_name,
        "registry_id": None,
        "deleted": False,
        "togglable": True,
        "repo_count": 0,
        "current_user_role_id": int(role) if role else 0,
        "current_user_role_ids": [int(role)] if role else [],
        "metadata": {"public": "true" if project.public else "false"},
        "creation_time": iso_time(project.creation_time),
        "update_time": iso_time(project.update_time),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "username": user.username,
        "email": user.email,
        "realname": user.realname,
        "comment": user.comment,
        "sysadmin_flag": user.sysadmin,
        "admin_role_in_auth": False,
        "creation_time": iso_time(user.creation_time),
        "update_time": iso_time(user.update_time),
    }


def member_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "project_id": member.project_id,
        "entity_name": member.username,
        "role_name": member.role.harbor_name,
        "role_id": int(member.role),
        "entity_id": member.user_id,
        "entity_type": "u",
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    # NOTE: entries written before fields were bounded may hold a whole request body.
    return {
        "id": entry.id,
        "username": truncate(entry.operator, MAX_AUDIT_FIELD),
        "resource": truncate(entry.resource, MAX_AUDIT_FIELD),
        "resource_type": entry.resource_type,
        "operation": entry.operation,
        "op_time": iso_time(entry.op_time),
        "outcome": entry.outcome,
    }


def refresh_token_json(token: RefreshToken) -> dict[str, Any]:
    """A refresh token as listed: never the token itself, which is not stored."""
    return {"id": token.id, "client_id": token.client_id, "created_at": iso_time(token.created_at)}
