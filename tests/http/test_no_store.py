"""No cache, shared or the browser's, may keep an answer that carries a secret: every such
answer says `Cache-Control: no-store` and `Pragma: no-cache` (and so does every other API
answer; only the web page's static files state their own caching)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.http.conftest import Server, basic

API = "/api/v2.0"
TOKEN = "/service/token"
ADMIN_PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", ADMIN_PASSWORD)
ROBOT = {
    "name": "ci",
    "level": "project",
    "duration": -1,
    "permissions": [
        {"kind": "project", "namespace": "p",
         "access": [{"resource": "repository", "action": "pull"}]}
    ],
}  # fmt: skip


@pytest.fixture
async def api(server: Server) -> Server:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    r = await server.client.post(f"{API}/projects", json={"project_name": "p"}, headers=ADMIN)
    assert r.status == 201, await r.text()
    return server


def assert_not_stored(response: ClientResponse) -> None:
    assert response.headers.get("Cache-Control") == "no-store", dict(response.headers)
    assert response.headers.get("Pragma") == "no-cache", dict(response.headers)


async def test_attack_new_robot_secret_cached_by_a_proxy(api: Server) -> None:
    r = await api.client.post(f"{API}/robots", json=ROBOT, headers=ADMIN)
    assert r.status == 201, await r.text()
    assert (await r.json())["secret"]
    assert_not_stored(r)
    again = await api.client.post(f"{API}/robots", json=ROBOT, headers=ADMIN)
    assert again.status == 409
    assert_not_stored(again)


@pytest.mark.parametrize("body", [{}, {"secret": "Manu4lSecret"}, {"restart_expiry": True}])
async def test_attack_refreshed_robot_secret_cached_by_a_proxy(
    api: Server, body: dict[str, Any]
) -> None:
    r = await api.client.post(f"{API}/robots", json=ROBOT, headers=ADMIN)
    robot_id = (await r.json())["id"]
    r = await api.client.patch(f"{API}/robots/{robot_id}", json=body, headers=ADMIN)
    assert r.status == 200, await r.text()
    assert_not_stored(r)


async def test_attack_token_and_refresh_token_cached_by_a_proxy(api: Server) -> None:
    r = await api.client.get(f"{TOKEN}?offline_token=true&client_id=docker", headers=ADMIN)
    assert r.status == 200, await r.text()
    assert (await r.json())["refresh_token"]
    assert_not_stored(r)
    r = await api.client.post(
        TOKEN,
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD,
              "access_type": "offline"},
    )  # fmt: skip
    assert r.status == 200, await r.text()
    assert_not_stored(r)


async def test_attack_web_session_and_csrf_token_cached_by_a_proxy(api: Server) -> None:
    r = await api.client.post("/c/login", json={"principal": "admin", "password": ADMIN_PASSWORD})
    assert r.status == 200, await r.text()
    assert (await r.json())["csrf_token"]
    assert_not_stored(r)
    r = await api.client.get("/c/session")
    assert r.status == 200, await r.text()
    assert (await r.json())["csrf_token"]
    assert_not_stored(r)
    r = await api.client.get("/c/log_out")
    assert_not_stored(r)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{API}/users", {"username": "judy", "password": "Us3rPassword"}),
        ("GET", f"{API}/users", None),
        ("GET", f"{API}/robots?q=Level%3Dproject,ProjectID%3D1", None),
        ("GET", f"{API}/audit-logs", None),
        ("GET", f"{API}/nothing-here", None),
    ],
)
async def test_every_api_answer_is_kept_out_of_caches(
    api: Server, method: str, path: str, body: Any
) -> None:
    r = await api.client.request(method, path, json=body, headers=ADMIN)
    assert r.status < 500, await r.text()
    assert_not_stored(r)


async def test_an_error_answer_is_kept_out_of_caches_too(api: Server) -> None:
    r = await api.client.get(TOKEN, headers=basic("admin", "Wr0ngPassword"))
    assert r.status == 401
    assert_not_stored(r)


async def test_the_static_page_keeps_its_own_caching(api: Server) -> None:
    r = await api.client.get("/")
    assert r.status == 200
    assert r.headers["Cache-Control"] == "no-cache"
    assert "Pragma" not in r.headers
