"""The OpenAPI 3.1 document of exactly what tokenserver implements, served at
`/api/v2.0/openapi.json`: the operations written here, the bodies' schemas generated from
their declarations (domain/harbor_schema.py). Field names and types follow Harbor's swagger;
the tests validate the requests they send and the responses they receive against it."""

from __future__ import annotations

from typing import Any

from tokenserver import __version__
from tokenserver.domain.bodies import Body
from tokenserver.domain.harbor_query import (
    AUDIT_EXT_KEYS,
    AUDIT_KEYS,
    PROJECT_KEYS,
    ROBOT_KEYS,
    USER_KEYS,
)
from tokenserver.domain.harbor_schema import (
    AUDIT_LOG,
    AUDIT_LOG_EXT,
    ERRORS,
    FEDERATION_FAILURE,
    FEDERATION_LOGIN,
    ISSUER,
    ISSUER_CREATE,
    MEMBER,
    MEMBER_CREATE,
    PASSWORD_CHANGE,
    PERMISSION,
    PERMISSION_TABLE,
    PROJECT,
    PROJECT_CREATE,
    PROJECT_DELETABLE,
    PROJECT_METADATA,
    PROJECT_METADATA_ENTRY,
    PROJECT_METADATA_RESP,
    PROJECT_SUMMARY,
    PROJECT_UPDATE,
    REFRESH_TOKEN,
    ROBOT,
    ROBOT_CREATE,
    ROBOT_CREATED,
    ROBOT_FEDERATION,
    ROBOT_FEDERATION_UPDATE,
    ROBOT_UPDATE,
    ROLE_UPDATE,
    SECRET,
    SECRET_REFRESH,
    USER,
    USER_CREATE,
    USER_PROFILE,
    USER_SEARCH_ITEM,
    USER_SYSADMIN,
    WEBHOOK_EVENT_TYPES,
    WEBHOOK_EXECUTION,
    WEBHOOK_POLICY,
    WEBHOOK_POLICY_REQ,
    WEBHOOK_TASK,
)
from tokenserver.domain.query import Keys


