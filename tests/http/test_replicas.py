"""Two replicas (two applications, each with its own runtime, caches and connection pool) on
one PostgreSQL database: what one changes, the other honours once the change's notification
has reached it (`synced`: milliseconds, scripts/bench measures it), and the changer at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, basic
from tests.postgres import PostgresServer
from tokenserver.config import Settings
from tokenserver.domain.models import LOCAL
from tokenserver.http import app as app_module
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.runtime import Runtime

API = "/api/v2.0"
TOKEN = "/service/token"
PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", PASSWORD)
SCOPE = {"service": "registry", "scope": "repository:p/app:pull,push"}

Client = TestClient[web.Request, web.Application]


@dataclass
class Replicas:
    a: Client
    b: Client
    settings: Settings
    apps: dict[str, web.Application]

    def runtime(self, replica: str) -> Runtime:
        return self.apps[replica][RUNTIME]

    async def robot(self, name: str = "ci", *actions: str) -> dict[str, Any]:
        """A robot created through replica A's REST API: {id, name, secret}."""
        body = {
            "name": name,
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "p",
                    "access": [
                        {"resource": "repository", "action": a} for a in actions or ("pull", "push")
                    ],
                }
            ],
        }
        r = await self.a.post(f"{API}/robots", json=body, headers=ADMIN)
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
        return created


async def synced(replicas: Replicas, replica: str) -> None:
    """Until `replica`'s read cache has heard of every change committed so far."""
    await replicas.runtime(replica).store.sync_cache()


async def granted(client: Client, name: str, secret: str) -> list[str]:
    """The actions a token from `client` grants on p/app; [] for a refusal (401)."""
    r = await client.get(TOKEN, params=SCOPE, headers=basic(name, secret))
    if r.status == 401:
        return []
    assert r.status == 200, await r.text()
    claims = jwt.decode((await r.json())["token"], options={"verify_signature": False})
    return [action for entry in claims["access"] for action in entry["actions"]]


