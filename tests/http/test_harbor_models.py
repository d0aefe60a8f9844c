"""Every implemented operation's answers read by Harbor's own models (issue 16).

Every HTTP test's server parses its answers with them (tests/http/harbor_models.py, installed
in `serving`); here, one run drives every operation of the served document that Harbor
defines to a 2xx, so that none is left unparsed, and the checker itself is tried on what
it must refuse.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from harbor_client.api_client import ApiClient

from tests.http.conftest import AiohttpClient, Server, basic
from tests.http.harbor_models import (
    EXTENSIONS,
    HARBOR_OPERATIONS,
    _Raw,
    check_answer,
    check_harbor_models,
    harbor_operation,
    parse_as_harbor,
    template_key,
)
from tests.http.openapi_check import check_served
from tokenserver.config import Settings
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.http.openapi import document

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
USER_PASSWORD = "Us3rPassword"

# Harbor operations newer than the harbor-api-client release the tests use (2.12): Harbor's
# document has them, its generated Python client not yet.
NEWER_THAN_THE_CLIENT = {("GET", "/auditlog-exts"), ("GET", "/projects/{}/auditlog-exts")}


def _documented() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), template_key(template)): op
        for template, item in document()["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }


# ---- the checker -----------------------------------------------------------------------------


def test_the_client_names_a_model_for_each_operation_we_share_with_harbor() -> None:
    assert HARBOR_OPERATIONS[("GET", "/users/{}")] == "UserResp"
    assert HARBOR_OPERATIONS[("GET", "/robots")] == "list[Robot]"
    assert HARBOR_OPERATIONS[("PATCH", "/robots/{}")] == "RobotSec"
    assert HARBOR_OPERATIONS[("POST", "/projects")] is None
    assert harbor_operation("GET", f"{API}/users/current") == ("GET", "/users/current")
    assert harbor_operation("GET", f"{API}/users/7") == ("GET", "/users/{}")
    assert harbor_operation("GET", f"{API}/projects/p/members/3?x=1") == (
        "GET",
        "/projects/{}/members/{}",
    )
    assert harbor_operation("GET", f"{API}/robots/1/refresh-tokens") is None


def test_fields_harbor_does_not_define_are_those_the_document_marks_as_ours() -> None:
    assert {("Robot", "legacy"), ("Robot", "last_used_at"), ("AuditLog", "outcome")} <= EXTENSIONS
    assert ("Robot", "name") not in EXTENSIONS


_USER = {"user_id": 1, "username": "u", "sysadmin_flag": False, "admin_role_in_auth": False}


@pytest.mark.parametrize(
    ("body", "kind", "problem"),
    [
        (_USER | {"colour": "red"}, "UserResp", "'colour' is not a field of Harbor's UserResp"),
        (_USER | {"comment": None}, "UserResp", "$.comment: null"),
        (_USER | {"user_id": "1"}, "UserResp", "$.user_id: '1' is not int"),
        (_USER | {"sysadmin_flag": 0}, "UserResp", "$.sysadmin_flag: 0 is not bool"),
        (_USER | {"user_id": True}, "UserResp", "$.user_id: True is not int"),
        (_USER | {"creation_time": "yesterday"}, "UserResp", "cannot read it as UserResp"),
        (_USER | {"creation_time": "Jan 2 2024"}, "UserResp", "not an RFC 3339 datetime"),
        ([_USER, {"id": 1}], "list[UserResp]", "$[1]: 'id' is not a field"),
        ({"secret": 5}, "RobotSec", "$.secret: 5 is not str"),
        (
            {"permissions": [{"kind": "project", "access": [{"resource": 1}]}]},
            "Robot",
            "$.permissions[0].access[0].resource: 1 is not str",
        ),
        ({"legacy": False, "cve": 1}, "Robot", "'cve' is not a field of Harbor's Robot"),
        # Newer than the clients, still Harbor's, still typed.
        ({"metadata": {"proxy_referrer_api": True}}, "Project", "proxy_referrer_api: True is not"),
        ({"metadata": {"proxy_referrer_api": "true"}}, "Project", None),
        ([], "UserResp", "not a UserResp object"),
        ({"errors": [{"code": "X"}]}, "Errors", None),
    ],
)
def test_what_harbor_models_would_not_read_is_refused(
    body: Any, kind: str, problem: str | None
) -> None:
    found = parse_as_harbor(json.dumps(body).encode(), kind)
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


def test_harborapi_strict_mode_and_error_answers_are_checked_too() -> None:
    # harborapi's pydantic models, strict: a number in a string is not a number.
    found = parse_as_harbor(b'{"id": "3", "name": "x"}', "RobotCreated")
    assert any("harborapi's RobotCreated refuses it" in p for p in found), found
    assert parse_as_harbor(_Raw(b"{}").data, "RobotSec") == []
    # An error answer is Harbor's Errors, each with a code and a message.
    good = b'{"errors": [{"code": "NOT_FOUND", "message": "no"}]}'
    assert check_answer("GET", f"{API}/nowhere", 404, good) == []
    assert check_answer("GET", f"{API}/nowhere", 404, b'{"errors": [{"code": "X"}]}')
    assert check_answer("GET", f"{API}/nowhere", 404, b'{"message": "no"}')
    # A body where Harbor's client expects none.
    assert check_answer("POST", f"{API}/projects", 201, b"{}")
    assert check_answer("HEAD", f"{API}/projects", 404, b"") == []


# ---- issue 16 item 3: what is empty is left out, as Harbor does ------------------------------


async def test_empty_optional_fields_are_left_out_as_harbor_does(server: Server) -> None:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    client, admin = server.client, basic("admin", ADMIN_PASSWORD)

    async def get(path: str, auth: dict[str, str] = admin) -> dict[str, Any]:
        r = await client.get(API + path, headers=auth)
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body

    # A user created without email, realname or comment: Harbor's own test reads
    # `comment` back as None from its generated client.
    r = await client.post(
        f"{API}/users", json={"username": "eve", "password": USER_PASSWORD}, headers=admin
    )
    eve = int(r.headers["Location"].rsplit("/", 1)[1])
    shown = await get(f"/users/{eve}")
    assert {"email", "realname", "comment"}.isdisjoint(shown), shown
    assert shown["sysadmin_flag"] is False and shown["admin_role_in_auth"] is False
    model = ApiClient().deserialize(_Raw(json.dumps(shown).encode()), "UserResp")
    assert (model.comment, model.email, model.realname) == (None, None, None)
    r = await client.post(
        f"{API}/users",
        json={"username": "dan", "password": USER_PASSWORD, "comment": "ops", "email": "d@x"},
        headers=admin,
    )
    dan = await get(r.headers["Location"].removeprefix(API))
    assert (dan["comment"], dan["email"]) == ("ops", "d@x")
    assert "realname" not in dan

    # A project made at the command line has no owner; no registry; not deleted; and one
    # the caller holds no role in shows no role.
    await server.runtime.projects.create(LOCAL, "cli", public=True)
    project = await get("/projects/cli", basic("eve", USER_PASSWORD))
    absent = {"owner_id", "owner_name", "registry_id", "deleted"}
    absent |= {"current_user_role_id", "current_user_role_ids"}
    assert absent.isdisjoint(project), project
    assert project["repo_count"] == 0  # x-omitempty: false in Harbor's swagger
    assert project["togglable"] is True

    # A robot without a description; a secret set by hand is not shown: `{}`.
    body = {
        "name": "ci",
        "level": "project",
        "duration": -1,
        "permissions": [
            {
                "kind": "project",
                "namespace": "cli",
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }
    r = await client.post(f"{API}/robots", json=body, headers=admin)
    robot_id = (await r.json())["id"]
    robot = await get(f"/robots/{robot_id}")
    assert "description" not in robot
    assert robot["disable"] is False and robot["editable"] is True  # x-omitempty: false
    r = await client.patch(
        f"{API}/robots/{robot_id}", json={"secret": "Manu4lSecret"}, headers=admin
    )
    assert r.status == 200 and await r.json() == {}
    r = await client.patch(f"{API}/robots/{robot_id}", json={}, headers=admin)
    assert len((await r.json())["secret"]) == 32


# ---- every operation -------------------------------------------------------------------------


class _Driver:
    """Calls the API and insists on a 2xx; the servers' middlewares do the checking."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.admin = basic("admin", ADMIN_PASSWORD)
        self.documented = _documented()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        auth: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        r = await self.client.request(
            method,
            API + path,
            json=body,
            headers={**(auth or self.admin), **(headers or {})},
        )
        assert 200 <= r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
        await r.read()
        return r

    async def maybe(self, method: str, template: str, path: str, **kwargs: Any) -> None:
        """Call an operation another change of issue 16 adds, once the document has it."""
        if (method, template) in self.documented:
            await self.call(method, path, **kwargs)


