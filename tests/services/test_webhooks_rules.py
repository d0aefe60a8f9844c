"""Webhook delivery's rules after the outside review: what a failed try shows (a fixed
category, never what the peer sent), fair claims (each project in turn, first tries before
retries), claims of at most their batch, queued deliveries that follow the policy as it is
now, and the cap on policies. Each test runs on SQLite and PostgreSQL (the fixtures of
test_webhooks.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.helpers import FakeClock
from tests.oidc_issuer import _tls_files
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
from tokenserver.domain.webhooks import (
    FIRST_RETRY_SECONDS,
    MAX_POLICIES,
    SEND_TIMEOUT_SECONDS,
    Delivery,
    DeliveryStatus,
)
from tokenserver.errors import BadRequest, Conflict
from tokenserver.runtime import Runtime
from tokenserver.services.ports import DeliveryOutcome
from tokenserver.services.robots import RobotSpec
from tokenserver.services.webhooks import (
    DROPPED,
    HttpSender,
    PolicySpec,
    TargetSpec,
    WebhookDelivery,
)

__all__ = ["clock", "database", "receiver", "rt"]

SECRET = "peer-secret-0815"
DEAD = "http://127.0.0.1:9/never"


def other_robot(name: str, project: str = "other") -> RobotSpec:
    return RobotSpec(
        name=name,
        level=Level.PROJECT,
        permissions=(
            RequestedPermission(project, (Access("repository", "pull"),), PermissionKind.PROJECT),
        ),
        duration=30,
    )


def flood(name: str, count: int = 10) -> PolicySpec:
    return PolicySpec(
        name=name,
        targets=tuple(TargetSpec(f"{DEAD}/{name}/{k}") for k in range(count)),
        event_types=("ROBOT_CREATED",),
    )


async def last_message(rt: Runtime, project: str, policy_id: int) -> str:
    [delivery, *_], _ = await rt.webhooks.deliveries(LOCAL, project, policy_id, 0, 10)
    return delivery.status_message


# ---- what a failed try shows ----------------------------------------------------------------


async def tcp_service(answer: bytes | None) -> tuple[asyncio.Server, int]:
    """A service on loopback that reads the request, answers `answer` (None: nothing) and
    closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("answer", "scheme", "category"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 " + SECRET.encode() + b"\r\n", "http", "invalid HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nX-" + SECRET.encode() + b" x\r\n\r\n", "http", "invalid HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + SECRET.encode(), "http", "HTTP 200"),
        (None, "http", "connection closed without an answer"),
        (b"+OK " + SECRET.encode() + b"\r\n", "https", "TLS error"),
    ],
    ids=["banner", "header-line", "short-body", "closed", "not-tls"],
)
async def test_a_failed_try_shows_a_fixed_category_never_the_peers_bytes(
    rt: Runtime,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    answer: bytes | None,
    scheme: str,
    category: str,
) -> None:
    server, port = await tcp_service(answer)
    try:
        hook = await rt.webhooks.create(
            LOCAL, "team", policy(f"{scheme}://127.0.0.1:{port}/x", auth="")
        )
        await rt.robots.create(LOCAL, spec("ci"))
        with caplog.at_level(logging.INFO, logger="tokenserver.webhooks"):
            sender = HttpSender()
            try:
                delivery = WebhookDelivery(rt.store, sender, clock, seal=rt.header_seal)
                assert await delivery.run_once() == 1
            finally:
                await sender.close()
    finally:
        server.close()
        await server.wait_closed()
    assert await last_message(rt, "team", hook.id) == category
    assert SECRET not in caplog.text
    if category != "HTTP 200":
        assert f"failed: {category}" in caplog.text


async def test_a_closed_port_is_connection_refused(rt: Runtime, clock: FakeClock) -> None:
    with socket.socket() as s:  # a port nothing listens on (bound, not listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        hook = await rt.webhooks.create(LOCAL, "team", policy(f"http://127.0.0.1:{port}/x"))
        await rt.robots.create(LOCAL, spec("ci"))
        sender = HttpSender()
        try:
            await WebhookDelivery(rt.store, sender, clock, seal=rt.header_seal).run_once()
        finally:
            await sender.close()
    assert await last_message(rt, "team", hook.id) == "connection refused"


