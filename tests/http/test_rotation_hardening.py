"""What the outside review of rotation (issue 19) asked for, beyond its reproducers
(tests/http/test_rotation_attack.py): the previous secret logs in to the registry only, a
credential that ends bounds what it makes, what a disable or a switched-off secret login
leaves behind, what a wrong password costs, and what scrapes of /metrics cost."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tests.http.conftest import RobotCredentials, Server, basic
from tests.http.test_federated_login import GITHUB_RULE, Federation, federation_on
from tests.http.test_rotation import ADMIN, API, TOKEN, body_of, login, server
from tests.http.test_rotation_attack import MANAGER, rotated
from tests.http.test_token_exchange import temporary_secret
from tokenserver.domain.models import LOCAL
from tokenserver.domain.secrets import Secret, harbor_hash
from tokenserver.errors import StorageError
from tokenserver.http.appkeys import METRICS
from tokenserver.http.observability import EXPIRY_COUNTS_MAX_AGE
from tokenserver.services.ports import RobotChanges

__all__ = ["server"]  # the fixture, imported for pytest


async def shown(server: Server, robot_id: int) -> dict[str, Any]:
    answer: dict[str, Any] = await body_of(
        await server.client.get(f"{API}/robots/{robot_id}", headers=ADMIN)
    )
    return answer


def spare_robot(project: str, duration: int) -> dict[str, Any]:
    return {
        "name": "spare",
        "level": "project",
        "duration": duration,
        "permissions": [
            {
                "kind": "project",
                "namespace": project,
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }


# ---- the previous secret logs in to the registry only ----------------------------------------


def calls(robot: RobotCredentials) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Management calls the robot's current secret may make (it manages its project's
    robots): reads and changes, its own robot and others, the federation and the user."""
    own = f"{API}/robots/{robot.id}"
    return [
        ("GET", f"{API}/users/current", None),
        ("GET", f"{API}/projects", None),
        ("GET", f"{API}/robots", None),
        ("GET", own, None),
        ("GET", f"{own}/refresh-tokens", None),
        ("PATCH", own, {"keep_previous_for": 60}),
        ("DELETE", f"{own}/previous-secret", None),
        ("DELETE", f"{own}/refresh-tokens", None),
        ("POST", f"{API}/robots", spare_robot("p", 1)),
        ("PUT", f"{own}/federation", {"rules": []}),
    ]


async def test_every_management_call_with_the_previous_secret_is_refused_and_says_why(
    server: Server,
) -> None:
    robot, new = await rotated(server, *MANAGER)
    message = (
        f"the previous secret of {robot.name} only logs in to the registry: use its current secret"
    )
    for method, path, body in calls(robot):
        r = await server.client.request(method, path, json=body, headers=robot.headers)
        assert (await body_of(r, 403))["errors"] == [{"code": "FORBIDDEN", "message": message}]
    # Nothing changed: the previous secret still works, no robot was made.
    assert await login(server, robot.name, robot.secret) == 200
    project = await server.runtime.store.find_project("p")
    assert project is not None
    assert [r.name for r in await server.runtime.store.list_robots(project.id)] == ["mgr"]
    # The current secret is the robot's own login to the API, as before.
    current = basic(robot.name, new)
    assert (await server.client.get(f"{API}/robots/{robot.id}", headers=current)).status == 200
    r = await server.client.post(f"{API}/robots", json=spare_robot("p", 1), headers=current)
    assert r.status == 201, await r.text()


async def test_the_previous_secret_still_gets_registry_tokens_and_refresh_tokens(
    server: Server,
) -> None:
    robot, _ = await rotated(server, "repository:pull")
    assert await login(server, robot.name, robot.secret) == 200
    posted = await body_of(
        await server.client.post(
            TOKEN,
            data={
                "grant_type": "password",
                "username": robot.name,
                "password": robot.secret,
                "access_type": "offline",
                "client_id": "docker",
                "service": "registry",
                "scope": "repository:p/app:pull",
            },
        )
    )
    again = await server.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": posted["refresh_token"]}
    )
    assert again.status == 200, await again.text()