async def test_every_operation_harbor_defines_answers_what_its_models_read(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    app = create_app(settings)
    served = check_served(app)
    harbor = check_harbor_models(app)
    api = _Driver(await aiohttp_client(app))
    await app[RUNTIME].users.ensure_admin(ADMIN_PASSWORD)
    dana = basic("dana", USER_PASSWORD)

    # users
    r = await api.call(
        "POST",
        "/users",
        {"username": "dana", "password": USER_PASSWORD, "email": "d@x", "realname": "Dana"},
    )
    dana_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await api.call("POST", "/users", {"username": "eve", "password": USER_PASSWORD})
    eve_id = int(r.headers["Location"].rsplit("/", 1)[1])
    await api.call("GET", "/users?page_size=1")
    await api.call("GET", f"/users/{dana_id}")
    await api.call("GET", "/users/current", auth=dana)
    await api.call(
        "PUT",
        f"/users/{dana_id}/password",
        {"old_password": USER_PASSWORD, "new_password": "N3wPassword"},
        auth=dana,
    )
    dana = basic("dana", "N3wPassword")
    await api.maybe("GET", "/users/search", "/users/search?username=da")
    await api.maybe("PUT", "/users/{}", f"/users/{eve_id}", body={"comment": "c"})
    await api.maybe(
        "PUT", "/users/{}/sysadmin", f"/users/{eve_id}/sysadmin", body={"sysadmin_flag": True}
    )

    # projects and members
    r = await api.call("POST", "/projects", {"project_name": "team"})
    team_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await api.call(
        "POST",
        "/projects",
        {"project_name": "named", "metadata": {"public": "true"}},
        headers={"X-Resource-Name-In-Location": "true"},
    )
    assert r.headers["Location"] == f"{API}/projects/named"
    await api.call("HEAD", "/projects?project_name=team")
    await api.call("GET", "/projects")
    await api.call("GET", "/projects/team")
    await api.call("GET", f"/projects/{team_id}", headers={"X-Is-Resource-Name": "false"})
    await api.call("PUT", "/projects/team", {"metadata": {"public": "false"}})
    await api.call("POST", "/projects/team/metadatas/", {"auto_scan": "true"})
    await api.call("POST", "/projects/team/metadatas", {"severity": "high"})
    await api.call("GET", "/projects/team/metadatas/")
    await api.call("GET", "/projects/team/metadatas")
    await api.call("GET", "/projects/team/metadatas/auto_scan")
    await api.call("GET", "/projects/team/metadatas/retention_id")
    await api.call("PUT", "/projects/team/metadatas/auto_scan", {"auto_scan": "false"})
    await api.call("DELETE", "/projects/team/metadatas/auto_scan")
    r = await api.call(
        "POST", "/projects/team/members", {"role_id": 2, "member_user": {"username": "dana"}}
    )
    mid = int(r.headers["Location"].rsplit("/", 1)[1])
    await api.call("GET", "/projects/team/members")
    await api.call("GET", f"/projects/team/members/{mid}")
    await api.call("PUT", f"/projects/team/members/{mid}", {"role_id": 3})
    await api.call("GET", "/permissions")
    await api.maybe(
        "GET",
        "/users/current/permissions",
        f"/users/current/permissions?scope=/project/{team_id}&relative=true",
        auth=dana,
    )
    await api.maybe("GET", "/projects/{}/summary", "/projects/team/summary")
    await api.maybe("GET", "/projects/{}/_deletable", "/projects/team/_deletable")

    # webhook policies (their deliveries come with the robots below)
    hook = {
        "name": "ci-events",
        "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook", "auth_header": "X"}],
        "event_types": ["ROBOT_CREATED", "ROBOT_DELETED"],
        "enabled": True,
    }
    r = await api.call("POST", "/projects/team/webhook/policies", hook)
    hook_path = r.headers["Location"].removeprefix(API)
    await api.call("POST", "/system/webhook/policies", hook)
    await api.call("GET", "/projects/team/webhook/policies")
    await api.call("GET", "/system/webhook/policies")
    shown_hook = await (await api.call("GET", hook_path)).json()
    await api.call("PUT", hook_path, shown_hook | {"description": "robots"})
    await api.call("GET", "/projects/team/webhook/events")

    # robots
    access = [{"resource": "repository", "action": "pull"}]
    project_robot = {
        "name": "ci",
        "level": "project",
        "duration": 30,
        "description": "CI",
        "permissions": [{"kind": "project", "namespace": "team", "access": access}],
    }
    r = await api.call("POST", "/robots", project_robot)
    robot = await r.json()
    system_robot = {
        "name": "sys",
        "level": "system",
        "duration": -1,
        "permissions": [{"kind": "project", "namespace": "*", "access": access}],
    }
    await api.call("POST", "/robots", system_robot)
    await api.call("GET", f"/robots?q=Level=project,ProjectID={team_id}")
    await api.call("GET", "/robots?sort=-name")
    shown = await (await api.call("GET", f"/robots/{robot['id']}")).json()
    await api.call("PUT", f"/robots/{robot['id']}", shown | {"description": "changed"})
    await api.call("PATCH", f"/robots/{robot['id']}", {})
    await api.call("PATCH", f"/robots/{robot['id']}", {"secret": "Manu4lSecret"})
    executions = await (await api.call("GET", f"{hook_path}/executions")).json()
    await api.call("GET", f"{hook_path}/executions/{executions[0]['id']}/tasks")

    # audit logs
    await api.call("GET", "/audit-logs?page_size=5")
    await api.maybe("GET", "/projects/{}/logs", "/projects/team/logs")
    await api.maybe("GET", "/projects/{}/auditlog-exts", "/projects/team/auditlog-exts")
    await api.maybe("GET", "/auditlog-exts", "/auditlog-exts")

    # and away
    await api.call("DELETE", f"/robots/{robot['id']}")
    await api.call("DELETE", f"/projects/team/members/{mid}")
    await api.maybe("DELETE", "/users/{}", f"/users/{eve_id}")
    await api.call("DELETE", "/projects/named")
    await api.call("DELETE", hook_path)

    assert not served, "\n".join(served)
    assert not harbor.failures, "\n".join(harbor.failures)
    ours, missed, unknown = set(), set(), set()
    for op, spec in api.documented.items():
        answers_2xx = any(s.startswith("2") for s in spec["responses"])
        if spec.get("summary", "").startswith("tokenserver:"):
            ours.add(op)
        elif op in HARBOR_OPERATIONS:
            if answers_2xx and op not in harbor.answered:
                missed.add(op)
        elif op not in NEWER_THAN_THE_CLIENT:
            unknown.add(op)
    assert not missed, f"documented operations this test does not drive to a 2xx: {missed}"
    assert not unknown, f"operations Harbor does not define, not marked tokenserver: {unknown}"
    assert ours == {
        ("GET", "/robots/{}/refresh-tokens"),
        ("DELETE", "/robots/{}/refresh-tokens"),
        ("DELETE", "/robots/{}/refresh-tokens/{}"),
        ("DELETE", "/robots/{}/previous-secret"),
        ("GET", "/robots/{}/federation"),
        ("PUT", "/robots/{}/federation"),
        ("GET", "/robots/{}/federation/failures"),
        ("GET", "/robots/{}/federation/logins"),
        ("GET", "/federation/issuers"),
        ("POST", "/federation/issuers"),
        ("GET", "/federation/issuers/{}"),
        ("DELETE", "/federation/issuers/{}"),
        ("GET", "/system/webhook/policies"),
        ("POST", "/system/webhook/policies"),
        ("GET", "/system/webhook/policies/{}"),
        ("PUT", "/system/webhook/policies/{}"),
        ("DELETE", "/system/webhook/policies/{}"),
        ("GET", "/system/webhook/policies/{}/executions"),
        ("GET", "/system/webhook/policies/{}/executions/{}/tasks"),
        ("GET", "/system/webhook/events"),
    }
