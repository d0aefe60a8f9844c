"""Durable webhook delivery with a real server process: a receiver on loopback that fails
first, the server SIGKILLed with every delivery pending, a restart, and every event delivered
(at least once) from what the database kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.test_crash import basic, robot_body, serve
from tests.helpers import free_port, run_cli

ADMIN = "H00kAdminPassword"
ROBOTS = 12


class Receiver:
    """An HTTP receiver in a thread: answers 503 while `failing`, else 200; records every
    request as (event, answered status)."""

    def __init__(self) -> None:
        self.failing = True
        self.seen: list[tuple[dict[str, Any], int, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                event = json.loads(self.rfile.read(length))
                status = 503 if receiver.failing else 200
                with receiver.lock:
                    receiver.seen.append((event, status, self.headers["Authorization"] or ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answered(self, status: int) -> set[str]:
        with self.lock:
            return {e["event_id"] for e, s, _ in self.seen if s == status}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def until(condition: Any, what: str, seconds: float = 120) -> None:
    """Wait for `condition()` (deliveries take their backoff and, for one a killed server
    held, its lease)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkill_with_deliveries_pending_loses_no_event(tmp_path: Path, receiver: Receiver) -> None:
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    init = run_cli(
        config, "init", "--listen", f"127.0.0.1:{port}",
        env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN},
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert run_cli(config, "project", "create", "crash").returncode == 0
    added = run_cli(
        config, "webhook", "add", "--project", "crash", "--name", "hook",
        "--address", receiver.url, "--event", "ROBOT_CREATED", "--auth-header", "-",
        stdin="Bearer receiver\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = serve(config, log)
    try:
        wait_for(f"{base}/healthz", server, log)

        async def create() -> list[int]:
            async with aiohttp.ClientSession() as session:
                ids = []
                for i in range(ROBOTS):
                    async with session.post(
                        f"{base}/api/v2.0/robots",
                        json=robot_body(f"r{i}"),
                        headers=basic("admin", ADMIN),
                    ) as r:
                        assert r.status == 201, await r.text()
                        ids.append((await r.json())["id"])
                return ids

        created = asyncio.run(create())
        # Every event tried once and refused: all pending, their next tries seconds away.
        until(lambda: len(receiver.answered(503)) == ROBOTS, "the first, failing tries")
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)

    with sqlite3.connect(tmp_path / "tokenserver.db") as db:
        states = db.execute("SELECT status FROM webhook_delivery").fetchall()
    assert len(states) == ROBOTS
    assert {s for (s,) in states} <= {"Pending", "Running"}
    failed = receiver.answered(503)

    receiver.failing = False
    server = serve(config, log)
    try:
        wait_for(f"{base}/healthz", server, log)
        until(lambda: receiver.answered(200) == failed, "every event, after the restart")
    finally:
        server.terminate()
        server.wait(timeout=10)

    events = [e for e, s, _ in receiver.seen if s == 200]
    assert sorted(e["event_data"]["robot"]["id"] for e in events) == sorted(created)
    assert {e["type"] for e in events} == {"ROBOT_CREATED"}
    assert {auth for _, _, auth in receiver.seen} == {"Bearer receiver"}
    with sqlite3.connect(tmp_path / "tokenserver.db") as db:
        states = db.execute("SELECT status, attempts FROM webhook_delivery").fetchall()
        dump = "\n".join(db.iterdump())
    # Sealed by the command line under the key file it made, opened by the server's processes.
    assert "Bearer receiver" not in dump and "v1:" in dump
    assert {s for s, _ in states} == {"Success"}
    assert all(attempts >= 2 for _, attempts in states)
