"""The Harbor v2.0-compatible management API: every endpoint, role and error."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, basic
from tests.http.openapi_check import check_response
from tokenserver.domain.harbor_json import iso_time
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
TOKEN = "/service/token"


@pytest.fixture
async def api(server: Server) -> Api:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    return Api(server)


class Api:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = server.client
        self.admin = basic("admin", ADMIN_PASSWORD)

    async def call(
        self,
        method: str,
        path: str,
        auth: dict[str, str] | None = None,
        body: Any = None,
        **kwargs: Any,
    ) -> ClientResponse:
        headers = dict(auth or {})
        headers.update(kwargs.pop("headers", {}))
        data = None if body is None else json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        response = await self.client.request(
            method, API + path, headers=headers, data=data, **kwargs
        )
        # Every response the tests see must match the served OpenAPI document.
        check_response(method, API + path, response.status, response.headers, await response.read())
        return response

    async def user(self, username: str, password: str = "Us3rPassword") -> dict[str, str]:
        r = await self.call(
            "POST", "/users", self.admin, {"username": username, "password": password}
        )
        assert r.status == 201, await r.text()
        return basic(username, password)

    async def project(self, name: str, public: bool = False, auth: Any = None) -> int:
        r = await self.call(
            "POST",
            "/projects",
            auth or self.admin,
            {"project_name": name, "metadata": {"public": str(public).lower()}},
        )
        assert r.status == 201, await r.text()
        return int(r.headers["Location"].rsplit("/", 1)[1])

    async def member(self, project: str, username: str, role: int) -> None:
        r = await self.call(
            "POST",
            f"/projects/{project}/members",
            self.admin,
            {"role_id": role, "member_user": {"username": username}},
        )
        assert r.status == 201, await r.text()

    async def robot(self, body: dict[str, Any], auth: Any = None) -> dict[str, Any]:
        r = await self.call("POST", "/robots", auth or self.admin, body)
        assert r.status == 201, await r.text()
        result: dict[str, Any] = await r.json()
        return result

    async def token_access(self, auth: dict[str, str], *scopes: str) -> list[Any]:
        r = await self.client.get(TOKEN, params=[("scope", s) for s in scopes], headers=auth)
        assert r.status == 200, await r.text()
        token = (await r.json())["token"]
        access: list[Any] = jwt.decode(token, options={"verify_signature": False})["access"]
        return access


def project_robot(project: str, name: str, *access: str, duration: int = -1) -> dict[str, Any]:
    return {
        "name": name,
        "level": "project",
        "duration": duration,
        "description": f"{name} robot",
        "permissions": [
            {
                "kind": "project",
                "namespace": project,
                "access": [
                    {"resource": a.split(":")[0], "action": a.split(":")[1]} for a in access
                ],
            }
        ],
    }


async def error(response: ClientResponse, status: int, code: str) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    (entry,) = body["errors"]
    assert entry["code"] == code
    message: str = entry["message"]
    return message


def creds(export: dict[str, Any]) -> dict[str, str]:
    return basic(export["name"], export["secret"])


# ---- authentication ------------------------------------------------------------------------


async def test_bad_credentials_are_401_and_none_are_anonymous(api: Api) -> None:
    r = await api.call("GET", "/users", basic("admin", "wrong"))
    await error(r, 401, "UNAUTHORIZED")
    await error(await api.call("GET", "/users"), 401, "UNAUTHORIZED")
    await error(await api.call("POST", "/robots", body={}), 401, "UNAUTHORIZED")  # asked first


# ---- projects ------------------------------------------------------------------------------


async def test_project_create_get_list_head_update_delete(api: Api) -> None:
    r = await api.call("POST", "/projects", api.admin, {"project_name": "web", "public": True})
    assert r.status == 201
    assert r.headers["Location"].startswith(f"{API}/projects/")
    project_id = int(r.headers["Location"].rsplit("/", 1)[1])
    by_name = await (await api.call("GET", "/projects/web", api.admin)).json()
    by_id = await (await api.call("GET", f"/projects/{project_id}", api.admin)).json()
    assert by_name == by_id
    assert by_name["name"] == "web"
    assert by_name["project_id"] == project_id
    assert by_name["metadata"] == {"public": "true"}
    assert by_name["owner_name"] == "admin"
    assert by_name["current_user_role_id"] == 1
    assert (await api.call("HEAD", "/projects?project_name=web", api.admin)).status == 200
    assert (await api.call("HEAD", "/projects?project_name=nope", api.admin)).status == 404
    r = await api.call("PUT", "/projects/web", api.admin, {"metadata": {"public": "false"}})
    assert r.status == 200
    assert (await (await api.call("GET", "/projects/web", api.admin)).json())["metadata"] == {
        "public": "false"
    }
    assert (await api.call("DELETE", "/projects/web", api.admin)).status == 200
    await error(await api.call("GET", "/projects/web", api.admin), 404, "NOT_FOUND")


async def test_numeric_project_names_need_x_is_resource_name(api: Api) -> None:
    await api.project("123")
    other = await api.project("other")
    r = await api.call("GET", "/projects/123", api.admin, headers={"X-Is-Resource-Name": "true"})
    assert (await r.json())["name"] == "123"
    r = await api.call("GET", f"/projects/{other}", api.admin)
    assert (await r.json())["name"] == "other"


async def test_project_list_pages(api: Api) -> None:
    for i in range(5):
        await api.project(f"p{i}")
    r = await api.call("GET", "/projects?page=2&page_size=2", api.admin)
    assert r.headers["X-Total-Count"] == "5"
    assert [p["name"] for p in await r.json()] == ["p2", "p3"]
    assert 'rel="prev"' in r.headers["Link"]
    assert 'rel="next"' in r.headers["Link"]
    assert "page=3" in r.headers["Link"]
    r = await api.call("GET", "/projects?name=p4", api.admin)
    assert [p["name"] for p in await r.json()] == ["p4"]
    await error(await api.call("GET", "/projects?page_size=101", api.admin), 400, "BAD_REQUEST")
    await error(await api.call("GET", "/projects?page=0", api.admin), 400, "BAD_REQUEST")


async def test_users_see_public_and_member_projects_only(api: Api) -> None:
    alice = await api.user("alice")
    await api.project("pub", public=True)
    await api.project("secret")
    await api.project("team")
    await api.member("team", "alice", 3)
    names = [p["name"] for p in await (await api.call("GET", "/projects", alice)).json()]
    assert names == ["pub", "team"]
    anonymous = [p["name"] for p in await (await api.call("GET", "/projects")).json()]
    assert anonymous == ["pub"]
    await error(await api.call("GET", "/projects/secret", alice), 403, "FORBIDDEN")
    await error(await api.call("GET", "/projects/secret"), 401, "UNAUTHORIZED")
    await error(await api.call("DELETE", "/projects/team", alice), 403, "FORBIDDEN")


async def test_a_user_creating_a_project_becomes_its_admin(api: Api) -> None:
    bob = await api.user("bob")
    await api.project("bobs", auth=bob)
    project = await (await api.call("GET", "/projects/bobs", bob)).json()
    assert project["current_user_role_id"] == 1
    assert project["owner_name"] == "bob"
    export = await api.robot(project_robot("bobs", "ci", "repository:push"), auth=bob)
    assert export["name"] == "robot$bobs+ci"
    await error(
        await api.call("POST", "/projects", body={"project_name": "x"}), 401, "UNAUTHORIZED"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"project_name": "Bad Name"}, "invalid project name"),
        ({}, "project_name"),
        ({"project_name": 5}, "must be a string"),
        ({"project_name": "x", "public": "yes"}, "must be a boolean"),
        ({"project_name": "x", "surprise": 1}, "unknown field 'surprise'"),
        ({"project_name": "x", "metadata": {"public": "maybe"}}, "metadata.public"),
        ({"project_name": "x", "metadata": {"colour": "red"}}, "unknown field 'colour'"),
        ([1, 2], "JSON object"),
    ],
)
async def test_bad_project_bodies_are_400(api: Api, body: Any, message: str) -> None:
    r = await api.call("POST", "/projects", api.admin, body)
    assert message in await error(r, 400, "BAD_REQUEST")


async def test_terraform_style_project_bodies_are_accepted(api: Api) -> None:
    body = {
        "project_name": "tf",
        "storage_limit": -1,
        "registry_id": None,
        "metadata": {"public": "false", "auto_scan": "true", "severity": "high"},
    }
    assert (await api.call("POST", "/projects", api.admin, body)).status == 201


async def test_malformed_json_huge_bodies_and_duplicates(api: Api) -> None:
    r = await api.client.post(
        f"{API}/projects",
        data=b"{not json",
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert "not valid JSON" in await error(r, 400, "BAD_REQUEST")
    r = await api.client.post(f"{API}/projects", data=b"\xff\xfe", headers=api.admin)
    await error(r, 400, "BAD_REQUEST")
    huge = json.dumps({"project_name": "x", "comment": "a" * 100_000})
    r = await api.client.post(f"{API}/projects", data=huge, headers=api.admin)
    assert r.status == 413
    assert (await r.json())["errors"][0]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    await api.project("dup")
    r = await api.call("POST", "/projects", api.admin, {"project_name": "dup"})
    await error(r, 409, "CONFLICT")


async def test_deleting_a_project_refuses_its_robots_next_token(api: Api) -> None:
    await api.project("gone")
    export = await api.robot(project_robot("gone", "ci", "repository:pull"))
    assert (await api.client.get(TOKEN, headers=creds(export))).status == 200
    assert (await api.call("DELETE", "/projects/gone", api.admin)).status == 200
    assert (await api.client.get(TOKEN, headers=creds(export))).status == 401


# ---- users ---------------------------------------------------------------------------------


async def test_users(api: Api) -> None:
    r = await api.call(
        "POST",
        "/users",
        api.admin,
        {"username": "carol", "password": "Car0lPassword", "email": "c@example.com"},
    )
    assert r.status == 201
    user_id = int(r.headers["Location"].rsplit("/", 1)[1])
    carol = basic("carol", "Car0lPassword")
    me = await (await api.call("GET", "/users/current", carol)).json()
    assert me["username"] == "carol"
    assert me["user_id"] == user_id
    assert me["sysadmin_flag"] is False
    assert "password" not in json.dumps(me).lower().replace("password_", "")
    users = await (await api.call("GET", "/users", api.admin)).json()
    assert [u["username"] for u in users] == ["admin", "carol"]
    await error(await api.call("GET", "/users", carol), 403, "FORBIDDEN")
    await error(
        await api.call("POST", "/users", carol, {"username": "x", "password": "Passw0rdX"}),
        403,
        "FORBIDDEN",
    )
    r = await api.call("POST", "/users", api.admin, {"username": "carol", "password": "Passw0rdX"})
    await error(r, 409, "CONFLICT")
    r = await api.call("POST", "/users", api.admin, {"username": "dave", "password": "weak"})
    assert "password" in await error(r, 400, "BAD_REQUEST")
    r = await api.call("POST", "/users", api.admin, {"username": "da$ve", "password": "Passw0rdX"})
    await error(r, 400, "BAD_REQUEST")


async def test_attack_user_named_like_a_robot_under_custom_prefix(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    """Under the prefix `bot-`, a user `bot-ci` could never log in to the web page, and a system
    robot `ci` would answer for it at the token endpoint: such a name is refused."""
    settings = make_settings(robots__name_prefix="bot-")
    app = create_app(settings)
    api = Api(Server(await aiohttp_client(app), app[RUNTIME], settings))
    await api.server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    for name in ("bot-ci", "bot-a.b_c"):
        r = await api.call("POST", "/users", api.admin, {"username": name, "password": "Passw0rdX"})
        message = await error(r, 400, "BAD_REQUEST")
        assert repr(name) in message and "robots.name_prefix" in message
        assert await api.server.runtime.store.find_user(name) is None
    # Names that are not robot names under the prefix stay usable, on the page and for tokens.
    for name in ("bot-CI", "Bot-ci", "ci"):
        r = await api.call("POST", "/users", api.admin, {"username": name, "password": "Passw0rdX"})
        assert r.status == 201, await r.text()
        r = await api.client.post("/c/login", json={"principal": name, "password": "Passw0rdX"})
        assert r.status == 200, await r.text()
        r = await api.client.get(TOKEN, headers=basic(name, "Passw0rdX"))
        assert r.status == 200, await r.text()
        assert (
            jwt.decode((await r.json())["token"], options={"verify_signature": False})["sub"]
            == name
        )


async def test_password_changes(api: Api) -> None:
    erin = await api.user("erin", "Er1nPassword")
    me = await (await api.call("GET", "/users/current", erin)).json()
    path = f"/users/{me['user_id']}/password"
    r = await api.call("PUT", path, erin, {"old_password": "wrong", "new_password": "N3wPassword"})
    await error(r, 403, "FORBIDDEN")
    r = await api.call(
        "PUT", path, erin, {"old_password": "Er1nPassword", "new_password": "N3wPassword"}
    )
    assert r.status == 200
    await error(await api.call("GET", "/users/current", erin), 401, "UNAUTHORIZED")
    new = basic("erin", "N3wPassword")
    assert (await api.call("GET", "/users/current", new)).status == 200
    r = await api.call("PUT", path, api.admin, {"new_password": "Adm1nChosen"})
    assert r.status == 200
    assert (await api.call("GET", "/users/current", basic("erin", "Adm1nChosen"))).status == 200
    admin_id = (await (await api.call("GET", "/users/current", api.admin)).json())["user_id"]
    r = await api.call("PUT", f"/users/{admin_id}/password", new, {"new_password": "Hack3dPass"})
    await error(r, 401, "UNAUTHORIZED")


async def test_current_user_is_412_for_robots(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    await error(await api.call("GET", "/users/current", creds(export)), 412, "PRECONDITION")


# ---- members and user tokens ---------------------------------------------------------------


async def test_members(api: Api) -> None:
    await api.user("frank")
    await api.project("p")
    r = await api.call(
        "POST",
        "/projects/p/members",
        api.admin,
        {"role_id": 2, "member_user": {"username": "frank"}},
    )
    assert r.status == 201
    member_id = int(r.headers["Location"].rsplit("/", 1)[1])
    members = await (await api.call("GET", "/projects/p/members", api.admin)).json()
    frank = next(m for m in members if m["entity_name"] == "frank")
    assert frank == {
        "id": member_id,
        "project_id": frank["project_id"],
        "entity_name": "frank",
        "role_name": "developer",
        "role_id": 2,
        "entity_id": frank["entity_id"],
        "entity_type": "u",
    }
    r = await api.call("PUT", f"/projects/p/members/{member_id}", api.admin, {"role_id": 4})
    assert r.status == 200
    got = await (await api.call("GET", f"/projects/p/members/{member_id}", api.admin)).json()
    assert got["role_name"] == "maintainer"
    r = await api.call(
        "POST",
        "/projects/p/members",
        api.admin,
        {"role_id": 2, "member_user": {"username": "frank"}},
    )
    await error(r, 409, "CONFLICT")
    r = await api.call(
        "POST",
        "/projects/p/members",
        api.admin,
        {"role_id": 9, "member_user": {"username": "frank"}},
    )
    await error(r, 400, "BAD_REQUEST")
    r = await api.call(
        "POST", "/projects/p/members", api.admin, {"role_id": 2, "member_user": {"username": "zed"}}
    )
    await error(r, 404, "NOT_FOUND")
    assert (await api.call("DELETE", f"/projects/p/members/{member_id}", api.admin)).status == 200
    r = await api.call("GET", f"/projects/p/members/{member_id}", api.admin)
    await error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        (1, ["pull", "push", "delete"]),
        (4, ["pull", "push", "delete"]),
        (2, ["pull", "push"]),
        (3, ["pull"]),
        (5, ["pull"]),
        (None, []),
    ],
)
async def test_user_tokens_follow_the_role(api: Api, role: int | None, actions: list[str]) -> None:
    user = await api.user("gina")
    await api.project("p")
    if role is not None:
        await api.member("p", "gina", role)
    (entry,) = await api.token_access(user, "repository:p/app:pull,push,delete")
    assert entry["actions"] == actions


async def test_system_admin_tokens_hold_everything(api: Api) -> None:
    await api.project("p")
    access = await api.token_access(api.admin, "repository:p/app:*", "registry:catalog:*")
    assert access[0]["actions"] == ["pull", "push", "delete"]
    assert access[1] == {"type": "registry", "name": "catalog", "actions": ["*"]}


# ---- robots: who may manage them ------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "create", "read"),
    [(1, 201, 200), (4, 403, 200), (2, 403, 200), (3, 403, 200), (5, 403, 403), (None, 403, 403)],
)
async def test_robot_management_rights_by_role(
    api: Api, role: int | None, create: int, read: int
) -> None:
    user = await api.user("hank")
    project_id = await api.project("p")
    if role is not None:
        await api.member("p", "hank", role)
    existing = await api.robot(project_robot("p", "existing", "repository:pull"))
    r = await api.call("POST", "/robots", user, project_robot("p", "new", "repository:pull"))
    assert r.status == create, await r.text()
    r = await api.call("GET", f"/robots/{existing['id']}", user)
    assert r.status == read
    r = await api.call("GET", f"/robots?q=Level=project,ProjectID={project_id}", user)
    assert r.status == read
    r = await api.call("DELETE", f"/robots/{existing['id']}", user)
    assert r.status == (200 if role == 1 else 403)


async def test_robot_management_needs_credentials(api: Api) -> None:
    await api.project("p")
    existing = await api.robot(project_robot("p", "existing", "repository:pull"))
    await error(await api.call("GET", f"/robots/{existing['id']}"), 401, "UNAUTHORIZED")
    r = await api.call("POST", "/robots", body=project_robot("p", "x", "repository:pull"))
    await error(r, 401, "UNAUTHORIZED")


# ---- robots: create, list, get --------------------------------------------------------------


async def test_create_returns_the_export_and_the_robot_works(api: Api) -> None:
    await api.project("p")
    r = await api.call("POST", "/robots", api.admin, project_robot("p", "ci", "repository:push"))
    assert r.status == 201
    export = await r.json()
    assert set(export) == {"id", "name", "secret", "creation_time", "expires_at"}
    assert r.headers["Location"] == f"{API}/robots/{export['id']}"
    assert export["expires_at"] == -1
    (entry,) = await api.token_access(creds(export), "repository:p/app:push,pull")
    assert entry["actions"] == ["push", "pull"]
    robot = await (await api.call("GET", f"/robots/{export['id']}", api.admin)).json()
    assert set(robot) >= {
        "id", "name", "description", "expires_at", "duration", "level", "disable",
        "editable", "creation_time", "update_time", "permissions",
    }  # fmt: skip
    assert robot["name"] == "robot$p+ci"
    assert robot["level"] == "project"
    assert robot["permissions"][0]["namespace"] == "p"
    assert "secret" not in robot


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (
            lambda b: b["permissions"][0]["access"].append(
                {"resource": "catalog", "action": "read"}
            ),
            400,
            "bad request permission",
        ),
        (lambda b: b["permissions"].append(dict(b["permissions"][0])), 400, "must differ"),
        (lambda b: b["permissions"][0].update(namespace="*"), 400, "for its own project"),
        (lambda b: b["permissions"][0].update(namespace="nope"), 404, "not found"),
        (lambda b: b.update(duration=0), 400, "duration"),
        (lambda b: b.update(duration="7"), 400, "must be an integer"),
        (lambda b: b.update(name="Bad"), 400, "invalid robot name"),
        (lambda b: b.update(level="galaxy"), 400, "level"),
        (lambda b: b.pop("permissions"), 400, "missing field 'permissions'"),
        (lambda b: b.update(extra=1), 400, "unknown field 'extra'"),
        (lambda b: b["permissions"][0]["access"][0].update(effect="maybe"), 400, "effect"),
        (lambda b: b.update(secret="weak"), 400, "the secret must be 8-128"),
        (lambda b: b.update(description="x" * 2000), 400, "description"),
    ],
)
async def test_bad_robot_bodies(api: Api, mutate: Any, status: int, message: str) -> None:
    await api.project("p")
    body = project_robot("p", "ci", "repository:pull")
    mutate(body)
    r = await api.call("POST", "/robots", api.admin, body)
    assert r.status == status, await r.text()
    assert message in (await r.json())["errors"][0]["message"]


async def test_duplicate_robot_is_409(api: Api) -> None:
    await api.project("p")
    await api.robot(project_robot("p", "ci", "repository:pull"))
    r = await api.call("POST", "/robots", api.admin, project_robot("p", "ci", "repository:pull"))
    await error(r, 409, "CONFLICT")


async def test_attack_a_robot_created_while_its_project_is_deleted_is_404(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project deleted between the request's checks and the robot's insert (seen on
    PostgreSQL replicas): 404 project not found, not 409 "robot 'r0' already exists"."""
    project_id = await api.project("p")
    store = api.server.runtime.store
    create = store.create_robot

    async def deleted_meanwhile(*args: Any, **kwargs: Any) -> Any:
        assert await store.delete_project(project_id)
        return await create(*args, **kwargs)

    monkeypatch.setattr(store, "create_robot", deleted_meanwhile)
    r = await api.call("POST", "/robots", api.admin, project_robot("p", "r0", "repository:pull"))
    assert "project" in await error(r, 404, "NOT_FOUND")


