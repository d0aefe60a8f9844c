"""Harbor v2.0-compatible management API: projects, members, users, robots, audit logs.

Handlers stay thin: read and check input, call one service, shape Harbor's JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tokenserver.domain.federation import DEFAULT_MAX_TOKEN_LIFETIME
from tokenserver.domain.harbor_json import (
    audit_ext_json,
    audit_json,
    federation_failure_json,
    federation_login_json,
    issuer_json,
    member_json,
    permission_json_item,
    permission_table_json,
    project_deletable_json,
    project_json,
    project_metadata_entry_json,
    project_metadata_json,
    project_summary_json,
    refresh_token_json,
    robot_export_json,
    robot_federation_json,
    robot_json,
    secret_json,
    user_json,
    user_search_json,
    webhook_event_types_json,
    webhook_execution_json,
    webhook_policy_json,
    webhook_task_json,
)
from tokenserver.domain.harbor_query import (
    AUDIT_EXT_KEYS,
    AUDIT_KEYS,
    PROJECT_KEYS,
    ROBOT_KEYS,
    USER_KEYS,
    robot_scope,
)
from tokenserver.domain.harbor_schema import (
    ISSUER_CREATE,
    MEMBER_CREATE,
    PASSWORD_CHANGE,
    PROJECT_CREATE,
    PROJECT_METADATA,
    PROJECT_UPDATE,
    ROBOT_CREATE,
    ROBOT_FEDERATION_UPDATE,
    ROBOT_UPDATE,
    ROLE_UPDATE,
    SECRET_REFRESH,
    USER_CREATE,
    USER_PROFILE,
    USER_SYSADMIN,
    WEBHOOK_POLICY_REQ,
)
from tokenserver.domain.models import AuditEntry
from tokenserver.domain.permissions import (
    Access,
    Effect,
    RequestedPermission,
)
from tokenserver.domain.project_metadata import check_metadata_key
from tokenserver.domain.query import Keys, Query, Term, exact, fuzzy
from tokenserver.errors import BadRequest, PreconditionFailed
from tokenserver.http.appkeys import CLIENT, RUNTIME
from tokenserver.http.callers import actor, authenticated
from tokenserver.http.input import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    int_param,
    json_object,
    page_of,
    paging_headers,
    path_id,
)
from tokenserver.http.openapi import document
from tokenserver.runtime import Runtime
from tokenserver.services.federation import IssuerSpec, RuleSpec
from tokenserver.services.robots import RobotSpec
from tokenserver.services.webhooks import PolicySpec, TargetSpec

API = "/api/v2.0"


def rt(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def is_name(request: web.Request) -> bool | None:
    """Harbor's `X-Is-Resource-Name: true` makes a numeric path segment a project name."""
    return True if request.headers.get("X-Is-Resource-Name", "").lower() == "true" else None


def _bool_text(value: str, where: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f'{where} must be "true" or "false"')


def created(location: str, body: Any = None) -> web.Response:
    if body is None:
        return web.Response(status=201, headers={"Location": location})
    return web.json_response(body, status=201, headers={"Location": location})


def ok() -> web.Response:
    return web.Response(status=200)


# ---- projects ------------------------------------------------------------------------------


def _project_public(body: dict[str, Any]) -> bool | None:
    """Whether a parsed project body makes the project public (None: it does not say)."""
    public: bool | None = body.get("public")
    metadata = body.get("metadata", {})
    if "public" in metadata:
        public = _bool_text(metadata["public"], "metadata.public")
    return public


async def create_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    body = PROJECT_CREATE.parse(await json_object(request))
    public = _project_public(body)
    project = await rt(request).projects.create(
        principal, body["project_name"], bool(public), body.get("metadata")
    )
    # NOTE: harborapi's create_project asks for the name (its callers read the Location back).
    if request.headers.get("X-Resource-Name-In-Location", "").lower() == "true":
        return created(f"{API}/projects/{project.name}")
    return created(f"{API}/projects/{project.id}")


