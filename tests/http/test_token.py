"""GET /service/token, rule by rule."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse
from cryptography import x509

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, basic
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.keys import libtrust_kid
from tokenserver.runtime import open_runtime

TOKEN = "/service/token"


def public_key(server: Server) -> Any:
    return x509.load_pem_x509_certificate(
        server.settings.token.certificate.read_bytes()
    ).public_key()


def claims(server: Server, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token,
        public_key(server),
        algorithms=[server.settings.token.algorithm],
        audience=server.settings.token.service,
        issuer=server.settings.token.issuer,
    )
    return decoded


async def access(response: ClientResponse, server: Server) -> list[dict[str, Any]]:
    assert response.status == 200, await response.text()
    body = await response.json()
    result: list[dict[str, Any]] = claims(server, body["token"])["access"]
    return result


async def error(response: ClientResponse, status: int) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"errors"}
    (entry,) = body["errors"]
    assert set(entry) == {"code", "message"}
    message: str = entry["message"]
    return message


async def test_robot_gets_a_token_the_registry_can_verify(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull", "repository:push")
    response = await server.client.get(
        TOKEN,
        params={"service": "registry", "scope": "repository:p/app:pull,push"},
        headers=robot.headers,
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 1800
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == libtrust_kid(public_key(server))
    c = claims(server, body["token"])
    assert set(c) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    assert c["iss"] == "tokenserver"
    assert c["aud"] == "registry"  # a string, never a list
    assert c["sub"] == "robot$p+ci"
    assert c["exp"] - c["iat"] == 1800
    assert c["nbf"] == c["iat"]
    assert c["access"] == [{"type": "repository", "name": "p/app", "actions": ["pull", "push"]}]


async def test_rs256_tokens(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> None:
    settings = make_settings(token__algorithm="RS256", token__lifetime=60)
    app = create_app(settings)
    server = Server(await aiohttp_client(app), app[RUNTIME], settings)
    robot = await server.robot("p", "ci", "repository:pull")
    response = await server.client.get(
        TOKEN, params={"scope": "repository:p/app:pull"}, headers=robot.headers
    )
    body = await response.json()
    assert jwt.get_unverified_header(body["token"])["alg"] == "RS256"
    assert body["expires_in"] == 60
    assert claims(server, body["token"])["access"][0]["actions"] == ["pull"]


async def test_jti_is_unique(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    jtis = set()
    for _ in range(5):
        response = await server.client.get(TOKEN, headers=robot.headers)
        jtis.add(claims(server, (await response.json())["token"])["jti"])
    assert len(jtis) == 5


async def test_repeated_and_space_separated_scopes(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:push")
    response = await server.client.get(
        TOKEN,
        params=[
            ("scope", "repository:p/a:pull repository:p/b:push"),
            ("scope", "repository:p/c:pull"),
        ],
        headers=robot.headers,
    )
    assert await access(response, server) == [
        {"type": "repository", "name": "p/a", "actions": ["pull"]},
        {"type": "repository", "name": "p/b", "actions": ["push"]},
        {"type": "repository", "name": "p/c", "actions": ["pull"]},
    ]


@pytest.mark.parametrize(
    ("permissions", "scope", "granted"),
    [
        (["repository:pull"], "repository:p/app:pull,push", ["pull"]),
        (["repository:push"], "repository:p/app:push,pull", ["push", "pull"]),
        (["repository:push"], "repository:p/app:pull", ["pull"]),
        (["repository:pull"], "repository:p/app:delete", []),
        (["repository:push", "artifact:delete"], "repository:p/app:*", ["pull", "push", "delete"]),
        (["repository:pull"], "repository:p/app:*", ["pull"]),
        (["artifact:delete"], "repository:p/app:delete", ["delete"]),
        (["helm-chart:read", "tag:create"], "repository:p/app:pull", []),
        (["repository:pull"], "repository(plugin):p/app:pull", ["pull"]),
        (["repository:pull"], "repository:other/app:pull", []),
        (["repository:pull"], "repository:127.0.0.1:5000/p/app:pull", []),
        (["repository:pull"], "registry:catalog:*", []),
        (["repository:pull"], "unknown:p/app:pull", []),
    ],
)
async def test_grant_is_requested_intersect_permitted(
    server: Server, permissions: list[str], scope: str, granted: list[str]
) -> None:
    robot = await server.robot("p", "ci", *permissions)
    response = await server.client.get(TOKEN, params={"scope": scope}, headers=robot.headers)
    (entry,) = await access(response, server)
    assert entry["actions"] == granted
    assert entry["type"] == scope.split(":")[0].split("(")[0]


async def test_cross_repository_mount_gets_both_entries(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:push")
    await server.robot("q", "other", "repository:pull")
    response = await server.client.get(
        TOKEN,
        params=[("scope", "repository:p/dst:pull,push"), ("scope", "repository:q/src:pull")],
        headers=robot.headers,
    )
    assert await access(response, server) == [
        {"type": "repository", "name": "p/dst", "actions": ["pull", "push"]},
        {"type": "repository", "name": "q/src", "actions": []},
    ]


async def test_robot_may_pull_public_projects_but_not_push(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:push")
    await server.runtime.projects.create(LOCAL, "pub", public=True)
    response = await server.client.get(
        TOKEN, params={"scope": "repository:pub/app:pull,push,delete"}, headers=robot.headers
    )
    assert (await access(response, server))[0]["actions"] == ["pull"]


async def test_login_without_scope_gets_a_token_with_no_access(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    response = await server.client.get(
        TOKEN,
        params={"service": "registry", "account": robot.name, "offline_token": "true"},
        headers=robot.headers,
    )
    assert await access(response, server) == []


@pytest.mark.parametrize("scope", [None, "repository:p/app:pull"])
async def test_wrong_secret_is_401_with_a_basic_challenge(
    server: Server, scope: str | None
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    params = {"scope": scope} if scope else {}
    response = await server.client.get(
        TOKEN, params=params, headers=basic(robot.name, robot.secret + "x")
    )
    assert await error(response, 401) == "invalid username or password"
    assert response.headers["WWW-Authenticate"] == (
        'Basic realm="http://127.0.0.1:8080/service/token"'
    )


@pytest.mark.parametrize(
    "username", ["robot$p+nobody", "robot$nope+ci", "admin", "p+ci", "robot$P+ci", "ü"]
)
async def test_unknown_accounts_are_401(server: Server, username: str) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    response = await server.client.get(
        TOKEN, params={"scope": "repository:p/app:pull"}, headers=basic(username, robot.secret)
    )
    assert await error(response, 401) == "invalid username or password"


async def test_anonymous_without_scope_is_challenged(server: Server) -> None:
    response = await server.client.get(TOKEN, params={"service": "registry"})
    await error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="')


async def test_anonymous_pulls_public_projects_only(server: Server) -> None:
    await server.runtime.projects.create(LOCAL, "pub", public=True)
    await server.runtime.projects.create(LOCAL, "priv")
    response = await server.client.get(
        TOKEN,
        params=[
            ("scope", "repository:pub/app:pull,push"),
            ("scope", "repository:priv/app:pull"),
            ("scope", "repository:missing/app:pull"),
        ],
    )
    assert (await response.json()).keys() >= {"token"}
    body = await response.json()
    c = claims(server, body["token"])
    assert c["sub"] == ""
    assert c["access"] == [
        {"type": "repository", "name": "pub/app", "actions": ["pull"]},
        {"type": "repository", "name": "priv/app", "actions": []},
        {"type": "repository", "name": "missing/app", "actions": []},
    ]


async def test_wrong_service_is_400(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    response = await server.client.get(
        TOKEN, params={"service": "other", "scope": "repository:p/a:pull"}, headers=robot.headers
    )
    assert "unknown service" in await error(response, 400)


@pytest.mark.parametrize(
    "scope",
    [
        "repository:p/app",
        "repository:P/App:pull",
        "repository:p/../etc:pull",
        "repository:p/%25:pull",
        "repository:p/ápp:pull",
        "repository:p/app:",
        "repository:p/" + "a" * 600 + ":pull",
    ],
)
async def test_malformed_scope_is_400(server: Server, scope: str) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    response = await server.client.get(TOKEN, params={"scope": scope}, headers=robot.headers)
    assert "scope" in await error(response, 400)


async def test_too_many_scopes_is_400(server: Server) -> None:
    response = await server.client.get(
        TOKEN, params=[("scope", f"repository:p/a{i}:pull") for i in range(101)]
    )
    assert "too many scopes" in await error(response, 400)


async def test_non_utf8_query_is_a_client_error(server: Server) -> None:
    response = await server.client.get(TOKEN + "?scope=repository:p/%ff%fe:pull")
    await error(response, 400)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Basic !!!notbase64", 400),
        ("Basic " + "cm9ib3Q=", 400),  # "robot": no colon
        ("Basic //79/g==", 400),  # not UTF-8
        ("Bearer abc", 401),
        ("Basic " + "cm9ib3QkcCtjaTo=", 401),  # "robot$p+ci:" empty password
        ("Basic " + "A" * 8100, 400),
    ],
)
async def test_bad_authorization_headers(server: Server, header: str, status: int) -> None:
    response = await server.client.get(
        TOKEN, params={"scope": "repository:p/a:pull"}, headers={"Authorization": header}
    )
    await error(response, status)


async def test_disabled_expired_and_deleted_robots_are_refused(server: Server) -> None:
    scope = {"scope": "repository:p/app:pull"}
    a = await server.robot("p", "a", "repository:pull")
    b = await server.robot("p", "b", "repository:pull")
    c = await server.robot("p", "c", "repository:pull")
    for robot in (a, b, c):  # verified once: the secret is now cached
        assert (await server.client.get(TOKEN, params=scope, headers=robot.headers)).status == 200
    await server.runtime.robots.set_disabled(LOCAL, str(a.id), True)
    server.expire(b.id)
    await server.runtime.robots.delete(LOCAL, str(c.id))
    r = await server.client.get(TOKEN, params=scope, headers=a.headers)
    assert await error(r, 401) == "robot account is disabled"
    r = await server.client.get(TOKEN, params=scope, headers=b.headers)
    assert await error(r, 401) == "robot account has expired"
    r = await server.client.get(TOKEN, params=scope, headers=c.headers)
    assert await error(r, 401) == "invalid username or password"
    await server.runtime.robots.set_disabled(LOCAL, str(a.id), False)
    assert (await server.client.get(TOKEN, params=scope, headers=a.headers)).status == 200


async def test_expired_robot_with_a_wrong_secret_learns_nothing(server: Server) -> None:
    robot = await server.robot("p", "a", "repository:pull")
    server.expire(robot.id)
    response = await server.client.get(TOKEN, headers=basic(robot.name, "wrong"))
    assert await error(response, 401) == "invalid username or password"


async def test_refreshed_secret_replaces_the_cached_one(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 200
    new = await server.runtime.robots.refresh_secret(LOCAL, str(robot.id))
    assert new is not None
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 401
    assert (await server.client.get(TOKEN, headers=basic(robot.name, new.reveal()))).status == 200


async def test_changes_from_another_process_count_on_the_next_request(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 200
    # A second runtime on the same database is what the CLI does while the server runs.
    async with open_runtime(server.settings, sign=False) as cli:
        await cli.robots.set_disabled(LOCAL, robot.name, True)
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 401
    async with open_runtime(server.settings, sign=False) as cli:
        await cli.robots.set_disabled(LOCAL, robot.name, False)
        secret = await cli.robots.refresh_secret(LOCAL, robot.name, "N3wSecretValue")
        assert secret is None
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 401
    ok = await server.client.get(TOKEN, headers=basic(robot.name, "N3wSecretValue"))
    assert ok.status == 200


async def test_deleting_a_project_deletes_its_robots(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    await server.runtime.projects.delete(LOCAL, "p")
    assert (await server.client.get(TOKEN, headers=robot.headers)).status == 401
    assert await server.runtime.store.find_robot_by_id(robot.id) is None


async def test_each_request_is_logged_without_the_secret(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    caplog.set_level(logging.INFO, logger="tokenserver")
    await server.client.get(
        TOKEN, params={"scope": "repository:p/app:pull,push"}, headers=robot.headers
    )
    await server.client.get(TOKEN, headers=basic(robot.name, "Wr0ngSecretXYZ"))
    issued, denied = [r.getMessage() for r in caplog.records if r.name == "tokenserver.token"]
    assert "account='robot$p+ci'" in issued
    assert "scopes='repository:p/app:pull,push'" in issued
    assert "granted='repository:p/app:pull'" in issued
    assert "client=127.0.0.1" in issued
    assert "status=401" in denied
    for record in caplog.records:
        assert robot.secret not in record.getMessage()
        assert "Wr0ngSecretXYZ" not in record.getMessage()


async def test_unknown_routes_and_methods_get_the_json_envelope(server: Server) -> None:
    assert (await error(await server.client.get("/nope"), 404)) == "Not Found"
    await error(await server.client.put(TOKEN), 405)


async def test_health(server: Server) -> None:
    response = await server.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_oversized_headers_are_a_client_error(server: Server) -> None:
    response = await server.client.get(TOKEN, headers={"X-Junk": "a" * 20_000})
    assert 400 <= response.status < 500


async def test_a_change_by_another_process_counts_on_the_very_next_token(server: Server) -> None:
    """Warm requests are served from remembered rows and grants; a change made through
    another connection (the CLI, another worker) must still count at once."""
    robot = await server.robot("p", "ci", "repository:pull")
    other = await server.robot("q", "reader", "repository:pull")
    scope = {"service": "registry", "scope": "repository:p/app:pull,push"}

    async def actions(headers: dict[str, str], params: dict[str, str]) -> list[str]:
        response = await server.client.get(TOKEN, params=params, headers=headers)
        assert response.status == 200
        access: list[str] = claims(server, (await response.json())["token"])["access"][0]["actions"]
        return access

    for _ in range(3):  # warm
        assert await actions(robot.headers, scope) == ["pull"]
    with sqlite3.connect(server.settings.database.path) as db:
        stored = db.execute("SELECT permissions FROM robot WHERE id = ?", (robot.id,)).fetchone()
        db.execute(
            "UPDATE robot SET permissions = ? WHERE id = ?",
            (stored[0].replace('"pull"', '"push"'), robot.id),
        )
    assert await actions(robot.headers, scope) == ["pull", "push"]  # push implies pull
    # Another robot's view of a project turns with the project's visibility.
    elsewhere = {"service": "registry", "scope": "repository:p/app:pull"}
    assert await actions(other.headers, elsewhere) == []
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute("UPDATE project SET public = 1 WHERE name = 'p'")
    assert await actions(other.headers, elsewhere) == ["pull"]
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute("UPDATE robot SET disabled = 1 WHERE id = ?", (robot.id,))
    response = await server.client.get(TOKEN, params=scope, headers=robot.headers)
    assert response.status == 401