async def test_manual_secret_on_create(api: Api) -> None:
    await api.project("p")
    body = project_robot("p", "ci", "repository:pull") | {"secret": "Ch0senSecret"}
    export = await api.robot(body)
    assert export["secret"] == "Ch0senSecret"
    assert (
        await api.client.get(TOKEN, headers=basic(export["name"], "Ch0senSecret"))
    ).status == 200


async def test_robot_list_filters_pages_and_sorts(api: Api) -> None:
    project_id = await api.project("p")
    await api.project("q")
    for name in ("build", "deploy", "backup"):
        await api.robot(project_robot("p", name, "repository:pull"))
    await api.robot(project_robot("q", "other", "repository:pull"))
    base = f"/robots?q=Level=project,ProjectID={project_id}"
    r = await api.call("GET", base, api.admin)
    # Harbor's order when `sort` names none: by name.
    assert [x["name"] for x in await r.json()] == [
        "robot$p+backup",
        "robot$p+build",
        "robot$p+deploy",
    ]
    assert r.headers["X-Total-Count"] == "3"
    r = await api.call("GET", base + ",name=~b", api.admin)
    assert [x["name"] for x in await r.json()] == ["robot$p+backup", "robot$p+build"]
    r = await api.call("GET", base + ",name=deploy", api.admin)
    assert [x["name"] for x in await r.json()] == ["robot$p+deploy"]
    r = await api.call("GET", base + "&sort=-name&page=1&page_size=2", api.admin)
    assert [x["name"] for x in await r.json()] == ["robot$p+deploy", "robot$p+build"]
    assert 'rel="next"' in r.headers["Link"]
    await error(await api.call("GET", "/robots?q=Level=project", api.admin), 400, "BAD_REQUEST")
    # An unknown sort key is skipped, as Harbor does (its own tests send one).
    r = await api.call("GET", base + "&sort=colour", api.admin)
    assert (await r.json())[0]["name"] == "robot$p+backup"
    await error(await api.call("GET", "/robots?q=Colour=red", api.admin), 400, "BAD_REQUEST")
    assert await (await api.call("GET", "/robots", api.admin)).json() == []
    assert await (await api.call("GET", "/robots?q=Level=system", api.admin)).json() == []


