"""Input a database cannot hold (NUL characters, integers past 64 bits): SQLite takes some
that PostgreSQL refuses. On both, each is a clear 4xx with the JSON envelope, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import AiohttpClient, basic
from tests.http.test_unencodable_input import robot_body
from tests.postgres import PostgresServer
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

API = "/api/v2.0"
TOKEN = "/service/token"
PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", PASSWORD)

Client = TestClient[web.Request, web.Application]


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> Client:
    if request.param == "sqlite":
        settings = make_settings()
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        settings = make_settings(database__url=server.emptied_database())
    app = create_app(with_migrated_database(settings))
    client = await aiohttp_client(app)
    await app[RUNTIME].users.ensure_admin(PASSWORD)
    r = await client.post(f"{API}/projects", json={"project_name": "p"}, headers=ADMIN)
    assert r.status == 201, await r.text()
    return client


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", f"{API}/projects", {"project_name": "nul\u0000"}, ADMIN, 400),
        ("GET", f"{API}/projects?name=a%00b", None, ADMIN, 200),
        ("GET", f"{API}/projects/99999999999999999999999", None, ADMIN, 400),
        ("GET", f"{API}/robots/99999999999999999999999", None, ADMIN, 400),
        ("DELETE", f"{API}/robots/99999999999999999999999", None, ADMIN, 400),
        ("GET", f"{API}/robots?q=name%3D~a%00", None, ADMIN, 200),
        ("GET", f"{API}/users?username=a%00", None, ADMIN, 200),
        ("GET", f"{API}/users/99999999999999999999999", None, ADMIN, 400),
        ("GET", f"{TOKEN}?service=registry&scope=repository:p/a%00:pull", None, {}, 400),
        ("GET", TOKEN, None, basic("robot$p+c\u0000i", "Secr3tValue"), 401),
        ("GET", TOKEN, None, basic("ad\u0000min", "Secr3tValue"), 401),
        ("POST", "/c/login", {"principal": "ad\u0000min", "password": "x"}, {}, 401),
    ],
)
async def test_unstorable_input_is_a_clear_answer(
    client: Client, method: str, path: str, body: Any, headers: dict[str, str], status: int
) -> None:
    r = await client.request(method, path, json=body, headers=headers)
    assert r.status == status, await r.text()
    if status >= 400:
        assert "errors" in await r.json()


async def test_a_nul_in_a_robot_description_is_refused(client: Client) -> None:
    body = robot_body(description="a\u0000b")
    r = await client.post(f"{API}/robots", json=body, headers=ADMIN)
    assert r.status == 400, await r.text()
    body["description"] = "fine"
    r = await client.post(f"{API}/robots", json=body, headers=ADMIN)
    assert r.status == 201, await r.text()
    robot_id = (await r.json())["id"]
    current = await (await client.get(f"{API}/robots/{robot_id}", headers=ADMIN)).json()
    r = await client.put(
        f"{API}/robots/{robot_id}", json={**current, "description": "x\u0000"}, headers=ADMIN
    )
    assert r.status == 400, await r.text()
    after = await (await client.get(f"{API}/robots/{robot_id}", headers=ADMIN)).json()
    assert after["description"] == "fine"


def _form(grant: str, **fields: str) -> dict[str, str]:
    return {"grant_type": grant, "service": "registry", "access_type": "offline", **fields}


@pytest.mark.parametrize("secret", ["right", "wrong"])
@pytest.mark.parametrize("how", ["GET", "password", "refresh_token"])
async def test_a_nul_in_client_id_is_a_400_naming_it_before_any_credential_check(
    client: Client, how: str, secret: str
) -> None:
    """A refresh token's `client_id` is stored. On PostgreSQL a NUL in it was a 400 whose
    message named no field ("text must not contain NUL characters and numbers must fit in 64
    bits"), after the secret was checked; on SQLite the same login succeeded and stored the
    NUL (listed as `a\\x00b` by `robot refresh-tokens`). One answer on both, naming the field,
    whether the credentials are right or not (the exchange: tests/http/test_token_exchange.py)."""
    r = await client.post(f"{API}/robots", json=robot_body(), headers=ADMIN)
    assert r.status == 201, await r.text()
    created = await r.json()
    name, password = created["name"], created["secret"] if secret == "right" else "Wr0ngSecret"
    if how == "GET":
        r = await client.get(
            TOKEN,
            params={"service": "registry", "offline_token": "true", "client_id": "a\u0000b"},
            headers=basic(name, password),
        )
    elif how == "password":
        form = _form("password", username=name, password=password, client_id="a\u0000b")
        r = await client.post(TOKEN, data=form)
    else:
        form = _form("password", username=name, password=created["secret"], client_id="docker")
        refresh = (await (await client.post(TOKEN, data=form)).json())["refresh_token"]
        token = refresh if secret == "right" else "tsr_unknown"
        r = await client.post(
            TOKEN, data=_form("refresh_token", refresh_token=token, client_id="a\u0000b")
        )
    assert r.status == 400, await r.text()
    (entry,) = (await r.json())["errors"]
    assert entry["message"] == "client_id must not contain a NUL character"
    assert client.app is not None
    stored = await client.app[RUNTIME].store.list_refresh_tokens(robot_id=created["id"])
    assert [t.client_id for t in stored] == (["docker"] if how == "refresh_token" else [])
