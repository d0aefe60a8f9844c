"""Harbor v2.0-compatible management API: projects, members, users, robots, audit logs.

Handlers stay thin: read and check input, call one service, shape Harbor's JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tokenserver.domain.harbor_json import (
    PROJECT_METADATA_KEYS,
    audit_json,
    member_json,
    project_json,
    refresh_token_json,
    robot_export_json,
    robot_json,
    user_json,
)
from tokenserver.domain.models import Level, Robot
from tokenserver.domain.permissions import (
    PROJECT_PERMISSIONS,
    SYSTEM_PERMISSIONS,
    Access,
    Effect,
    RequestedPermission,
)
from tokenserver.domain.roles import Role
from tokenserver.errors import BadRequest, PreconditionFailed
from tokenserver.http.appkeys import CLIENT, RUNTIME
from tokenserver.http.callers import actor, authenticated
from tokenserver.http.input import (
    fields,
    int_param,
    json_object,
    page_of,
    paging_headers,
    path_id,
)
from tokenserver.http.openapi import document
from tokenserver.runtime import Runtime
from tokenserver.services.robots import RobotSpec

API = "/api/v2.0"

_PROJECT_IGNORED = ("storage_limit", "registry_id", "cve_allowlist")
_ROBOT_READ_ONLY = (
    "id",
    "editable",
    "expires_at",
    "creation_time",
    "update_time",
    "secret",
    "last_used_at",
    "legacy",
)


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


def _project_public(data: dict[str, Any]) -> bool | None:
    body = fields(
        data,
        "project",
        {"project_name": str, "public": bool, "metadata": dict},
        ignored=_PROJECT_IGNORED,
    )
    public: bool | None = body.get("public")
    if "metadata" in body:
        metadata = fields(body["metadata"], "metadata", {k: str for k in PROJECT_METADATA_KEYS})
        if "public" in metadata:
            public = _bool_text(metadata["public"], "metadata.public")
    return public


async def create_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = await json_object(request)
    public = _project_public(data)
    if not isinstance(data.get("project_name"), str):
        raise BadRequest("project: missing field 'project_name'")
    project = await rt(request).projects.create(principal, data["project_name"], bool(public))
    return created(f"{API}/projects/{project.id}")


async def head_project(request: web.Request) -> web.Response:
    await authenticated(request)
    name = request.query.get("project_name", "")
    if not name:
        raise BadRequest("query parameter 'project_name' is required")
    exists = await rt(request).projects.exists(name)
    return web.Response(status=200 if exists else 404)


async def list_projects(request: web.Request) -> web.Response:
    principal = await actor(request)
    public = request.query.get("public")
    projects = await rt(request).projects.list(
        principal,
        request.query.get("name", ""),
        None if public is None else _bool_text(public, "query parameter 'public'"),
    )
    page, headers = page_of(request, projects)
    service = rt(request).projects
    body = [project_json(p, await service.role_of(principal, p)) for p in page]
    return web.json_response(body, headers=headers)


async def get_project(request: web.Request) -> web.Response:
    principal = await actor(request)
    service = rt(request).projects
    project = await service.get(principal, request.match_info["project"], is_name(request))
    return web.json_response(project_json(project, await service.role_of(principal, project)))


async def update_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    public = _project_public(await json_object(request))
    service = rt(request).projects
    ref = request.match_info["project"]
    if public is None:
        await service.get(principal, ref, is_name(request))  # nothing to change; still 404/403
    else:
        await service.set_public(principal, ref, public, is_name(request))
    return ok()


async def delete_project(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    await rt(request).projects.delete(principal, request.match_info["project"], is_name(request))
    return ok()


# ---- members -------------------------------------------------------------------------------


def _role(value: Any) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadRequest(f"role_id must be one of {[int(r) for r in Role]}") from None


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
    data = fields(
        await json_object(request),
        "member",
        {"role_id": int, "member_user": dict, "member_group": dict},
        required=["role_id"],
    )
    if "member_group" in data:
        raise BadRequest("member: groups are not supported; use member_user")
    user = fields(data.get("member_user", {}), "member_user", {"user_id": int, "username": str})
    ref = request.match_info["project"]
    member = await rt(request).members.add(
        principal,
        ref,
        _role(data["role_id"]),
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
    data = fields(await json_object(request), "role", {"role_id": int}, required=["role_id"])
    await rt(request).members.update(
        principal,
        request.match_info["project"],
        path_id(request, "mid"),
        _role(data["role_id"]),
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
    users = await rt(request).users.list(principal, request.query.get("username", ""))
    page, headers = page_of(request, users)
    return web.json_response([user_json(u) for u in page], headers=headers)


async def create_user(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = fields(
        await json_object(request),
        "user",
        {"username": str, "password": str, "email": str, "realname": str, "comment": str},
        required=["username", "password"],
    )
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


async def change_password(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = fields(
        await json_object(request),
        "password",
        {"old_password": str, "new_password": str},
        required=["new_password"],
    )
    await rt(request).users.change_password(
        principal,
        path_id(request, "user_id"),
        data.get("old_password"),
        data["new_password"],
        request[CLIENT],
    )
    return ok()


# ---- robots --------------------------------------------------------------------------------


def _permissions(value: Any) -> tuple[RequestedPermission, ...]:
    if not isinstance(value, list):
        raise BadRequest("robot: 'permissions' must be an array")
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise BadRequest("robot: each permission must be an object")
        entry = fields(
            item,
            "permission",
            {"kind": str, "namespace": str, "access": list},
            required=["kind", "namespace", "access"],
        )
        access = []
        for raw in entry["access"]:
            if not isinstance(raw, dict):
                raise BadRequest("permission: each access must be an object")
            a = fields(
                raw,
                "access",
                {"resource": str, "action": str, "effect": str},
                required=["resource", "action"],
            )
            effect = a.get("effect", "allow")
            if effect not in ("allow", "deny"):
                raise BadRequest('access: \'effect\' must be "allow" or "deny"')
            access.append(Access(a["resource"], a["action"], Effect(effect)))
        result.append(RequestedPermission(entry["namespace"], tuple(access), entry["kind"]))
    return tuple(result)


def _level(value: Any) -> Level:
    try:
        return Level(value)
    except ValueError:
        raise BadRequest('robot: \'level\' must be "project" or "system"') from None


def _robot_spec(data: dict[str, Any], *, for_update: bool) -> RobotSpec:
    body = fields(
        data,
        "robot",
        {
            "name": str,
            "description": str,
            "level": str,
            "disable": bool,
            "duration": int,
            "permissions": list,
            **({} if for_update else {"secret": str}),
        },
        required=["name", "level", "duration", "permissions"],
        ignored=_ROBOT_READ_ONLY if for_update else (),
    )
    return RobotSpec(
        name=body["name"],
        level=_level(body["level"]),
        permissions=_permissions(body["permissions"]),
        duration=body["duration"],
        description=body.get("description", ""),
        disable=body.get("disable", False),
        secret=body.get("secret"),
    )


_SORT_KEYS: dict[str, Callable[[Robot], Any]] = {
    "id": lambda r: r.id,
    "name": lambda r: r.name,
    "creation_time": lambda r: r.creation_time,
    "update_time": lambda r: r.update_time,
    "expires_at": lambda r: r.expires_at,
    "duration": lambda r: r.duration,
}


def _sorted(robots: list[Robot], sort: str) -> list[Robot]:
    """Harbor's `sort=field[,-field...]`; a leading `-` sorts descending."""
    result = list(robots)
    for spec in reversed([s.strip() for s in sort.split(",") if s.strip()]):
        key = _SORT_KEYS.get(spec.lstrip("-"))
        if key is None:
            raise BadRequest(f"cannot sort by {spec!r}; use one of {', '.join(_SORT_KEYS)}")
        result.sort(key=key, reverse=spec.startswith("-"))
    return result


