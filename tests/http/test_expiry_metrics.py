"""/metrics counts the robots about to expire and those expired (issue 19, item 3)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.http.conftest import Server
from tests.http.test_observability import metric
from tokenserver.domain.models import LOCAL
from tokenserver.errors import StorageError

DAY = 86400


def set_expiry(server: Server, robot_id: int, expires_at: int, disabled: bool = False) -> None:
    with sqlite3.connect(server.settings.database.path) as db:
        db.execute(
            "UPDATE robot SET expires_at = ?, disabled = ? WHERE id = ?",
            (expires_at, disabled, robot_id),
        )


async def scrape(server: Server) -> str:
    r = await server.client.get("/metrics")
    assert r.status == 200
    return await r.text()


async def test_robots_expiring_and_expired_are_counted(server: Server) -> None:
    now = int(time.time())
    for name, expires, disabled in (
        ("hour", now + 3600, False),
        ("days", now + 3 * DAY, False),
        ("weeks", now + 20 * DAY, False),
        ("months", now + 60 * DAY, False),
        ("never", -1, False),
        ("gone", now - 10, False),
        ("off-gone", now - 10, True),
        ("off-soon", now + 3600, True),
    ):
        robot = await server.robot("p", name, "repository:pull", duration=90)
        set_expiry(server, robot.id, expires, disabled)
    text = await scrape(server)
    assert metric(text, "tokenserver_robots_expiring", within="1d") == 1
    assert metric(text, "tokenserver_robots_expiring", within="7d") == 2
    assert metric(text, "tokenserver_robots_expiring", within="30d") == 3
    assert metric(text, "tokenserver_robots_expired") == 1
    assert "# TYPE tokenserver_robots_expiring gauge" in text
    # Counts only: no robot's name is shown to whoever scrapes.
    for name in ("hour", "days", "gone"):
        assert f"+{name}" not in text and f'"{name}"' not in text


async def test_the_counts_follow_the_database_at_each_scrape(server: Server) -> None:
    robot = await server.robot("p", "ci", "repository:pull", duration=1)
    assert metric(await scrape(server), "tokenserver_robots_expiring", within="1d") == 1
    await server.runtime.robots.set_disabled(LOCAL, str(robot.id), True)
    assert metric(await scrape(server), "tokenserver_robots_expiring", within="1d") == 0
    await server.runtime.robots.set_disabled(LOCAL, str(robot.id), False)
    server.expire(robot.id)
    text = await scrape(server)
    assert metric(text, "tokenserver_robots_expiring", within="1d") == 0
    assert metric(text, "tokenserver_robots_expired") == 1


async def test_no_robots_are_zeros_not_missing(server: Server) -> None:
    text = await scrape(server)
    assert 'tokenserver_robots_expiring{within="7d"} 0.0' in text
    assert "tokenserver_robots_expired 0.0" in text


async def test_a_database_that_does_not_answer_leaves_out_only_the_robot_gauges(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(windows: object) -> tuple[int, dict[int, int]]:
        raise StorageError("database unavailable")

    monkeypatch.setattr(server.runtime.robots, "expiry_counts", broken)
    text = await scrape(server)
    assert "tokenserver_robots_expir" not in text
    assert "tokenserver_kdf_cache_total" in text