@pytest.fixture
async def tls_receiver() -> AsyncIterator[str]:
    """An https receiver on loopback with a self-signed certificate."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=SECRET)

    app = web.Application()
    app.router.add_post("/hook", answer)
    with tempfile.TemporaryDirectory() as directory:
        cert, key = _tls_files(Path(directory))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield f"https://127.0.0.1:{port}/hook"
        finally:
            await runner.cleanup()


async def test_an_untrusted_certificate_is_named_and_skip_cert_verify_sends(
    rt: Runtime, clock: FakeClock, tls_receiver: str
) -> None:
    checked = await rt.webhooks.create(LOCAL, "team", policy(tls_receiver, name="checked"))
    unchecked = PolicySpec("unchecked", (TargetSpec(tls_receiver, "", True),), ("ROBOT_CREATED",))
    skipped = await rt.webhooks.create(LOCAL, "team", unchecked)
    await rt.robots.create(LOCAL, spec("ci"))
    sender = HttpSender()
    try:
        assert await WebhookDelivery(rt.store, sender, clock, seal=rt.header_seal).run_once() == 2
    finally:
        await sender.close()
    assert await last_message(rt, "team", checked.id) == "TLS certificate not trusted"
    assert await last_message(rt, "team", skipped.id) == "HTTP 200"


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (
            aiohttp.ClientConnectorDNSError(
                aiohttp.client_reqrep.ConnectionKey("h", 80, False, True, None, None, None),
                socket.gaierror(-2, f"Name or service not known {SECRET}"),
            ),
            "DNS lookup failed",
        ),
        (aiohttp.ServerTimeoutError(SECRET), f"no answer within {SEND_TIMEOUT_SECONDS} s"),
        (aiohttp.ClientPayloadError(SECRET), "invalid HTTP answer"),
        (ConnectionResetError(SECRET), "connection closed without an answer"),
        (aiohttp.InvalidURL(SECRET), "invalid address"),
        (OSError(SECRET), "could not send"),
    ],
    ids=["dns", "timeout", "payload", "reset", "url", "other"],
)
def test_every_failure_is_a_category(error: BaseException, category: str) -> None:
    assert HttpSender().failure(error) == category


# ---- fair claims ------------------------------------------------------------------------------


async def test_a_projects_event_queued_behind_anothers_retries_goes_in_the_next_claim(
    rt: Runtime, clock: FakeClock
) -> None:
    """The flood's deliveries have failed and fall due again, all older than the other
    project's event: the next claim takes that event, whatever the batch."""
    await rt.projects.create(LOCAL, "other", public=False)
    for n in range(2):
        await rt.webhooks.create(LOCAL, "team", flood(f"f{n}"))
    await rt.webhooks.create(LOCAL, "other", flood("ok", 1))
    sent: list[str] = []

    async def send(delivery: Delivery) -> tuple[bool, str]:
        sent.append(delivery.target.address)
        return not delivery.target.address.startswith(f"{DEAD}/f"), "HTTP 503"

    sender = WebhookDelivery(rt.store, send, clock, seal=rt.header_seal, batch=5)
    for n in range(3):
        await rt.robots.create(LOCAL, spec(f"ci{n}"))  # 60 deliveries
    for _ in range(20):  # every one tried at least once, all retries due
        await sender.run_once()
        clock.now += 3600
    assert len(sent) >= 60
    await rt.robots.create(LOCAL, other_robot("victim"))
    sent.clear()
    assert await sender.run_once() == 5
    assert f"{DEAD}/ok/0" in sent


async def test_within_a_project_first_tries_go_before_retries(
    rt: Runtime, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", flood("f"))
    tries: list[tuple[str, int]] = []

    async def send(delivery: Delivery) -> tuple[bool, str]:
        tries.append((delivery.event_id, delivery.attempts))
        return False, "HTTP 503"

    sender = WebhookDelivery(rt.store, send, clock, seal=rt.header_seal, batch=10)
    await rt.robots.create(LOCAL, spec("first"))
    await sender.run_once()  # the first event's ten first tries fail
    clock.now += FIRST_RETRY_SECONDS
    await rt.robots.create(LOCAL, spec("second"))
    tries.clear()
    await sender.run_once()
    assert len(tries) == 10 and {attempts for _, attempts in tries} == {1}
    deliveries, _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 20)
    assert len(deliveries) == 20 and {d.attempts for d in deliveries} == {1}


