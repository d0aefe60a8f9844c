"""Key rotation without downtime against the real registry: tokens signed before and after
a rotation are all accepted while both certificates are in the bundle; a retired key's tokens
are refused once the bundle leaves it out; and the server restarts after the rotation (the
bundle left in `token.certificate` no longer holds the first key's certificate) and serves a
push and a pull."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from base64 import b64encode

import jwt
import pytest

from tests.e2e.clients import Skopeo, layout_digest
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.e2e.oci import write_image


def token(stack: Stack, user: str, secret: str) -> str:
    base = stack.api_base.removesuffix("/api/v2.0")
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{base}/service/token?service=registry&scope=repository:rot/app:pull",
        headers={"Authorization": "Basic " + b64encode(f"{user}:{secret}".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        value: str = json.loads(response.read())["token"]
        return value


def registry_accepts(stack: Stack, bearer: str) -> bool:
    request = urllib.request.Request(
        f"http://{stack.registry}/v2/rot/app/tags/list",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return bool(response.status == 200)
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
        return False


def keys(stack: Stack, *args: str) -> str:
    result = stack.cli("keys", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_rotation_keeps_every_live_token_valid(
    tmp_path_factory: pytest.TempPathFactory, algorithm: str
) -> None:
    stack = start_stack(tmp_path_factory.mktemp(f"rotation-{algorithm}"), algorithm)
    try:
        stack.project("rot")
        robot = stack.robot("rot", "ci", "repository:push")
        skopeo = Skopeo(stack, robot)
        assert skopeo.login().returncode == 0
        layout = stack.new_dir("image")
        write_image(layout, "before rotation")
        assert skopeo.push(layout, "rot/app:v1").returncode == 0
        before = token(stack, robot.name, robot.secret)
        assert registry_accepts(stack, before)

        added = json.loads(keys(stack, "add"))
        assert added["state"] == "published"
        keys(stack, "bundle")
        stack.restart_registry()
        assert registry_accepts(stack, before)  # the old key is still in the bundle
        keys(stack, "activate", str(added["id"]))
        deadline = time.monotonic() + 15
        after = token(stack, robot.name, robot.secret)
        while jwt.get_unverified_header(after)["kid"] != added["kid"]:
            assert time.monotonic() < deadline, "the server did not switch keys"
            time.sleep(0.5)
            after = token(stack, robot.name, robot.secret)
        assert registry_accepts(stack, after)
        assert registry_accepts(stack, before)
        write_image(layout, "after rotation")
        assert skopeo.push(layout, "rot/app:v2").returncode == 0

        listed = json.loads(keys(stack, "list"))
        assert [k["state"] for k in listed] == ["published", "active"]
        refused = stack.cli("keys", "retire", str(added["id"]))
        assert refused.returncode == 1  # the signing key cannot be retired
        keys(stack, "retire", str(listed[0]["id"]))
        keys(stack, "bundle")
        stack.restart_registry()
        assert registry_accepts(stack, before)  # still within the token lifetime
        # A token lifetime later (moved back in time rather than waited for):
        with sqlite3.connect(stack.directory / "tokenserver.db") as db:
            db.execute("UPDATE signing_key SET retired_at = 1 WHERE state = 'retired'")
        keys(stack, "bundle")
        stack.restart_registry()
        assert not registry_accepts(stack, before)
        assert registry_accepts(stack, token(stack, robot.name, robot.secret))

        # The next reboot: the server stops, then `init` and `serve` as scripts/run does.
        server = stack.processes[0]
        server.terminate()
        server.wait(timeout=10)
        init = stack.cli("init")
        assert init.returncode == 0, init.stderr
        assert [k["state"] for k in json.loads(keys(stack, "list"))] == ["retired", "active"]
        port = int(stack.api_base.split(":")[-1].split("/")[0])
        stack.processes[0] = stack.serve(port, "tokenserver-restarted.log")
        restarted = token(stack, robot.name, robot.secret)
        assert jwt.get_unverified_header(restarted)["kid"] == added["kid"]
        assert registry_accepts(stack, restarted)
        digest = write_image(layout, "after the restart")
        pushed = skopeo.push(layout, "rot/app:v3")
        assert pushed.returncode == 0, pushed.stderr
        pulled = stack.new_dir("pulled")
        result = skopeo.pull("rot/app:v3", pulled)
        assert result.returncode == 0, result.stderr
        assert layout_digest(pulled) == digest
    finally:
        stop_stack(stack)
