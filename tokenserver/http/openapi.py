"""The OpenAPI 3.1 document of exactly what tokenserver implements, served at
`/api/v2.0/openapi.json`. Field names and types follow Harbor's swagger; the tests validate
every response they receive against it."""

from __future__ import annotations

from typing import Any

from tokenserver import __version__
from tokenserver.domain.harbor_json import PROJECT_METADATA_KEYS
from tokenserver.domain.models import MAX_DURATION_DAYS, NEVER

_ref = "#/components/schemas/"


def _schema(name: str) -> dict[str, Any]:
    return {"$ref": _ref + name}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_NAMES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request entity too large",
    429: "Too many failed authentications (see Retry-After)",
    500: "Internal error",
    503: "The database is unavailable; try again",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def _errors(*statuses: int) -> dict[str, Any]:
    """An operation's error responses: `statuses`, and those every operation can answer. Each
    authenticates (401), each may authenticate with Basic credentials and so be locked out
    (429), each reads the database (503)."""
    responses = {
        str(s): _json(_schema("Errors"), _ERROR_NAMES[s])
        for s in (*statuses, 401, 413, 429, 500, 503)
    }
    responses["429"]["headers"] = _RETRY_AFTER
    return responses


_PAGED = {
    "X-Total-Count": {"schema": {"type": "integer"}, "description": "total number of items"},
    "Link": {"schema": {"type": "string"}, "description": "links to the previous/next page"},
}
_PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
    },
]
_PROJECT_PARAMS = [
    {"name": "project_name_or_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "X-Is-Resource-Name", "in": "header", "schema": {"type": "boolean"}},
]


def _paged(item: str) -> dict[str, Any]:
    response = _json({"type": "array", "items": _schema(item)})
    response["headers"] = _PAGED
    return response


def _created(body: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": "Created",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
    if body is not None:
        response["content"] = {"application/json": {"schema": body}}
    return response


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _schema(name)}}}