async def test_a_wrong_or_ended_previous_secret_at_the_api_is_401_as_any_wrong_secret(
    server: Server,
) -> None:
    # 403 says "that was the previous secret": only to whoever holds it.
    robot, _ = await rotated(server, *MANAGER)
    wrong = await server.client.get(
        f"{API}/robots/{robot.id}", headers=basic(robot.name, "Wr0ngPassword")
    )
    await body_of(wrong, 401)
    r = await server.client.delete(f"{API}/robots/{robot.id}/previous-secret", headers=ADMIN)
    assert r.status == 200
    ended = await server.client.get(f"{API}/robots/{robot.id}", headers=robot.headers)
    await body_of(ended, 401)


# ---- a credential that ends bounds what it makes --------------------------------------------


@pytest.fixture
async def manager(server: Server) -> AsyncIterator[Federation]:
    """A robot that manages its project's robots (never expires) and logs in with an ID
    token, or with a temporary secret exchanged for one (an hour at most)."""
    async for federation in federation_on(server):
        robot = await server.robot("ci", "deployer", *MANAGER)
        managing = dataclasses.replace(federation, robot=robot)
        await managing.rules(GITHUB_RULE)
        yield managing


async def test_a_temporary_secret_cannot_make_what_outlives_it(
    server: Server, manager: Federation
) -> None:
    secret = (await temporary_secret(manager))["access_token"]
    caller = basic(manager.robot.name, secret)
    for duration in (-1, 1, 30):  # days: each outlives a secret of an hour at most
        r = await server.client.post(
            f"{API}/robots", json=spare_robot("ci", duration), headers=caller
        )
        message = (await body_of(r, 403))["errors"][0]["message"]
        assert "a robot logged in with a credential that ends at" in message
    other = await server.robot("ci", "puller", "repository:pull", duration=30)
    # A new secret for a robot (of 30 days), or a restarted expiry, outlives it too.
    for body in ({}, {"restart_expiry": True}):
        r = await server.client.patch(f"{API}/robots/{other.id}", json=body, headers=caller)
        await body_of(r, 403)
    assert await login(server, other.name, other.secret) == 200
    # Reading, and a PUT that extends nothing, stay allowed.
    seen = await body_of(await server.client.get(f"{API}/robots/{other.id}", headers=caller))
    spec = {k: seen[k] for k in ("name", "level", "duration", "permissions")}
    r = await server.client.put(
        f"{API}/robots/{other.id}", json={**spec, "description": "moved"}, headers=caller
    )
    assert r.status == 200, await r.text()
    # A longer duration extends it: refused.
    r = await server.client.put(
        f"{API}/robots/{other.id}", json={**spec, "duration": 60}, headers=caller
    )
    await body_of(r, 403)
    # The robot's own secret is not bounded so: it makes a robot of a day.
    own = manager.robot.headers
    r = await server.client.post(f"{API}/robots", json=spare_robot("ci", 1), headers=own)
    assert r.status == 201, await r.text()


# ---- what a disable or a switched-off secret login leaves behind ------------------------------


async def test_turning_secret_login_off_ends_the_previous_secret_for_good(
    server: Server, manager: Federation
) -> None:
    robot = manager.robot
    answer = await body_of(
        await server.client.patch(
            f"{API}/robots/{robot.id}", json={"keep_previous_for": 3600}, headers=ADMIN
        )
    )
    assert await login(server, robot.name, robot.secret) == 200
    await server.runtime.robots.set_secret_login(LOCAL, str(robot.id), False)
    assert "previous_secret_expires_at" not in await shown(server, robot.id)
    await server.runtime.robots.set_secret_login(LOCAL, str(robot.id), True)
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, answer["secret"]) == 200
    assert "previous_secret_expires_at" not in await shown(server, robot.id)


async def test_a_change_that_turns_secret_login_off_ends_the_previous_secret(
    server: Server, manager: Federation
) -> None:
    robot = manager.robot
    await body_of(
        await server.client.patch(
            f"{API}/robots/{robot.id}", json={"keep_previous_for": 3600}, headers=ADMIN
        )
    )
    store = server.runtime.store
    assert await store.update_robot(robot.id, 1, RobotChanges(secret_login=False))
    assert await store.update_robot(robot.id, 2, RobotChanges(secret_login=True))
    assert await login(server, robot.name, robot.secret) == 401


