"""Rotation with a grace period and the webhooks (issue 19): a refresh that keeps the
previous secret reports ROBOT_SECRET_REFRESHED once, in its transaction, without a secret."""

from __future__ import annotations

from tests.helpers import FakeClock
from tests.services.test_webhooks import (
    Receiver,
    policy,
    spec,
    worker,
)
from tests.services.test_webhooks import (  # the fixtures
    clock as clock,
)
from tests.services.test_webhooks import (
    database as database,
)
from tests.services.test_webhooks import (
    receiver as receiver,
)
from tests.services.test_webhooks import (
    rt as rt,
)
from tokenserver.domain.models import LOCAL
from tokenserver.runtime import Runtime


async def test_a_refresh_keeping_the_previous_secret_is_one_event_without_secrets(
    rt: Runtime, receiver: Receiver, clock: FakeClock
) -> None:
    await rt.webhooks.create(LOCAL, "team", policy(receiver.url, "ROBOT_SECRET_REFRESHED"))
    robot, first = await rt.robots.create(LOCAL, spec("ci"))
    second = await rt.robots.refresh_secret(LOCAL, str(robot.id), keep_previous=3600)
    await rt.robots.revoke_previous_secret(LOCAL, str(robot.id))
    assert await worker(rt, clock).run_once() == 1
    (event,) = receiver.events()
    assert event["type"] == "ROBOT_SECRET_REFRESHED"
    refreshed = await rt.robots.resolve(str(robot.id))
    assert refreshed.previous_secret_hash is None
    (_, _, body) = receiver.requests[0]
    text = body.decode()
    assert second is not None
    for secret in (first.reveal(), second.reveal(), robot.secret_hash, refreshed.secret_hash):
        assert secret not in text