async def test_projects_take_turns_in_one_claim(rt: Runtime, clock: FakeClock) -> None:
    for name in ("b", "c"):
        await rt.projects.create(LOCAL, name, public=False)
        await rt.webhooks.create(LOCAL, name, flood(f"{name}-hook", 1))
    await rt.webhooks.create(LOCAL, "team", flood("t"))
    await rt.robots.create(LOCAL, spec("ci"))  # ten of team's first
    await rt.robots.create(LOCAL, other_robot("x", "b"))
    await rt.robots.create(LOCAL, other_robot("y", "c"))
    now = int(clock())
    claimed = await rt.store.claim_webhook_deliveries("one", now, now + 60, 3)
    assert sorted(d.target.address.split("/")[4] for d in claimed) == ["b-hook", "c-hook", "t"]


async def test_parallel_claims_take_at_most_their_batch_and_never_the_same(
    rt: Runtime, clock: FakeClock
) -> None:
    for n in range(3):
        await rt.webhooks.create(LOCAL, "team", flood(f"f{n}"))
    await rt.robots.create(LOCAL, spec("ci"))  # 30 due
    now = int(clock())
    claims = await asyncio.gather(
        *(rt.store.claim_webhook_deliveries(f"o{k}", now, now + 60, 4) for k in range(5))
    )
    ids = [d.id for claim in claims for d in claim]
    assert all(len(claim) <= 4 for claim in claims)
    assert len(ids) == len(set(ids)) <= 20


# ---- queued deliveries follow the policy as it is now ------------------------------------------


async def fail_once(rt: Runtime, receiver: Receiver, clock: FakeClock) -> WebhookDelivery:
    receiver.answers = [503]
    sender = worker(rt, clock)
    assert await sender.run_once() == 1
    return sender