async def test_a_refresh_while_secret_login_is_off_keeps_no_previous_secret(
    server: Server, manager: Federation
) -> None:
    robot = manager.robot
    await server.runtime.robots.set_secret_login(LOCAL, str(robot.id), False)
    answer = await body_of(
        await server.client.patch(
            f"{API}/robots/{robot.id}", json={"keep_previous_for": 3600}, headers=ADMIN
        )
    )
    assert "previous_secret_expires_at" not in answer
    await server.runtime.robots.set_secret_login(LOCAL, str(robot.id), True)
    assert await login(server, robot.name, robot.secret) == 401
    assert await login(server, robot.name, answer["secret"]) == 200


async def test_a_refresh_racing_another_keeps_no_secret_it_did_not_replace(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slow refresh read the first secret; a refresh without grace (the first secret
    # leaked) replaced it meanwhile. The slow one must not keep the second as "previous":
    # it keeps nothing, and says so.
    robot = await server.robot("p", "ci", "repository:pull")
    verifier = server.runtime.verifier
    original = verifier.hash
    hashing, other_done = asyncio.Event(), asyncio.Event()
    slow = True

    async def slow_hash(secret: Secret) -> str:
        nonlocal slow
        if slow:
            slow = False
            hashing.set()
            await other_done.wait()
        return await original(secret)

    monkeypatch.setattr(verifier, "hash", slow_hash)
    patch = asyncio.ensure_future(
        server.client.patch(
            f"{API}/robots/{robot.id}", json={"keep_previous_for": 3600}, headers=ADMIN
        )
    )
    await hashing.wait()
    second = await body_of(
        await server.client.patch(f"{API}/robots/{robot.id}", json={}, headers=ADMIN)
    )
    other_done.set()
    third = await body_of(await patch)
    assert "previous_secret_expires_at" not in third
    assert await login(server, robot.name, third["secret"]) == 200
    assert await login(server, robot.name, second["secret"]) == 401
    assert await login(server, robot.name, robot.secret) == 401


async def test_a_harbor_rehash_does_not_bring_back_a_secret_refreshed_meanwhile(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An imported robot's first login rehashes its PBKDF2 hash (the KDF: a while). A refresh
    # that lands meanwhile wins: the rehash must not write the old secret back.
    robot = await server.robot("p", "imported", "repository:pull")
    harbor_secret, salt = "Harb0rSecret", "abcdefgh"
    key = hashlib.pbkdf2_hmac("sha256", harbor_secret.encode(), salt.encode(), 4096, 16).hex()
    store = server.runtime.store
    assert await store.update_robot(robot.id, 1, RobotChanges(secret_hash=harbor_hash(salt, key)))
    verifier = server.runtime.verifier
    original = verifier.hash
    hashing, refreshed = asyncio.Event(), asyncio.Event()

    async def slow_hash(secret: Secret) -> str:
        if secret.reveal() == harbor_secret:
            hashing.set()
            await refreshed.wait()
        return await original(secret)

    monkeypatch.setattr(verifier, "hash", slow_hash)
    first = asyncio.ensure_future(login(server, robot.name, harbor_secret))
    await hashing.wait()
    new = await body_of(
        await server.client.patch(f"{API}/robots/{robot.id}", json={}, headers=ADMIN)
    )
    refreshed.set()
    assert await first == 200  # it logged in before the refresh
    assert await login(server, robot.name, harbor_secret) == 401
    assert await login(server, robot.name, new["secret"]) == 200


async def test_the_harbor_rehash_still_replaces_the_pbkdf2_hash(server: Server) -> None:
    robot = await server.robot("p", "imported", "repository:pull")
    harbor_secret, salt = "Harb0rSecret", "abcdefgh"
    key = hashlib.pbkdf2_hmac("sha256", harbor_secret.encode(), salt.encode(), 4096, 16).hex()
    store = server.runtime.store
    assert await store.update_robot(robot.id, 1, RobotChanges(secret_hash=harbor_hash(salt, key)))
    assert await login(server, robot.name, harbor_secret) == 200
    stored = await store.find_robot_by_id(robot.id)
    assert stored is not None and stored.secret_hash.startswith("scrypt$")
    assert await login(server, robot.name, harbor_secret) == 200


# ---- what a wrong password costs ------------------------------------------------------------


async def kdf_runs(server: Server, name: str, password: str = "Wr0ngPassword") -> int:
    verifier = server.runtime.verifier
    before = verifier.misses
    r = await server.client.get(TOKEN, headers=basic(name, password))
    assert r.status == 401, await r.text()
    return verifier.misses - before


async def test_every_failing_secret_login_costs_two_kdf_runs(server: Server) -> None:
    rotating, _ = await rotated(server, "repository:pull")
    plain = await server.robot("p", "plain", "repository:pull")
    ended = await server.robot("p", "ended", "repository:pull")
    kept = {"keep_previous_for": 3600}
    await server.client.patch(f"{API}/robots/{ended.id}", json=kept, headers=ADMIN)
    await server.client.delete(f"{API}/robots/{ended.id}/previous-secret", headers=ADMIN)
    await server.runtime.users.create(LOCAL, "alice", "Al1cePassword")
    names = [
        rotating.name,
        plain.name,
        ended.name,
        "alice",
        "admin",
        "robot$p+nobody",
        "nobody",
        "robot$nobody",
    ]
    assert {name: await kdf_runs(server, name) for name in names} == dict.fromkeys(names, 2)
    # The same name and password again: the same cost (nothing of a failure is cached).
    assert await kdf_runs(server, rotating.name) == 2
    assert await kdf_runs(server, "robot$p+nobody") == 2


async def test_the_right_secret_costs_one_kdf_run_and_then_none(server: Server) -> None:
    plain = await server.robot("p", "plain", "repository:pull")
    verifier = server.runtime.verifier
    before = verifier.misses
    assert await login(server, plain.name, plain.secret) == 200
    assert await login(server, plain.name, plain.secret) == 200
    assert verifier.misses - before == 1


# ---- what scrapes of /metrics cost ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The calls of the expiry count query, one entry each."""
    store = server.runtime.store
    original = store.count_robot_expiries
    counted: list[int] = []

    async def count(now: int, windows: Sequence[int]) -> tuple[int, dict[int, int]]:
        counted.append(now)
        return await original(now, windows)

    monkeypatch.setattr(store, "count_robot_expiries", count)
    return counted


async def expiring(server: Server) -> str:
    r = await server.client.get("/metrics")
    assert r.status == 200
    lines = [x for x in (await r.text()).splitlines() if x.startswith("tokenserver_robots_exp")]
    return "\n".join(lines)


async def test_scrapes_at_once_share_one_count(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = server.runtime.store
    original = store.count_robot_expiries
    started, release = asyncio.Event(), asyncio.Event()
    queries = 0

    async def held(now: int, windows: Sequence[int]) -> tuple[int, dict[int, int]]:
        nonlocal queries
        queries += 1
        started.set()
        await release.wait()
        return await original(now, windows)

    monkeypatch.setattr(store, "count_robot_expiries", held)
    await server.robot("p", "soon", "repository:pull", duration=1)
    scrapes = [asyncio.ensure_future(expiring(server)) for _ in range(30)]
    await started.wait()
    for _ in range(50):  # let every scrape reach the handler (no timing: a bounded yield)
        await asyncio.sleep(0)
    release.set()
    texts = await asyncio.gather(*scrapes)
    assert queries == 1
    assert len(set(texts)) == 1 and 'tokenserver_robots_expiring{within="1d"} 1.0' in texts[0]


async def test_the_counts_are_counted_again_once_they_are_older_than_the_max_age(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    server.client.app[METRICS].robot_expiry.clock = clock
    counted = counting(server, monkeypatch)
    robot = await server.robot("p", "ci", "repository:pull", duration=1)
    assert 'within="1d"} 1.0' in await expiring(server)
    await server.runtime.robots.set_disabled(LOCAL, str(robot.id), True)
    clock.now += EXPIRY_COUNTS_MAX_AGE - 1
    assert 'within="1d"} 1.0' in await expiring(server)  # a few seconds old: as good
    clock.now += 1
    assert 'within="1d"} 0.0' in await expiring(server)
    assert len(counted) == 2


async def test_a_failed_count_is_not_kept(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    server.client.app[METRICS].robot_expiry.clock = clock
    robots = server.runtime.robots
    original = robots.expiry_counts
    failing = True

    async def flaky(windows: Sequence[int]) -> tuple[int, dict[int, int]]:
        if failing:
            raise StorageError("database unavailable")
        return await original(windows)

    monkeypatch.setattr(robots, "expiry_counts", flaky)
    assert await expiring(server) == ""
    failing = False
    assert "tokenserver_robots_expired 0.0" in await expiring(server)
