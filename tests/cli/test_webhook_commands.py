"""Webhook policies at the command line: `webhook add|list|enable|disable|remove|deliveries`:
what they print, how they refuse (a one-line message naming what is at fault; exit 2 for
usage, 1 for a refusal), and that a credential never comes from the command line."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from tests.cli.test_federation_commands import ok, refused
from tests.helpers import call_cli, initialised
from tokenserver.config import load_settings
from tokenserver.domain.models import LOCAL, Level
from tokenserver.domain.permissions import Access, PermissionKind, RequestedPermission
from tokenserver.runtime import open_runtime
from tokenserver.services.robots import RobotSpec

ADD = ("webhook", "add", "--project", "p", "--name", "ci-events")
URL = "https://hooks.example.com/robots"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(tmp_path / "etc" / "tokenserver.toml", then=[("project", "create", "p")])


def test_a_policy_is_added_listed_disabled_and_removed(config: Path) -> None:
    added = ok(
        call_cli(
            config, *ADD, "--address", URL, "--event", "ROBOT_CREATED", "--auth-header", "-",
            stdin="Bearer from-stdin\n",
        )
    )  # fmt: skip
    assert added["name"] == "ci-events" and added["event_types"] == ["ROBOT_CREATED"]
    assert added["targets"][0]["auth_header"] == "******"
    policy_id = added["id"]
    listed = call_cli(config, "webhook", "list", "--project", "p")
    assert listed.stdout.split("\t") == [
        str(policy_id), "ci-events", "enabled", URL, "ROBOT_CREATED\n"
    ]  # fmt: skip
    ok(call_cli(config, "webhook", "disable", str(policy_id)))
    (shown,) = ok(call_cli(config, "webhook", "list", "--project", "p", "--json"))
    assert shown["enabled"] is False and shown["targets"][0]["auth_header"] == "******"
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "ci",
                "--permission", "repository:pull"))  # fmt: skip
    assert ok(call_cli(config, "webhook", "deliveries", str(policy_id), "--json")) == []
    ok(call_cli(config, "webhook", "enable", str(policy_id)))
    ok(call_cli(config, "robot", "delete", "robot$p+ci"))  # not an event it takes
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "cd",
                "--permission", "repository:pull"))  # fmt: skip
    (delivery,) = ok(call_cli(config, "webhook", "deliveries", str(policy_id), "--json"))
    assert delivery["extra_attrs"]["event_type"] == "ROBOT_CREATED"
    assert delivery["status"] == "Running"  # queued: a server sends it
    rows = call_cli(config, "webhook", "deliveries", str(policy_id)).stdout.splitlines()
    assert len(rows) == 1 and "\tROBOT_CREATED\tPending\ttries 0\t" in rows[0]
    ok(call_cli(config, "webhook", "remove", str(policy_id)))
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json")) == []


async def _system_robot(config: Path, name: str) -> None:
    """A system robot (the command line makes project robots only)."""
    access = (Access("repository", "pull"),)
    async with open_runtime(load_settings(config), sign=False) as rt:
        await rt.robots.create(
            LOCAL,
            RobotSpec(
                name,
                Level.SYSTEM,
                (RequestedPermission("*", access, PermissionKind.PROJECT),),
                duration=-1,
            ),
        )


def test_system_policies_take_the_system_robots_events(config: Path) -> None:
    added = ok(call_cli(config, "webhook", "add", "--system", "--name", "s", "--address", URL))
    assert "project_id" not in added and len(added["event_types"]) == 7
    asyncio.run(_system_robot(config, "root"))
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "ci",
                "--permission", "repository:pull"))  # fmt: skip
    deliveries = ok(call_cli(config, "webhook", "deliveries", str(added["id"]), "--json"))
    robots = [json.loads(d["extra_attrs"]["payload"])["event_data"]["robot"] for d in deliveries]
    assert [r["name"] for r in robots] == ["robot$root"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--address", "ftp://h.example/"), ("--address", "http:// or https://")),
        (("--address", "https://u:p@h.example/"), ("--address", "user or password")),
        (("--address", URL, "--event", "PUSH_ARTIFACT"), ("--event", "invalid choice")),
        (("--address", URL, "--auth-header", "Bearer x"), ("--auth-header", "stdin")),
        (("--address", URL, "--system"), ("--system", "not allowed with")),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag(
    config: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    refused(call_cli(config, *ADD, *args), 2, *words)
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json")) == []


def test_refusals_exit_1_with_one_line(config: Path) -> None:
    ok(call_cli(config, *ADD, "--address", URL))
    message = refused(call_cli(config, *ADD, "--address", URL), 1, "already exists")
    assert message.count("\n") == 1
    refused(call_cli(config, "webhook", "remove", "99"), 1, "webhook policy 99 not found")
    refused(call_cli(config, "webhook", "list", "--project", "nope"), 1, "'nope' not found")


def test_the_webhook_key_is_made_0600_on_first_use_and_never_overwritten(config: Path) -> None:
    key = config.parent / "keys" / "webhook.key"
    made = key.read_bytes()  # by init, as the signing key
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(made.strip(), validate=True)) == 32
    again = call_cli(config, "init")
    assert again.returncode == 0 and "generated webhook key" not in again.stderr
    assert key.read_bytes() == made

    async def serve_start() -> None:
        async with open_runtime(load_settings(config), sign=True):
            pass

    asyncio.run(serve_start())
    assert key.read_bytes() == made and key.stat().st_mode & 0o777 == 0o600

    # A deployment from before the key: made when first needed, by the command line ...
    key.unlink()
    ok(call_cli(config, *ADD, "--address", URL))  # no header: nothing to seal
    ok(call_cli(config, "webhook", "list", "--project", "p"))
    assert not key.exists()
    ok(call_cli(config, *ADD, "--name", "h1", "--address", URL, "--auth-header", "-",
                stdin="Bearer one\n"))  # fmt: skip
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_bytes() != made
    made = key.read_bytes()
    ok(call_cli(config, *ADD, "--name", "h2", "--address", URL, "--auth-header", "-",
                stdin="Bearer two\n"))  # fmt: skip
    assert key.read_bytes() == made
    # ... or by the server's start.
    key.unlink()
    asyncio.run(serve_start())
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_bytes() != made
    assert [p.name for p in key.parent.iterdir() if "webhook" in p.name] == ["webhook.key"]


BAD_KEYS = [
    pytest.param(b"", "found an empty file", id="empty"),
    pytest.param(base64.b64encode(b"k" * 16) + b"\n", "found 16 bytes", id="128-bit"),
    pytest.param(b"k" * 32, "found 24 bytes", id="raw-bytes-read-as-base64"),
    pytest.param(b"not base64!\n", "found text that is not base64", id="not-base64"),
    pytest.param(None, "cannot read", id="a-directory"),
]


@pytest.mark.parametrize(("content", "reason"), BAD_KEYS)
def test_a_bad_webhook_key_exits_2_naming_the_key(
    config: Path, content: bytes | None, reason: str
) -> None:
    key = config.parent / "elsewhere.key"
    if content is None:
        key.mkdir()
    else:
        key.write_bytes(content)
    env = {"TOKENSERVER_WEBHOOKS_SECRET_KEY": "elsewhere.key"}
    added = call_cli(config, *ADD, "--address", URL, "--auth-header", "-", stdin="Bearer x\n",
                     env=env)  # fmt: skip
    message = refused(added, 2, "tokenserver: webhooks.secret_key: ", str(key), reason)
    assert message.count("\n") == 1
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json", env=env)) == []
    served = call_cli(config, "serve", env=env)
    refused(served, 2, "tokenserver: webhooks.secret_key: ", str(key), reason)
    assert content is None or key.read_bytes() == content  # never replaced
