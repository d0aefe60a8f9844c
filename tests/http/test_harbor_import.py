"""Import from Harbor (secrets kept, PBKDF2 replaced on first login, idempotent, all or
nothing) and legacy robot$ accounts logging in with Harbor-minted JWTs."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import asyncpg
import jwt
import pytest
from aiohttp import ClientResponse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import MakeSettings
from tests.harbor_export import HARBOR_SECRET, export, legacy_token
from tests.helpers import FakeClock
from tests.http.conftest import AiohttpClient, Server, basic
from tests.postgres import PostgresServer
from tokenserver.domain.harbor_export import plan_import
from tokenserver.domain.models import LOCAL
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost, verify_secret
from tokenserver.errors import BadRequest
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.services import verifier as verifier_module
from tokenserver.services.ports import RobotChanges

TOKEN = "/service/token"


@pytest.fixture(scope="module")
def harbor_key() -> rsa.RSAPrivateKey:
    # One per module: an RSA key takes a tenth of a second to generate, and every test has a
    # database of its own.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> FakeClock:
    """The `imported` server's token-path time (pyjwt checks a legacy JWT's exp at login
    against the real time, from which this clock starts)."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
async def imported(
    request: pytest.FixtureRequest,
    make_settings: MakeSettings,
    aiohttp_client: AiohttpClient,
    harbor_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> Server:
    """A server into which Harbor's export was imported, on each database."""
    database = {}
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        database["database__url"] = postgres.emptied_database()
    settings = make_settings(legacy__verification_key="harbor-token.pem", **database)
    (settings.config_path.parent / "harbor-token.pem").write_bytes(
        harbor_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    app = create_app(settings, clock=clock)
    server = Server(await aiohttp_client(app), app[RUNTIME], settings)
    await server.runtime.users.ensure_admin("Adm1nPassword")
    report = await server.runtime.harbor_import.run(LOCAL, plan_import(export()), int(time.time()))
    assert (report.projects_created, report.robots_created) == (2, 5)
    return server


async def grants(server: Server, auth: dict[str, str], *scopes: str) -> list[list[str]]:
    r = await server.client.get(TOKEN, params=[("scope", s) for s in scopes], headers=auth)
    assert r.status == 200, await r.text()
    token = (await r.json())["token"]
    return [a["actions"] for a in jwt.decode(token, options={"verify_signature": False})["access"]]


async def status(response: ClientResponse) -> int:
    await response.read()
    return response.status


async def dump(server: Server) -> list[Any]:
    """Every stored project, robot, user and member, read past tokenserver."""
    tables = ("project", "robot", "users", "member")
    if server.settings.database.url:
        connection = await asyncpg.connect(server.settings.database.url)
        try:
            return [
                [tuple(r) for r in await connection.fetch(f"SELECT * FROM {t} ORDER BY id")]  # noqa: S608
                for t in tables
            ]
        finally:
            await connection.close()
    with sqlite3.connect(server.settings.database.path) as db:
        return [
            db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
            for table in tables
        ]


async def test_imported_robots_keep_their_secrets_and_permissions(imported: Server) -> None:
    ci = basic("robot$lib+ci", HARBOR_SECRET)
    assert await grants(imported, ci, "repository:lib/app:push,pull") == [["push", "pull"]]
    fleet = basic("robot$fleet", HARBOR_SECRET)
    assert await grants(imported, fleet, "repository:lib/app:pull,push", "registry:catalog:*") == [
        ["pull"],
        ["*"],
    ]
    wrong = await imported.client.get(TOKEN, headers=basic("robot$lib+ci", "Wr0ngSecret"))
    assert await status(wrong) == 401
    for name in ("robot$lib+off", "robot$lib+gone"):
        assert (
            await status(await imported.client.get(TOKEN, headers=basic(name, HARBOR_SECRET)))
            == 401
        )
    web = await imported.runtime.projects.get(LOCAL, "web")
    assert web.public
    with pytest.raises(Exception, match="not found"):
        await imported.runtime.projects.get(LOCAL, "old")


async def test_harbor_pbkdf2_is_replaced_on_first_login(imported: Server) -> None:
    before = await imported.runtime.robots.resolve("lib+ci")
    assert before.secret_hash.startswith("harbor-pbkdf2$")
    ci = basic("robot$lib+ci", HARBOR_SECRET)
    assert await status(await imported.client.get(TOKEN, headers=ci)) == 200
    after = await imported.runtime.robots.resolve("lib+ci")
    assert after.secret_hash.startswith("scrypt$")
    assert HARBOR_SECRET not in after.secret_hash
    imported.runtime.verifier._cache.clear()  # prove the new hash verifies on its own
    assert await status(await imported.client.get(TOKEN, headers=ci)) == 200


async def test_import_is_idempotent(imported: Server) -> None:
    before = await dump(imported)
    report = await imported.runtime.harbor_import.run(
        LOCAL, plan_import(export()), int(time.time())
    )
    assert (report.projects_created, report.robots_created) == (0, 0)
    assert (report.projects_existing, report.robots_existing) == (2, 5)
    assert await dump(imported) == before


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"id": 99, "name": "lib+bad", "project_id": 7, "secret": "zz", "salt": "x"},
            "robot row 5 (id 99)",
        ),
        (
            {"id": 98, "name": "Lib+x", "project_id": 7, "secret": "", "salt": ""},
            "robot row 5 (id 98)",
        ),
        ({"id": 97, "name": "lib+x", "project_id": 42, "secret": "", "salt": ""}, "project 42"),
        (
            {"id": 96, "name": "other+x", "project_id": 7, "secret": "a" * 32, "salt": "s"},
            "robot row 5",
        ),
    ],
)
async def test_a_bad_row_aborts_the_import_and_writes_nothing(
    settings: Any, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_import(export([bad]))


@pytest.mark.parametrize("other", [{}, {"projects": [], "robots": []}, {"users": [{"id": 1}]}])
async def test_json_that_is_no_export_is_refused(other: dict[str, Any]) -> None:
    """An empty object or another tool's JSON imported nothing and said so as a success."""
    with pytest.raises(BadRequest, match="neither a 'project' nor a 'robot' table"):
        plan_import(other)


async def test_a_failing_write_rolls_everything_back(
    imported: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await dump(imported)
    data = export()
    data["project"].append({"project_id": 10, "name": "fresh", "public": "false"})
    for row in data["robot"]:
        row["name"] = row["name"].replace("lib+", "lib+v2-").replace("fleet", "fleet-v2")
        row["name"] = row["name"].replace("robot$legacy", "robot$legacy-v2")
    store = imported.runtime.store
    real = store.create_robot
    calls = 0

    async def failing(robot: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk full")
        return await real(robot)

    monkeypatch.setattr(store, "create_robot", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        await imported.runtime.harbor_import.run(LOCAL, plan_import(data), int(time.time()))
    assert calls == 3
    assert await dump(imported) == before


def test_duplicate_rows_are_refused() -> None:
    data = export([{"id": 31, "name": "lib+ci", "project_id": 7, "secret": "a" * 32, "salt": "s"}])
    with pytest.raises(BadRequest, match=r"robot row 5 \(id 31\): duplicate"):
        plan_import(data)


# ---- legacy robots ---------------------------------------------------------------------------


async def test_legacy_robot_logs_in_with_a_harbor_minted_jwt(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    token = legacy_token(
        harbor_key,
        access=[
            ("/project/7/repository", "push"),
            ("/project/7/repository", "pull"),
            ("/project/7/helm-chart", "read"),
            ("/project/8/repository", "push"),  # another project: dropped
            ("/project/7/robot", "create"),  # not in the legacy set: dropped
            ("/project/7/artifact", "delete"),  # not in the legacy set: dropped
        ],
    )
    auth = basic("robot$legacy", token)
    assert await grants(
        imported, auth, "repository:lib/app:push,pull,delete", "repository:web/app:push,pull",
        "helm-chart:lib/chart:read",
    ) == [["push", "pull"], ["pull"], ["read"]]  # fmt: skip
    r = await imported.client.get(TOKEN, params={"scope": "repository:lib/app:pull"}, headers=auth)
    claims = jwt.decode((await r.json())["token"], options={"verify_signature": False})
    assert claims["sub"] == "robot$legacy"


@pytest.mark.parametrize(
    "case", ["expired", "other-key", "wrong-id", "wrong-project", "unknown-name", "tampered"]
)
async def test_bad_legacy_tokens_are_refused(
    imported: Server, harbor_key: rsa.RSAPrivateKey, case: str
) -> None:
    name = "robot$legacy"
    if case == "expired":
        token = legacy_token(harbor_key, expires_in=-120)
    elif case == "other-key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = legacy_token(other)
    elif case == "wrong-id":
        token = legacy_token(harbor_key, robot_id=21)
    elif case == "wrong-project":
        token = legacy_token(harbor_key, project_id=8)
    elif case == "unknown-name":
        token = legacy_token(harbor_key)
        name = "robot$nobody"
    else:
        header, payload, signature = legacy_token(harbor_key).split(".")
        token = f"{header}.{payload}x.{signature}"
    r = await imported.client.get(TOKEN, headers=basic(name, token))
    assert await status(r) == 401


async def test_a_legacy_token_without_exp_never_expires(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    auth = basic("robot$legacy", legacy_token(harbor_key, expires_in=None))
    assert await grants(imported, auth, "repository:lib/app:pull") == [["pull"]]


async def test_legacy_robots_are_listed_not_editable_and_can_be_disabled(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    admin = basic("admin", "Adm1nPassword")
    lib = await imported.runtime.projects.get(LOCAL, "lib")
    r = await imported.client.get(
        f"/api/v2.0/robots?q=Level=project,ProjectID={lib.id}", headers=admin
    )
    listed = {x["name"]: x for x in await r.json()}
    legacy = listed["robot$legacy"]
    assert legacy["editable"] is False
    assert legacy["legacy"] is True
    assert listed["robot$lib+ci"]["editable"] is True
    path = f"/api/v2.0/robots/{legacy['id']}"
    changes: list[dict[str, object]] = [
        {"description": "new"},
        {"duration": 30},
        {"permissions": []},
    ]
    for change in changes:
        r = await imported.client.put(path, json={**legacy, **change}, headers=admin)
        assert r.status == 403, change
        assert (await r.json())["errors"][0]["message"] == "editing of legacy robot is not allowed"
    r = await imported.client.patch(path, json={}, headers=admin)
    assert r.status == 403
    # As Harbor's page does: PUT the robot as it is but for `disable`.
    auth = basic("robot$legacy", legacy_token(harbor_key))
    assert await status(await imported.client.put(path, json={**legacy, "disable": True},
                                                  headers=admin)) == 200  # fmt: skip
    assert await status(await imported.client.get(TOKEN, headers=auth)) == 401
    assert await status(await imported.client.put(path, json={**legacy, "disable": False},
                                                  headers=admin)) == 200  # fmt: skip
    assert await status(await imported.client.get(TOKEN, headers=auth)) == 200
    assert await status(await imported.client.delete(path, headers=admin)) == 200
    assert await status(await imported.client.get(TOKEN, headers=auth)) == 401


async def test_a_legacy_robot_is_disabled_by_a_put_without_duration(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    # Harbor keeps the duration a PUT leaves out: the robot as it is but for `disable`.
    admin = basic("admin", "Adm1nPassword")
    (legacy,) = [r for r in await imported.runtime.robots.list(LOCAL, "lib") if r.legacy]
    path = f"/api/v2.0/robots/{legacy.id}"
    robot = await (await imported.client.get(path, headers=admin)).json()
    del robot["duration"]
    auth = basic("robot$legacy", legacy_token(harbor_key))
    r = await imported.client.put(path, json=robot | {"disable": True}, headers=admin)
    assert r.status == 200, await r.text()
    assert await status(await imported.client.get(TOKEN, headers=auth)) == 401
    r = await imported.client.put(path, json=robot | {"description": "new"}, headers=admin)
    assert r.status == 403


async def test_without_a_legacy_key_legacy_tokens_are_refused(
    server: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    await server.runtime.harbor_import.run(LOCAL, plan_import(export()), int(time.time()))
    auth = basic("robot$legacy", legacy_token(harbor_key))
    assert await status(await server.client.get(TOKEN, headers=auth)) == 401


# ---- legacy robots' refresh tokens (docker login with the JWT as password) ------------------

SCOPES = (
    "repository:lib/app:push,pull",
    "repository:web/app:push,pull",
    "helm-chart:lib/chart:read",
)
DOCKER_LOGIN = {"service": "registry", "offline_token": "true", "client_id": "docker"}


async def docker_login(server: Server, auth: dict[str, str]) -> str:
    """What `docker login` does: GET with offline_token=true; it keeps the refresh token."""
    r = await server.client.get(TOKEN, params=DOCKER_LOGIN, headers=auth)
    assert r.status == 200, await r.text()
    token: str = (await r.json())["refresh_token"]
    return token


async def refresh(server: Server, token: str, *scopes: str) -> ClientResponse:
    """What docker does after login: the refresh_token grant."""
    return await server.client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token", "refresh_token": token, "service": "registry",
            "client_id": "docker", "scope": " ".join(scopes),
        },
    )  # fmt: skip


async def refresh_grants(server: Server, token: str, *scopes: str) -> list[list[str]]:
    r = await refresh(server, token, *scopes)
    assert r.status == 200, await r.text()
    claims = jwt.decode((await r.json())["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "robot$legacy"
    return [a["actions"] for a in claims["access"]]


@pytest.mark.parametrize(
    ("access", "granted"),
    [
        # The JWT's push and pull in lib; the stored (imported) policies hold only pull.
        (None, [["push", "pull"], ["pull"], []]),
        # Only helm-chart read: the stored policies' pull on lib/app must not come back.
        ([("/project/7/helm-chart", "read")], [[], ["pull"], ["read"]]),
    ],
)
async def test_attack_legacy_refresh_token_serves_the_stored_policies_not_the_jwt(
    imported: Server,
    harbor_key: rsa.RSAPrivateKey,
    access: list[tuple[str, str]] | None,
    granted: list[list[str]],
) -> None:
    auth = basic("robot$legacy", legacy_token(harbor_key, access=access))
    assert await grants(imported, auth, *SCOPES) == granted
    token = await docker_login(imported, auth)
    for _ in range(2):
        assert await refresh_grants(imported, token, *SCOPES) == granted
    # The stored record is what the JWT granted, and not a secret.
    (stored,) = await imported.runtime.store.list_refresh_tokens(
        robot_id=(await imported.runtime.store.find_legacy_robot("legacy")).id  # type: ignore[union-attr]
    )
    assert stored.legacy_access is not None
    assert token not in repr(stored)


async def test_attack_legacy_refresh_token_outlives_the_jwt(
    imported: Server, harbor_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    auth = basic("robot$legacy", legacy_token(harbor_key, expires_in=600))
    token = await docker_login(imported, auth)
    started = clock.now
    clock.now = started + 590
    assert await refresh_grants(imported, token, "repository:lib/app:pull") == [["pull"]]
    clock.now = started + 601  # the JWT's exp has passed
    r = await refresh(imported, token, "repository:lib/app:pull")
    assert r.status == 401
    assert (await r.json())["errors"][0]["message"] == "invalid refresh token"
    # A JWT without exp never expires, nor does its refresh token (but for the idle limit).
    forever = await docker_login(
        imported, basic("robot$legacy", legacy_token(harbor_key, expires_in=None))
    )
    clock.now = started + 80 * 86400
    assert await refresh_grants(imported, forever, "repository:lib/app:pull") == [["pull"]]


async def test_legacy_refresh_tokens_end_with_the_robot(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    token = await docker_login(imported, basic("robot$legacy", legacy_token(harbor_key)))
    assert await refresh_grants(imported, token, "repository:lib/app:pull") == [["pull"]]
    robot = await imported.runtime.store.find_legacy_robot("legacy")
    assert robot is not None
    await imported.runtime.store.update_robot(robot.id, 1, RobotChanges(disabled=True))
    assert (await refresh(imported, token, "repository:lib/app:pull")).status == 401
    await imported.runtime.store.update_robot(robot.id, 1, RobotChanges(disabled=False))
    assert await refresh_grants(imported, token, "repository:lib/app:pull") == [["pull"]]
    # A legacy robot's end is its JWT's exp, at login and so at refresh: not the stored row's.
    await imported.runtime.store.update_robot(robot.id, 1, RobotChanges(expires_at=1))
    assert await grants(
        imported, basic("robot$legacy", legacy_token(harbor_key)), "repository:lib/app:pull"
    ) == [["pull"]]
    assert await refresh_grants(imported, token, "repository:lib/app:pull") == [["pull"]]
    await imported.runtime.store.delete_robot(robot.id)
    assert (await refresh(imported, token, "repository:lib/app:pull")).status == 401


async def test_legacy_refresh_tokens_stop_when_legacy_logins_are_turned_off(
    imported: Server, harbor_key: rsa.RSAPrivateKey, aiohttp_client: AiohttpClient
) -> None:
    token = await docker_login(imported, basic("robot$legacy", legacy_token(harbor_key)))
    settings = imported.settings.replace(legacy__verification_key=None)
    app = create_app(settings)
    off = Server(await aiohttp_client(app), app[RUNTIME], settings)
    assert (await refresh(off, token, "repository:lib/app:pull")).status == 401
    assert await refresh_grants(imported, token, "repository:lib/app:pull") == [["pull"]]


# ---- the account decides how a password is checked, never its shape -------------------------

JWT_SHAPED = ("Aa1.Bb2.Cc3", "eyJhbGciOiJSUzI1NiJ9.eyJpZCI6MjMsInBpZCI6N30.Q2xp3nTs-ig_Nat8re")


@pytest.mark.parametrize("secret", JWT_SHAPED)
async def test_attack_manual_secret_shaped_like_a_jwt_never_logs_in(
    imported: Server, secret: str
) -> None:
    admin = basic("admin", "Adm1nPassword")
    # Created with it (a system robot: robot$<name>, the legacy prefix)...
    body = {
        "name": "mirror", "level": "system", "duration": -1, "secret": secret,
        "permissions": [{"kind": "project", "namespace": "lib",
                         "access": [{"resource": "repository", "action": "pull"}]}],
    }  # fmt: skip
    r = await imported.client.post("/api/v2.0/robots", json=body, headers=admin)
    assert r.status == 201, await r.text()
    assert await grants(imported, basic("robot$mirror", secret), "repository:lib/app:pull") == [
        ["pull"]
    ]
    # ... or set on a project robot with PATCH.
    ci = await imported.runtime.store.find_robot("lib", "ci")
    assert ci is not None
    r = await imported.client.patch(
        f"/api/v2.0/robots/{ci.id}", json={"secret": secret}, headers=admin
    )
    assert r.status == 200, await r.text()
    auth = basic("robot$lib+ci", secret)
    assert await grants(imported, auth, "repository:lib/app:push") == [["push"]]
    r = await imported.client.post(
        TOKEN, data={"grant_type": "password", "username": "robot$lib+ci", "password": secret}
    )
    assert r.status == 200, await r.text()


async def test_a_system_robot_named_like_a_legacy_robot_keeps_both_apart(
    imported: Server, harbor_key: rsa.RSAPrivateKey
) -> None:
    # robot$legacy is both the legacy robot and (prefix robot$) a system robot named legacy.
    admin = basic("admin", "Adm1nPassword")
    body = {
        "name": "legacy", "level": "system", "duration": -1, "secret": JWT_SHAPED[1],
        "permissions": [{"kind": "project", "namespace": "web",
                         "access": [{"resource": "repository", "action": "push"}]}],
    }  # fmt: skip
    r = await imported.client.post("/api/v2.0/robots", json=body, headers=admin)
    assert r.status == 201, await r.text()
    system = basic("robot$legacy", JWT_SHAPED[1])
    jwt_auth = basic("robot$legacy", legacy_token(harbor_key))
    assert await grants(imported, system, "repository:web/app:push", "repository:lib/app:push") == [
        ["push"],
        [],
    ]
    assert await grants(
        imported, jwt_auth, "repository:web/app:push", "repository:lib/app:push"
    ) == [
        [],
        ["push"],
    ]
    # The legacy robot's JWT is no password of any other account.
    for name in ("robot$lib+ci", "robot$fleet", "admin"):
        r = await imported.client.get(TOKEN, headers=basic(name, legacy_token(harbor_key)))
        assert await status(r) == 401, name


async def test_a_wrong_password_for_a_legacy_robot_costs_the_kdf_work(
    imported: Server, harbor_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = verify_secret

    def counting(secret: str, stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
        calls.append(stored.split("$", 1)[0])
        return real(secret, stored, cost)

    monkeypatch.setattr(verifier_module, "verify_secret", counting)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for username, password in [
        ("robot$legacy", "Wr0ngSecret"),
        ("robot$legacy", legacy_token(other)),  # a JWT, but not the old Harbor's
        ("robot$nobody", "Wr0ngSecret"),  # unknown
        ("robot$nobody", legacy_token(harbor_key)),
    ]:
        r = await imported.client.get(TOKEN, headers=basic(username, password))
        assert await status(r) == 401
    assert calls == ["scrypt"] * 8  # two runs a wrong password (SecretVerifier.match)