# ---- robots: PUT, PATCH, DELETE -------------------------------------------------------------


async def test_put_replaces_permissions_disable_and_duration(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:push", duration=10))
    path = f"/robots/{export['id']}"
    robot = await (await api.call("GET", path, api.admin)).json()
    robot["permissions"][0]["access"] = [{"resource": "repository", "action": "pull"}]
    robot["duration"] = 20
    robot["description"] = "changed"
    assert (await api.call("PUT", path, api.admin, robot)).status == 200
    (entry,) = await api.token_access(creds(export), "repository:p/app:pull,push")
    assert entry["actions"] == ["pull"]
    updated = await (await api.call("GET", path, api.admin)).json()
    assert updated["duration"] == 20
    assert updated["description"] == "changed"
    assert updated["expires_at"] == export["expires_at"] + 10 * 86400
    robot = updated | {"disable": True}
    assert (await api.call("PUT", path, api.admin, robot)).status == 200
    assert (await api.client.get(TOKEN, headers=creds(export))).status == 401
    r = await api.call("PUT", path, api.admin, updated | {"name": "renamed"})
    assert "cannot be changed" in await error(r, 400, "BAD_REQUEST")
    r = await api.call("PUT", path, api.admin, updated | {"level": "system"})
    assert "cannot be changed" in await error(r, 400, "BAD_REQUEST")


async def test_put_takes_the_writable_fields_alone_as_documented(api: Api) -> None:
    # The document asked PUT for the robot's read-only fields (id, editable, creation_time...)
    # as if it were GET's answer; the server never needed them. The server fixture checks
    # every accepted body against the document.
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:push"))
    body = project_robot("p", "ci", "repository:pull", duration=30)
    assert (await api.call("PUT", f"/robots/{export['id']}", api.admin, body)).status == 200
    (entry,) = await api.token_access(creds(export), "repository:p/app:pull,push")
    assert entry["actions"] == ["pull"]


async def test_optional_fields_sent_as_null_are_absent_as_documented(api: Api) -> None:
    # Harbor's Go server reads null as absent, and so does tokenserver; the document says so.
    await api.user("gina")
    r = await api.call(
        "POST",
        "/projects",
        api.admin,
        {"project_name": "p", "public": None, "metadata": None, "registry_id": None},
    )
    assert r.status == 201
    project = await (await api.call("GET", "/projects/p", api.admin)).json()
    assert project["metadata"] == {"public": "false"}
    r = await api.call("PUT", "/projects/p", api.admin, {"metadata": {"public": None}})
    assert r.status == 200
    body = project_robot("p", "ci", "repository:pull") | {
        "description": None,
        "disable": None,
        "secret": None,
    }
    body["permissions"][0]["access"][0]["effect"] = None
    export = await api.robot(body)
    robot = await (await api.call("GET", f"/robots/{export['id']}", api.admin)).json()
    # An empty description is left out, as Harbor does; disable is always there.
    assert "description" not in robot and robot["disable"] is False
    assert robot["permissions"][0]["access"][0]["effect"] == "allow"
    r = await api.call(
        "PATCH", f"/robots/{export['id']}", api.admin, {"secret": None, "restart_expiry": None}
    )
    assert r.status == 200 and (await r.json())["secret"]
    r = await api.call(
        "POST",
        "/projects/p/members",
        api.admin,
        {"role_id": 3, "member_user": {"username": "gina", "user_id": None}, "member_group": None},
    )
    assert r.status == 201
    r = await api.call(
        "PUT", "/users/1/password", api.admin, {"old_password": None, "new_password": "Adm1nChosen"}
    )
    assert r.status == 200


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/projects/p/members", {"role_id": 9, "member_user": {"username": "x"}},
         "member: 'role_id' must be 1, 2, 3, 4 or 5"),
        ("/projects/p/members", {"role_id": 2, "member_group": {"id": 1}},
         "member: groups are not supported; use member_user"),
        ("/projects/p/members", {"role_id": 2, "member_user": {"user_id": "7"}},
         "member_user: 'user_id' must be an integer"),
        ("/projects/p/members", {"member_user": {"username": "x"}},
         "member: missing field 'role_id'"),
        ("/users", {"username": "u", "password": "Passw0rdPassw0rd", "email": 5},
         "user: 'email' must be a string"),
        ("/robots", project_robot("p", "ci", "repository:pull") | {"level": "galaxy"},
         "robot: 'level' must be \"project\" or \"system\""),
    ],
)  # fmt: skip
async def test_bad_bodies_are_told_which_field_is_wrong(
    api: Api, path: str, body: Any, message: str
) -> None:
    await api.project("p")
    assert await error(await api.call("POST", path, api.admin, body), 400, "BAD_REQUEST") == message