@pytest.fixture
async def replicas(
    postgres: PostgresServer, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> Replicas:
    settings = make_settings(database__url=postgres.emptied_database())
    apps = {"a": create_app(settings), "b": create_app(settings)}
    a, b = await aiohttp_client(apps["a"]), await aiohttp_client(apps["b"])
    await apps["a"][RUNTIME].users.ensure_admin(PASSWORD)
    r = await a.post(f"{API}/projects", json={"project_name": "p"}, headers=ADMIN)
    assert r.status == 201, await r.text()
    return Replicas(a, b, settings, apps)


async def test_a_robot_created_on_one_replica_authenticates_on_the_other(
    replicas: Replicas,
) -> None:
    robot = await replicas.robot("ci", "pull")
    assert await granted(replicas.b, robot["name"], robot["secret"]) == ["pull"]
    assert await granted(replicas.a, robot["name"], robot["secret"]) == ["pull"]


@pytest.mark.parametrize("change", ["refresh secret", "disable", "delete", "permissions"])
async def test_a_change_on_one_replica_counts_on_the_other_once_notified(
    replicas: Replicas, change: str
) -> None:
    robot = await replicas.robot()
    name, secret, path = robot["name"], robot["secret"], f"{API}/robots/{robot['id']}"
    await synced(replicas, "b")
    # B has verified the secret and holds it, and the robot's row, in its caches.
    for _ in range(3):
        assert await granted(replicas.b, name, secret) == ["pull", "push"]
    if change == "refresh secret":
        r = await replicas.a.patch(path, json={"secret": "N3wSecretValue"}, headers=ADMIN)
        assert r.status == 200, await r.text()
        assert await granted(replicas.a, name, secret) == []  # A: at once
        await synced(replicas, "b")
        assert await granted(replicas.b, name, secret) == []
        assert await granted(replicas.b, name, "N3wSecretValue") == ["pull", "push"]
    elif change == "delete":
        assert (await replicas.a.delete(path, headers=ADMIN)).status == 200
        assert await granted(replicas.a, name, secret) == []
        await synced(replicas, "b")
        assert await granted(replicas.b, name, secret) == []
    else:
        body = await (await replicas.a.get(path, headers=ADMIN)).json()
        if change == "disable":
            body["disable"] = True
        else:
            body["permissions"][0]["access"] = [{"resource": "repository", "action": "pull"}]
        r = await replicas.a.put(path, json=body, headers=ADMIN)
        assert r.status == 200, await r.text()
        expected = [] if change == "disable" else ["pull"]
        assert await granted(replicas.a, name, secret) == expected
        await synced(replicas, "b")
        assert await granted(replicas.b, name, secret) == expected


async def test_a_replica_whose_listener_is_ended_still_honours_every_change(
    replicas: Replicas,
) -> None:
    """B's listening connection is ended (pg_terminate_backend) between A's changes: B
    serves from the database until it listens again, and never the robot as it was."""
    robot = await replicas.robot()
    name, secret, path = robot["name"], robot["secret"], f"{API}/robots/{robot['id']}"
    store = replicas.runtime("b").store
    cache = getattr(store, "_cache", None)
    assert cache is not None
    for round_ in range(4):
        await synced(replicas, "b")
        assert await granted(replicas.b, name, secret) == ["pull", "push"]
        pid = cache.listener_pid()
        if pid is not None:
            await store._rows("SELECT pg_terminate_backend(?, 10000)", (pid,))
        body = await (await replicas.a.get(path, headers=ADMIN)).json()
        body["disable"] = True
        assert (await replicas.a.put(path, json=body, headers=ADMIN)).status == 200
        await synced(replicas, "b")
        assert await granted(replicas.b, name, secret) == [], round_
        body["disable"] = False
        assert (await replicas.a.put(path, json=body, headers=ADMIN)).status == 200


async def test_refresh_tokens_audit_and_web_sessions_are_shared(replicas: Replicas) -> None:
    robot = await replicas.robot()
    offline = {**SCOPE, "offline_token": "true", "client_id": "docker"}
    r = await replicas.a.get(TOKEN, params=offline, headers=basic(robot["name"], robot["secret"]))
    refresh = (await r.json())["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": "registry",
            "scope": SCOPE["scope"], "client_id": "docker"}  # fmt: skip
    assert (await replicas.b.post(TOKEN, data=form)).status == 200
    # Revoked through B: refused on A.
    path = f"{API}/robots/{robot['id']}/refresh-tokens"
    assert (await replicas.b.delete(path, headers=ADMIN)).status == 200
    assert (await replicas.a.post(TOKEN, data=form)).status == 401

    r = await replicas.b.get(f"{API}/audit-logs?page_size=50", headers=ADMIN)
    operations = [(e["operation"], e["resource"]) for e in await r.json()]
    assert ("create", "robot$p+ci") in operations  # the robot, created through A

    login = await replicas.a.post("/c/login", json={"principal": "admin", "password": PASSWORD})
    assert login.status == 200, await login.text()
    cookie = login.cookies["sid"].value
    r = await replicas.b.get("/c/session", cookies={"sid": cookie})
    assert r.status == 200 and (await r.json())["username"] == "admin"
    assert (await replicas.b.post("/c/log_out", cookies={"sid": cookie})).status == 200
    assert (await replicas.a.get("/c/session", cookies={"sid": cookie})).status == 401


async def test_a_lockout_on_one_replica_stops_the_other(replicas: Replicas) -> None:
    """The failure scores are the database's (README, "Replicas"; the threshold across
    replicas is tested in test_shared_lockouts.py). Before, B still answered a client that A
    had locked out, and locked it out only after B's own threshold."""
    robot = await replicas.robot()
    threshold = replicas.settings.security.lockout_threshold
    statuses = [
        (
            await replicas.a.get(TOKEN, params=SCOPE, headers=basic(robot["name"], f"wrong{i}"))
        ).status
        for i in range(threshold + 1)
    ]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    r = await replicas.b.get(TOKEN, params=SCOPE, headers=basic(robot["name"], "wrong-on-b"))
    assert r.status == 429
    r = await replicas.b.get(TOKEN, params=SCOPE, headers=basic(robot["name"], robot["secret"]))
    assert r.status == 429


@pytest.fixture
def quick_key_poll(monkeypatch: pytest.MonkeyPatch) -> float:
    """Servers started from now on look for a newly activated key every this many seconds,
    not every KEY_POLL_SECONDS: the test waits for them to see it, which took two seconds."""
    monkeypatch.setattr(app_module, "KEY_POLL_SECONDS", 0.05)
    return 0.05


async def test_a_key_activated_through_one_replica_signs_on_both(
    quick_key_poll: float, replicas: Replicas
) -> None:
    robot = await replicas.robot()
    keyring = replicas.runtime("a").keyring
    added = await keyring.add(LOCAL)
    await keyring.activate(LOCAL, added.id)
    new_kid = keyring.load(added).kid

    async def kid(client: Client) -> str:
        r = await client.get(TOKEN, params=SCOPE, headers=basic(robot["name"], robot["secret"]))
        header: str = jwt.get_unverified_header((await r.json())["token"])["kid"]
        return header

    for _ in range(600):  # 30 s at most
        if await kid(replicas.a) == new_kid and await kid(replicas.b) == new_kid:
            return
        await asyncio.sleep(quick_key_poll)
    pytest.fail("a replica never switched to the activated key")
