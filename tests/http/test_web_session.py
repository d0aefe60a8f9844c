"""The web page's session login: cookie, CSRF, expiry, logout, robots refused; the page's
files and headers. (The page itself is driven in a real browser in tests/e2e/test_web.py.)"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, basic, serving
from tokenserver.http.app import create_app
from tokenserver.services.sessions import KEEP_PER_USER

PASSWORD = "Adm1nPassword"
XHR = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture
async def admin(server: Server) -> Server:
    await server.runtime.users.ensure_admin(PASSWORD)
    return server


async def log_in(server: Server, user: str = "admin", password: str = PASSWORD) -> str:
    r = await server.client.post("/c/login", json={"principal": user, "password": password})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["username"] == user and body["name_prefix"] == "robot$"
    assert r.headers["X-Harbor-CSRF-Token"] == body["csrf_token"]
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    csrf: str = body["csrf_token"]
    return csrf


async def test_a_session_reads_and_changes_with_the_csrf_token(admin: Server) -> None:
    csrf = await log_in(admin)
    r = await admin.client.get("/api/v2.0/users/current")
    assert r.status == 200 and (await r.json())["username"] == "admin"
    r = await admin.client.get("/c/session")
    assert (await r.json())["csrf_token"] == csrf and (await r.json())["sysadmin"] is True
    r = await admin.client.post("/api/v2.0/projects", json={"project_name": "no-csrf"})
    assert r.status == 403
    assert "CSRF" in (await r.json())["errors"][0]["message"]
    r = await admin.client.post(
        "/api/v2.0/projects",
        json={"project_name": "no-csrf"},
        headers={"X-Harbor-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")},
    )
    assert r.status == 403
    r = await admin.client.post(
        "/api/v2.0/projects",
        json={"project_name": "with-csrf"},
        headers={"X-Harbor-CSRF-Token": csrf},
    )
    assert r.status == 201
    assert await admin.runtime.store.find_project("no-csrf") is None


async def test_logout_ends_the_session(admin: Server) -> None:
    await log_in(admin)
    r = await admin.client.get("/c/log_out")
    assert r.status == 200
    r = await admin.client.get("/api/v2.0/users/current", headers=XHR)
    assert r.status == 401
    assert "WWW-Authenticate" not in r.headers  # the page's requests get no Basic prompt
    r = await admin.client.get("/c/session")
    assert r.status == 401


async def test_an_expired_or_forged_session_is_refused(admin: Server) -> None:
    await log_in(admin)
    with sqlite3.connect(admin.settings.database.path) as db:
        db.execute("UPDATE web_session SET expires_at = 1")
    r = await admin.client.get("/api/v2.0/users/current")
    assert r.status == 401
    assert "log in again" in (await r.json())["errors"][0]["message"]
    admin.client.session.cookie_jar.update_cookies({"sid": "forged"})
    r = await admin.client.get("/c/session")
    assert r.status == 401


async def test_a_password_change_ends_the_users_sessions(admin: Server) -> None:
    await log_in(admin)
    user = await admin.runtime.store.find_user("admin")
    assert user is not None
    r = await admin.client.put(
        f"/api/v2.0/users/{user.id}/password",
        json={"old_password": PASSWORD, "new_password": "N3wPassword"},
        headers=basic("admin", PASSWORD),
    )
    assert r.status == 200, await r.text()
    r = await admin.client.get("/api/v2.0/users/current")
    assert r.status == 401


async def test_robots_cannot_log_in_and_nothing_is_stored(admin: Server) -> None:
    robot = await admin.robot("p", "ci", "repository:pull")
    r = await admin.client.post(
        "/c/login", json={"principal": robot.name, "password": robot.secret}
    )
    assert r.status == 401
    assert "robot accounts cannot log in" in (await r.json())["errors"][0]["message"]
    assert "Set-Cookie" not in r.headers
    r = await admin.client.post("/c/login", json={"principal": "admin", "password": "wrong"})
    assert r.status == 401
    with sqlite3.connect(admin.settings.database.path) as db:
        assert db.execute("SELECT count(*) FROM web_session").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("principal=admin&password=x", "application/x-www-form-urlencoded", 400),
        ("{not json", "application/json", 400),
        ('{"principal": 5, "password": "x"}', "application/json", 401),
        ('{"principal": "admin"}', "application/json", 401),
    ],
)
async def test_bad_login_requests_get_clear_errors(
    admin: Server, body: str, content_type: str, status: int
) -> None:
    r = await admin.client.post("/c/login", data=body, headers={"Content-Type": content_type})
    assert r.status == status
    assert (await r.json())["errors"][0]["message"]


async def test_the_session_token_is_stored_only_hashed(admin: Server) -> None:
    await log_in(admin)
    cookie = admin.client.session.cookie_jar.filter_cookies(admin.client.make_url("/"))["sid"]
    dump = "\n".join(sqlite3.connect(admin.settings.database.path).iterdump())
    assert cookie.value not in dump and len(cookie.value) >= 40


async def test_the_page_and_its_files_are_served_with_a_strict_policy(server: Server) -> None:
    r = await server.client.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    assert "/ui/app.js" in await r.text()
    policy = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert r.headers["X-Frame-Options"] == "DENY"
    r = await server.client.get("/ui/app.css")
    assert r.status == 200 and r.content_type == "text/css"
    # Every module the page imports, followed from app.js, is served as JavaScript.
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        r = await server.client.get(f"/ui/{name}")
        assert r.status == 200 and r.content_type == "text/javascript", name
        imported = re.findall(r'^import [^;]* from "\./([a-z]+\.js)";$', await r.text(), re.M)
        pending += [m for m in imported if m not in seen]
    assert {"core.js", "permissions.js", "robots.js", "federation.js"} <= seen
    r = await server.client.get("/ui/..%2Fwebui.py")
    assert r.status == 404
    r = await server.client.get("/ui/index.html.bak")
    assert r.status == 404


async def test_the_page_can_be_turned_off(
    make_settings: MakeSettings,
    aiohttp_client: Callable[
        [web.Application], Awaitable[TestClient[web.Request, web.Application]]
    ],
) -> None:
    client = await aiohttp_client(create_app(make_settings(web__enabled=False)))
    assert (await client.get("/")).status == 404
    assert (await client.post("/c/login", json={})).status == 404
    assert (await client.get("/api/v2.0/projects")).status == 200


async def test_the_session_tells_the_page_the_token_lifetimes(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    """The robot dialog says what an empty token lifetime means and what the bound is; the
    Kubernetes pull secret form starts from the realm's host, as the command line does."""
    settings = make_settings(
        token__lifetime=900,
        token__max_lifetime=7200,
        server__realm="https://registry.example.com:5443/service/token",
    )
    async with serving(settings, aiohttp_client) as server:
        await server.runtime.users.ensure_admin(PASSWORD)
        await log_in(server)
        body = await (await server.client.get("/c/session")).json()
    assert body["token_lifetime"] == 900 and body["token_max_lifetime"] == 7200
    assert body["registry"] == "registry.example.com:5443"


