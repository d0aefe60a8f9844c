"""Attacks on webhook delivery (an outside review): what a policy's author can learn about an
internal address through the delivery history, where a policy's queued deliveries go after
the policy changed, and whether one project's receivers can hold back another project's
events. Each test runs on SQLite and PostgreSQL (the fixtures of test_webhooks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.helpers import FakeClock
from tests.services.test_webhooks import (
    AUTH,
    Receiver,
    clock,
    database,
    policy,
    receiver,
    rt,
    spec,
    worker,
)
from tokenserver.domain.models import LOCAL, Level
from tokenserver.domain.permissions import Access, PermissionKind, RequestedPermission
from tokenserver.domain.webhooks import SEND_TIMEOUT_SECONDS, Delivery, DeliveryStatus
from tokenserver.runtime import Runtime
from tokenserver.services.robots import RobotSpec
from tokenserver.services.webhooks import PolicySpec, TargetSpec, WebhookDelivery

__all__ = ["clock", "database", "receiver", "rt"]

SECRET = "banner-secret-4711"


async def raw_server(answer: bytes) -> tuple[asyncio.Server, str]:
    """A TCP service on loopback that is not a web server (an SSH daemon, a database): it
    reads the request and answers `answer`, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/x"


@pytest.fixture(
    params=[
        b"SSH-2.0-OpenSSH_9.2p1 " + SECRET.encode() + b"\r\n",
        b"+OK " + SECRET.encode() + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-Internal-Token " + SECRET.encode() + b"\r\n\r\n",
    ],
    ids=["ssh-banner", "line-protocol", "malformed-header"],
)
async def internal_service(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    server, url = await raw_server(request.param)
    try:
        yield url
    finally:
        server.close()
        await server.wait_closed()


async def test_attack_a_policy_author_never_reads_an_internal_services_answer(
    rt: Runtime, clock: FakeClock, internal_service: str
) -> None:
    """A robot (or member) allowed to create policies points one at an internal address and
    reads the delivery history: the README promises that only the answer's status is kept.
    aiohttp's parse errors quote the bytes the service sent (its banner, a header line), and
    the sender keeps the exception text as the task's `status_message`."""
    hook = await rt.webhooks.create(LOCAL, "team", policy(internal_service))
    await rt.robots.create(LOCAL, spec("ci"))
    assert await worker(rt, clock).run_once() == 1
    [delivery], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert delivery.status is DeliveryStatus.PENDING  # not a 2xx: tried again later
    assert SECRET not in delivery.status_message, delivery.status_message


async def test_attack_queued_deliveries_do_not_go_to_an_address_the_policy_no_longer_has(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    """An admin moves a policy to a new address and rotates its auth header (the old one
    leaked, or a maintainer had pointed the policy somewhere it must not go), then disables
    it. A delivery queued before still goes, for up to 20 tries over 11 hours, to the old
    address with the old header: each delivery keeps a copy of the target it was queued
    for."""
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_CREATED"))
    await rt.robots.create(LOCAL, spec("ci"))
    receiver.answers = [503]
    sender = worker(rt, clock)
    assert await sender.run_once() == 1  # the first try fails
    moved = PolicySpec(
        name="hook",
        targets=(TargetSpec(receiver.url + "/new", "Bearer rotated"),),
        event_types=("ROBOT_CREATED",),
        enabled=False,
    )
    await rt.webhooks.update(LOCAL, "team", hook.id, moved)
    before = len(receiver.requests)
    for _ in range(3):
        clock.now += 3600
        await sender.run_once()
    after = receiver.requests[before:]
    assert [(path, headers.get("Authorization")) for path, headers, _ in after if
            path == "/hook" or headers.get("Authorization") == AUTH] == []  # fmt: skip


async def test_attack_one_projects_failing_receivers_do_not_hold_back_another_projects_event(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    """A project admin, maintainer or robot with notification-policy:create may make any
    number of policies of 10 targets each (no limit), all pointing at an address that never
    answers: each robot event of that project then queues a delivery per target, each try
    takes SEND_TIMEOUT_SECONDS, and deliveries are claimed oldest first, retries included.
    Another project's event queued after them must not wait behind the retries of the
    first project's failures (here: it is sent once every delivery queued before it has
    been tried once). Live, 100 such policies held another project's event back for minutes,
    and kept it waiting as long as the flood's retries kept coming due."""
    await rt.projects.create(LOCAL, "other", public=False)
    dead = "http://127.0.0.1:9/never"
    for n in range(2):
        flood = PolicySpec(
            name=f"flood{n}",
            targets=tuple(TargetSpec(f"{dead}/{n}/{k}") for k in range(10)),
            event_types=("ROBOT_CREATED",),
        )
        await rt.webhooks.create(LOCAL, "team", flood)
    await rt.webhooks.create(LOCAL, "other", policy(receiver.url, "ROBOT_CREATED"))
    await rt.robots.create(LOCAL, spec("ci"))  # 20 deliveries to the dead address
    victim = RobotSpec(
        name="victim",
        level=Level.PROJECT,
        permissions=(
            RequestedPermission("other", (Access("repository", "pull"),), PermissionKind.PROJECT),
        ),
        duration=30,
    )
    await rt.robots.create(LOCAL, victim)  # one delivery to the other project's receiver
    delivered: list[str] = []

    async def slow_for_the_flood(delivery: Delivery) -> tuple[bool, str]:
        if delivery.target.address.startswith(dead):
            return False, f"no answer within {SEND_TIMEOUT_SECONDS} s"
        delivered.append(delivery.target.address)
        return True, "HTTP 200"

    sender = WebhookDelivery(rt.store, slow_for_the_flood, clock, seal=rt.header_seal, batch=10)
    runs = 0
    while not delivered and runs < 10:
        await sender.run_once()
        runs += 1
        clock.now += SEND_TIMEOUT_SECONDS  # each batch waited for its slowest try
    assert delivered == [receiver.url]
    # 21 deliveries, 10 a run: every first try is made within 3 runs.
    assert runs <= 3, f"the other project's event waited {runs} runs"


async def test_attack_a_claim_takes_at_most_its_batch(rt: Runtime, clock: FakeClock) -> None:
    """A server claims at most `limit` due deliveries at a time: it sends all it claims at
    once, under one lease. Claiming more than it can send within the lease lets a replica
    take over deliveries still being sent (sent twice), and a flood of deliveries would be
    sent all at once."""
    many = PolicySpec(
        name="many",
        targets=tuple(TargetSpec(f"http://127.0.0.1:9/{k}") for k in range(10)),
        event_types=("ROBOT_CREATED",),
    )
    await rt.webhooks.create(LOCAL, "team", many)
    for n in range(3):
        await rt.robots.create(LOCAL, spec(f"ci{n}"))  # 30 deliveries due
    now = int(clock())
    claimed = await rt.store.claim_webhook_deliveries("one", now, now + 60, 5)
    assert len(claimed) == 5
    others = await rt.store.claim_webhook_deliveries("two", now, now + 60, 5)
    assert len(others) == 5 and not {d.id for d in claimed} & {d.id for d in others}