async def head_project(request: web.Request) -> web.Response:
    await authenticated(request)
    name = request.query.get("project_name", "")
    if not name:
        raise BadRequest("query parameter 'project_name' is required")
    exists = await rt(request).projects.exists(name)
    return web.Response(status=200 if exists else 404)


def _list_query(request: web.Request, keys: Keys[Any], **also: Term | None) -> Query:
    """The request's `q` and `sort` for a list of `keys`, with the list's own parameters
    (`also`; None: not given), which replace `q`'s term under the same key, as in Harbor."""
    given = {key: term for key, term in also.items() if term is not None}
    return keys.query(request.query.get("q", ""), request.query.get("sort", ""), given)


def _param(request: web.Request, name: str, term: Callable[[str], Term]) -> Term | None:
    value = request.query.get(name, "")
    return term(value) if value else None


async def list_projects(request: web.Request) -> web.Response:
    principal = await actor(request)
    public = request.query.get("public")
    query = _list_query(
        request,
        PROJECT_KEYS,
        name=_param(request, "name", fuzzy),
        owner=_param(request, "owner", exact),
    )
    projects = await rt(request).projects.list(
        principal,
        public=None if public is None else _bool_text(public, "query parameter 'public'"),
        query=query,
    )
    page, headers = page_of(request, projects)
    service = rt(request).projects
    metadata = await service.metadata(page)
    body = [project_json(p, await service.role_of(principal, p), metadata.get(p.id)) for p in page]
    return web.json_response(body, headers=headers)


async def get_project(request: web.Request) -> web.Response:
    principal = await actor(request)
    service = rt(request).projects
    project = await service.get(principal, request.match_info["project"], is_name(request))
    metadata = (await service.metadata([project])).get(project.id)
    return web.json_response(
        project_json(project, await service.role_of(principal, project), metadata)
    )


async def update_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    body = PROJECT_UPDATE.parse(await json_object(request))
    await rt(request).projects.update(
        principal,
        request.match_info["project"],
        public=_project_public(body),
        metadata=body.get("metadata"),
        is_name=is_name(request),
    )
    return ok()


async def project_summary(request: web.Request) -> web.Response:
    principal = await actor(request)
    members = await rt(request).projects.summary(
        principal, request.match_info["project"], is_name(request)
    )
    return web.json_response(project_summary_json(members))


async def project_deletable(request: web.Request) -> web.Response:
    principal = await actor(request)
    reason = await rt(request).projects.deletable(
        principal, request.match_info["project"], is_name(request)
    )
    return web.json_response(project_deletable_json(reason))


async def delete_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).projects.delete(principal, request.match_info["project"], is_name(request))
    return ok()


async def list_project_metadata(request: web.Request) -> web.Response:
    principal = await actor(request)
    project, metadata = await rt(request).projects.metadata_of(
        principal, request.match_info["project"], is_name(request)
    )
    return web.json_response(project_metadata_json(project, metadata))


