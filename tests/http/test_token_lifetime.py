"""A token lifetime per robot (issue 18 item 3): a robot's own `token_lifetime`, within
`token.max_lifetime`, on every way it gets a token (GET, POST password and refresh token,
federated logins, the token exchange), in the API as Harbor clients leave it, and capped when
the maximum is lowered after the fact."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import harbor_client.models
import jwt
import pytest
from aiohttp import ClientResponse
from harbor_client.api_client import ApiClient

from tests.conftest import MakeSettings
from tests.harbor_export import HARBOR_SECRET, export
from tests.http.conftest import AiohttpClient, Server, basic, serving
from tests.http.harbor_models import _Raw
from tests.http.test_federated_login import SCOPE, TOKEN, Federation, federation_on
from tests.http.test_token_exchange import exchange, temporary_secret
from tokenserver.domain.harbor_export import plan_import
from tokenserver.domain.models import LOCAL
from tokenserver.errors import BadRequest

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", ADMIN_PASSWORD)
LIFETIME = 1800  # token.lifetime's default, which the robots below do not use
OWN = 3600


def robot_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "ci",
        "level": "project",
        "duration": -1,
        "permissions": [
            {"kind": "project", "namespace": "p",
             "access": [{"resource": "repository", "action": "pull"},
                        {"resource": "repository", "action": "push"}]}
        ],
    }  # fmt: skip
    body.update(changes)
    return body


def lasts(answer: dict[str, Any]) -> int:
    """How long the token of a token answer lasts, `exp - iat`, which `expires_in` must say."""
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert answer["expires_in"] == claims["exp"] - claims["iat"], (answer, claims)
    seconds: int = claims["exp"] - claims["iat"]
    return seconds


async def token_answer(response: ClientResponse) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def bad_request(response: ClientResponse) -> str:
    assert response.status == 400, await response.text()
    (entry,) = (await response.json())["errors"]
    assert entry["code"] == "BAD_REQUEST"
    message: str = entry["message"]
    return message


class Api:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def call(self, method: str, path: str, body: Any = None) -> ClientResponse:
        return await self.server.client.request(method, API + path, json=body, headers=ADMIN)

    async def create(self, **changes: Any) -> tuple[int, str]:
        """A robot made with POST /robots: its id and secret."""
        r = await self.call("POST", "/robots", robot_body(**changes))
        assert r.status == 201, await r.text()
        created = await r.json()
        return created["id"], created["secret"]

    async def get(self, robot_id: int) -> dict[str, Any]:
        r = await self.call("GET", f"/robots/{robot_id}")
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body

    async def put(self, robot_id: int, **changes: Any) -> ClientResponse:
        return await self.call("PUT", f"/robots/{robot_id}", robot_body(**changes))


async def api_on(server: Server) -> Api:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    if await server.runtime.store.find_project("p") is None:
        await server.runtime.projects.create(LOCAL, "p", public=True)
    return Api(server)


@pytest.fixture
async def api(server: Server) -> Api:
    return await api_on(server)


async def get_token(server: Server, name: str, password: str, **params: str) -> dict[str, Any]:
    return await token_answer(
        await server.client.get(
            TOKEN, params={"scope": "repository:p/app:pull,push", **params},
            headers=basic(name, password),
        )
    )  # fmt: skip


async def post_token(server: Server, **form: str) -> dict[str, Any]:
    return await token_answer(
        await server.client.post(
            TOKEN, data={"scope": "repository:p/app:pull,push", "client_id": "test", **form}
        )
    )


# ---- every grant ---------------------------------------------------------------------------


async def test_a_robots_own_lifetime_holds_on_every_grant_and_no_one_elses(api: Api) -> None:
    robot_id, secret = await api.create(token_lifetime=OWN)
    name = "robot$p+ci"
    server = api.server

    login = await get_token(server, name, secret, offline_token="true", client_id="docker")
    assert lasts(login) == OWN
    refresh = login["refresh_token"]
    assert lasts(await get_token(server, name, secret)) == OWN
    assert lasts(await post_token(server, grant_type="password", username=name,
                                  password=secret, access_type="offline")) == OWN  # fmt: skip
    assert lasts(await post_token(server, grant_type="refresh_token", refresh_token=refresh)) == OWN

    # Everyone else keeps token.lifetime: another robot, a user (and a user's refresh token),
    # an anonymous pull.
    other_id, other_secret = await api.create(name="plain")
    assert lasts(await get_token(server, "robot$p+plain", other_secret)) == LIFETIME
    admin = await get_token(server, "admin", ADMIN_PASSWORD, offline_token="true")
    assert lasts(admin) == LIFETIME
    assert lasts(await post_token(server, grant_type="refresh_token",
                                  refresh_token=admin["refresh_token"])) == LIFETIME  # fmt: skip
    anonymous = await token_answer(
        await server.client.get(TOKEN, params={"scope": "repository:p/app:pull"})
    )
    assert lasts(anonymous) == LIFETIME
    assert (await api.get(other_id))["effective_token_lifetime"] == LIFETIME
    assert (await api.get(robot_id))["effective_token_lifetime"] == OWN


async def test_a_change_counts_from_the_next_token_refresh_tokens_included(api: Api) -> None:
    robot_id, secret = await api.create(token_lifetime=OWN)
    login = await get_token(api.server, "robot$p+ci", secret, offline_token="true")
    assert lasts(login) == OWN

    r = await api.put(robot_id, token_lifetime=600)
    assert r.status == 200, await r.text()
    assert lasts(await get_token(api.server, "robot$p+ci", secret)) == 600
    refreshed = await post_token(
        api.server, grant_type="refresh_token", refresh_token=login["refresh_token"]
    )
    assert lasts(refreshed) == 600

    r = await api.put(robot_id, token_lifetime=0)
    assert r.status == 200, await r.text()
    assert lasts(await get_token(api.server, "robot$p+ci", secret)) == LIFETIME
    assert "token_lifetime" not in await api.get(robot_id)


@pytest.fixture
async def fed(server: Server) -> AsyncIterator[Federation]:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    async for federation in federation_on(server):
        await server.runtime.robots.set_token_lifetime(LOCAL, str(federation.robot.id), OWN)
        yield federation


async def test_federated_logins_and_the_token_exchange_honour_it(fed: Federation) -> None:
    # An ID token as the password: GET, and POST with a refresh token, then that refresh token.
    assert lasts(await token_answer(await fed.get(fed.token()))) == OWN
    login = await token_answer(await fed.post(fed.token(), access_type="offline"))
    assert lasts(login) == OWN
    refreshed = await post_token(
        fed.server, grant_type="refresh_token", refresh_token=login["refresh_token"]
    )
    assert lasts(refreshed) == OWN

    # The RFC 8693 exchange: an access token (with a refresh token), and a temporary secret
    # that then logs the robot in.
    exchanged = await token_answer(await exchange(fed, fed.token(), access_type="offline"))
    assert lasts(exchanged) == OWN
    refreshed = await post_token(
        fed.server, grant_type="refresh_token", refresh_token=exchanged["refresh_token"]
    )
    assert lasts(refreshed) == OWN
    secret = (await temporary_secret(fed))["access_token"]
    assert lasts(await token_answer(await fed.get(secret))) == OWN

    # The robot's lifetime changed: the next federated token follows.
    await fed.server.runtime.robots.set_token_lifetime(LOCAL, str(fed.robot.id), 0)
    assert lasts(await token_answer(await fed.get(fed.token()))) == LIFETIME
    assert SCOPE in (await token_answer(await exchange(fed, fed.token())))["scope"]


# ---- the API: what is taken, what is shown --------------------------------------------------


async def test_get_shows_the_own_lifetime_only_when_set_and_always_the_effective(
    api: Api,
) -> None:
    plain, _ = await api.create(name="plain")
    own, _ = await api.create(token_lifetime=OWN)
    shown = await api.get(plain)
    assert "token_lifetime" not in shown and shown["effective_token_lifetime"] == LIFETIME
    shown = await api.get(own)
    assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (OWN, OWN)
    r = await api.call("GET", "/robots?q=Level%3Dproject%2CProjectID%3D1")
    listed = {robot["name"]: robot for robot in await r.json()}
    assert listed["robot$p+ci"]["token_lifetime"] == OWN
    assert "token_lifetime" not in listed["robot$p+plain"]
    # POST with 0 is no lifetime of its own, as without.
    zero, _ = await api.create(name="zero", token_lifetime=0)
    assert "token_lifetime" not in await api.get(zero)


async def test_a_put_without_it_keeps_it_and_with_the_same_keeps_it(api: Api) -> None:
    robot_id, _ = await api.create(token_lifetime=OWN)
    for body in ({"description": "no lifetime sent"}, {"token_lifetime": OWN}):
        r = await api.put(robot_id, **body)
        assert r.status == 200, await r.text()
        assert (await api.get(robot_id))["token_lifetime"] == OWN
    # The robot as GET shows it, sent back whole (Terraform does), keeps it too.
    shown = await api.get(robot_id)
    shown["name"] = "ci"
    r = await api.call("PUT", f"/robots/{robot_id}", shown)
    assert r.status == 200, await r.text()
    assert (await api.get(robot_id))["token_lifetime"] == OWN


BAD_LIFETIMES: list[tuple[Any, str]] = [
    (59, "token_lifetime 59 is out of range: use 60 to 86400 seconds (token.max_lifetime)"),
    (1, "token_lifetime 1 is out of range"),
    (-1, "token_lifetime -1 is out of range"),
    (86401, "token_lifetime 86401 is out of range"),
    (7 * 86400 + 1, "out of range"),
    (2**62, "out of range"),  # fits in 64 bits: past the check would be a database's problem
    (2**70, "token_lifetime: integers must fit in 64 bits"),
    ("3600", "robot: 'token_lifetime' must be an integer"),
    (3600.5, "robot: 'token_lifetime' must be an integer"),
    (True, "robot: 'token_lifetime' must be an integer"),
    ([3600], "robot: 'token_lifetime' must be an integer"),
]


@pytest.mark.parametrize(("value", "message"), BAD_LIFETIMES)
async def test_a_lifetime_out_of_bounds_is_a_400_naming_the_field(
    api: Api, value: Any, message: str
) -> None:
    r = await api.call("POST", "/robots", robot_body(token_lifetime=value))
    assert message in await bad_request(r)
    r = await api.call("GET", "/robots?q=Level%3Dproject%2CProjectID%3D1")
    assert await r.json() == []  # nothing was created

    robot_id, _ = await api.create(name="kept", token_lifetime=OWN)
    r = await api.put(robot_id, name="kept", token_lifetime=value)
    assert message in await bad_request(r)
    assert (await api.get(robot_id))["token_lifetime"] == OWN


@pytest.mark.parametrize("value", [60, 86400])
async def test_the_bounds_themselves_are_taken(api: Api, value: int) -> None:
    robot_id, secret = await api.create(token_lifetime=value)
    assert (await api.get(robot_id))["token_lifetime"] == value
    assert lasts(await get_token(api.server, "robot$p+ci", secret)) == value


async def test_changes_are_audited_as_robot_updates(api: Api) -> None:
    robot_id, _ = await api.create(token_lifetime=OWN)
    assert (await api.put(robot_id, token_lifetime=600)).status == 200
    await bad_request(await api.put(robot_id, token_lifetime=5))
    r = await api.call("GET", "/audit-logs?page_size=3")
    entries = [(e["operation"], e["resource"], e["outcome"]) for e in await r.json()]
    assert entries == [
        ("update", "robot$p+ci", "failure: BAD_REQUEST"),
        ("update", "robot$p+ci", "success"),
        ("create", "robot$p+ci", "success"),
    ]


# ---- Harbor's clients never send it ---------------------------------------------------------


async def test_a_harbor_client_round_trip_keeps_the_lifetime(api: Api) -> None:
    """harbor_client (generated from Harbor's swagger) reads a robot into its model, which
    has no token_lifetime, and PUTs it back changed: the robot keeps its lifetime. A robot it
    creates has none of its own and answers exactly the fields it did before."""
    client = ApiClient()
    create = harbor_client.models.RobotCreate(**robot_body(name="harbor"))
    r = await api.call("POST", "/robots", client.sanitize_for_serialization(create))
    assert r.status == 201, await r.text()
    harbor_id = (await r.json())["id"]
    shown = await api.get(harbor_id)
    assert "token_lifetime" not in shown
    assert set(shown) - set(harbor_client.models.Robot.attribute_map.values()) == {
        "legacy", "last_used_at", "secret_login", "effective_token_lifetime",
    }  # fmt: skip

    robot_id, secret = await api.create(token_lifetime=OWN)
    model = client.deserialize(_Raw(json.dumps(await api.get(robot_id)).encode()), "Robot")
    model.name, model.description = "ci", "edited by a Harbor client"
    r = await api.call("PUT", f"/robots/{robot_id}", client.sanitize_for_serialization(model))
    assert r.status == 200, await r.text()
    shown = await api.get(robot_id)
    assert (shown["description"], shown["token_lifetime"]) == ("edited by a Harbor client", OWN)
    assert lasts(await get_token(api.server, "robot$p+ci", secret)) == OWN


# ---- token.max_lifetime lowered after robots were given longer ones -------------------------


async def test_a_lowered_maximum_caps_tokens_and_keeps_what_was_set(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    settings = make_settings(token__max_lifetime=86400)
    async with serving(settings, aiohttp_client) as before:
        api = await api_on(before)
        robot_id, secret = await api.create(token_lifetime=86400)
        assert lasts(await get_token(before, "robot$p+ci", secret)) == 86400

    lowered = settings.replace(token__max_lifetime=7200)
    async with serving(lowered, aiohttp_client) as after:
        api = await api_on(after)
        # Every token is within the new maximum, on each grant.
        login = await get_token(after, "robot$p+ci", secret, offline_token="true")
        assert lasts(login) == 7200
        assert lasts(await post_token(after, grant_type="password", username="robot$p+ci",
                                      password=secret)) == 7200  # fmt: skip
        refreshed = await post_token(
            after, grant_type="refresh_token", refresh_token=login["refresh_token"]
        )
        assert lasts(refreshed) == 7200
        # The API shows what was set, and what holds now.
        shown = await api.get(robot_id)
        assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (86400, 7200)
        # The robot as it is may be sent back (disable it, say); a new value must fit.
        shown["name"], shown["disable"] = "ci", True
        r = await api.call("PUT", f"/robots/{robot_id}", shown)
        assert r.status == 200, await r.text()
        assert (await api.get(robot_id))["token_lifetime"] == 86400
        message = await bad_request(await api.put(robot_id, token_lifetime=86399))
        assert "use 60 to 7200 seconds (token.max_lifetime)" in message
        assert (await api.put(robot_id, token_lifetime=7200)).status == 200
        shown = await api.get(robot_id)
        assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (7200, 7200)


async def test_the_signer_never_outlasts_the_maximum_whatever_is_stored(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    """A lifetime written behind the service's back (another tool, an old backup) past even
    the longest maximum still gives tokens of token.max_lifetime."""
    settings = make_settings(token__max_lifetime=3600)
    async with serving(settings, aiohttp_client) as server:
        api = await api_on(server)
        robot_id, secret = await api.create()
        with sqlite3.connect(settings.database.path) as db:
            db.execute("UPDATE robot SET token_lifetime = ? WHERE id = ?", (2**62, robot_id))
        assert lasts(await get_token(server, "robot$p+ci", secret)) == 3600
        shown = await api.get(robot_id)
        assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (2**62, 3600)


async def test_tokens_issued_at_once_each_get_their_robots_lifetime(api: Api) -> None:
    """Robots' tokens share the signer and its memos: requests of robots with different
    lifetimes, interleaved, each get their own."""
    robots = [("a", 600), ("b", 0), ("c", 7200), ("d", 60)]
    secrets = {}
    for name, seconds in robots:
        _, secrets[name] = await api.create(name=name, token_lifetime=seconds)
    answers = await asyncio.gather(
        *(
            get_token(api.server, f"robot$p+{name}", secrets[name])
            for _ in range(5)
            for name, _ in robots
        )
    )
    expected = [seconds or LIFETIME for _ in range(5) for _, seconds in robots]
    assert [lasts(a) for a in answers] == expected


# ---- import ---------------------------------------------------------------------------------


def harbor_rows(**lifetimes: Any) -> dict[str, Any]:
    """tests/harbor_export.py's export, robots named in `lifetimes` (by short name) with that
    token_lifetime."""
    data = export()
    for row in data["robot"]:
        short = row["name"].split("+")[-1].removeprefix("robot$")
        if short in lifetimes:
            row["token_lifetime"] = lifetimes[short]
    return data


async def test_an_import_takes_a_token_lifetime_and_harbors_rows_have_none(api: Api) -> None:
    runtime = api.server.runtime
    report = await runtime.harbor_import.run(
        LOCAL, plan_import(harbor_rows(ci=OWN, fleet=None)), int(time.time())
    )
    assert report.robots_created == 5
    ci = await runtime.robots.resolve("lib+ci")
    fleet = await runtime.robots.resolve("fleet")
    assert (ci.token_lifetime, fleet.token_lifetime) == (OWN, None)
    answer = await get_token(api.server, "robot$lib+ci", HARBOR_SECRET)
    assert lasts(answer) == OWN


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3600", "robot row 0 (id 21): 'token_lifetime' must be an integer"),
        (True, "robot row 0 (id 21): 'token_lifetime' must be an integer"),
        (59, "robot row 0 (id 21): 'token_lifetime' 59 must be 60 to 604800 seconds"),
        (604801, "robot row 0 (id 21): 'token_lifetime' 604801 must be 60 to 604800 seconds"),
    ],
)
def test_a_bad_token_lifetime_in_an_import_names_the_row(value: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        plan_import(harbor_rows(ci=value))
    assert caught.value.message == message


async def test_an_import_past_the_maximum_is_refused_and_writes_nothing(api: Api) -> None:
    runtime = api.server.runtime
    with pytest.raises(BadRequest) as caught:
        await runtime.harbor_import.run(LOCAL, plan_import(harbor_rows(ci=86401)), int(time.time()))
    assert caught.value.message.startswith(
        "robot 'ci' (id 21): token_lifetime 86401 is out of range: use 60 to 86400 seconds "
        "(token.max_lifetime)"
    )
    assert await runtime.store.find_project("lib") is None


async def test_a_token_never_outlives_its_robot(server: Server) -> None:
    """A robot expiring in a hundred seconds gets a token that ends with it, not one lasting
    the token lifetime (or a day, with its own): `exp` is the robot's expiry at the latest."""
    robot = await server.robot("p", "ending", "repository:pull", "repository:push")
    ends = int(time.time()) + 100
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute("UPDATE robot SET expires_at = ? WHERE id = ?", (ends, robot.id))
    answer = await get_token(server, robot.name, robot.secret)
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    assert claims["exp"] == ends and lasts(answer) <= 100
    # A robot that never expires keeps the configured lifetime.
    forever = await server.robot("p", "forever", "repository:pull")
    assert lasts(await get_token(server, forever.name, forever.secret)) == (
        server.settings.token.lifetime
    )
