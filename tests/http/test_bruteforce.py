"""Brute force over HTTP: 429 with Retry-After, bursts of successes never lock, and unknown
accounts cost the same KDF work as known ones."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence

import pytest
from aiohttp import ClientResponse

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import AiohttpClient, Server, basic
from tests.http.test_observability import metric
from tokenserver.domain.models import LOCAL
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost, verify_secret
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.services import verifier as verifier_module

TOKEN = "/service/token"


@pytest.fixture
async def strict(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> Server:
    settings = with_migrated_database(make_settings(security__lockout_threshold=3))
    app = create_app(settings)
    return Server(await aiohttp_client(app), app[RUNTIME], settings)


async def test_repeated_failures_get_429_with_retry_after(strict: Server) -> None:
    robot = await strict.robot("p", "ci", "repository:pull")
    for i in range(3):
        r = await strict.client.get(TOKEN, headers=basic(robot.name, f"Wrong{i}Secret"))
        assert r.status == 401
    r = await strict.client.get(TOKEN, headers=robot.headers)
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    body = await r.json()
    assert body["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    r = await strict.client.get("/api/v2.0/users/current", headers=robot.headers)
    assert r.status == 429
    assert strict.runtime.throttle.lockouts == 1


async def test_identical_retries_count_once(strict: Server) -> None:
    robot = await strict.robot("p", "ci", "repository:pull")
    wrong = basic(robot.name, "TheSameWrongOne1")
    for _ in range(6):  # helm retries a failed POST as GET: same credentials, seconds apart
        assert (await strict.client.get(TOKEN, headers=wrong)).status == 401
    assert (await strict.client.get(TOKEN, headers=robot.headers)).status == 200


async def test_a_burst_of_successes_never_locks(strict: Server) -> None:
    robot = await strict.robot("p", "ci", "repository:pull")
    responses = await asyncio.gather(
        *(
            strict.client.get(
                TOKEN, params={"scope": "repository:p/app:pull"}, headers=robot.headers
            )
            for _ in range(50)
        )
    )
    assert [r.status for r in responses] == [200] * 50
    assert strict.runtime.throttle.lockouts == 0


async def test_refresh_token_guessing_is_throttled(strict: Server) -> None:
    for i in range(3):
        r = await strict.client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": f"tsr_guess{i}"}
        )
        assert r.status == 401
    r = await strict.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": "tsr_guess9"}
    )
    assert r.status == 429


@pytest.mark.production_kdf
async def test_unknown_accounts_run_the_same_kdf_work(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    calls: list[str] = []
    real = verify_secret

    def counting(secret: str, stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
        calls.append("$".join(stored.split("$")[:4]) + "$")  # the cost it runs at
        return real(secret, stored, cost)

    monkeypatch.setattr(verifier_module, "verify_secret", counting)
    for username in (robot.name, "robot$p+nobody", "nobody-at-all", "robot$nope+x"):
        assert (
            await server.client.get(TOKEN, headers=basic(username, "Wr0ngSecret"))
        ).status == 401
    # Two runs each: a robot with a previous secret checks both (SecretVerifier.match), and
    # every run at the production cost, the dummies and stand-ins of unknown names too.
    assert calls == ["scrypt$14$8$5$"] * 8


class GatedKdf:
    """verify_secret, counted, and held in its thread until `release()`: every request of a
    burst reaches the verifier before any KDF run ends, so what the burst shares does not depend
    on timing."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self._gate = threading.Event()

    def __call__(self, secret: str, stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
        self.runs.append(stored)
        self._gate.wait(timeout=60)
        return verify_secret(secret, stored, cost)

    def release(self) -> None:
        self._gate.set()


async def gated(
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    calls: Sequence[Callable[[], Awaitable[ClientResponse]]],
) -> tuple[list[int], list[str]]:
    """Make the requests at once, holding every KDF run until each request has reached the
    verifier; their statuses and the stored hashes the KDF ran against, one per run."""
    kdf = GatedKdf()
    monkeypatch.setattr(verifier_module, "verify_secret", kdf)
    verifier = server.runtime.verifier
    checked = verifier.misses + verifier.hits
    requests = [asyncio.ensure_future(call()) for call in calls]
    try:
        for _ in range(6000):  # until every request is at the verifier (or the test fails)
            if verifier.misses + verifier.hits - checked >= len(calls):
                break
            await asyncio.sleep(0.005)
        assert verifier.misses + verifier.hits - checked == len(calls)
    finally:
        kdf.release()
    responses = await asyncio.gather(*requests)
    return [r.status for r in responses], kdf.runs


async def burst(
    server: Server, monkeypatch: pytest.MonkeyPatch, credentials: Sequence[tuple[str, str]]
) -> tuple[list[int], list[str]]:
    """One token request per (username, password) at once (see `gated`)."""
    return await gated(
        server,
        monkeypatch,
        [
            functools.partial(server.client.get, TOKEN, headers=basic(user, password))
            for user, password in credentials
        ],
    )


async def test_attack_unknown_names_share_one_kdf_run(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 unknown names at once used to cost one KDF run (one shared dummy hash) where 8 known
    robots cost 8: the time of a burst told whether the names exist. At the tests' cheap cost
    (the runs are counted, not timed); that unknown names run at the production cost is
    `test_unknown_accounts_run_the_same_kdf_work`'s."""
    robots = [await server.robot("p", f"ci{i}", "repository:pull") for i in range(8)]
    unknown = [f"robot$p+nobody{i}" for i in range(4)] + [f"nobody{i}" for i in range(4)]
    statuses, unknown_runs = await burst(server, monkeypatch, [(u, "Wr0ngSecret") for u in unknown])
    assert statuses == [401] * 8
    statuses, known_runs = await burst(
        server, monkeypatch, [(r.name, "Wr0ngSecret") for r in robots]
    )
    assert statuses == [401] * 8
    # Two runs a wrong password (SecretVerifier.match), none shared between names.
    assert len(unknown_runs) == len(known_runs) == 16
    assert len(set(unknown_runs)) == 16
    # At the cost of the known robots' hashes: the server's.
    assert all(run.startswith(server.settings.kdf_cost.prefix) for run in unknown_runs + known_runs)


async def test_attack_burst_for_one_unknown_name_costs_what_one_known_name_costs(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One name and one password, repeated at once: one KDF run whether the name exists or not.
    Distinct passwords for one name: one run each, again whether it exists or not."""
    robot = await server.robot("p", "ci", "repository:pull")
    other = await server.robot("p", "cd", "repository:pull")
    same = [
        await burst(server, monkeypatch, [(name, "Wr0ngSecret")] * 8)
        for name in ("robot$p+nobody", robot.name)
    ]
    assert [statuses for statuses, _ in same] == [[401] * 8] * 2
    assert [len(runs) for _, runs in same] == [2, 2]  # a wrong password costs two runs
    distinct = [
        await burst(server, monkeypatch, [(name, f"Wr0ngSecret{i}") for i in range(8)])
        for name in ("nobody", other.name)
    ]
    assert [statuses for statuses, _ in distinct] == [[401] * 8] * 2
    assert [len(runs) for _, runs in distinct] == [16, 16]


async def test_a_cold_burst_from_one_robot_shares_one_kdf_run(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    statuses, runs = await burst(server, monkeypatch, [(robot.name, robot.secret)] * 8)
    assert statuses == [200] * 8
    assert len(runs) == 1
    statuses, runs = await burst(server, monkeypatch, [(robot.name, robot.secret)] * 8)
    assert statuses == [200] * 8
    assert runs == []  # warm: the cache answers


USER_PASSWORD = "Er1nPassword"


async def session_of(server: Server, username: str) -> tuple[str, dict[str, str]]:
    """A user logged in to the web page: the password-change path and the CSRF header (the
    session cookie stays in the client)."""
    user = await server.runtime.users.create(LOCAL, username, USER_PASSWORD)
    r = await server.client.post(
        "/c/login", json={"principal": username, "password": USER_PASSWORD}
    )
    assert r.status == 200, await r.text()
    csrf = (await r.json())["csrf_token"]
    return f"/api/v2.0/users/{user.id}/password", {"X-Harbor-CSRF-Token": csrf}


async def test_attack_old_password_guessing_is_throttled(strict: Server) -> None:
    """Whoever holds a user's session cookie could guess the password as old_password without
    limit: each guess is now a failed authentication, and past the threshold 429."""
    path, csrf = await session_of(strict, "erin")
    for i in range(3):
        r = await strict.client.put(
            path,
            json={"old_password": f"Gue55{i}Word", "new_password": "N3wPassword"},
            headers=csrf,
        )
        assert r.status == 403
        assert (await r.json())["errors"][0]["code"] == "FORBIDDEN"
    right = {"old_password": USER_PASSWORD, "new_password": "N3wPassword"}
    r = await strict.client.put(path, json=right, headers=csrf)
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert (await r.json())["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    user = await strict.runtime.store.find_user("erin")
    assert user is not None and verify_secret(USER_PASSWORD, user.password_hash)  # unchanged
    # The same (account, address) score as the token endpoint's: guessing there is locked too.
    r = await strict.client.get(TOKEN, headers=basic("erin", USER_PASSWORD))
    assert r.status == 429
    text = await (await strict.client.get("/metrics")).text()
    assert metric(text, "tokenserver_authentication_failures_total") == 3
    assert metric(text, "tokenserver_lockouts_total") == 1


async def test_old_password_rules_that_are_not_guesses(strict: Server) -> None:
    """A missing old password and an admin's change are not counted; the right old password
    clears the score, as a successful login does."""
    path, csrf = await session_of(strict, "erin")
    for _ in range(3):
        r = await strict.client.put(path, json={"new_password": "N3wPassword"}, headers=csrf)
        assert r.status == 403
    for i in range(2):
        r = await strict.client.put(
            path,
            json={"old_password": f"Gue55{i}Word", "new_password": "N3wPassword"},
            headers=csrf,
        )
        assert r.status == 403
    assert strict.runtime.throttle.failures == 2
    r = await strict.client.put(
        path, json={"old_password": USER_PASSWORD, "new_password": "N3wPassword"}, headers=csrf
    )
    assert r.status == 200, await r.text()
    # Cleared: one more failure does not reach the threshold of 3.
    assert (await strict.client.get(TOKEN, headers=basic("erin", "Wr0ngOne"))).status == 401
    assert (await strict.client.get(TOKEN, headers=basic("erin", "N3wPassword"))).status == 200
    await strict.runtime.users.ensure_admin("Adm1nPassword")
    admin = basic("admin", "Adm1nPassword")
    for _ in range(4):
        r = await strict.client.put(path, json={"new_password": "Adm1nChosen1"}, headers=admin)
        assert r.status == 200
    assert strict.runtime.throttle.failures == 3


async def test_attack_random_refresh_tokens_lock_out_every_client_at_the_address(
    strict: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # Behind one NAT address: a CI runner's valid refresh token, and someone sending random
    # ones. The random ones are counted and logged, and locked out; the valid one still works.
    robot = await strict.robot("p", "ci", "repository:pull")
    r = await strict.client.post(
        TOKEN,
        data={
            "grant_type": "password", "username": robot.name, "password": robot.secret,
            "access_type": "offline", "client_id": "docker",
        },
    )  # fmt: skip
    valid = (await r.json())["refresh_token"]
    caplog.set_level(logging.INFO, logger="tokenserver.token")
    statuses = []
    for i in range(11):
        r = await strict.client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": f"tsr_random{i}"}
        )
        statuses.append(r.status)
    assert statuses == [401] * 3 + [429] * 8
    r = await strict.client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": valid,
            "scope": "repository:p/a:pull",
        },
    )
    assert r.status == 200, await r.text()
    assert strict.runtime.throttle.failures == 11
    denied = [m for m in caplog.messages if m.startswith("token denied grant=refresh_token")]
    assert len(denied) == 11
    # Still locked for bad tokens, and still counted.
    r = await strict.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": "tsr_random99"}
    )
    assert r.status == 429
    assert strict.runtime.throttle.failures == 12


async def test_a_revoked_refresh_token_is_not_valid_during_a_lockout(strict: Server) -> None:
    robot = await strict.robot("p", "ci", "repository:pull")
    r = await strict.client.post(
        TOKEN,
        data={
            "grant_type": "password", "username": robot.name, "password": robot.secret,
            "access_type": "offline",
        },
    )  # fmt: skip
    revoked = (await r.json())["refresh_token"]
    await strict.runtime.store.delete_refresh_tokens(robot_id=robot.id)
    for i in range(3):
        await strict.client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": f"tsr_random{i}"}
        )
    r = await strict.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": revoked}
    )
    assert r.status == 429


async def test_attack_concurrent_guesses_slip_past_the_lockout(
    strict: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every guess of a burst passed the lockout check before the first one failed: 24 at
    once got 24 tries where one at a time gets 3. Guesses still running count as failures."""
    robot = await strict.robot("p", "ci", "repository:pull")
    guesses = [(robot.name, f"Wrong{i}Secret") for i in range(24)] + [(robot.name, robot.secret)]
    statuses, runs = await burst(strict, monkeypatch, guesses)
    checked = statuses.count(401) + statuses.count(200)
    assert checked <= 3
    # A wrong guess costs two KDF runs (SecretVerifier.match), the right one one.
    assert len(runs) == 2 * statuses.count(401) + statuses.count(200)
    assert statuses.count(429) == len(guesses) - checked
    r = await strict.client.get(TOKEN, headers=robot.headers)
    assert r.status == 429  # the admitted guesses failed: locked out, as one at a time


async def test_attack_concurrent_old_password_guesses_slip_past_the_lockout(
    strict: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, csrf = await session_of(strict, "erin")
    bodies = [{"old_password": f"Gue55{i}Word", "new_password": "N3wPassword"} for i in range(12)]
    statuses, runs = await gated(
        strict,
        monkeypatch,
        [functools.partial(strict.client.put, path, json=b, headers=csrf) for b in bodies],
    )
    assert len(runs) <= 3
    assert statuses.count(403) == len(runs)
    assert statuses.count(429) == len(bodies) - len(runs)
    right = {"old_password": USER_PASSWORD, "new_password": "N3wPassword"}
    assert (await strict.client.put(path, json=right, headers=csrf)).status == 429


async def test_a_cold_burst_with_the_right_secret_is_never_throttled(
    strict: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One secret sent many times at once is one attempt (it shares one KDF run): a CI fan-out
    with a cold cache is not a guesser, even right after two failures."""
    robot = await strict.robot("p", "ci", "repository:pull")
    for i in range(2):
        r = await strict.client.get(TOKEN, headers=basic(robot.name, f"Typo{i}Secret"))
        assert r.status == 401
    statuses, runs = await burst(strict, monkeypatch, [(robot.name, robot.secret)] * 30)
    assert statuses == [200] * 30
    assert len(runs) == 1
