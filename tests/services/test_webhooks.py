"""Webhooks for robot events, end to end below HTTP: policies, events queued with the change
they report, delivery to a real receiver on loopback (aiohttp's client), retries with backoff,
leases that outlive a dead server, one delivery per event across replicas, the expiry sweep.
Every test runs on SQLite and on PostgreSQL; time is a clock the test moves."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import MakeSettings, with_migrated_database
from tests.helpers import FakeClock
from tests.postgres import PostgresServer
from tests.storage.test_postgres import at_version
from tokenserver.domain.harbor_json import webhook_policy_json
from tokenserver.domain.models import LOCAL, SECONDS_PER_DAY, Level
from tokenserver.domain.permissions import Access, PermissionKind, RequestedPermission
from tokenserver.domain.webhooks import (
    FIRST_RETRY_SECONDS,
    LEASE_SECONDS,
    MASKED,
    MAX_ATTEMPTS,
    DeliveryStatus,
    Target,
)
from tokenserver.errors import StorageError
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.ports import NewWebhookPolicy
from tokenserver.services.robots import RobotSpec
from tokenserver.services.webhooks import (
    UNSEALABLE,
    HttpSender,
    PolicySpec,
    TargetSpec,
    WebhookDelivery,
)
from tokenserver.storage.postgres import PostgresStore
from tokenserver.storage.sql import SqlStore
from tokenserver.storage.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tokenserver.storage.sqlite import SCHEMA_VERSION as SQLITE_VERSION
from tokenserver.storage.sqlite import SqliteStore

AUTH = "Bearer receiver-token-1"


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1: records every request, answers `status` (a list is
    used up one answer per request, then 200)."""

    answers: list[int] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        if status in (301, 302, 307):
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status, text="receiver's private answer")

    def events(self, path: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.requests if p == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, make_settings: MakeSettings) -> MakeSettings:
    """Settings on SQLite, or on PostgreSQL (the same for every call)."""
    url = ""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.emptied_database()
    made: dict[str, Any] = {}

    def make(**overrides: Any) -> Any:
        if "settings" not in made:
            settings = make_settings(database__url=url) if url else make_settings()
            made["settings"] = settings if url else with_migrated_database(settings)
        return made["settings"]

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000)


@pytest.fixture
async def rt(database: MakeSettings, clock: FakeClock) -> AsyncIterator[Runtime]:
    async with open_runtime(database(), sign=False, clock=clock) as runtime:
        runtime.projects._clock = clock  # robots' creation and expiry in the test's time
        await runtime.projects.create(LOCAL, "team", public=False)
        yield runtime


def spec(name: str, level: Level = Level.PROJECT, duration: int = 30) -> RobotSpec:
    namespace = "team" if level is Level.PROJECT else "*"
    return RobotSpec(
        name=name,
        level=level,
        permissions=(
            RequestedPermission(namespace, (Access("repository", "pull"),), PermissionKind.PROJECT),
        ),
        duration=duration,
    )


def policy(url: str, *events: str, name: str = "hook", auth: str = AUTH) -> PolicySpec:
    return PolicySpec(
        name=name,
        targets=(TargetSpec(url, auth),),
        event_types=events or ("ROBOT_CREATED",),
    )


def worker(rt: Runtime, clock: Callable[[], float], **kwargs: Any) -> WebhookDelivery:
    return WebhookDelivery(rt.store, HttpSender(), clock, seal=rt.header_seal, **kwargs)


