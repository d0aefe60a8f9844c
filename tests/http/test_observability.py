"""/metrics, /healthz, /readyz and request ids."""

from __future__ import annotations

import re

import pytest

from tests.http.conftest import Server, basic

TOKEN = "/service/token"


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        metric_name, _, label_text = key.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric_name == name and found == wanted:
            return float(value)
    return 0.0


async def test_metrics_count_token_requests_cache_and_failures(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull")
    for _ in range(3):
        assert (await server.client.get(TOKEN, headers=robot.headers)).status == 200
    assert (await server.client.get(TOKEN, headers=basic(robot.name, "Wr0ngOne"))).status == 401
    assert (await server.client.get(TOKEN)).status == 401
    r = await server.client.post(
        TOKEN, data={"grant_type": "password", "username": robot.name, "password": robot.secret}
    )
    assert r.status == 200
    await server.client.get("/api/v2.0/projects")
    r = await server.client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    assert metric(text, "tokenserver_token_requests_total", grant="basic", outcome="issued") == 3
    assert metric(text, "tokenserver_token_requests_total", grant="basic", outcome="denied") == 1
    assert (
        metric(text, "tokenserver_token_requests_total", grant="anonymous", outcome="denied") == 1
    )
    assert metric(text, "tokenserver_token_requests_total", grant="password", outcome="issued") == 1
    assert metric(text, "tokenserver_token_request_duration_seconds_count") == 6
    assert metric(text, "tokenserver_token_request_duration_seconds_bucket", le="+Inf") == 6
    assert metric(text, "tokenserver_token_request_duration_seconds_bucket", le="2.5") == 6
    assert metric(text, "tokenserver_token_request_duration_seconds_sum") > 0
    assert metric(text, "tokenserver_kdf_cache_total", result="hit") == 3
    # The first login, and the wrong password's two runs (SecretVerifier.match).
    assert metric(text, "tokenserver_kdf_cache_total", result="miss") == 3
    assert metric(text, "tokenserver_authentication_failures_total") == 1
    assert metric(text, "tokenserver_lockouts_total") == 0
    assert (
        metric(text, "tokenserver_api_requests_total", method="GET", route="/api/v2.0/projects",
               status="200") == 1
    )  # fmt: skip
    assert robot.secret not in text


async def test_health_and_readiness(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await (await server.client.get("/healthz")).json() == {"status": "ok"}
    r = await server.client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"status": "ready"}

    async def down() -> None:
        raise OSError("gone")

    monkeypatch.setattr(server.runtime.store, "ping", down)
    r = await server.client.get("/readyz")
    assert r.status == 503
    assert (await r.json())["problems"] == ["database does not answer"]


async def test_request_ids(server: Server) -> None:
    r = await server.client.get("/healthz", headers={"X-Request-Id": "ci-run-42.step-7"})
    assert r.headers["X-Request-Id"] == "ci-run-42.step-7"
    r = await server.client.get("/healthz", headers={"X-Request-Id": "bad id\u00e9 <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    first = r.headers["X-Request-Id"]
    r = await server.client.get("/nope")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    assert r.headers["X-Request-Id"] != first
