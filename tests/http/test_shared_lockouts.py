"""Two applications on one database, as two PostgreSQL replicas or two `serve --workers`
processes on one SQLite file: a guesser whose requests a balancer spreads over both gets the
threshold of one server, not twice it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeSettings, with_migrated_database
from tests.helpers import make_robot
from tests.http.conftest import AiohttpClient, basic
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.runtime import Runtime

TOKEN = "/service/token"
SCOPE = {"service": "registry", "scope": "repository:p/app:pull"}
THRESHOLD = 4

Client = TestClient[web.Request, web.Application]


@dataclass
class Two:
    a: Client
    b: Client
    runtimes: tuple[Runtime, Runtime]
    name: str
    secret: str

    async def status(self, client: Client, secret: str, name: str = "") -> int:
        r = await client.get(TOKEN, params=SCOPE, headers=basic(name or self.name, secret))
        if r.status == 429:
            body = await r.json()
            assert body["errors"][0]["code"] == "TOO_MANY_REQUESTS"
            assert int(r.headers["Retry-After"]) >= 1
        return r.status


@pytest.fixture(params=["sqlite-workers", "postgresql"])
async def two(
    request: pytest.FixtureRequest, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> Two:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").emptied_database()
        settings = make_settings(database__url=url, security__lockout_threshold=THRESHOLD)
    else:
        settings = with_migrated_database(make_settings(security__lockout_threshold=THRESHOLD))
    apps = [create_app(settings, shared_lockouts=True) for _ in range(2)]
    a, b = [await aiohttp_client(app) for app in apps]
    runtime = apps[0][RUNTIME]
    await runtime.projects.create(LOCAL, "p")
    robot, secret = await make_robot(runtime, "p", "ci", "repository:pull")
    return Two(
        a, b, (apps[0][RUNTIME], apps[1][RUNTIME]), robot.full_name("robot$"), secret.reveal()
    )


async def test_guesses_spread_over_two_replicas_lock_both_at_the_threshold(two: Two) -> None:
    """Before: each replica counted its own failures, so a balancer alternating between two
    gave a guesser twice the threshold."""
    # Both have verified the secret and hold it in their caches.
    assert await two.status(two.a, two.secret) == 200
    assert await two.status(two.b, two.secret) == 200
    statuses = [
        await two.status((two.a, two.b)[i % 2], f"Wrong{i}Secret") for i in range(THRESHOLD)
    ]
    assert statuses == [401] * THRESHOLD
    # The last failure was B's: A refuses the next guess without trying it...
    assert await two.status(two.a, "AnotherWrong1") == 429
    # ...and from then on both refuse even the right secret, as one server would.
    assert await two.status(two.a, two.secret) == 429
    assert await two.status(two.b, two.secret) == 429
    assert await two.status(two.b, "AnotherWrong2") == 429
    assert sum(r.throttle.failures for r in two.runtimes) == THRESHOLD


async def test_a_lockout_begun_on_one_replica_is_honoured_by_the_other(two: Two) -> None:
    assert await two.status(two.b, two.secret) == 200
    for i in range(THRESHOLD):
        assert await two.status(two.a, f"Wrong{i}Secret") == 401
    assert await two.status(two.a, two.secret) == 429
    # B has seen no failure at all; what the server syncs every SYNC_SECONDS tells it.
    await two.runtimes[1].throttle.sync()
    assert await two.status(two.b, two.secret) == 429
    # Another account from the same address is not locked out on either.
    assert await two.status(two.b, "whatever", name="robot$p+other") == 401


async def test_attack_guesses_sent_at_once_to_both_replicas_are_held_to_the_threshold(
    two: Two,
) -> None:
    """Before: each replica let THRESHOLD distinct guesses run at once, so the two together
    ran twice as many."""
    statuses = await asyncio.gather(
        *(two.status((two.a, two.b)[i % 2], f"Guess{i}Secret") for i in range(6 * THRESHOLD))
    )
    assert statuses.count(401) <= THRESHOLD
    assert set(statuses) <= {401, 429}
    assert sum(r.throttle.failures for r in two.runtimes) <= THRESHOLD
