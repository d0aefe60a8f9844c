"""End to end: a robot with its own token lifetime (issue 18 item 3) gets tokens of that
lifetime that the real registry (distribution 2.8.2) accepts, on one ES256 stack."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from tests.e2e.clients import Skopeo
from tests.e2e.conftest import Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image

PUSH = "repository:push"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack: what is tested is the lifetime, not the algorithm (tests/e2e/test_registry.py
    runs both)."""
    stack = start_stack(tmp_path_factory.mktemp("stack-lifetime"), "ES256")
    try:
        yield stack
    finally:
        stop_stack(stack)


def token(stack: Stack, robot: Robot, scope: str) -> dict[str, Any]:
    """A token answer for `robot` from the real server, as a client's GET asks for it."""
    realm = stack.api_base.removesuffix("/api/v2.0") + "/service/token"
    query = urllib.parse.urlencode({"service": "registry", "scope": scope})
    basic = base64.b64encode(f"{robot.name}:{robot.secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        f"{realm}?{query}", headers={"Authorization": f"Basic {basic}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
    stack.remember(answer["token"])
    return answer


def registry_status(stack: Stack, method: str, path: str, bearer: str) -> int:
    """The real registry's status for a request with `bearer` as its token."""
    request = urllib.request.Request(
        f"http://{stack.registry}{path}",
        method=method,
        headers={"Authorization": f"Bearer {bearer}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_a_robots_hour_long_token_is_what_the_registry_accepts(stack: Stack) -> None:
    stack.project("e2e-life")
    created = stack.cli(
        "robot", "create", "--project", "e2e-life", "--name", "big",
        "--permission", PUSH, "--token-lifetime", "3600",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    export = json.loads(created.stdout)
    robot = Robot(export["name"], stack.remember(export["secret"]), export["id"])
    plain = stack.robot("e2e-life", "plain", PUSH)

    answer = token(stack, robot, "repository:e2e-life/app:pull,push")
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 3600
    # The registry verifies it (signature, issuer, audience, exp) and grants the push: an
    # upload starts (202); without a token it is challenged (401).
    upload = "/v2/e2e-life/app/blobs/uploads/"
    assert registry_status(stack, "POST", upload, answer["token"]) == 202
    assert registry_status(stack, "POST", upload, "not-a-token") == 401
    # Another robot of the same project keeps token.lifetime.
    other = token(stack, plain, "repository:e2e-life/app:pull")
    assert other["expires_in"] == 1800

    # A real client's push and pull with the robot, on such tokens.
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    digest = write_image(layout, "an hour-long push")
    pushed = skopeo.push(layout, "e2e-life/app:v1")
    assert pushed.returncode == 0, pushed.stderr + stack.registry_log()
    assert skopeo.digest("e2e-life/app:v1") == digest
    assert f'auth.user.name="{robot.name}"' in stack.registry_log()
