"""Crash safety: SIGKILL the server while 200 robot creations and secret refreshes are in
flight, restart it, and check that everything acknowledged survived and nothing is
half-written."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from base64 import b64encode, urlsafe_b64decode
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.conftest import wait_for
from tests.helpers import clean_env, free_port, make_robot, run_cli
from tokenserver.config import load_settings
from tokenserver.runtime import open_runtime

ADMIN = "Cr4shAdminPassword"


def serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def robot_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "level": "project",
        "duration": -1,
        "permissions": [
            {
                "kind": "project",
                "namespace": "crash",
                "access": [
                    {"resource": "repository", "action": "pull"},
                    {"resource": "repository", "action": "push"},
                ],
            }
        ],
    }


async def load(
    base: str,
    refresh_ids: list[int],
    created: list[dict[str, Any]],
    refreshed: dict[int, str],
) -> None:
    """Fire 150 creations and 50 refreshes at once; note each acknowledgement as it comes."""
    admin = basic("admin", ADMIN)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def create(i: int) -> None:
            try:
                async with session.post(
                    f"{base}/api/v2.0/robots", json=robot_body(f"r{i}"), headers=admin
                ) as r:
                    if r.status == 201:
                        created.append(await r.json())
            except (TimeoutError, aiohttp.ClientError):
                pass

        async def refresh(robot_id: int, i: int) -> None:
            secret = f"Refreshed{i}Secret"
            try:
                async with session.patch(
                    f"{base}/api/v2.0/robots/{robot_id}", json={"secret": secret}, headers=admin
                ) as r:
                    if r.status == 200:
                        refreshed[robot_id] = secret
            except (TimeoutError, aiohttp.ClientError):
                pass

        work = []
        for i in range(150):  # interleaved: a refresh after every three creations
            work.append(create(i))
            if i % 3 == 2:
                work.append(refresh(refresh_ids[i // 3], i // 3))
        await asyncio.gather(*work)


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    init = run_cli(
        config, "init", "--listen", f"127.0.0.1:{port}",
        env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN},
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert run_cli(config, "project", "create", "crash").returncode == 0

    async def existing() -> list[int]:
        async with open_runtime(load_settings(config, environ={}), sign=False) as runtime:
            return [
                (await make_robot(runtime, "crash", f"old{i}", "repository:pull"))[0].id
                for i in range(50)
            ]

    refresh_ids = asyncio.run(existing())
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = serve(config, log)
    wait_for(f"{base}/healthz", server, log)

    created: list[dict[str, Any]] = []
    refreshed: dict[int, str] = {}

    async def run() -> None:
        task = asyncio.create_task(load(base, refresh_ids, created, refreshed))
        # Kill once some writes are acknowledged: the KDF work keeps many more in flight.
        for _ in range(600):
            if len(created) >= 5 and refreshed:
                break
            await asyncio.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)
        await task

    asyncio.run(run())
    server.wait(timeout=10)
    assert 0 < len(created) < 150, "the kill should land while creations are in flight"
    assert 0 < len(refreshed) < 50, "and while refreshes are in flight"

    with sqlite3.connect(tmp_path / "tokenserver.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute(
            "SELECT name, secret_hash, permissions FROM robot WHERE name LIKE 'r%'"
        ).fetchall()
    for name, secret_hash, permissions in rows:  # nothing half-written
        assert secret_hash.startswith("scrypt$"), name
        assert json.loads(permissions)[0]["namespace"] == "crash"

    server = serve(config, log)
    try:
        wait_for(f"{base}/healthz", server, log)

        async def check() -> None:
            async with aiohttp.ClientSession() as session:
                for export in created:
                    async with session.get(
                        f"{base}/service/token",
                        params={"scope": "repository:crash/app:pull,push"},
                        headers=basic(export["name"], export["secret"]),
                    ) as r:
                        assert r.status == 200, export["name"]
                        token = (await r.json())["token"]
                    payload = token.split(".")[1]
                    claims = json.loads(urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
                    assert claims["access"][0]["actions"] == ["pull", "push"]
                for robot_id, secret in refreshed.items():
                    async with session.get(
                        f"{base}/service/token",
                        headers=basic(f"robot$crash+old{refresh_ids.index(robot_id)}", secret),
                    ) as r:
                        assert r.status == 200, robot_id

        asyncio.run(check())
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"acknowledged: {len(created)} creations, {len(refreshed)} refreshes", file=sys.stderr)
