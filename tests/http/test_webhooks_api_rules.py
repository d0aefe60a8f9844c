"""Webhook policies over the API, the rules an outside review asked for: at most
MAX_POLICIES a project (409), skip_cert_verify turned on only with the header sent again,
names that cannot pass for another, and ids past what a path may name."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.http.test_api import Api, api, error
from tests.http.test_webhooks_api import H_ROBOTS, HOOK, body, created
from tokenserver.domain.webhooks import MAX_POLICIES

__all__ = ["api"]

SYSTEM = "/system/webhook/policies"


async def test_a_project_holds_at_most_max_policies_409_naming_the_cap(api: Api) -> None:
    await api.project("p")
    answers = await asyncio.gather(
        *(api.call("POST", HOOK, api.admin, body(name=f"h{k}")) for k in range(MAX_POLICIES + 3))
    )
    assert sorted(r.status for r in answers) == [201] * MAX_POLICIES + [409] * 3
    refused = next(r for r in answers if r.status == 409)
    message = await error(refused, 409, "CONFLICT")
    assert f"project 'p' has {MAX_POLICIES} webhook policies" in message
    listed = await api.call("GET", f"{HOOK}?page_size=100", api.admin)
    assert listed.headers["X-Total-Count"] == str(MAX_POLICIES)
    # The system's policies are counted on their own.
    await created(api, SYSTEM)


async def test_the_system_holds_at_most_max_policies(api: Api) -> None:
    for k in range(MAX_POLICIES):
        await created(api, SYSTEM, name=f"s{k}")
    r = await api.call("POST", SYSTEM, api.admin, body(name="one-more"))
    assert "the system has" in await error(r, 409, "CONFLICT")


async def test_turning_skip_cert_verify_on_with_a_masked_header_is_400(api: Api) -> None:
    """Whoever may update a policy, but never saw its header, must not have it sent over
    TLS that anyone in the middle can read."""
    await api.project("p")
    path = await created(api)
    shown = await (await api.call("GET", path, api.admin)).json()
    unchecked = json.loads(json.dumps(shown))
    unchecked["targets"][0]["skip_cert_verify"] = True
    message = await error(await api.call("PUT", path, api.admin, unchecked), 400, "BAD_REQUEST")
    assert "auth_header" in message and "skip_cert_verify" in message
    stored = await (await api.call("GET", path, api.admin)).json()
    assert stored["targets"][0]["skip_cert_verify"] is False
    unchecked["targets"][0]["auth_header"] = "Bearer s3cr3t-hdr"
    r = await api.call("PUT", path, api.admin, unchecked)
    assert r.status == 200, await r.text()
    # Already on: the masked header keeps it.
    again = await (await api.call("GET", path, api.admin)).json()
    r = await api.call("PUT", path, api.admin, again | {"description": "kept"})
    assert r.status == 200, await r.text()
    stored_policy = await api.server.runtime.store.find_webhook_policy(shown["id"])
    assert stored_policy is not None
    [target] = stored_policy.targets
    seal = api.server.runtime.header_seal
    assert seal.open(target.auth_header, shown["id"], H_ROBOTS) == "Bearer s3cr3t-hdr"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (" robots", "whitespace"),
        ("robots ", "whitespace"),
        ("robots\u3000", "whitespace"),
        ("rob\u200bots", "invisible or format"),
        ("\u202erobots", "invisible or format"),
        ("rob\u00a0ots", "invisible or format"),
        ("rob\u2028ots", "invisible or format"),
    ],
)
async def test_a_name_that_could_pass_for_another_is_400(api: Api, name: str, words: str) -> None:
    await api.project("p")
    original = await created(api)
    message = await error(
        await api.call("POST", HOOK, api.admin, body(name=name)), 400, "BAD_REQUEST"
    )
    assert words in message
    shown = await (await api.call("GET", original, api.admin)).json()
    r = await api.call("PUT", original, api.admin, shown | {"name": name})
    assert words in await error(r, 400, "BAD_REQUEST")
    assert len(await (await api.call("GET", HOOK, api.admin)).json()) == 1


@pytest.mark.parametrize("prefix", [HOOK, SYSTEM])
@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("/9223372036854775807", 404),
        ("/09223372036854775807", 404),
        ("/9223372036854775807/executions", 404),
        ("/1/executions/9223372036854775807/tasks", 404),
        ("/9223372036854775808", 400),
        ("/" + "9" * 5000, 400),
    ],
)
async def test_a_policy_or_execution_id_at_or_past_64_bits(
    api: Api, prefix: str, suffix: str, status: int
) -> None:
    await api.project("p")
    await created(api, prefix)
    r = await api.call("GET", prefix + suffix, api.admin)
    if status == 404:
        await error(r, 404, "NOT_FOUND")
    else:
        message = await error(r, 400, "BAD_REQUEST")
        assert "larger than any id (9223372036854775807)" in message
        assert len(message) < 200


async def test_a_robot_id_at_64_bits_is_not_found(api: Api) -> None:
    for method in ("GET", "DELETE"):
        r = await api.call(method, "/robots/9223372036854775807", api.admin)
        await error(r, 404, "NOT_FOUND")
    r = await api.call("GET", "/robots/9223372036854775808", api.admin)
    assert "larger than any id" in await error(r, 400, "BAD_REQUEST")