class _Components:
    """The document's `components.schemas`: each body's schema under its component name,
    added when an operation first refers to it."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}
        self._owners: dict[str, tuple[Body, bool]] = {}

    def ref(self, body: Body, request: bool) -> dict[str, Any]:
        name = body.component_name(request)
        if name is None:
            return body.schema(request=request, ref=self.ref)
        owner = self._owners.get(name)
        if owner is None:
            self._owners[name] = (body, request)
            self.schemas[name] = body.schema(request=request, ref=self.ref)
        elif owner != (body, request) and self.schemas[name] != body.schema(
            request=request, ref=self.ref
        ):
            # A body whose request and response forms differ needs a request_name.
            raise ValueError(f"two different schemas named {name}")
        return {"$ref": "#/components/schemas/" + name}


_COMPONENTS = _Components()


def _request(body: Body) -> dict[str, Any]:
    schema = _COMPONENTS.ref(body, request=True)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _response(body: Body) -> dict[str, Any]:
    return _COMPONENTS.ref(body, request=False)


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
    415: "A compressed request body (Content-Encoding): bodies are taken uncompressed",
    429: "Too many failed authentications (see Retry-After)",
    500: "Internal error",
    503: "The database is unavailable; try again",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def _errors(*statuses: int) -> dict[str, Any]:
    """An operation's error responses: `statuses`, and those every operation can answer. Each
    authenticates (401), each may authenticate with Basic credentials and so be locked out
    (429) or refused a robot's previous secret (403: it logs in to the registry only), each
    reads the database (503), each refuses a compressed body (415), and the server answers a
    request it cannot parse as HTTP before it reaches any (400)."""
    responses = {
        str(s): _json(_response(ERRORS), _ERROR_NAMES[s])
        for s in dict.fromkeys((*statuses, 400, 401, 403, 413, 415, 429, 500, 503))
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
_Q_SYNTAX = (
    "Harbor's query: terms joined by commas, each `k=v` (exact), `k=~v` (contains; ASCII "
    "letters in any case), `k=[min~max]` (a range; one side may be empty), `k={v1 v2}` (any "
    "of), `k=(v1 v2)` (all of). Times are `2006-01-02T15:04:05` (UTC), a date or Unix "
    "seconds. An unknown key, an operator a key does not take or a malformed term is a 400."
)


def _query_params(keys: Keys[Any], note: str = "") -> list[dict[str, Any]]:
    """The `q` and `sort` parameters of a list of `keys`, documented from them."""
    sortable = [k.name for k in keys.keys if k.sortable]
    default = ", ".join(("-" if o.descending else "") + o.key.name for o in keys.default_order)
    return [
        {
            "name": "q",
            "in": "query",
            "schema": _STR,
            "description": f"{_Q_SYNTAX} Keys: {', '.join(k.name for k in keys.keys)}.{note}",
        },
        {
            "name": "sort",
            "in": "query",
            "schema": _STR,
            "description": (
                f"Keys joined by commas, `-` before one for descending: {', '.join(sortable)}. "
                f"Unknown keys are skipped. Default: {default}."
            ),
        },
    ]


_PROJECT_PARAMS = [
    {"name": "project_name_or_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "X-Is-Resource-Name", "in": "header", "schema": {"type": "boolean"}},
]


def _paged(item: Body) -> dict[str, Any]:
    response = _json({"type": "array", "items": _response(item)})
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


_OK = {"description": "OK"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

_PROJECT_NAME = [{"name": "project_name", "in": "path", "required": True, "schema": _STR}]
_ROBOT_ID = [{"name": "robot_id", "in": "path", "required": True, "schema": _INT}]
_MEMBER_ID = [{"name": "mid", "in": "path", "required": True, "schema": _INT}]
_USER_ID = [{"name": "user_id", "in": "path", "required": True, "schema": _INT}]

PATHS: dict[str, Any] = {
    "/projects": {
        "get": {
            "summary": "List the projects the caller may read",
            "parameters": [
                *_query_params(PROJECT_KEYS),
                {"name": "name", "in": "query", "schema": _STR, "description": "q=name=~..."},
                {"name": "owner", "in": "query", "schema": _STR, "description": "q=owner=..."},
                {"name": "public", "in": "query", "schema": _BOOL},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged(PROJECT), **_errors(400)},
        },
        "post": {
            "summary": "Create a project (who may: security.project_creation_restriction)",
            "parameters": [
                {
                    "name": "X-Resource-Name-In-Location",
                    "in": "header",
                    "schema": _BOOL,
                    "description": "the Location names the project instead of its id",
                }
            ],
            "requestBody": _request(PROJECT_CREATE),
            "responses": {"201": _created(), **_errors(400, 403, 404, 409)},
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
            "responses": {"200": _json(_response(PROJECT)), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "Update a project: public, and the metadata keys given (others kept)",
            "requestBody": _request(PROJECT_UPDATE),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Delete a project, its robots and members",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name_or_id}/summary": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "Member counts by role (for a caller who may list members)",
            "responses": {"200": _json(_response(PROJECT_SUMMARY)), **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name_or_id}/_deletable": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "Whether the project can be deleted (for a caller who may delete it)",
            "responses": {"200": _json(_response(PROJECT_DELETABLE)), **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name_or_id}/metadatas": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "The project's metadata: `public` and the other keys it holds",
            "responses": {"200": _json(_response(PROJECT_METADATA_RESP)), **_errors(400, 403, 404)},
        },
        "post": {
            "summary": "Add one metadata key the project does not hold (`public` always is)",
            "requestBody": _request(PROJECT_METADATA),
            "responses": {"200": _OK, **_errors(400, 403, 404, 409)},
        },
    },
    "/projects/{project_name_or_id}/metadatas/{meta_name}": {
        "parameters": [
            *_PROJECT_PARAMS,
            {"name": "meta_name", "in": "path", "required": True, "schema": _STR},
        ],
        "get": {
            "summary": "One metadata key of the project ({} if it does not hold it)",
            "responses": {
                "200": _json(_response(PROJECT_METADATA_ENTRY)),
                **_errors(400, 403, 404),
            },
        },
        "put": {
            "summary": "Set one metadata key: the body holds it alone",
            "requestBody": _request(PROJECT_METADATA),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Remove one metadata key (`public`: the project becomes private)",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name_or_id}/members": {
        "parameters": _PROJECT_PARAMS,
        "get": {
            "summary": "List project members",
            "parameters": [{"name": "entityname", "in": "query", "schema": _STR}, *_PAGE_PARAMS],
            "responses": {
                "200": _paged(MEMBER),
                **_errors(400, 403, 404),
            },
        },
        "post": {
            "summary": "Add a user to the project",
            "requestBody": _request(MEMBER_CREATE),
            "responses": {"201": _created(), **_errors(400, 403, 404, 409)},
        },
    },
    "/projects/{project_name_or_id}/members/{mid}": {
        "parameters": [*_PROJECT_PARAMS, *_MEMBER_ID],
        "get": {
            "summary": "Get a project member",
            "responses": {
                "200": _json(_response(MEMBER)),
                **_errors(400, 403, 404),
            },
        },
        "put": {
            "summary": "Change a member's role",
            "requestBody": _request(ROLE_UPDATE),
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
            "parameters": [
                *_query_params(USER_KEYS),
                {
                    "name": "username",
                    "in": "query",
                    "schema": _STR,
                    "description": "q=username=~...",
                },
                {"name": "email", "in": "query", "schema": _STR, "description": "q=email=~..."},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged(USER), **_errors(400, 403)},
        },
        "post": {
            "summary": "Create a user (system admin)",
            "requestBody": _request(USER_CREATE),
            "responses": {"201": _created(), **_errors(400, 403, 409)},
        },
    },
    "/permissions": {
        "get": {
            "summary": (
                "Harbor's robot permission provider lists: system and project for a system "
                "admin, project for anyone else"
            ),
            "responses": {
                "200": _json(_response(PERMISSION_TABLE)),
                **_errors(),
            },
        }
    },
    "/users/current": {
        "get": {
            "summary": "The authenticated user (412 for robots)",
            "responses": {"200": _json(_response(USER)), **_errors(412)},
        }
    },
    "/users/current/permissions": {
        "get": {
            "summary": "What the caller may do in a scope: /project/<id> or /system",
            "parameters": [
                {"name": "scope", "in": "query", "schema": _STR},
                {"name": "relative", "in": "query", "schema": _BOOL},
            ],
            "responses": {
                "200": _json({"type": "array", "items": _response(PERMISSION)}),
                **_errors(400),
            },
        }
    },
    "/users/search": {
        "get": {
            "summary": "Users whose name contains `username` (any authenticated caller)",
            "parameters": [
                {"name": "username", "in": "query", "required": True, "schema": _STR},
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged(USER_SEARCH_ITEM), **_errors(400)},
        }
    },
    "/users/{user_id}": {
        "parameters": _USER_ID,
        "get": {
            "summary": "Get a user (self or system admin)",
            "responses": {"200": _json(_response(USER)), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "Replace a user's email, realname and comment (self or system admin)",
            "requestBody": _request(USER_PROFILE),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Delete a user, its memberships, sessions and refresh tokens "
            "(system admin; not oneself, admin or the last system admin)",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/users/{user_id}/sysadmin": {
        "parameters": _USER_ID,
        "put": {
            "summary": "Make a user a system admin or not (system admin; the last one stays)",
            "requestBody": _request(USER_SYSADMIN),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/users/{user_id}/password": {
        "parameters": _USER_ID,
        "put": {
            "summary": "Change a password (own, with the old one; any, as system admin)",
            "requestBody": _request(PASSWORD_CHANGE),
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/users/{user_id}/cli_secret": {
        "parameters": _USER_ID,
        "put": {
            "summary": "Refused (412), as by Harbor without OIDC: a CLI secret is an OIDC user's",
            "responses": _errors(412),
        },
    },
    "/robots": {
        "get": {
            "summary": "List robots: q=Level=system (default) or Level=project,ProjectID=N",
            "parameters": [
                *_query_params(
                    ROBOT_KEYS,
                    " `Level=project` needs `ProjectID=N` (that project's robots); no Level, or "
                    "`Level=system`, lists system robots. `name` is Harbor's stored name "
                    "(`<project>+<name>`); an exact name may also be the short name.",
                ),
                *_PAGE_PARAMS,
            ],
            "responses": {"200": _paged(ROBOT), **_errors(400, 403, 404)},
        },
        "post": {
            "summary": "Create a robot; the response holds its secret, shown only once",
            "requestBody": _request(ROBOT_CREATE),
            "responses": {
                "201": _created(_response(ROBOT_CREATED)),
                **_errors(400, 403, 404, 409),
            },
        },
    },
    "/robots/{robot_id}": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "Get a robot",
            "responses": {"200": _json(_response(ROBOT)), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "Replace a robot (name and level cannot change; `secret_login` false "
            "for a robot without federation rules is 409)",
            "requestBody": _request(ROBOT_UPDATE),
            "responses": {"200": _OK, **_errors(400, 403, 404, 409)},
        },
        "patch": {
            "summary": (
                "Refresh the secret: generated and returned once (no secret, or an empty one), "
                "or the one given (answer {}); with keep_previous_for (tokenserver's), the "
                "secret replaced keeps working that long"
            ),
            "requestBody": _request(SECRET_REFRESH),
            "responses": {"200": _json(_response(SECRET)), **_errors(400, 403, 404)},
        },
        "delete": {
            "summary": "Delete a robot",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/robots/{robot_id}/previous-secret": {
        "parameters": _ROBOT_ID,
        "delete": {
            "summary": "tokenserver: end the previous secret a refresh with keep_previous_for "
            "kept, and its refresh tokens, now (404: none that works)",
            "responses": {"200": _OK, **_errors(400, 403, 404)},
        },
    },
    "/robots/{robot_id}/refresh-tokens": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "tokenserver: list a robot's refresh tokens (never the tokens)",
            "responses": {
                "200": _json({"type": "array", "items": _response(REFRESH_TOKEN)}),
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
    "/robots/{robot_id}/federation": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "tokenserver: the robot's federation rules and their warnings (for "
            "whoever may update the robot)",
            "responses": {"200": _json(_response(ROBOT_FEDERATION)), **_errors(400, 403, 404)},
        },
        "put": {
            "summary": "tokenserver: replace the robot's federation rules (robot update; a "
            "robot caller only for robots within its own permissions and expiry); its refresh "
            "tokens from federated logins end unless the rules are the ones it has. A rule "
            "pinning nothing beyond iss and aud is 400; a robot whose secret login is off "
            "keeps at least one rule (409)",
            "requestBody": _request(ROBOT_FEDERATION_UPDATE),
            "responses": {
                "200": _json(_response(ROBOT_FEDERATION)),
                **_errors(400, 403, 404, 409),
            },
        },
    },
    "/robots/{robot_id}/federation/logins": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "tokenserver: the robot's newest federated logins (one per ID token: "
            "issuer, subject, repository, ref, commit, run, rule), newest first (for whoever "
            "may read the robot)",
            "responses": {
                "200": _json({"type": "array", "items": _response(FEDERATION_LOGIN)}),
                **_errors(400, 403, 404),
            },
        },
    },
    "/robots/{robot_id}/federation/failures": {
        "parameters": _ROBOT_ID,
        "get": {
            "summary": "tokenserver: the robot's newest refused federated logins, newest "
            "first (for whoever may read the robot)",
            "responses": {
                "200": _json({"type": "array", "items": _response(FEDERATION_FAILURE)}),
                **_errors(400, 403, 404),
            },
        },
    },
    "/federation/issuers": {
        "get": {
            "summary": "tokenserver: the OIDC issuers robots may log in with (system admin)",
            "responses": {
                "200": _json({"type": "array", "items": _response(ISSUER)}),
                **_errors(403),
            },
        },
        "post": {
            "summary": "tokenserver: trust an OIDC issuer (system admin); its JWKS and CA "
            "files are read now",
            "requestBody": _request(ISSUER_CREATE),
            "responses": {
                "201": _created(_response(ISSUER)),
                **_errors(400, 403, 409),
            },
        },
    },
    "/federation/issuers/{name}": {
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}],
        "get": {
            "summary": "tokenserver: one issuer (system admin)",
            "responses": {"200": _json(_response(ISSUER)), **_errors(403, 404)},
        },
        "delete": {
            "summary": "tokenserver: stop trusting an issuer (system admin); 409 while "
            "robots' rules use it",
            "responses": {"200": _OK, **_errors(403, 404, 409)},
        },
    },
    "/audit-logs": {
        "get": {
            "summary": (
                "The audit log: every entry with audit-log:list (system admins); for other "
                "users, the entries of their projects where their role may list the log; "
                "none for other robots"
            ),
            "parameters": [*_query_params(AUDIT_KEYS), *_PAGE_PARAMS],
            "responses": {"200": _paged(AUDIT_LOG), **_errors(400)},
        }
    },
    "/auditlog-exts": {
        "get": {
            "summary": "The audit log as Harbor's AuditLogExt, to the same readers",
            "parameters": [*_query_params(AUDIT_EXT_KEYS), *_PAGE_PARAMS],
            "responses": {"200": _paged(AUDIT_LOG_EXT), **_errors(400)},
        }
    },
    "/projects/{project_name}/logs": {
        "parameters": _PROJECT_NAME,
        "get": {
            "summary": "A project's audit log (log:list in the project: any member but a "
            "limitedGuest, a robot granted it)",
            "parameters": [*_query_params(AUDIT_KEYS), *_PAGE_PARAMS],
            "responses": {"200": _paged(AUDIT_LOG), **_errors(400, 403, 404)},
        },
    },
    "/projects/{project_name}/auditlog-exts": {
        "parameters": _PROJECT_NAME,
        "get": {
            "summary": "A project's audit log as Harbor's AuditLogExt (log:list)",
            "parameters": [*_query_params(AUDIT_EXT_KEYS), *_PAGE_PARAMS],
            "responses": {"200": _paged(AUDIT_LOG_EXT), **_errors(400, 403, 404)},
        },
    },
}


def _webhook_paths(base: str, params: list[Any], who: str, mark: str = "") -> dict[str, Any]:
    """The webhook policy operations under `base` (a project's, or the system's), for `who`
    may read and change them; each summary starts with `mark`."""
    policy_id = {"name": "webhook_policy_id", "in": "path", "required": True, "schema": _INT}
    execution_id = {"name": "execution_id", "in": "path", "required": True, "schema": _INT}
    return {
        f"{base}/policies": {
            "parameters": params,
            "get": {
                "summary": f"{mark}List the webhook policies ({who})",
                "parameters": _PAGE_PARAMS,
                "responses": {"200": _paged(WEBHOOK_POLICY), **_errors(400, 403, 404)},
            },
            "post": {
                "summary": f"{mark}Create a webhook policy for robot events ({who})",
                "requestBody": _request(WEBHOOK_POLICY_REQ),
                "responses": {"201": _created(), **_errors(400, 403, 404, 409)},
            },
        },
        f"{base}/policies/{{webhook_policy_id}}": {
            "parameters": [*params, policy_id],
            "get": {
                "summary": f"{mark}Get a webhook policy (auth headers masked)",
                "responses": {"200": _json(_response(WEBHOOK_POLICY)), **_errors(400, 403, 404)},
            },
            "put": {
                "summary": f"{mark}Replace a webhook policy (a masked auth header is kept)",
                "requestBody": _request(WEBHOOK_POLICY_REQ),
                "responses": {"200": _OK, **_errors(400, 403, 404, 409)},
            },
            "delete": {
                "summary": f"{mark}Delete a webhook policy and its deliveries",
                "responses": {"200": _OK, **_errors(400, 403, 404)},
            },
        },
        f"{base}/policies/{{webhook_policy_id}}/executions": {
            "parameters": [*params, policy_id],
            "get": {
                "summary": f"{mark}The policy's deliveries, newest first: one execution per event "
                "and target",
                "parameters": _PAGE_PARAMS,
                "responses": {"200": _paged(WEBHOOK_EXECUTION), **_errors(400, 403, 404)},
            },
        },
        f"{base}/policies/{{webhook_policy_id}}/executions/{{execution_id}}/tasks": {
            "parameters": [*params, policy_id, execution_id],
            "get": {
                "summary": f"{mark}The one task of a delivery: its tries and their outcome",
                "parameters": _PAGE_PARAMS,
                "responses": {"200": _paged(WEBHOOK_TASK), **_errors(400, 403, 404)},
            },
        },
        f"{base}/events": {
            "parameters": params,
            "get": {
                "summary": f"{mark}The event types, notify types and payload formats supported",
                "responses": {
                    "200": _json(_response(WEBHOOK_EVENT_TYPES)),
                    **_errors(400, 403, 404),
                },
            },
        },
    }


PATHS.update(
    _webhook_paths(
        "/projects/{project_name_or_id}/webhook",
        _PROJECT_PARAMS,
        "notification-policy in the project: members read, projectAdmin and maintainer change",
    )
)
PATHS.update(
    _webhook_paths("/system/webhook", [], "system robots' events, system admins", "tokenserver: ")
)

# NOTE: Harbor's swagger spells the list with a trailing slash (its generated clients send it);
# other clients (harborapi) leave it out. Both are served.
PATHS["/projects/{project_name_or_id}/metadatas/"] = PATHS[
    "/projects/{project_name_or_id}/metadatas"
]


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tokenserver management API (Harbor v2.0 compatible)",
            "version": __version__,
        },
        "servers": [{"url": "/api/v2.0"}],
        "components": {
            "schemas": _COMPONENTS.schemas,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"basic": []}, {}],
        "paths": PATHS,
    }