async def test_robot_events_reach_the_receiver_with_its_header_and_no_secret(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    everything = (
        "ROBOT_CREATED",
        "ROBOT_SECRET_REFRESHED",
        "ROBOT_DISABLED",
        "ROBOT_ENABLED",
        "ROBOT_DELETED",
    )
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, *everything))
    robot, secret = await rt.robots.create(LOCAL, spec("ci"))
    refreshed = await rt.robots.refresh_secret(LOCAL, str(robot.id))
    await rt.robots.set_disabled(LOCAL, str(robot.id), True)
    await rt.robots.set_disabled(LOCAL, str(robot.id), True)  # no change: no event
    await rt.robots.set_disabled(LOCAL, str(robot.id), False)
    await rt.robots.delete(LOCAL, str(robot.id))

    sender = worker(rt, clock)
    assert await sender.run_once() == 5
    events = receiver.events()
    assert [e["type"] for e in events] == list(everything)
    assert all(e["event_data"]["robot"]["name"] == "robot$team+ci" for e in events)
    assert [e["event_data"]["robot"]["disable"] for e in events] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert {e["operator"] for e in events} == {"local-admin"}
    assert len({e["event_id"] for e in events}) == 5
    for _, headers, body in receiver.requests:
        assert headers["Authorization"] == AUTH
        assert headers["Content-Type"] == "application/json"
        assert "Cookie" not in headers
        text = body.decode()
        assert secret.reveal() not in text and refreshed is not None
        assert refreshed.reveal() not in text
        assert robot.secret_hash not in text and "hash" not in text and AUTH not in text
    assert await sender.run_once() == 0  # each delivered once

    hook = (await rt.webhooks.policies(LOCAL, "team"))[0]
    deliveries, total = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert total == 5
    assert {d.status for d in deliveries} == {DeliveryStatus.SUCCESS}
    assert {d.status_message for d in deliveries} == {"HTTP 200"}


