"""Brute force over HTTP: 429 with Retry-After, bursts of successes never lock, and unknown
accounts cost the same KDF work as known ones."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, basic
from tokenserver.domain.secrets import verify_secret
from tokenserver.http.api import RUNTIME
from tokenserver.http.app import create_app
from tokenserver.services import verifier as verifier_module

TOKEN = "/service/token"


@pytest.fixture
async def strict(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> Server:
    settings = make_settings(security__lockout_threshold=3)
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


async def test_unknown_accounts_run_the_same_kdf_work(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    calls: list[str] = []
    real = verify_secret

    def counting(secret: str, stored: str) -> bool:
        calls.append(stored.split("$", 1)[0] + "$" + stored.split("$")[1])
        return real(secret, stored)

    monkeypatch.setattr(verifier_module, "verify_secret", counting)
    for username in (robot.name, "robot$p+nobody", "nobody-at-all", "robot$nope+x"):
        assert (
            await server.client.get(TOKEN, headers=basic(username, "Wr0ngSecret"))
        ).status == 401
    assert calls == ["scrypt$14"] * 4


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