async def test_a_queued_retry_takes_the_policys_new_header_and_skip_cert_verify(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    sender = await fail_once(rt, receiver, clock)
    rotated = PolicySpec(
        "hook", (TargetSpec(receiver.url, "Bearer rotated", True),), ("ROBOT_CREATED",)
    )
    await rt.webhooks.update(LOCAL, "team", hook.id, rotated)
    [queued], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert queued.target.skip_cert_verify and "rotated" not in queued.target.auth_header
    clock.now += FIRST_RETRY_SECONDS
    assert await sender.run_once() == 1
    assert [h["Authorization"] for _, h, _ in receiver.requests] == [AUTH, "Bearer rotated"]
    [done], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert done.status is DeliveryStatus.SUCCESS


async def test_a_delivery_to_a_removed_address_ends_with_its_reason(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    kept = receiver.url + "/kept"
    two = PolicySpec("hook", (TargetSpec(receiver.url, AUTH), TargetSpec(kept)), ("ROBOT_CREATED",))
    hook = await rt.webhooks.create(LOCAL, "team", two)
    await rt.robots.create(LOCAL, spec("ci"))
    receiver.answers = [503, 503]
    sender = worker(rt, clock)
    assert await sender.run_once() == 2
    one = PolicySpec("hook", (TargetSpec(kept),), ("ROBOT_CREATED",))
    await rt.webhooks.update(LOCAL, "team", hook.id, one)
    deliveries, _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    by_address = {d.target.address: d for d in deliveries}
    assert by_address[receiver.url].status is DeliveryStatus.ERROR
    assert by_address[receiver.url].status_message == DROPPED
    assert by_address[kept].status is DeliveryStatus.PENDING
    before = len(receiver.requests)
    clock.now += 3600
    assert await sender.run_once() == 1
    assert [path for path, _, _ in receiver.requests[before:]] == ["/hook/kept"]


async def test_a_try_in_flight_when_its_address_went_is_not_tried_again(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    """The PUT came while a server was sending: that try is left to finish; when it failed,
    the next claim finds the address gone and ends the delivery instead of sending it."""
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    now = int(clock())
    [held] = await rt.store.claim_webhook_deliveries("gone-server", now, now + 60, 10)
    moved = PolicySpec("hook", (TargetSpec(receiver.url + "/new"),), ("ROBOT_CREATED",))
    await rt.webhooks.update(LOCAL, "team", hook.id, moved)
    retry = DeliveryOutcome(DeliveryStatus.PENDING, "HTTP 503", now + FIRST_RETRY_SECONDS)
    assert await rt.store.finish_webhook_delivery(held.id, "gone-server", now, retry)
    clock.now += FIRST_RETRY_SECONDS
    assert await worker(rt, clock).run_once() == 1
    assert receiver.requests == []
    [ended], _ = await rt.webhooks.deliveries(LOCAL, "team", hook.id, 0, 10)
    assert (ended.status, ended.status_message) == (DeliveryStatus.ERROR, DROPPED)


async def test_a_deleted_policy_sends_nothing_it_queued(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    sender = await fail_once(rt, receiver, clock)
    await rt.webhooks.delete(LOCAL, "team", hook.id)
    clock.now += 3600
    assert await sender.run_once() == 0
    assert len(receiver.requests) == 1


async def test_a_disabled_policy_still_sends_what_it_queued(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy(receiver.url))
    await rt.robots.create(LOCAL, spec("ci"))
    sender = await fail_once(rt, receiver, clock)
    await rt.webhooks.set_enabled(LOCAL, "team", hook.id, False)
    await rt.robots.create(LOCAL, spec("cd"))  # queues nothing
    clock.now += FIRST_RETRY_SECONDS
    assert await sender.run_once() == 1
    assert [h["Authorization"] for _, h, _ in receiver.requests] == [AUTH, AUTH]


async def test_turning_skip_cert_verify_on_needs_the_header_again(
    rt: Runtime, clock: FakeClock
) -> None:
    hook = await rt.webhooks.create(LOCAL, "team", policy("https://h.example/x"))
    masked = PolicySpec(
        "hook", (TargetSpec("https://h.example/x", "******", True),), ("ROBOT_CREATED",)
    )
    with pytest.raises(BadRequest, match="skip_cert_verify"):
        await rt.webhooks.update(LOCAL, "team", hook.id, masked)
    stored = await rt.webhooks.get(LOCAL, "team", hook.id)
    assert not stored.targets[0].skip_cert_verify
    given = PolicySpec("hook", (TargetSpec("https://h.example/x", AUTH, True),), ("ROBOT_CREATED",))
    await rt.webhooks.update(LOCAL, "team", hook.id, given)
    # On already, or turned off: the masked value keeps the header.
    await rt.webhooks.update(LOCAL, "team", hook.id, masked)
    off = PolicySpec("hook", (TargetSpec("https://h.example/x", "******"),), ("ROBOT_CREATED",))
    await rt.webhooks.update(LOCAL, "team", hook.id, off)
    seal = rt.header_seal
    [target] = (await rt.webhooks.get(LOCAL, "team", hook.id)).targets
    assert seal.open(target.auth_header, hook.id, target.address) == AUTH


# ---- the cap on policies ----------------------------------------------------------------------


async def test_a_project_and_the_system_hold_at_most_max_policies_also_when_added_at_once(
    rt: Runtime,
) -> None:
    await rt.projects.create(LOCAL, "other", public=False)
    for scope in ("team", None):
        results = await asyncio.gather(
            *(
                rt.webhooks.create(LOCAL, scope, policy("https://h.example/", name=f"p{k}"))
                for k in range(MAX_POLICIES + 5)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 5 and all(isinstance(r, Conflict) for r in refused)
        assert f"{MAX_POLICIES} webhook policies" in str(refused[0])
        assert len(await rt.webhooks.policies(LOCAL, scope)) == MAX_POLICIES
    # Another project is not affected; a deleted policy makes room.
    await rt.webhooks.create(LOCAL, "other", policy("https://h.example/"))
    first = (await rt.webhooks.policies(LOCAL, "team"))[0]
    await rt.webhooks.delete(LOCAL, "team", first.id)
    await rt.webhooks.create(LOCAL, "team", policy("https://h.example/", name="again"))


@pytest.mark.parametrize(
    "name",
    [" hook", "hook ", "ho\u200bok", "\u202ekooh", "ho\u00a0ok", "hook\t", "a\udcedb", "\u2028"],
)
async def test_a_policy_name_that_could_pass_for_another_is_refused(rt: Runtime, name: str) -> None:
    with pytest.raises(BadRequest, match="webhook policy name"):
        await rt.webhooks.create(LOCAL, "team", policy("https://h.example/", name=name))
    assert await rt.webhooks.policies(LOCAL, "team") == []
    await rt.webhooks.create(LOCAL, "team", policy("https://h.example/", name="robot hook é"))