async def test_a_policy_gets_only_its_event_types_its_project_and_only_when_enabled(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.projects.create(LOCAL, "other", public=False)
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_DELETED"))
    off = await rt.webhooks.create(
        LOCAL, "team", policy(receiver.url + "/off", "ROBOT_CREATED", name="off")
    )
    await rt.webhooks.set_enabled(LOCAL, "team", off.id, False)
    await rt.webhooks.create(LOCAL, "other", policy(receiver.url + "/other", name="o"))
    await rt.webhooks.create(LOCAL, None, policy(receiver.url + "/system", name="sys"))
    robot, _ = await rt.robots.create(LOCAL, spec("ci"))
    await rt.robots.create(LOCAL, spec("root", Level.SYSTEM))
    await rt.robots.delete(LOCAL, str(robot.id))
    await worker(rt, clock).run_once()
    assert [(p, json.loads(b)["type"]) for p, _, b in receiver.requests] == [
        ("/hook/system", "ROBOT_CREATED"),
        ("/hook", "ROBOT_DELETED"),
    ]
    shown = await rt.webhooks.get(LOCAL, "team", off.id)
    assert not shown.enabled  # and the header kept by set_enabled:
    assert rt.header_seal.open(shown.targets[0].auth_header, off.id, off.targets[0].address) == AUTH


async def test_an_event_is_queued_in_the_transaction_of_its_change(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the event cannot be queued, the change is not kept either (and the other way
    round: a refused change queues nothing)."""
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_CREATED"))

    async def broken(*args: object) -> int:
        raise StorageError("the database is unavailable; try again")

    monkeypatch.setattr(rt.store, "enqueue_webhook_event", broken)
    with pytest.raises(StorageError):
        await rt.robots.create(LOCAL, spec("ci"))
    monkeypatch.undo()
    assert await rt.robots.list(LOCAL, "team") == []
    robot, _ = await rt.robots.create(LOCAL, spec("ci"))
    with pytest.raises(Exception, match="already exists"):
        await rt.robots.create(LOCAL, spec("ci"))
    hook = (await rt.webhooks.policies(LOCAL, "team"))[0]
    deliveries, _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert [json.loads(d.payload)["event_data"]["robot"]["id"] for d in deliveries] == [robot.id]


async def test_a_receiver_that_fails_first_gets_the_event_after_a_backoff(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    receiver.answers = [503, 500]
    sender = worker(rt, clock)
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0  # not due yet
    clock.now += FIRST_RETRY_SECONDS - 1
    assert await sender.run_once() == 0
    clock.now += 1
    assert await sender.run_once() == 1  # second try: 500
    clock.now += FIRST_RETRY_SECONDS * 2 - 1
    assert await sender.run_once() == 0  # the wait doubled
    clock.now += 1
    assert await sender.run_once() == 1
    assert len(receiver.requests) == 3
    assert len({json.loads(b)["event_id"] for _, _, b in receiver.requests}) == 1
    hook = (await rt.webhooks.policies(LOCAL, "team"))[0]
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCESS, 3)
    assert "private" not in delivery.status_message


async def test_a_receiver_down_for_good_is_given_up_after_the_last_try(
    rt: Runtime, clock: FakeClock, receiver: Receiver
) -> None:
    # Nothing listens on port 9 (discard) on loopback here.
    await rt.webhooks.create(LOCAL, "team", policy("http://127.0.0.1:9/hook"))
    await rt.robots.create(LOCAL, spec("ci"))
    sender = worker(rt, clock)
    tries = 0
    while await sender.run_once():
        tries += 1
        clock.now += 3600
    assert tries == MAX_ATTEMPTS
    hook = (await rt.webhooks.policies(LOCAL, "team"))[0]
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert delivery.status is DeliveryStatus.ERROR
    assert f"gave up after {MAX_ATTEMPTS} tries" in delivery.status_message


async def test_a_redirect_is_not_followed(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    receiver.answers = [302]
    await worker(rt, clock).run_once()
    assert [p for p, _, _ in receiver.requests] == ["/hook"]
    hook = (await rt.webhooks.policies(LOCAL, "team"))[0]
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.status_message == "HTTP 302: redirects are not followed"


async def test_a_delivery_held_by_a_dead_server_is_taken_over_when_its_lease_runs_out(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    now = int(clock())
    # A server claims it and dies before it sends (or records) anything.
    held = await rt.store.claim_webhook_deliveries("dead", now, now + LEASE_SECONDS, 10)
    assert len(held) == 1
    survivor = worker(rt, clock)
    assert await survivor.run_once() == 0
    clock.now += LEASE_SECONDS  # held until then
    assert await survivor.run_once() == 0
    clock.now += 1
    assert await survivor.run_once() == 1
    assert len(receiver.events()) == 1


async def test_replicas_claiming_at_once_send_each_event_once(
    database: MakeSettings, clock: FakeClock, receiver: Receiver
) -> None:
    settings = database()
    async with (
        open_runtime(settings, sign=False, clock=clock) as a,
        open_runtime(settings, sign=False, clock=clock) as b,
    ):
        await a.projects.create(LOCAL, "team", public=False)
        await a.webhooks.create(LOCAL, "team", policy(receiver.url))
        for i in range(30):
            await (a if i % 2 else b).robots.create(LOCAL, spec(f"r{i}"))
        workers = [worker(rt, clock, batch=4) for rt in (a, b, a, b)]

        async def drain(w: WebhookDelivery) -> None:
            while await w.run_once():
                pass

        await asyncio.gather(*(drain(w) for w in workers))
    ids = [e["event_data"]["robot"]["name"] for e in receiver.events()]
    assert sorted(ids) == sorted(f"robot$team+r{i}" for i in range(30))


async def test_expiry_notices_are_sent_once_per_robot_and_threshold(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_EXPIRING", "ROBOT_EXPIRED"))
    robot, _ = await rt.robots.create(LOCAL, spec("ci", duration=8))
    await rt.robots.create(LOCAL, spec("forever", duration=-1))
    sender = worker(rt, clock)
    events = rt.robot_events

    async def sweep() -> list[tuple[str, Any]]:
        await asyncio.gather(events.sweep_expiry(), events.sweep_expiry())
        await sender.run_once()
        found = [(e["type"], e["event_data"].get("days_left")) for e in receiver.events()]
        receiver.requests.clear()
        return found

    assert await sweep() == []
    clock.now += SECONDS_PER_DAY  # 7 days left
    assert await sweep() == [("ROBOT_EXPIRING", 7)]
    assert await sweep() == []
    clock.now += 6 * SECONDS_PER_DAY - 1  # a day and a second left
    assert await sweep() == []
    clock.now += 1
    assert await sweep() == [("ROBOT_EXPIRING", 1)]
    clock.now += SECONDS_PER_DAY
    assert await sweep() == [("ROBOT_EXPIRED", None)]
    assert await sweep() == []
    # A restarted expiry makes the notices due again, for the new expiry.
    await rt.robots.refresh_secret(LOCAL, str(robot.id), restart_expiry=True)
    clock.now += 2 * SECONDS_PER_DAY
    assert await sweep() == [("ROBOT_EXPIRING", 7)]


async def test_a_robot_about_to_expire_gets_the_nearest_notice_only(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_EXPIRING"))
    await rt.robots.create(LOCAL, spec("short", duration=1))
    await rt.robot_events.sweep_expiry()
    await worker(rt, clock).run_once()
    assert [e["event_data"]["days_left"] for e in receiver.events()] == [1]


async def test_deleting_a_policy_drops_its_pending_deliveries(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    await rt.webhooks.delete(LOCAL, "team", hook.id)
    assert await worker(rt, clock).run_once() == 0
    assert receiver.requests == []


@pytest.fixture
def dump(request: pytest.FixtureRequest, database: MakeSettings) -> Callable[[], Awaitable[str]]:
    """Everything in the test's database as SQL: SQLite's iterdump, or pg_dump."""

    def run() -> str:
        settings = database()
        if settings.database.url:
            server: PostgresServer = request.getfixturevalue("postgres")
            return server.dump(settings.database.url.rsplit("/", 1)[1])
        with sqlite3.connect(settings.database.path) as db:
            return "\n".join(db.iterdump())

    async def off_the_loop() -> str:
        return await asyncio.to_thread(run)

    return off_the_loop


async def test_the_database_never_holds_an_auth_header_in_clear(
    rt: Runtime, receiver: Receiver, clock: FakeClock, dump: Callable[[], Awaitable[str]]
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    rotated = "Bearer receiver-token-2"
    await rt.webhooks.update(LOCAL, "team", hook.id, policy(receiver.url, auth=rotated))
    await rt.webhooks.update(LOCAL, "team", hook.id, policy(receiver.url, auth=MASKED))
    await rt.webhooks.set_enabled(LOCAL, "team", hook.id, True)
    await rt.robots.create(LOCAL, spec("ci"))  # its delivery holds a copy of the target
    text = await dump()
    assert receiver.url in text and "ROBOT_CREATED" in text
    assert "receiver-token" not in text
    [target] = (await rt.webhooks.get(LOCAL, "team", hook.id)).targets
    assert target.auth_header.startswith("v1:") and target.auth_header in text
    # A fresh nonce each time: the same header sealed again is another value.
    again = rt.header_seal.seal(rotated, hook.id, receiver.url)
    assert again != target.auth_header
    assert rt.header_seal.open(again, hook.id, receiver.url) == rotated

    assert await worker(rt, clock).run_once() == 1
    [(_, headers, _)] = receiver.requests
    assert headers["Authorization"] == rotated


async def test_a_sealed_header_moved_to_another_policy_or_address_does_not_open(
    rt: Runtime, receiver: Receiver, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone who can write to the database copies policy a's sealed header into policy b
    (with a's address) and into c (under c's own address): neither sends it anywhere."""
    a = await rt.webhooks.create(
        LOCAL, "team", policy(receiver.url + "/a", "ROBOT_DELETED", name="a", auth="Bearer a")
    )
    made = {}
    for name in ("b", "c"):
        made[name] = await rt.webhooks.create(
            LOCAL, "team", policy(receiver.url + f"/{name}", name=name, auth=f"Bearer {name}")
        )
    team = a.project_id
    copied = {
        "b": a.targets,
        "c": (Target(receiver.url + "/c", a.targets[0].auth_header),),
    }
    for name, targets in copied.items():
        row = NewWebhookPolicy(team, name, "", targets, ("ROBOT_CREATED",), True)
        assert await rt.store.update_webhook_policy(made[name].id, row, int(clock()))
    await rt.robots.create(LOCAL, spec("ci"))
    assert await worker(rt, clock).run_once() == 2
    assert receiver.requests == []
    for name in ("b", "c"):
        [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", made[name].id, 0, 10)
        assert delivery.status is DeliveryStatus.PENDING  # tried again later, fails again
        assert delivery.status_message == UNSEALABLE
        shown = webhook_policy_json(await rt.webhooks.get(LOCAL, "team", made[name].id))
        assert shown["targets"][0]["auth_header"] == MASKED
    assert "Bearer a" not in caplog.text


async def test_a_changed_key_file_fails_closed_and_a_restored_one_sends(
    rt: Runtime, database: MakeSettings, receiver: Receiver, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    key_file = database().webhooks.secret_key
    original = key_file.read_bytes()
    key_file.unlink()  # lost: the next start makes another key
    async with open_runtime(database(), sign=True, clock=clock) as other:
        assert key_file.read_bytes() != original
        assert await worker(other, clock).run_once() == 1
        shown = webhook_policy_json(await other.webhooks.get(LOCAL, "team", hook.id))
    assert receiver.requests == []
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert (delivery.status, delivery.status_message) == (DeliveryStatus.PENDING, UNSEALABLE)
    assert "restore the key, or send the header again" in UNSEALABLE
    assert shown["targets"][0]["auth_header"] == MASKED
    [line] = [r.getMessage() for r in caplog.records if "does not open" in r.getMessage()]
    assert f"webhook delivery {delivery.id} (policy {hook.id}, ROBOT_CREATED) not sent" in line
    assert str(key_file) in line and "webhooks.secret_key" in line
    assert AUTH not in caplog.text and "receiver-token" not in caplog.text

    key_file.unlink()
    key_file.write_bytes(original)  # restored from the backup: the retry is sent
    async with open_runtime(database(), sign=True, clock=clock) as restored:
        clock.now += FIRST_RETRY_SECONDS
        assert await worker(restored, clock).run_once() == 1
    [(_, headers, _)] = receiver.requests
    assert headers["Authorization"] == AUTH


def key_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "tokenserver.webhooks" and r.levelname == "WARNING"
    ]


async def test_a_lost_key_file_is_warned_of_at_start_when_headers_are_stored(
    rt: Runtime, database: MakeSettings, receiver: Receiver, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A database restored without its key file: the server makes another key, under which
    the stored headers never open; it says so once at start, naming the file and the count."""
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, name="a"))
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, name="b"))
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, name="plain", auth=""))
    await rt.webhooks.create(LOCAL, None, policy(receiver.url, name="system"))
    key_file = database().webhooks.secret_key
    key_file.unlink()
    async with open_runtime(database(), sign=True, clock=clock):
        pass
    [warning] = key_warnings(caplog)
    assert warning.startswith(f"webhooks.secret_key: {key_file} was just created, but 3 ")
    assert "3 webhook policies have auth headers sealed under another key" in warning
    assert "Restore the key file from the backup taken with the database" in warning
    assert "set those targets' auth headers again" in warning
    assert "receiver-token" not in caplog.text
    assert key_file.read_text().strip() not in caplog.text

    caplog.clear()  # the next start has the key it made: nothing more to say
    async with open_runtime(database(), sign=True, clock=clock):
        pass
    assert key_warnings(caplog) == []


async def test_one_policy_is_counted_in_the_singular(
    rt: Runtime, database: MakeSettings, receiver: Receiver, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    database().webhooks.secret_key.unlink()
    async with open_runtime(database(), sign=True, clock=clock):
        pass
    [warning] = key_warnings(caplog)
    assert "but 1 webhook policy has auth headers sealed under another key" in warning


async def test_a_new_key_file_is_not_warned_of_without_stored_headers(
    rt: Runtime, database: MakeSettings, receiver: Receiver, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, auth=""))
    key_file = database().webhooks.secret_key
    key_file.unlink(missing_ok=True)
    async with open_runtime(database(), sign=True, clock=clock):
        assert key_file.exists()
    assert key_warnings(caplog) == []


async def test_a_kept_key_file_is_not_warned_of(
    rt: Runtime, database: MakeSettings, receiver: Receiver, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    assert database().webhooks.secret_key.exists()
    async with open_runtime(database(), sign=True, clock=clock):
        pass
    assert key_warnings(caplog) == []


async def test_a_header_stored_in_clear_before_sealing_is_never_sent(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    """What schema 8's first code stored (unreleased): treated as a header that does not
    open, so never sent in clear; a PUT with the header seals it, for the deliveries queued
    before too."""
    team = (await rt.projects.resolve("team", True)).id
    row = NewWebhookPolicy(team, "old", "", (Target(receiver.url, AUTH),), ("ROBOT_CREATED",), True)
    old = await rt.store.add_webhook_policy(row, int(clock()), 20)
    assert old is not None
    await rt.robots.create(LOCAL, spec("ci"))
    assert await worker(rt, clock).run_once() == 1
    assert receiver.requests == []
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", old.id, 0, 10)
    assert delivery.status_message == UNSEALABLE
    await rt.webhooks.update(LOCAL, "team", old.id, policy(receiver.url, name="old"))
    await rt.robots.create(LOCAL, spec("cd"))
    clock.now += FIRST_RETRY_SECONDS
    await worker(rt, clock).run_once()
    assert [h["Authorization"] for _, h, _ in receiver.requests] == [AUTH, AUTH]


_V7_ROBOT = (
    "INSERT INTO project (id, name, public, creation_time, update_time) "
    "VALUES (1, 'lib', FALSE, 1, 1); "
    "INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at, "
    "creation_time, update_time, permissions) "
    "VALUES (1, 'ci', 1, 'project', 'h', 1, 86401, 1, 1, '[]');"
)


async def _upgraded_store_takes_webhooks(store: SqlStore) -> None:
    robot = await store.find_robot_by_id(1)
    assert robot is not None and (robot.name, robot.project_name) == ("ci", "lib")
    hook = await store.add_webhook_policy(
        NewWebhookPolicy(1, "h", "", (Target("http://127.0.0.1:9/"),), ("ROBOT_EXPIRED",), True),
        5,
        20,
    )
    assert hook is not None and await store.list_webhook_policies(1) == [hook]
    assert [r.id for r in await store.robots_expiring_by(86401)] == [1]
    assert await store.add_robot_notice(1, "ROBOT_EXPIRED", 86401)
    assert not await store.add_robot_notice(1, "ROBOT_EXPIRED", 86401)
    assert await store.enqueue_webhook_event(1, "ROBOT_EXPIRED", "e", "{}", 6) == 1


async def test_a_database_of_schema_7_gets_webhooks_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 8):
            db.executescript(SQLITE_MIGRATIONS[version])
        db.executescript(_V7_ROBOT)
        db.execute("PRAGMA user_version=7")
    store = await SqliteStore.open(path)
    try:
        await _upgraded_store_takes_webhooks(store)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SQLITE_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_database_of_schema_7_gets_webhooks_on_postgresql(
    postgres: PostgresServer,
) -> None:
    url = at_version(postgres, 7, _V7_ROBOT)
    store = await PostgresStore.open(url)
    try:
        await _upgraded_store_takes_webhooks(store)
    finally:
        await store.close()
