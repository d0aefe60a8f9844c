"""Harbor v2.0's JSON shapes of our models (robot, robot export, project)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tokenserver.domain.models import Project, Robot
from tokenserver.domain.permissions import Permission
from tokenserver.domain.secrets import Secret


def iso_time(unix: float) -> str:
    """Harbor's date-time format: RFC 3339, UTC, milliseconds."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(unix * 1000) % 1000:03d}Z"
    )


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
        "editable": True,
        "creation_time": iso_time(robot.creation_time),
        "update_time": iso_time(robot.update_time),
        "permissions": [permission_json(p) for p in robot.permissions],
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


def project_json(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "name": project.name,
        "metadata": {"public": "true" if project.public else "false"},
        "creation_time": iso_time(project.creation_time),
        "update_time": iso_time(project.update_time),
    }
