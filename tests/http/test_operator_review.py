"""What a first day as a registry operator found: the product against Harbor's behaviour and
its own rules (input a database cannot hold is a clear 4xx naming the field, on SQLite and
PostgreSQL alike)."""

from __future__ import annotations

from base64 import b64decode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import AiohttpClient, basic
from tests.http.test_api import api
from tests.postgres import PostgresServer
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

__all__ = ["api"]  # the fixture, shared with tests/http/test_api.py

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
        settings = make_settings(database__url=server.migrated_database())
    app = create_app(with_migrated_database(settings))
    client = await aiohttp_client(app)
    await app[RUNTIME].users.ensure_admin(PASSWORD)
    r = await client.post(f"{API}/projects", json={"project_name": "p"}, headers=ADMIN)
    assert r.status == 201, await r.text()
    return client


async def robot(client: Client, name: str) -> tuple[int, dict[str, str]]:
    body = {
        "name": name,
        "level": "project",
        "duration": -1,
        "permissions": [
            {
                "kind": "project",
                "namespace": "p",
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }
    r = await client.post(f"{API}/robots", json=body, headers=ADMIN)
    assert r.status == 201, await r.text()
    created = await r.json()
    return created["id"], basic(created["name"], created["secret"])


# ---- the token endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        (
            "POST",
            TOKEN,
            {
                "grant_type": "password",
                "username": "USER",
                "password": "SECRET",
                "service": "registry",
                "access_type": "offline",
                "client_id": "a\u0000b",
                "scope": "repository:p/app:pull",
            },
        ),
        ("GET", f"{TOKEN}?service=registry&offline_token=true&client_id=a%00b", None),
    ],
)
async def test_a_nul_in_client_id_is_a_400_naming_it_on_both_databases(
    client: Client, method: str, path: str, form: dict[str, str] | None
) -> None:
    """A refresh token's `client_id` is stored. On PostgreSQL a NUL in it was a 400 whose
    message named no field ("text must not contain NUL characters and numbers must fit in 64
    bits"), after the secret was checked; on SQLite the same login succeeded and stored the
    NUL (listed as `a\\x00b` by `robot refresh-tokens`). One answer on both, naming the field."""
    _, headers = await robot(client, "ci")
    if form is not None:
        username, secret = _credentials(headers)
        form = {**form, "username": username, "password": secret}
        r = await client.post(path, data=form)
    else:
        r = await client.get(path, headers=headers)
    assert r.status == 400, await r.text()
    (entry,) = (await r.json())["errors"]
    assert "client_id" in entry["message"]


def _credentials(headers: dict[str, str]) -> tuple[str, str]:
    decoded = b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    username, _, secret = decoded.partition(":")
    return username, secret