_OK = {"description": "OK"}
_TIME = {"type": "string", "format": "date-time"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

SCHEMAS: dict[str, Any] = {
    "Errors": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": _STR, "message": _STR},
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
    "ProjectMetadata": {
        "type": "object",
        "properties": {k: _STR for k in PROJECT_METADATA_KEYS},
        "additionalProperties": False,
    },
    "ProjectReq": {
        "type": "object",
        "properties": {
            "project_name": {"type": "string", "maxLength": 255},
            "public": _BOOL,
            "metadata": _schema("ProjectMetadata"),
            "storage_limit": {"type": ["integer", "null"]},
            "registry_id": {"type": ["integer", "null"]},
            "cve_allowlist": {"type": ["object", "null"]},
        },
        "additionalProperties": False,
    },
    "Project": {
        "type": "object",
        "required": ["project_id", "name", "metadata", "creation_time", "update_time"],
        "properties": {
            "project_id": _INT,
            "name": _STR,
            "owner_id": {"type": ["integer", "null"]},
            "owner_name": _STR,
            "registry_id": {"type": ["integer", "null"]},
            "deleted": _BOOL,
            "togglable": _BOOL,
            "repo_count": _INT,
            "current_user_role_id": _INT,
            "current_user_role_ids": {"type": "array", "items": _INT},
            "metadata": {"type": "object", "properties": {"public": {"enum": ["true", "false"]}}},
            "creation_time": _TIME,
            "update_time": _TIME,
        },
        "additionalProperties": False,
    },
    "UserCreationReq": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {
            "username": _STR,
            "password": _STR,
            "email": _STR,
            "realname": _STR,
            "comment": _STR,
        },
        "additionalProperties": False,
    },
    "UserResp": {
        "type": "object",
        "required": ["user_id", "username", "sysadmin_flag"],
        "properties": {
            "user_id": _INT,
            "username": _STR,
            "email": _STR,
            "realname": _STR,
            "comment": _STR,
            "sysadmin_flag": _BOOL,
            "admin_role_in_auth": _BOOL,
            "creation_time": _TIME,
            "update_time": _TIME,
        },
        "additionalProperties": False,
    },
    "PasswordReq": {
        "type": "object",
        "required": ["new_password"],
        "properties": {"old_password": _STR, "new_password": _STR},
        "additionalProperties": False,
    },
    "ProjectMember": {
        "type": "object",
        "required": ["role_id"],
        "properties": {
            "role_id": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
            "member_user": {
                "type": "object",
                "properties": {"user_id": _INT, "username": _STR},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "RoleRequest": {
        "type": "object",
        "required": ["role_id"],
        "properties": {"role_id": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
        "additionalProperties": False,
    },
    "ProjectMemberEntity": {
        "type": "object",
        "required": ["id", "project_id", "entity_name", "role_name", "role_id", "entity_id"],
        "properties": {
            "id": _INT,
            "project_id": _INT,
            "entity_name": _STR,
            "role_name": {
                "enum": ["projectAdmin", "developer", "guest", "maintainer", "limitedGuest"]
            },
            "role_id": _INT,
            "entity_id": _INT,
            "entity_type": {"enum": ["u"]},
        },
        "additionalProperties": False,
    },
    "Access": {
        "type": "object",
        "required": ["resource", "action"],
        "properties": {"resource": _STR, "action": _STR, "effect": {"enum": ["allow", "deny"]}},
        "additionalProperties": False,
    },
    "RobotPermission": {
        "type": "object",
        "required": ["kind", "namespace", "access"],
        "properties": {
            "kind": {"enum": ["project", "system"]},
            "namespace": _STR,
            "access": {"type": "array", "items": _schema("Access")},
        },
        "additionalProperties": False,
    },
    "RobotCreate": {
        "type": "object",
        "required": ["name", "level", "duration", "permissions"],
        "properties": {
            "name": _STR,
            "description": _STR,
            "level": {"enum": ["project", "system"]},
            "disable": _BOOL,
            "duration": {
                "type": "integer",
                "minimum": NEVER,
                "maximum": MAX_DURATION_DAYS,
                "description": f"days (1 to {MAX_DURATION_DAYS}), -1 for never",
            },
            "secret": _STR,
            "permissions": {"type": "array", "items": _schema("RobotPermission")},
        },
        "additionalProperties": False,
    },
    "Robot": {
        "type": "object",
        "required": [
            "id",
            "name",
            "description",
            "expires_at",
            "duration",
            "level",
            "disable",
            "editable",
            "creation_time",
            "update_time",
            "permissions",
        ],
        "properties": {
            "id": _INT,
            "name": _STR,
            "description": _STR,
            "expires_at": {"type": "integer", "description": "Unix seconds, -1 for never"},
            "duration": _INT,
            "level": {"enum": ["project", "system"]},
            "disable": _BOOL,
            "editable": _BOOL,
            "legacy": _BOOL,
            "secret": _STR,
            "creation_time": _TIME,
            "update_time": _TIME,
            "permissions": {"type": "array", "items": _schema("RobotPermission")},
            "last_used_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "tokenserver: when the robot last authenticated",
            },
        },
        "additionalProperties": False,
    },
    "RobotCreated": {
        "type": "object",
        "required": ["id", "name", "secret", "creation_time", "expires_at"],
        "properties": {
            "id": _INT,
            "name": _STR,
            "secret": _STR,
            "creation_time": _TIME,
            "expires_at": _INT,
        },
        "additionalProperties": False,
    },
    "RobotSecReq": {
        "type": "object",
        "properties": {
            "secret": _STR,
            "restart_expiry": {
                "type": "boolean",
                "description": "tokenserver: also restart the expiry period from now",
            },
        },
        "additionalProperties": False,
    },
    "RobotSec": {
        "type": "object",
        "required": ["secret"],
        "properties": {"secret": _STR},
        "additionalProperties": False,
    },
    "RefreshToken": {
        "type": "object",
        "required": ["id", "client_id", "created_at"],
        "properties": {"id": _INT, "client_id": _STR, "created_at": _TIME},
        "additionalProperties": False,
    },
    "AuditLog": {
        "type": "object",
        "required": ["id", "username", "resource", "resource_type", "operation", "op_time"],
        "properties": {
            "id": _INT,
            "username": _STR,
            "resource": _STR,
            "resource_type": _STR,
            "operation": _STR,
            "op_time": _TIME,
            "outcome": _STR,
        },
        "additionalProperties": False,
    },
}

_ROBOT_ID = [{"name": "robot_id", "in": "path", "required": True, "schema": _INT}]
_MEMBER_ID = [{"name": "mid", "in": "path", "required": True, "schema": _INT}]
_USER_ID = [{"name": "user_id", "in": "path", "required": True, "schema": _INT}]

PATHS: dict[str, Any] = {
    "/projects": {
        "get": {
            "summary": "List the projects the caller may read",
            "parameters": [
                {"name": "name", "in": "query", "schema": _STR},
                {"name": "public", "in": "query", "schema": _BOOL},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged("Project"), **_errors(400)},
        },
        "post": {
            "summary": "Create a project",
            "requestBody": _body("ProjectReq"),
            "responses": {"201": _created(), **_errors(400, 403, 409)},
        },
        "head": {
            "summary": "Check whether a project name exists",
            "parameters": [
                {"name": "project_name", "in": "query", "required": True, "schema": _STR}
            ],
            "responses": {
                "200": _OK,
                "404": {"description": "Not found"},
                "400": _OK,
                "401": _OK,
                "429": {"description": _ERROR_NAMES[429], "headers": _RETRY_AFTER},
                "503": {"description": _ERROR_NAMES[503]},
            },
        },
    },
    "/projects/{project_name_or_id}": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "Get a project",
            "responses": {"200": _json(_schema("Project")), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "Update a project (public)",
            "requestBody": _body("ProjectReq"),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Delete a project, its robots and members",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name_or_id}/members": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "List project members",
            "parameters": [{"name": "entityname", "in": "query", "schema": _STR}, *_PAGE_PARAMS],
            "responses": {
                "200": _paged("ProjectMemberEntity"),
                **_errors(400, 403, 404),
            },
        },
        "post": {
            "summary": "Add a user to the project",
            "requestBody": _body("ProjectMember"),
            "responses": {"201": _created(), **_errors(400, 403, 404, 409)},
        },
    },
    "/projects/{project_name_or_id}/members/{mid}": {
        "parameters": [*_PROJECT_PARAMS, *_MEMBER_ID],
        "get": {
            "summary": "Get a project member",
            "responses": {
                "200": _json(_schema("ProjectMemberEntity")),
                **_errors(400, 403, 404),
            },
        },
        "put": {
            "summary": "Change a member's role",
            "requestBody": _body("RoleRequest"),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Remove a member",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/users": {
        "get": {
            "summary": "List users (system admin)",
            "parameters": [{"name": "username", "in": "query", "schema": _STR}, *_PAGE_PARAMS],
            "responses": {"200": _paged("UserResp"), **_errors(400, 403)},
        },
        "post": {
            "summary": "Create a user (system admin)",
            "requestBody": _body("UserCreationReq"),
            "responses": {"201": _created(), **_errors(400, 403, 409)},
        },
    },
    "/permissions": {
        "get": {
            "summary": "The permissions a robot may be granted, by kind (Harbor 2.12)",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["system", "project"],
                        "properties": {
                            kind: {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["resource", "action"],
                                    "properties": {
                                        "resource": {"type": "string"},
                                        "action": {"type": "string"},
                                    },
                                },
                            }
                            for kind in ("system", "project")
                        },
                    }
                ),
                **_errors(),
            },
        }
    },
    "/users/current": {
        "get": {
            "summary": "The authenticated user (412 for robots)",
            "responses": {"200": _json(_schema("UserResp")), **_errors(412)},
        }
    },
    "/users/{user_id}": {
        "parameters": _USER_ID,
        "get": {
            "summary": "Get a user (self or system admin)",
            "responses": {"200": _json(_schema("UserResp")), **_errors(400, 403, 404)},
        },
    },
    "/users/{user_id}/password": {
        "parameters": _USER_ID,
        "put": {
            "summary": "Change a password (own, with the old one; any, as system admin)",
            "requestBody": _body("PasswordReq"),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/robots": {
        "get": {
            "summary": "List robots: q=Level=system (default) or Level=project,ProjectID=N",
            "parameters": [
                {"name": "q", "in": "query", "schema": _STR},
                {"name": "sort", "in": "query", "schema": _STR},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged("Robot"), **_errors(400, 403, 404)},
        },
        "post": {
            "summary": "Create a robot; the response holds its secret, shown only once",
            "requestBody": _body("RobotCreate"),
            "responses": {
                "201": _created(_schema("RobotCreated")),
                **_errors(400, 403, 404, 409),
            },
        },
    },
    "/robots/{robot_id}": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "Get a robot",
            "responses": {"200": _json(_schema("Robot")), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "Replace a robot (name and level cannot change)",
            "requestBody": _body("Robot"),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "patch": {
            "summary": "Refresh the secret: generated (returned once) or the one given",
            "requestBody": _body("RobotSecReq"),
            "responses": {"200": _json(_schema("RobotSec")), **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Delete a robot",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/robots/{robot_id}/refresh-tokens": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "tokenserver: list a robot's refresh tokens (never the tokens)",
            "responses": {
                "200": _json({"type": "array", "items": _schema("RefreshToken")}),
                **_errors(400, 403, 404),
            },
        },
        "delete": {
            "summary": "tokenserver: revoke all of a robot's refresh tokens",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/robots/{robot_id}/refresh-tokens/{token_id}": {
        "parameters": [
            *_ROBOT_ID,
            {"name": "token_id", "in": "path", "required": True, "schema": _INT},
        ],
        "delete": {
            "summary": "tokenserver: revoke one refresh token",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/audit-logs": {
        "get": {
            "summary": "The audit log, newest first (system admin)",
            "parameters": _PAGE_PARAMS,
            "responses": {"200": _paged("AuditLog"), **_errors(400, 403)},
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tokenserver management API (Harbor v2.0 compatible)",
            "version": __version__,
        },
        "servers": [{"url": "/api/v2.0"}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}, {}],
        "paths": PATHS,
    }