async def test_patch_refreshes_the_secret(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull", duration=1))
    path = f"/robots/{export['id']}"
    r = await api.call("PATCH", path, api.admin, {})
    assert r.status == 200
    new = (await r.json())["secret"]
    assert new and new != export["secret"]
    assert (await api.client.get(TOKEN, headers=creds(export))).status == 401
    assert (await api.client.get(TOKEN, headers=basic(export["name"], new))).status == 200
    r = await api.call("PATCH", path, api.admin, {"secret": "Manu4lSecret"})
    assert await r.json() == {}  # Harbor leaves out the empty secret
    ok = await api.client.get(TOKEN, headers=basic(export["name"], "Manu4lSecret"))
    assert ok.status == 200
    r = await api.call("PATCH", path, api.admin, {"secret": "weak"})
    await error(r, 400, "BAD_REQUEST")
    before = (await (await api.call("GET", path, api.admin)).json())["expires_at"]
    r = await api.call("PATCH", path, api.admin, {"restart_expiry": True})
    after = (await (await api.call("GET", path, api.admin)).json())["expires_at"]
    assert after >= before
    assert after >= export["expires_at"]


async def test_delete_robot(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    assert (await api.call("DELETE", f"/robots/{export['id']}", api.admin)).status == 200
    assert (await api.client.get(TOKEN, headers=creds(export))).status == 401
    await error(await api.call("DELETE", f"/robots/{export['id']}", api.admin), 404, "NOT_FOUND")
    await error(await api.call("GET", "/robots/abc", api.admin), 400, "BAD_REQUEST")


# ---- system robots ---------------------------------------------------------------------------


def system_robot(name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "level": "system", "duration": -1, "permissions": list(entries)}


def entry(kind: str, namespace: str, *access: str, effect: str = "allow") -> dict[str, Any]:
    return {
        "kind": kind,
        "namespace": namespace,
        "access": [
            {"resource": a.split(":")[0], "action": a.split(":")[1], "effect": effect}
            for a in access
        ],
    }


async def test_system_robot_with_all_projects_covers_later_projects(api: Api) -> None:
    export = await api.robot(
        system_robot(
            "fleet",
            entry("project", "*", "repository:pull"),
            entry("system", "/", "catalog:read"),
        )
    )
    assert export["name"] == "robot$fleet"
    await api.project("later")
    access = await api.token_access(
        creds(export), "repository:later/app:pull,push", "registry:catalog:*"
    )
    assert access == [
        {"type": "repository", "name": "later/app", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    listed = await (await api.call("GET", "/robots?q=Level=system", api.admin)).json()
    assert [r["name"] for r in listed] == ["robot$fleet"]
    assert listed[0]["level"] == "system"


async def test_deny_wins_over_allow(api: Api) -> None:
    await api.project("a")
    await api.project("b")
    export = await api.robot(
        system_robot(
            "mostly",
            entry("project", "*", "repository:push"),
            entry("project", "b", "repository:push", effect="deny"),
        )
    )
    access = await api.token_access(
        creds(export), "repository:a/app:push,pull", "repository:b/app:push,pull"
    )
    assert access[0]["actions"] == ["push", "pull"]
    assert access[1]["actions"] == ["pull"]


async def test_a_project_recreated_under_the_same_name_loses_the_grant(api: Api) -> None:
    await api.project("p")
    export = await api.robot(system_robot("named", entry("project", "p", "repository:pull")))
    assert (await api.token_access(creds(export), "repository:p/app:pull"))[0]["actions"] == [
        "pull"
    ]
    assert (await api.call("DELETE", "/projects/p", api.admin)).status == 200
    await api.project("p")
    assert (await api.token_access(creds(export), "repository:p/app:pull"))[0]["actions"] == []


async def test_only_admins_create_system_robots(api: Api) -> None:
    user = await api.user("ivy")
    body = system_robot("sys", entry("project", "*", "repository:pull"))
    await error(await api.call("POST", "/robots", user, body), 403, "FORBIDDEN")
    r = await api.call(
        "POST", "/robots", api.admin, system_robot("s", entry("system", "/", "repository:pull"))
    )
    assert "bad request permission" in await error(r, 400, "BAD_REQUEST")
    r = await api.call(
        "POST", "/robots", api.admin, system_robot("s", entry("system", "*", "catalog:read"))
    )
    await error(r, 400, "BAD_REQUEST")


# ---- robots managing robots (Harbor 2.12) ------------------------------------------------------


async def test_a_robot_may_create_robots_within_its_own_permissions(api: Api) -> None:
    await api.project("p")
    manager = await api.robot(
        project_robot("p", "manager", "repository:pull", "robot:create", "robot:read", "robot:list")
    )
    child = await api.robot(project_robot("p", "child", "repository:pull"), auth=creds(manager))
    assert child["name"] == "robot$p+child"
    r = await api.call(
        "POST", "/robots", creds(manager), project_robot("p", "greedy", "repository:push")
    )
    assert "permissions are within its own" in await error(r, 403, "FORBIDDEN")
    await api.project("other")
    r = await api.call(
        "POST", "/robots", creds(manager), project_robot("other", "x", "repository:pull")
    )
    await error(r, 403, "FORBIDDEN")
    r = await api.call("GET", "/users", creds(manager))
    await error(r, 403, "FORBIDDEN")


# ---- tokens for every permission ----------------------------------------------------------------


async def test_non_repository_scopes_are_answered_from_permissions(api: Api) -> None:
    await api.project("p")
    export = await api.robot(
        project_robot(
            "p", "svc", "tag:create", "artifact-label:create", "scan:create",
            "helm-chart:read", "helm-chart-version:create",
        )
    )  # fmt: skip
    access = await api.token_access(
        creds(export),
        "tag:p/app:create,delete",
        "artifact-label:p/app:create",
        "scan:p/app:create",
        "helm-chart:p/chart:read",
        "helm-chart-version:p/chart:create,delete",
        "repository:p/app:pull",
    )
    assert [a["actions"] for a in access] == [
        ["create"], ["create"], ["create"], ["read"], ["create"], [],
    ]  # fmt: skip


# ---- concurrency and the audit log ---------------------------------------------------------------


async def test_two_admins_creating_the_same_robot_at_once(api: Api) -> None:
    await api.project("p")
    other_admin = await api.user("root2")
    with sqlite3.connect(api.server.settings.database.path) as db:
        db.execute("UPDATE users SET sysadmin = 1 WHERE username = 'root2'")
    body = project_robot("p", "race", "repository:pull")
    responses = await asyncio.gather(
        *(api.call("POST", "/robots", auth, body) for auth in (api.admin, other_admin, api.admin))
    )
    assert sorted(r.status for r in responses) == [201, 409, 409]
    robots = await api.server.runtime.robots.list(LOCAL, "p")
    assert [r.name for r in robots] == ["race"]


async def test_audit_log_records_operations_without_secrets(api: Api) -> None:
    await api.project("p")
    export = await api.robot(project_robot("p", "ci", "repository:pull"))
    await api.call("PATCH", f"/robots/{export['id']}", api.admin, {"secret": "Manu4lSecret"})
    await api.call("POST", "/robots", api.admin, project_robot("p", "ci", "repository:pull"))
    await api.call("DELETE", f"/robots/{export['id']}", api.admin)
    r = await api.call("GET", "/audit-logs?page_size=50", api.admin)
    assert r.status == 200
    entries = await r.json()
    seen = [(e["operation"], e["resource_type"], e["resource"], e["outcome"]) for e in entries]
    assert seen[:5] == [
        ("delete", "robot", "robot$p+ci", "success"),
        ("create", "robot", "robot$p+ci", "failure: CONFLICT"),
        ("refresh", "robot", "robot$p+ci", "success"),
        ("create", "robot", "robot$p+ci", "success"),
        ("create", "project", "p", "success"),
    ]
    assert all(e["username"] == "admin" for e in entries[:5])
    text = json.dumps(entries)
    assert export["secret"] not in text
    assert "Manu4lSecret" not in text
    # Harbor's answer to a user without audit-log:list: the entries of the user's projects
    # (none here), not a denial.
    user = await api.user("judy")
    r = await api.call("GET", "/audit-logs", user)
    assert r.status == 200
    assert await r.json() == []
    assert r.headers["X-Total-Count"] == "0"


async def test_unknown_api_routes_are_json_404(api: Api) -> None:
    await error(await api.client.get(f"{API}/nothing", headers=api.admin), 404, "NOT_FOUND")
    r = await api.client.request("TRACE", f"{API}/robots")
    assert r.status == 405


async def test_the_openapi_document_describes_exactly_the_routes(api: Api) -> None:
    r = await api.client.get(f"{API}/openapi.json")
    assert r.status == 200
    served = await r.json()
    assert served["openapi"] == "3.1.0"
    documented = {
        (method.upper(), template)
        for template, item in served["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = set()
    for route in api.server.client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith(API) and not path.endswith("openapi.json"):
            template = path.removeprefix(API)
            template = template.replace("{project}", "{project_name_or_id}")
            routed.add((route.method, template))
    assert routed == documented


async def test_last_used_at_is_tracked_without_a_write_per_request(api: Api) -> None:
    await api.project("p")
    used = await api.robot(project_robot("p", "used", "repository:pull"))
    idle = await api.robot(project_robot("p", "idle", "repository:pull"))
    assert (await api.client.get(TOKEN, headers=creds(used))).status == 200
    shown = await (await api.call("GET", f"/robots/{used['id']}", api.admin)).json()
    assert shown["last_used_at"] is not None
    idle_shown = await (await api.call("GET", f"/robots/{idle['id']}", api.admin)).json()
    assert idle_shown["last_used_at"] is None
    stored = await api.server.runtime.store.find_robot_by_id(used["id"])
    assert stored is not None
    assert stored.last_used_at is None  # not yet written: no database write per request
    await api.server.runtime.usage.flush()
    stored = await api.server.runtime.store.find_robot_by_id(used["id"])
    assert stored is not None
    assert stored.last_used_at is not None
    assert iso_time(stored.last_used_at) == shown["last_used_at"]


async def test_an_internal_error_is_a_masked_500(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire at /var/secret/path")

    monkeypatch.setattr(api.server.runtime.store, "list_projects", broken)
    r = await api.call("GET", "/projects", api.admin)
    message = await error(r, 500, "UNKNOWN")
    assert message == "internal server error"
    assert "disk on fire" not in await r.text()
    assert any("disk on fire" in (rec.exc_text or "") for rec in caplog.records)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/projects/missing", {"metadata": {"public": "true"}}),
        ("DELETE", "/projects/missing", None),
        ("POST", "/projects/missing/members", {"role_id": 2, "member_user": {"username": "x"}}),
        ("PUT", "/projects/missing/members/9", {"role_id": 2}),
        ("DELETE", "/projects/missing/members/9", None),
        ("POST", "/robots", {"name": "x"}),
        ("PUT", "/robots/9999", {"name": "x"}),
        ("PATCH", "/robots/9999", {}),
        ("DELETE", "/robots/9999", None),
        ("DELETE", "/robots/9999/refresh-tokens", None),
        ("POST", "/users", {"username": "x"}),
    ],
)
async def test_attack_anonymous_changes_tell_what_exists(
    api: Api, method: str, path: str, body: Any
) -> None:
    """An anonymous change got 404 for a missing project or robot and 400 for a bad body,
    telling what exists without an account: every change asks for one first."""
    r = await api.call(method, path, None, body)
    await error(r, 401, "UNAUTHORIZED")


async def test_attack_anonymous_callers_learn_nothing_of_what_exists(api: Api) -> None:
    """Without credentials a private project answered 401 and a missing one 404 (summary,
    _deletable, the project, its members), and so did robots by id: existence leaked."""
    await api.project("secret")
    robot = await api.robot(project_robot("secret", "ci", "repository:pull"))
    for path in ("/projects/{}/summary", "/projects/{}/_deletable", "/projects/{}",
                 "/projects/{}/members"):  # fmt: skip
        answers = [await api.call("GET", path.format(p)) for p in ("secret", "missing")]
        for r in answers:
            assert (await error(r, 401, "UNAUTHORIZED")) == "authentication required"
    for robot_id in (robot["id"], 999_999):
        await error(await api.call("GET", f"/robots/{robot_id}"), 401, "UNAUTHORIZED")
    # With credentials, what is missing is still a 404; a public project still answers anyone.
    await error(await api.call("GET", "/projects/missing", api.admin), 404, "NOT_FOUND")
    await api.project("open", public=True)
    assert (await api.call("GET", "/projects/open")).status == 200
