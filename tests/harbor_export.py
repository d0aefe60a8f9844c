"""A Harbor database export, as the README's psql query writes it, and legacy tokens minted
exactly as Harbor (before 2.2) minted them."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

HARBOR_SECRET = "Harb0rRobotSecret"
HARBOR_SALT = "s4ltS4ltS4ltS4ltS4ltS4ltS4ltS4lt"


def harbor_secret_hash(secret: str, salt: str = HARBOR_SALT) -> str:
    """Harbor's utils.Encrypt: hex(PBKDF2-SHA256(secret, salt, 4096 iterations, 16 bytes))."""
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), 4096, 16).hex()


def _policy(
    policy_id: int, scope: str, resource: str, action: str, effect: str = "allow"
) -> dict[str, Any]:
    return {
        "id": policy_id,
        "scope": scope,
        "resource": resource,
        "action": action,
        "effect": effect,
    }


def export(robots_extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Projects lib (7, private), web (8, public), old (9, deleted); robots:
    21 lib+ci (pull, push), 22 fleet (system: all projects pull, catalog read),
    23 robot$legacy (legacy in lib), 24 lib+off (disabled), 25 lib+gone (expired)."""
    now = int(time.time())
    secret = harbor_secret_hash(HARBOR_SECRET)

    def robot(robot_id: int, name: str, project_id: int, **extra: Any) -> dict[str, Any]:
        row = {
            "id": robot_id, "name": name, "project_id": project_id, "description": f"robot {name}",
            "expiresat": -1, "duration": -1, "disabled": False, "visible": True,
            "creation_time": "2023-05-01T10:00:00.123456", "update_time": "2023-05-01T10:00:00",
            "secret": secret, "salt": HARBOR_SALT,
        }  # fmt: skip
        row.update(extra)
        return row

    return {
        "project": [
            {
                "project_id": 7,
                "name": "lib",
                "public": "false",
                "deleted": False,
                "creation_time": "2022-01-01T00:00:00",
            },
            {
                "project_id": 8,
                "name": "web",
                "public": "true",
                "deleted": False,
                "creation_time": "2022-01-01T00:00:00",
            },
            {
                "project_id": 9,
                "name": "old",
                "public": None,
                "deleted": True,
                "creation_time": "2022-01-01T00:00:00",
            },
        ],
        "robot": [
            robot(21, "lib+ci", 7),
            robot(22, "fleet", 0),
            robot(23, "robot$legacy", 7, secret=None, salt=None),
            robot(24, "lib+off", 7, disabled=True),
            robot(25, "lib+gone", 7, expiresat=now - 10, duration=3),
            *(robots_extra or []),
        ],
        "permission_policy": [
            _policy(1, "/project/7", "repository", "pull"),
            _policy(2, "/project/7", "repository", "push"),
            _policy(3, "/project/*", "repository", "pull"),
            _policy(4, "/system", "catalog", "read"),
        ],
        "role_permission": [
            {"role_type": "robotaccount", "role_id": 21, "permission_policy_id": 1},
            {"role_type": "robotaccount", "role_id": 21, "permission_policy_id": 2},
            {"role_type": "robotaccount", "role_id": 22, "permission_policy_id": 3},
            {"role_type": "robotaccount", "role_id": 22, "permission_policy_id": 4},
            {"role_type": "robotaccount", "role_id": 23, "permission_policy_id": 1},
            {"role_type": "robotaccount", "role_id": 24, "permission_policy_id": 1},
            {"role_type": "robotaccount", "role_id": 25, "permission_policy_id": 1},
        ],
    }


def legacy_token(
    key: rsa.RSAPrivateKey,
    robot_id: int = 23,
    project_id: int = 7,
    access: list[tuple[str, str]] | None = None,
    expires_in: int | None = 3600,
) -> str:
    """A legacy robot token as Harbor minted it: RS256, claims id, pid, access, iat, iss, exp."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "id": robot_id,
        "pid": project_id,
        "access": [
            {"resource": r, "action": a, "effect": ""}
            for r, a in access
            or [
                (f"/project/{project_id}/repository", "push"),
                (f"/project/{project_id}/repository", "pull"),
            ]
        ],
        "iat": now,
        "iss": "harbor-token-issuer",
    }
    if expires_in is not None:
        claims["exp"] = now + expires_in
    return jwt.encode(claims, key, algorithm="RS256")
