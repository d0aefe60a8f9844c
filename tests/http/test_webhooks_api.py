"""Webhook policies over Harbor's API (`/projects/{p}/webhook/policies`, its executions and
tasks) and tokenserver's system policies (`/system/webhook/policies`): shapes, who may do
what, bad targets, masked auth headers, and the delivery history of a real receiver."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.http.test_api import Api, api, creds, error, project_robot

__all__ = ["api"]

HOOK = "/projects/p/webhook/policies"
H = "https://h.example/"
H_ROBOTS = "https://hooks.example.com/robots"


def body(address: str = "https://hooks.example.com/robots", **extra: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "name": "robots",
        "targets": [{"type": "http", "address": address, "auth_header": "Bearer s3cr3t-hdr"}],
        "event_types": ["ROBOT_CREATED", "ROBOT_DELETED"],
        "enabled": True,
    }
    policy.update(extra)
    return policy


async def created(api: Api, path: str = HOOK, **extra: Any) -> str:
    r = await api.call("POST", path, api.admin, body(**extra))
    assert r.status == 201, await r.text()
    return r.headers["Location"].removeprefix("/api/v2.0")


async def test_a_policy_is_created_shown_replaced_and_deleted_as_harbor_does(api: Api) -> None:
    project_id = await api.project("p")
    path = await created(api)
    assert path.startswith(f"{HOOK}/")
    shown = await (await api.call("GET", path, api.admin)).json()
    assert shown["name"] == "robots" and shown["project_id"] == project_id
    assert shown["creator"] == "admin" and shown["enabled"] is True
    assert shown["targets"] == [
        {
            "type": "http",
            "address": "https://hooks.example.com/robots",
            "auth_header": "******",
            "skip_cert_verify": False,
            "payload_format": "Default",
        }
    ]
    listed = await api.call("GET", HOOK, api.admin)
    assert listed.headers["X-Total-Count"] == "1"
    assert [p["id"] for p in await listed.json()] == [shown["id"]]

    # PUT of the policy as GET shows it: the masked header keeps the stored one.
    r = await api.call("PUT", path, api.admin, shown | {"enabled": False, "description": "d"})
    assert r.status == 200, await r.text()
    stored = await api.server.runtime.store.find_webhook_policy(shown["id"])
    assert stored is not None and "s3cr3t" not in stored.targets[0].auth_header
    seal = api.server.runtime.header_seal
    assert seal.open(stored.targets[0].auth_header, shown["id"], H_ROBOTS) == "Bearer s3cr3t-hdr"
    assert not stored.enabled and stored.description == "d"
    assert "s3cr3t" not in await (await api.call("GET", HOOK, api.admin)).text()

    r = await api.call("DELETE", path, api.admin)
    assert r.status == 200
    await error(await api.call("GET", path, api.admin), 404, "NOT_FOUND")


async def test_the_database_never_holds_an_auth_header_in_clear(api: Api) -> None:
    """Sealed with the key in webhooks.secret_key: neither a create nor a PUT with a new
    header, nor a PUT that keeps it, nor the deliveries queued, put it in the file."""
    await api.project("p")
    path = await created(api)
    policy = await (await api.call("GET", path, api.admin)).json()
    new = {"type": "http", "address": H_ROBOTS, "auth_header": "Bearer n3w-s3cr3t"}
    r = await api.call("PUT", path, api.admin, policy | {"targets": [new]})
    assert r.status == 200, await r.text()
    kept = await (await api.call("GET", path, api.admin)).json()
    assert kept["targets"][0]["auth_header"] == "******"
    r = await api.call("PUT", path, api.admin, kept | {"description": "kept"})
    assert r.status == 200, await r.text()
    await api.robot(project_robot("p", "ci", "repository:pull"))  # queues a copy of it
    with sqlite3.connect(api.server.settings.database.path) as db:
        dump = "\n".join(db.iterdump())
    assert "ROBOT_CREATED" in dump and H_ROBOTS in dump
    assert "s3cr3t" not in dump
    stored = await api.server.runtime.store.find_webhook_policy(policy["id"])
    assert stored is not None
    seal = api.server.runtime.header_seal
    assert seal.open(stored.targets[0].auth_header, policy["id"], H_ROBOTS) == "Bearer n3w-s3cr3t"


async def test_attack_a_masked_auth_header_never_follows_a_new_address(api: Api) -> None:
    """Whoever may update a policy must not redirect the stored credential elsewhere."""
    await api.project("p")
    path = await created(api)
    shown = await (await api.call("GET", path, api.admin)).json()
    moved = json.loads(json.dumps(shown))
    moved["targets"][0]["address"] = "https://attacker.example/collect"
    message = await error(await api.call("PUT", path, api.admin, moved), 400, "BAD_REQUEST")
    assert "auth_header" in message
    await error(
        await api.call("POST", HOOK, api.admin, moved | {"name": "copy"}), 400, "BAD_REQUEST"
    )
    stored = await api.server.runtime.store.find_webhook_policy(shown["id"])
    assert stored is not None and stored.targets[0].address == "https://hooks.example.com/robots"


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("hooks.example.com/x", "http:// or https://"),
        ("http:///path", "must name a host"),
        ("https://user:pw@hooks.example.com/", "user or password"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com/a b", "spaces or control"),
        ("https://hooks.example.com/\x1b[31m", "spaces or control"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ("https://h.example/" + "a" * 3000, "longer than"),
    ],
)
async def test_bad_addresses_are_400_naming_the_rule(api: Api, address: str, words: str) -> None:
    await api.project("p")
    r = await api.call("POST", HOOK, api.admin, body(address))
    assert words in await error(r, 400, "BAD_REQUEST")
    assert await (await api.call("GET", HOOK, api.admin)).json() == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"event_types": []}, "empty event type"),
        ({"event_types": ["PUSH_ARTIFACT"]}, "unsupported event type PUSH_ARTIFACT"),
        ({"targets": []}, "empty notification target"),
        ({"targets": [{"type": "slack", "address": "https://h.example/"}]}, "'type' must be"),
        ({"targets": [{"address": H, "payload_format": "CloudEvents"}]}, "'payload_format'"),
        ({"targets": [{"address": H, "auth_header": "a\r\nX-Evil: 1"}]}, "line breaks"),
        ({"name": ""}, "name must be 1 to"),
        ({"name": "a\nb"}, "control characters"),
        ({"description": "x\x00"}, "NUL"),
        ({"targets": [{"auth_header": "x"}]}, "missing field 'address'"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)  # fmt: skip
async def test_bad_policies_are_400(api: Api, change: dict[str, Any], words: str) -> None:
    await api.project("p")
    r = await api.call("POST", HOOK, api.admin, body() | change)
    assert words in await error(r, 400, "BAD_REQUEST")


async def test_a_name_taken_in_the_project_is_409_and_others_may_use_it(api: Api) -> None:
    await api.project("p")
    await api.project("q")
    await created(api)
    await error(await api.call("POST", HOOK, api.admin, body()), 409, "CONFLICT")
    await created(api, "/projects/q/webhook/policies")
    await created(api, "/system/webhook/policies")
    second = await created(api, name="other")
    r = await api.call("PUT", second, api.admin, body())
    await error(r, 409, "CONFLICT")


async def test_who_may_read_and_change_policies(api: Api) -> None:
    await api.project("p")
    path = await created(api)
    # Harbor's roles: projectAdmin changes, maintainer reads, developer and guest neither.
    for role, reads, changes in (
        (1, True, True),
        (4, True, False),
        (2, False, False),
        (3, False, False),
    ):
        who = await api.user(f"u{role}")
        await api.member("p", f"u{role}", role)
        for target in (path, f"{path}/executions"):
            r = await api.call("GET", target, who)
            if reads:
                assert r.status == 200, await r.text()
            else:
                await error(r, 403, "FORBIDDEN")
        r = await api.call("POST", HOOK, who, body(name=f"by-{role}"))
        if changes:
            assert r.status == 201, await r.text()
        else:
            await error(r, 403, "FORBIDDEN")
    outsider = await api.user("outsider")
    await error(await api.call("GET", HOOK, outsider), 403, "FORBIDDEN")
    await error(await api.call("DELETE", path, outsider), 403, "FORBIDDEN")
    # System policies: system admins only.
    await error(await api.call("GET", "/system/webhook/policies", outsider), 403, "FORBIDDEN")
    r = await api.call("POST", "/system/webhook/policies", await api.user("u9"), body())
    await error(r, 403, "FORBIDDEN")
    # Anonymous callers learn nothing, not even whether the project exists.
    for target in (HOOK, path, "/projects/missing/webhook/policies", "/system/webhook/policies"):
        await error(await api.call("GET", target), 401, "UNAUTHORIZED")


async def test_robots_need_notification_policy_permissions(api: Api) -> None:
    await api.project("p")
    reader = await api.robot(project_robot("p", "reader", "notification-policy:list"))
    writer = await api.robot(
        project_robot("p", "writer", "notification-policy:create", "notification-policy:list")
    )
    assert (await api.call("GET", HOOK, creds(reader))).status == 200
    await error(await api.call("POST", HOOK, creds(reader), body()), 403, "FORBIDDEN")
    assert (await api.call("POST", HOOK, creds(writer), body())).status == 201


async def test_a_policy_of_another_project_is_404(api: Api) -> None:
    await api.project("p")
    await api.project("q")
    path = await created(api, "/projects/q/webhook/policies")
    policy_id = path.rsplit("/", 1)[1]
    for method in ("GET", "DELETE"):
        r = await api.call(method, f"{HOOK}/{policy_id}", api.admin)
        await error(r, 404, "NOT_FOUND")
    r = await api.call("GET", f"/system/webhook/policies/{policy_id}", api.admin)
    await error(r, 404, "NOT_FOUND")
    r = await api.call("GET", f"{HOOK}/99999999999999999999", api.admin)
    await error(r, 400, "BAD_REQUEST")


async def test_policy_changes_are_audited(api: Api) -> None:
    await api.project("p")
    path = await created(api)
    await api.call("DELETE", path, api.admin)
    r = await api.call("GET", "/audit-logs?q=resource_type=webhook-policy", api.admin)
    entries = await r.json()
    assert [(e["operation"], e["resource"]) for e in entries] == [
        ("delete", "robots"),
        ("create", "robots"),
    ]
    assert "s3cr3t" not in json.dumps(entries)


async def test_the_event_types_list_names_the_robot_events(api: Api) -> None:
    await api.project("p")
    r = await api.call("GET", "/projects/p/webhook/events", api.admin)
    assert await r.json() == {
        "event_type": [
            "ROBOT_CREATED",
            "ROBOT_DELETED",
            "ROBOT_SECRET_REFRESHED",
            "ROBOT_DISABLED",
            "ROBOT_ENABLED",
            "ROBOT_EXPIRING",
            "ROBOT_EXPIRED",
        ],
        "notify_type": ["http"],
        "payload_formats": [{"notify_type": "http", "formats": ["Default"]}],
    }


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[bytes]]]:
    got: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def test_the_server_delivers_and_shows_the_history_as_executions_and_tasks(
    api: Api, receiver: tuple[str, list[bytes]]
) -> None:
    url, got = receiver
    await api.project("p")
    path = await created(api, address=url)
    made = await api.robot(project_robot("p", "ci", "repository:pull"))
    # The server's own delivery loop sends it (woken by the event).
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.05)
    (sent,) = got
    event = json.loads(sent)
    assert event["type"] == "ROBOT_CREATED" and made["secret"] not in sent.decode()
    for _ in range(200):
        r = await api.call("GET", f"{path}/executions", api.admin)
        executions = await r.json()
        if executions[0]["status"] == "Success":
            break
        await asyncio.sleep(0.05)
    assert r.headers["X-Total-Count"] == "1"
    (execution,) = executions
    assert execution["vendor_type"] == "WEBHOOK"
    assert execution["trigger"] == "EVENT"
    assert execution["extra_attrs"]["event_type"] == "ROBOT_CREATED"
    assert json.loads(execution["extra_attrs"]["payload"]) == event
    assert execution["metrics"]["success_task_count"] == 1
    r = await api.call("GET", f"{path}/executions/{execution['id']}/tasks", api.admin)
    (task,) = await r.json()
    assert task["status"] == "Success" and task["run_count"] == 1
    assert task["status_message"] == "HTTP 204"
    r = await api.call("GET", f"{path}/executions/{execution['id'] + 1}/tasks", api.admin)
    await error(r, 404, "NOT_FOUND")