async def test_the_session_gives_the_configured_registry(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    settings = make_settings(
        server__realm="https://tokens.example.com/service/token",
        server__registry="registry.example.com:5000",
    )
    async with serving(settings, aiohttp_client) as server:
        await server.runtime.users.ensure_admin(PASSWORD)
        await log_in(server)
        body = await (await server.client.get("/c/session")).json()
    assert body["registry"] == "registry.example.com:5000"


async def test_permissions_lists_what_a_robot_may_hold(admin: Server) -> None:
    r = await admin.client.get("/api/v2.0/permissions", headers=basic("admin", PASSWORD))
    body = await r.json()
    assert {"resource": "repository", "action": "push"} in body["project"]
    assert {"resource": "catalog", "action": "read"} in body["system"]
    assert (await admin.client.get("/api/v2.0/permissions")).status == 401


async def test_attack_logins_add_sessions_without_bound(admin: Server) -> None:
    """Every login stored a session until it expired: a user (or a stolen password) could
    add rows at hundreds a second. The newest KEEP_PER_USER live; older ones end."""
    for _ in range(KEEP_PER_USER + 10):
        r = await admin.client.post("/c/login", json={"principal": "admin", "password": PASSWORD})
        assert r.status == 200
    with sqlite3.connect(admin.settings.database.path) as db:
        assert db.execute("SELECT count(*) FROM web_session").fetchone()[0] == KEEP_PER_USER
    # The client's newest session (its cookie) still works.
    assert (await admin.client.get("/c/session")).status == 200