def _robot_query(q: str) -> tuple[int | None, str, bool]:
    """Harbor's `q=Level=project,ProjectID=N,name=~x`: the project id (None for system
    robots, the default), the name and whether it is fuzzy."""
    terms: dict[str, str] = {}
    for part in q.split(",") if q else []:
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in ("Level", "ProjectID", "name"):
            raise BadRequest(
                f"unsupported query term {part!r}: use Level=, ProjectID= and name=[~]"
            )
        terms[key.strip()] = value.strip()
    level = _level(terms.get("Level", "system"))
    project_id = None
    if level is Level.PROJECT:
        text = terms.get("ProjectID", "")
        if not (text.isascii() and text.isdigit()):
            raise BadRequest("q=Level=project needs ProjectID=<project id>")
        project_id = int(text)
    name = terms.get("name", "")
    return project_id, name.removeprefix("~"), name.startswith("~")


async def list_robots(request: web.Request) -> web.Response:
    principal = await actor(request)
    project_id, name, fuzzy = _robot_query(request.query.get("q", ""))
    robots = await rt(request).robots.list(
        principal, None if project_id is None else str(project_id), name
    )
    if not fuzzy and name:
        robots = [r for r in robots if r.name == name]
    robots = _sorted(robots, request.query.get("sort", ""))
    page, headers = page_of(request, robots)
    prefix = rt(request).settings.name_prefix
    return web.json_response([robot_json(r, prefix) for r in page], headers=headers)


