"""Attacks on rotation with a grace period (issue 19, item 1), from an outside review: what a
caller holding only a robot's previous secret may do, a disable racing a refresh, what a
wrong password tells an anonymous caller, and what a scrape of /metrics costs.

The previous secret is kept so that clients still on it can pull and push while they move:
it is a registry credential for a while, never a way to a credential that outlives it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from tests.http.conftest import RobotCredentials, Server
from tests.http.test_rotation import ADMIN, API, body_of, login, refresh, server
from tokenserver.domain.models import MAX_KEEP_PREVIOUS
from tokenserver.domain.secrets import Secret

# A robot that manages the robots of its project (Harbor's robot:* and tokenserver's
# robot:update), as a deploy tool's robot does.
MANAGER = (
    "repository:pull",
    "repository:push",
    "robot:create",
    "robot:read",
    "robot:list",
    "robot:update",
)

__all__ = ["server"]  # the fixture, imported for pytest


async def rotated(server: Server, *permissions: str) -> tuple[RobotCredentials, str]:
    """A robot whose manager refreshed its secret keeping the old one for an hour (the old
    one may have leaked: that is why it was refreshed): the robot with its OLD secret, and
    the new secret."""
    robot = await server.robot("p", "mgr", *permissions)
    new = (await refresh(server, robot, keep_previous_for=3600))["secret"]
    assert await login(server, robot.name, robot.secret) == 200  # the grace period
    return robot, new


@pytest.mark.parametrize(
    "body", [{}, {"keep_previous_for": MAX_KEEP_PREVIOUS}, {"secret": "Attack3rChosen"}]
)
async def test_the_previous_secret_cannot_refresh_the_robots_own_secret(
    server: Server, body: dict[str, Any]
) -> None:
    # Whoever holds only the old secret (the leaked one) would get a new current secret,
    # which never ends with the grace period, and could keep the owner's new secret as the
    # "previous" one for 30 days so that nothing looks wrong.
    robot, new = await rotated(server, *MANAGER)
    r = await server.client.patch(f"{API}/robots/{robot.id}", json=body, headers=robot.headers)
    assert r.status in (401, 403), await r.text()
    assert await login(server, robot.name, new) == 200
    assert await login(server, robot.name, "Attack3rChosen") == 401


async def test_the_previous_secret_cannot_create_a_robot_that_outlives_it(
    server: Server,
) -> None:
    robot, _ = await rotated(server, *MANAGER)
    spec = {
        "name": "spare",
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
    r = await server.client.post(f"{API}/robots", json=spec, headers=robot.headers)
    assert r.status in (401, 403), await r.text()


async def test_the_previous_secret_cannot_refresh_another_robots_secret(server: Server) -> None:
    robot, _ = await rotated(server, *MANAGER)
    other = await server.robot("p", "puller", "repository:pull")
    r = await server.client.patch(f"{API}/robots/{other.id}", json={}, headers=robot.headers)
    assert r.status in (401, 403), await r.text()
    assert await login(server, other.name, other.secret) == 200


async def test_a_disable_during_a_refresh_still_ends_the_previous_secret(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refresh reads the robot (enabled), hashes the new secret (the KDF: a long while at
    # the production cost), then writes the old secret as the previous one. A disable that
    # lands in between cleared a previous secret that was not written yet; enabling the
    # robot again then brought the old secret back for the whole grace period.
    robot = await server.robot("p", "ci", "repository:pull")
    shown = await body_of(await server.client.get(f"{API}/robots/{robot.id}", headers=ADMIN))
    spec = {k: shown[k] for k in ("name", "level", "duration", "permissions")}
    verifier = server.runtime.verifier
    original = verifier.hash
    hashing, disabled = asyncio.Event(), asyncio.Event()

    async def slow_hash(secret: Secret) -> str:
        hashing.set()
        await disabled.wait()
        return await original(secret)

    monkeypatch.setattr(verifier, "hash", slow_hash)
    patch = asyncio.ensure_future(
        server.client.patch(
            f"{API}/robots/{robot.id}", json={"keep_previous_for": 3600}, headers=ADMIN
        )
    )
    await hashing.wait()
    off = await server.client.put(
        f"{API}/robots/{robot.id}", json={**spec, "disable": True}, headers=ADMIN
    )
    assert off.status == 200, await off.text()
    disabled.set()
    await body_of(await patch)
    monkeypatch.setattr(verifier, "hash", original)
    on = await server.client.put(
        f"{API}/robots/{robot.id}", json={**spec, "disable": False}, headers=ADMIN
    )
    assert on.status == 200, await on.text()
    # "disabling ... ends both secrets at once (enabling it again brings back only the
    # current one)".
    assert await login(server, robot.name, robot.secret) == 401
    assert "previous_secret_expires_at" not in await body_of(
        await server.client.get(f"{API}/robots/{robot.id}", headers=ADMIN)
    )


async def kdf_runs(server: Server, name: str) -> int:
    verifier = server.runtime.verifier
    before = verifier.misses
    assert await login(server, name, "Wr0ngPassword") == 401
    return verifier.misses - before


async def test_a_wrong_password_does_not_tell_whether_a_robot_is_rotating(
    server: Server,
) -> None:
    # An unknown account runs the KDF once (a stand-in hash) so that a wrong password costs
    # the same for any name, and no one learns which robots exist by timing. A robot with a
    # previous secret costs two runs: anonymous callers can time a robot apart from a name
    # that does not exist, and tell that its secret is being rotated (measured on a live
    # server at the production cost: 0.47 s for such a robot, 0.21 s for an unknown name
    # or a robot without a previous secret).
    rotating, _ = await rotated(server, "repository:pull")
    plain = await server.robot("p", "plain", "repository:pull")
    unknown = await kdf_runs(server, "robot$p+nobody")
    assert await kdf_runs(server, plain.name) == unknown
    assert await kdf_runs(server, rotating.name) == unknown


async def test_a_scrape_storm_does_not_query_the_database_per_scrape(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /metrics answers anyone, and each scrape counted every robot in the database (a full
    # scan: 55 ms at 200,000 robots on SQLite). A storm of anonymous scrapes held the
    # database: the management API went from 2 ms to 1.5 s, /readyz to 1.9 s (a probe with
    # a one-second timeout fails). Prometheus scrapes every 15 s or more: counts a few
    # seconds old are as good.
    store = server.runtime.store
    original = store.count_robot_expiries
    queries = 0

    async def counted(now: int, windows: Sequence[int]) -> tuple[int, dict[int, int]]:
        nonlocal queries
        queries += 1
        return await original(now, windows)

    monkeypatch.setattr(store, "count_robot_expiries", counted)
    for _ in range(20):
        r = await server.client.get("/metrics")
        assert r.status == 200
        assert "tokenserver_robots_expired" in await r.text()
    assert queries <= 2