async def add_project_metadata(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    body = PROJECT_METADATA.parse(await json_object(request))
    await rt(request).projects.add_metadata(
        principal, request.match_info["project"], body, is_name(request)
    )
    return ok()


async def get_project_metadata(request: web.Request) -> web.Response:
    principal = await actor(request)
    key = request.match_info["meta_name"]
    project, metadata = await rt(request).projects.metadata_of(
        principal, request.match_info["project"], is_name(request), one=True
    )
    return web.json_response(project_metadata_entry_json(project, metadata, key))


async def update_project_metadata(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    check_metadata_key(request.match_info["meta_name"])  # before the body names another
    body = PROJECT_METADATA.parse(await json_object(request))
    await rt(request).projects.update_metadata(
        principal,
        request.match_info["project"],
        request.match_info["meta_name"],
        body,
        is_name(request),
    )
    return ok()


async def delete_project_metadata(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).projects.delete_metadata(
        principal, request.match_info["project"], request.match_info["meta_name"], is_name(request)
    )
    return ok()


# ---- members -------------------------------------------------------------------------------


async def list_members(request: web.Request) -> web.Response:
    principal = await actor(request)
    members = await rt(request).members.list(
        principal,
        request.match_info["project"],
        request.query.get("entityname", ""),
        is_name(request),
    )
    page, headers = page_of(request, members)
    return web.json_response([member_json(m) for m in page], headers=headers)


async def add_member(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = MEMBER_CREATE.parse(await json_object(request))
    user = data.get("member_user", {})
    ref = request.match_info["project"]
    member = await rt(request).members.add(
        principal,
        ref,
        data["role_id"],
        username=user.get("username"),
        user_id=user.get("user_id"),
        is_name=is_name(request),
    )
    return created(f"{API}/projects/{ref}/members/{member.id}")


async def get_member(request: web.Request) -> web.Response:
    principal = await actor(request)
    member = await rt(request).members.get(
        principal, request.match_info["project"], path_id(request, "mid"), is_name(request)
    )
    return web.json_response(member_json(member))


async def update_member(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = ROLE_UPDATE.parse(await json_object(request))
    await rt(request).members.update(
        principal,
        request.match_info["project"],
        path_id(request, "mid"),
        data["role_id"],
        is_name(request),
    )
    return ok()


async def delete_member(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).members.delete(
        principal, request.match_info["project"], path_id(request, "mid"), is_name(request)
    )
    return ok()


# ---- users ---------------------------------------------------------------------------------


async def list_users(request: web.Request) -> web.Response:
    principal = await actor(request)
    query = _list_query(
        request,
        USER_KEYS,
        username=_param(request, "username", fuzzy),
        email=_param(request, "email", fuzzy),
    )
    users = await rt(request).users.list(principal, query=query)
    page, headers = page_of(request, users)
    return web.json_response([user_json(u) for u in page], headers=headers)


async def create_user(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = USER_CREATE.parse(await json_object(request))
    user = await rt(request).users.create(
        principal,
        data["username"],
        data["password"],
        email=data.get("email", ""),
        realname=data.get("realname", ""),
        comment=data.get("comment", ""),
    )
    return created(f"{API}/users/{user.id}")


async def current_user(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    if principal.user is None:
        # NOTE: Harbor answers 412 for robots here; they are not users.
        raise PreconditionFailed("only users have a current user; this is a robot")
    return web.json_response(user_json(principal.user))


async def get_user(request: web.Request) -> web.Response:
    principal = await actor(request)
    user = await rt(request).users.get(principal, path_id(request, "user_id"))
    return web.json_response(user_json(user))


async def search_users(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    username = request.query.get("username", "")
    if not username:
        raise BadRequest("query parameter 'username' is required")
    users = await rt(request).users.search(principal, username)
    page, headers = page_of(request, users)
    return web.json_response([user_search_json(u) for u in page], headers=headers)


async def current_permissions(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    relative = request.query.get("relative")
    listed = await rt(request).access.permissions_in(
        principal,
        request.query.get("scope", ""),
        relative is not None and _bool_text(relative, "query parameter 'relative'"),
    )
    return web.json_response([permission_json_item(r, a) for r, a in listed])


async def update_user_profile(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = USER_PROFILE.parse(await json_object(request))
    await rt(request).users.update_profile(
        principal,
        path_id(request, "user_id"),
        email=data.get("email", ""),
        realname=data.get("realname", ""),
        comment=data.get("comment", ""),
    )
    return ok()


async def set_user_sysadmin(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = USER_SYSADMIN.parse(await json_object(request))
    await rt(request).users.set_sysadmin(
        principal, path_id(request, "user_id"), data["sysadmin_flag"]
    )
    return ok()


async def delete_user(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).users.delete(principal, path_id(request, "user_id"))
    return ok()


async def change_password(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = PASSWORD_CHANGE.parse(await json_object(request))
    await rt(request).users.change_password(
        principal,
        path_id(request, "user_id"),
        data.get("old_password"),
        data["new_password"],
        request[CLIENT],
    )
    return ok()


async def set_cli_secret(request: web.Request) -> web.Response:
    await authenticated(request)
    # NOTE: Harbor's answer when it does not log in through OIDC: a CLI secret is an OIDC
    # user's password for the registry, and tokenserver has no OIDC login.
    raise PreconditionFailed("unable to update CLI secret under authmode: db_auth")


# ---- robots --------------------------------------------------------------------------------


def _permission(entry: dict[str, Any]) -> RequestedPermission:
    access = tuple(
        Access(a["resource"], a["action"], a.get("effect", Effect.ALLOW)) for a in entry["access"]
    )
    repositories = entry.get("repositories")
    return RequestedPermission(
        entry["namespace"],
        access,
        entry["kind"],
        None if repositories is None else tuple(repositories),
    )


def _robot_spec(body: dict[str, Any]) -> RobotSpec:
    """A parsed robot body (ROBOT_CREATE or ROBOT_UPDATE) as the service takes it."""
    return RobotSpec(
        name=body["name"],
        level=body["level"],
        permissions=tuple(_permission(p) for p in body["permissions"]),
        duration=body.get("duration"),
        description=body.get("description", ""),
        disable=body.get("disable", False),
        secret=body.get("secret"),
        secret_login=body.get("secret_login"),
        token_lifetime=body.get("token_lifetime"),
    )


async def list_robots(request: web.Request) -> web.Response:
    principal = await actor(request)
    project_id, query = robot_scope(_list_query(request, ROBOT_KEYS))
    robots = await rt(request).robots.list(
        principal, None if project_id is None else str(project_id), query=query
    )
    page, headers = page_of(request, robots)
    service = rt(request).robots
    return web.json_response(
        [robot_json(r, service.prefix, service.lifetimes, now=service.now()) for r in page],
        headers=headers,
    )


async def create_robot(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _robot_spec(ROBOT_CREATE.parse(await json_object(request)))
    robot, secret = await rt(request).robots.create(principal, spec)
    prefix = rt(request).settings.robots.name_prefix
    return created(f"{API}/robots/{robot.id}", robot_export_json(robot, prefix, secret))


async def get_robot(request: web.Request) -> web.Response:
    principal = await actor(request)
    robots = rt(request).robots
    robot = await robots.get(principal, str(path_id(request, "robot_id")))
    return web.json_response(robot_json(robot, robots.prefix, robots.lifetimes, now=robots.now()))


async def update_robot(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _robot_spec(ROBOT_UPDATE.parse(await json_object(request)))
    await rt(request).robots.update(principal, str(path_id(request, "robot_id")), spec)
    return ok()


async def refresh_robot_secret(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = SECRET_REFRESH.parse(await json_object(request))
    robots = rt(request).robots
    robot_id = str(path_id(request, "robot_id"))
    keep_previous = data.get("keep_previous_for", 0)
    secret = await robots.refresh_secret(
        principal,
        robot_id,
        # NOTE: Harbor makes a secret for an empty one, which harborapi's
        # refresh_robot_secret sends to ask for that.
        data.get("secret") or None,
        restart_expiry=data.get("restart_expiry", False),
        keep_previous=keep_previous,
    )
    previous_until = None
    if keep_previous:
        refreshed = await robots.resolve(robot_id)
        previous_until = refreshed.previous_secret_until(robots.now())
    return web.json_response(secret_json(secret, previous_until))


async def revoke_previous_secret(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).robots.revoke_previous_secret(principal, str(path_id(request, "robot_id")))
    return ok()


async def delete_robot(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).robots.delete(principal, str(path_id(request, "robot_id")))
    return ok()


async def list_refresh_tokens(request: web.Request) -> web.Response:
    principal = await actor(request)
    tokens = await rt(request).refresh.list(principal, str(path_id(request, "robot_id")))
    return web.json_response([refresh_token_json(t) for t in tokens])


async def revoke_refresh_tokens(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    token_id = path_id(request, "token_id") if "token_id" in request.match_info else None
    await rt(request).refresh.revoke(principal, str(path_id(request, "robot_id")), token_id)
    return ok()


# ---- robot federation ----------------------------------------------------------------------


async def list_issuers(request: web.Request) -> web.Response:
    principal = await actor(request)
    issuers = await rt(request).federation.list_issuers(principal)
    return web.json_response([issuer_json(i) for i in issuers])


async def add_issuer(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    body = ISSUER_CREATE.parse(await json_object(request))
    issuer = await rt(request).federation.add_issuer(
        principal,
        IssuerSpec(
            name=body["name"],
            url=body["url"],
            audiences=tuple(body["audiences"]),
            jwks_file=body.get("jwks_file"),
            ca_file=body.get("ca_file"),
            max_token_lifetime=body.get("max_token_lifetime", DEFAULT_MAX_TOKEN_LIFETIME),
        ),
    )
    return created(f"{API}/federation/issuers/{issuer.name}", issuer_json(issuer))


async def get_issuer(request: web.Request) -> web.Response:
    principal = await actor(request)
    issuer = await rt(request).federation.get_issuer(principal, request.match_info["name"])
    return web.json_response(issuer_json(issuer))


async def remove_issuer(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).federation.remove_issuer(principal, request.match_info["name"])
    return ok()


async def get_robot_federation(request: web.Request) -> web.Response:
    principal = await actor(request)
    found = await rt(request).federation.rules(principal, str(path_id(request, "robot_id")))
    return web.json_response(
        robot_federation_json(found.rules, found.warnings, found.temporary_secrets)
    )


async def put_robot_federation(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    body = ROBOT_FEDERATION_UPDATE.parse(await json_object(request))
    specs = [RuleSpec(rule["issuer"], rule["claims"]) for rule in body["rules"]]
    found = await rt(request).federation.replace_rules(
        principal, str(path_id(request, "robot_id")), specs
    )
    return web.json_response(
        robot_federation_json(found.rules, found.warnings, found.temporary_secrets)
    )


async def list_federation_logins(request: web.Request) -> web.Response:
    principal = await actor(request)
    _, logins = await rt(request).federation.logins(principal, str(path_id(request, "robot_id")))
    return web.json_response([federation_login_json(login) for login in logins])


async def list_federation_failures(request: web.Request) -> web.Response:
    principal = await actor(request)
    _, failures = await rt(request).federation.failures(
        principal, str(path_id(request, "robot_id"))
    )
    return web.json_response([federation_failure_json(f) for f in failures])


# ---- webhook policies ----------------------------------------------------------------------
# A project's (`/projects/{project_name_or_id}/webhook/...`, Harbor's), or the system's for
# system robots (`/system/webhook/...`, system admins).


def _webhook_project(request: web.Request) -> str | None:
    return request.match_info.get("project")


def _policy_spec(body: dict[str, Any]) -> PolicySpec:
    return PolicySpec(
        name=body["name"],
        description=body.get("description", ""),
        targets=tuple(
            TargetSpec(
                address=t["address"],
                auth_header=t.get("auth_header", ""),
                skip_cert_verify=t.get("skip_cert_verify", False),
                type=t.get("type", "http"),
                payload_format=t.get("payload_format", ""),
            )
            for t in body["targets"]
        ),
        event_types=tuple(body["event_types"]),
        enabled=body.get("enabled", True),
    )


async def list_webhook_policies(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    policies = await rt(request).webhooks.policies(
        principal, _webhook_project(request), is_name(request)
    )
    page, headers = page_of(request, policies)
    return web.json_response([webhook_policy_json(p) for p in page], headers=headers)


async def create_webhook_policy(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _policy_spec(WEBHOOK_POLICY_REQ.parse(await json_object(request)))
    policy = await rt(request).webhooks.create(
        principal, _webhook_project(request), spec, is_name(request)
    )
    return created(f"{request.path.rstrip('/')}/{policy.id}")


async def get_webhook_policy(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    policy = await rt(request).webhooks.get(
        principal,
        _webhook_project(request),
        path_id(request, "webhook_policy_id"),
        is_name(request),
    )
    return web.json_response(webhook_policy_json(policy))


async def update_webhook_policy(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _policy_spec(WEBHOOK_POLICY_REQ.parse(await json_object(request)))
    await rt(request).webhooks.update(
        principal,
        _webhook_project(request),
        path_id(request, "webhook_policy_id"),
        spec,
        is_name(request),
    )
    return ok()


async def delete_webhook_policy(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).webhooks.delete(
        principal,
        _webhook_project(request),
        path_id(request, "webhook_policy_id"),
        is_name(request),
    )
    return ok()


async def list_webhook_executions(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    deliveries, total = await rt(request).webhooks.deliveries(
        principal,
        _webhook_project(request),
        path_id(request, "webhook_policy_id"),
        (page - 1) * size,
        size,
        is_name(request),
    )
    return web.json_response(
        [webhook_execution_json(d) for d in deliveries],
        headers=paging_headers(request, page, size, total),
    )


async def list_webhook_tasks(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    delivery = await rt(request).webhooks.delivery(
        principal,
        _webhook_project(request),
        path_id(request, "webhook_policy_id"),
        path_id(request, "execution_id"),
        is_name(request),
    )
    page, headers = page_of(request, [delivery])
    return web.json_response([webhook_task_json(d) for d in page], headers=headers)


async def webhook_event_types(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).webhooks.policies(principal, _webhook_project(request), is_name(request))
    return web.json_response(webhook_event_types_json())


# ---- audit log -----------------------------------------------------------------------------


async def _audit_page(
    request: web.Request, keys: Keys[Any], shape: Callable[[AuditEntry], dict[str, Any]]
) -> web.Response:
    """A page of the audit log as Harbor's audit lists answer: the whole log's entries the
    caller may read, or with `{project_name}` in the path, that project's."""
    principal = await authenticated(request)
    query = _list_query(request, keys)
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    audit = rt(request).audit
    project = request.match_info.get("project_name")
    if project is None:
        entries, total = await audit.list(principal, (page - 1) * size, size, query)
    else:
        entries, total = await audit.list_project(
            principal, project, (page - 1) * size, size, query
        )
    return web.json_response(
        [shape(e) for e in entries], headers=paging_headers(request, page, size, total)
    )


async def list_audit_logs(request: web.Request) -> web.Response:
    return await _audit_page(request, AUDIT_KEYS, audit_json)


async def list_audit_log_exts(request: web.Request) -> web.Response:
    return await _audit_page(request, AUDIT_EXT_KEYS, audit_ext_json)


_OPENAPI = document()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_OPENAPI)


async def list_permissions(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    kinds = rt(request).robots.grantable_kinds(principal)
    return web.json_response(permission_table_json(kinds))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/openapi.json", openapi, allow_head=False)
    r.add_post(f"{API}/projects", create_project)
    r.add_get(f"{API}/projects", list_projects, allow_head=False)
    r.add_route("HEAD", f"{API}/projects", head_project)
    r.add_get(f"{API}/projects/{{project}}", get_project, allow_head=False)
    r.add_put(f"{API}/projects/{{project}}", update_project)
    r.add_delete(f"{API}/projects/{{project}}", delete_project)
    r.add_get(f"{API}/projects/{{project}}/summary", project_summary, allow_head=False)
    r.add_get(f"{API}/projects/{{project}}/_deletable", project_deletable, allow_head=False)
    # NOTE: with and without the trailing slash (see the document).
    for metadatas in (
        f"{API}/projects/{{project}}/metadatas",
        f"{API}/projects/{{project}}/metadatas/",
    ):
        r.add_get(metadatas, list_project_metadata, allow_head=False)
        r.add_post(metadatas, add_project_metadata)
    entry = f"{API}/projects/{{project}}/metadatas/{{meta_name}}"
    r.add_get(entry, get_project_metadata, allow_head=False)
    r.add_put(entry, update_project_metadata)
    r.add_delete(entry, delete_project_metadata)
    r.add_get(f"{API}/projects/{{project}}/members", list_members, allow_head=False)
    r.add_post(f"{API}/projects/{{project}}/members", add_member)
    r.add_get(f"{API}/projects/{{project}}/members/{{mid}}", get_member, allow_head=False)
    r.add_put(f"{API}/projects/{{project}}/members/{{mid}}", update_member)
    r.add_delete(f"{API}/projects/{{project}}/members/{{mid}}", delete_member)
    r.add_get(f"{API}/users", list_users, allow_head=False)
    r.add_post(f"{API}/users", create_user)
    # NOTE: the fixed paths before `/users/{user_id}`, which would take them as ids.
    r.add_get(f"{API}/users/current", current_user, allow_head=False)
    r.add_get(f"{API}/users/current/permissions", current_permissions, allow_head=False)
    r.add_get(f"{API}/users/search", search_users, allow_head=False)
    r.add_get(f"{API}/permissions", list_permissions, allow_head=False)
    r.add_get(f"{API}/users/{{user_id}}", get_user, allow_head=False)
    r.add_put(f"{API}/users/{{user_id}}", update_user_profile)
    r.add_delete(f"{API}/users/{{user_id}}", delete_user)
    r.add_put(f"{API}/users/{{user_id}}/password", change_password)
    r.add_put(f"{API}/users/{{user_id}}/sysadmin", set_user_sysadmin)
    r.add_put(f"{API}/users/{{user_id}}/cli_secret", set_cli_secret)
    r.add_get(f"{API}/robots", list_robots, allow_head=False)
    r.add_post(f"{API}/robots", create_robot)
    r.add_get(f"{API}/robots/{{robot_id}}", get_robot, allow_head=False)
    r.add_put(f"{API}/robots/{{robot_id}}", update_robot)
    r.add_patch(f"{API}/robots/{{robot_id}}", refresh_robot_secret)
    r.add_delete(f"{API}/robots/{{robot_id}}", delete_robot)
    r.add_delete(f"{API}/robots/{{robot_id}}/previous-secret", revoke_previous_secret)
    r.add_get(f"{API}/robots/{{robot_id}}/refresh-tokens", list_refresh_tokens, allow_head=False)
    r.add_delete(f"{API}/robots/{{robot_id}}/refresh-tokens", revoke_refresh_tokens)
    r.add_delete(f"{API}/robots/{{robot_id}}/refresh-tokens/{{token_id}}", revoke_refresh_tokens)
    r.add_get(f"{API}/robots/{{robot_id}}/federation", get_robot_federation, allow_head=False)
    r.add_put(f"{API}/robots/{{robot_id}}/federation", put_robot_federation)
    r.add_get(
        f"{API}/robots/{{robot_id}}/federation/logins", list_federation_logins, allow_head=False
    )
    r.add_get(
        f"{API}/robots/{{robot_id}}/federation/failures",
        list_federation_failures,
        allow_head=False,
    )
    r.add_get(f"{API}/federation/issuers", list_issuers, allow_head=False)
    r.add_post(f"{API}/federation/issuers", add_issuer)
    r.add_get(f"{API}/federation/issuers/{{name}}", get_issuer, allow_head=False)
    r.add_delete(f"{API}/federation/issuers/{{name}}", remove_issuer)
    for base in (f"{API}/projects/{{project}}/webhook", f"{API}/system/webhook"):
        policies = f"{base}/policies"
        r.add_get(policies, list_webhook_policies, allow_head=False)
        r.add_post(policies, create_webhook_policy)
        policy = f"{policies}/{{webhook_policy_id}}"
        r.add_get(policy, get_webhook_policy, allow_head=False)
        r.add_put(policy, update_webhook_policy)
        r.add_delete(policy, delete_webhook_policy)
        r.add_get(f"{policy}/executions", list_webhook_executions, allow_head=False)
        r.add_get(
            f"{policy}/executions/{{execution_id}}/tasks", list_webhook_tasks, allow_head=False
        )
        r.add_get(f"{base}/events", webhook_event_types, allow_head=False)
    r.add_get(f"{API}/audit-logs", list_audit_logs, allow_head=False)
    r.add_get(f"{API}/auditlog-exts", list_audit_log_exts, allow_head=False)
    r.add_get(f"{API}/projects/{{project_name}}/logs", list_audit_logs, allow_head=False)
    r.add_get(
        f"{API}/projects/{{project_name}}/auditlog-exts", list_audit_log_exts, allow_head=False
    )