async def create_robot(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _robot_spec(await json_object(request), for_update=False)
    robot, secret = await rt(request).robots.create(principal, spec)
    prefix = rt(request).settings.name_prefix
    return created(f"{API}/robots/{robot.id}", robot_export_json(robot, prefix, secret))


async def get_robot(request: web.Request) -> web.Response:
    principal = await actor(request)
    robot = await rt(request).robots.get(principal, str(path_id(request, "robot_id")))
    return web.json_response(robot_json(robot, rt(request).settings.name_prefix))


async def update_robot(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    spec = _robot_spec(await json_object(request), for_update=True)
    await rt(request).robots.update(principal, str(path_id(request, "robot_id")), spec)
    return ok()


async def refresh_robot_secret(request: web.Request) -> web.Response:
    principal = await authenticated(request)
    data = fields(
        await json_object(request), "robot secret", {"secret": str, "restart_expiry": bool}
    )
    secret = await rt(request).robots.refresh_secret(
        principal,
        str(path_id(request, "robot_id")),
        data.get("secret"),
        restart_expiry=data.get("restart_expiry", False),
    )
    return web.json_response({"secret": secret.reveal() if secret else ""})


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


# ---- audit log -----------------------------------------------------------------------------


async def list_audit_logs(request: web.Request) -> web.Response:
    principal = await actor(request)
    page = int_param(request, "page", 1, 1, 1_000_000)
    size = int_param(request, "page_size", 10, 1, 100)
    entries, total = await rt(request).audit.list(principal, (page - 1) * size, size)
    return web.json_response(
        [audit_json(e) for e in entries], headers=paging_headers(request, page, size, total)
    )


_OPENAPI = document()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(_OPENAPI)


async def list_permissions(request: web.Request) -> web.Response:
    await authenticated(request)
    return web.json_response(
        {
            kind: [{"resource": r, "action": a} for r, a in sorted(table)]
            for kind, table in (("system", SYSTEM_PERMISSIONS), ("project", PROJECT_PERMISSIONS))
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/openapi.json", openapi, allow_head=False)
    r.add_post(f"{API}/projects", create_project)
    r.add_get(f"{API}/projects", list_projects, allow_head=False)
    r.add_route("HEAD", f"{API}/projects", head_project)
    r.add_get(f"{API}/projects/{{project}}", get_project, allow_head=False)
    r.add_put(f"{API}/projects/{{project}}", update_project)
    r.add_delete(f"{API}/projects/{{project}}", delete_project)
    r.add_get(f"{API}/projects/{{project}}/members", list_members, allow_head=False)
    r.add_post(f"{API}/projects/{{project}}/members", add_member)
    r.add_get(f"{API}/projects/{{project}}/members/{{mid}}", get_member, allow_head=False)
    r.add_put(f"{API}/projects/{{project}}/members/{{mid}}", update_member)
    r.add_delete(f"{API}/projects/{{project}}/members/{{mid}}", delete_member)
    r.add_get(f"{API}/users", list_users, allow_head=False)
    r.add_post(f"{API}/users", create_user)
    r.add_get(f"{API}/users/current", current_user, allow_head=False)
    r.add_get(f"{API}/permissions", list_permissions, allow_head=False)
    r.add_get(f"{API}/users/{{user_id}}", get_user, allow_head=False)
    r.add_put(f"{API}/users/{{user_id}}/password", change_password)
    r.add_get(f"{API}/robots", list_robots, allow_head=False)
    r.add_post(f"{API}/robots", create_robot)
    r.add_get(f"{API}/robots/{{robot_id}}", get_robot, allow_head=False)
    r.add_put(f"{API}/robots/{{robot_id}}", update_robot)
    r.add_patch(f"{API}/robots/{{robot_id}}", refresh_robot_secret)
    r.add_delete(f"{API}/robots/{{robot_id}}", delete_robot)
    r.add_get(f"{API}/robots/{{robot_id}}/refresh-tokens", list_refresh_tokens, allow_head=False)
    r.add_delete(f"{API}/robots/{{robot_id}}/refresh-tokens", revoke_refresh_tokens)
    r.add_delete(f"{API}/robots/{{robot_id}}/refresh-tokens/{{token_id}}", revoke_refresh_tokens)
    r.add_get(f"{API}/audit-logs", list_audit_logs, allow_head=False)
