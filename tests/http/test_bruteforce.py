"""Brute force over HTTP: 429 with Retry-After, bursts of successes never lock, and unknown
accounts cost the same KDF work as known ones."""

from __future__ import annotations

import asyncio

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
