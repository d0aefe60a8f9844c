"""End to end: a CI job exchanges its OIDC ID token (RFC 8693) at the real `tokenserver serve`,
then pushes and pulls with the real registry: skopeo logs in with the temporary robot secret
the exchange handed out, and the exchanged access token is a bearer token the registry takes.
The ID tokens come from the fake issuer (tests/oidc_issuer.py) on loopback.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.clients import Skopeo, layout_digest
from tests.e2e.conftest import Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image
from tests.oidc_issuer import FakeIssuer, ThreadedIssuer, github_claims
from tokenserver.domain.exchange import GRANT_TYPE, JWT_TYPE, ROBOT_SECRET_TYPE

PROJECT = "e2e-exchange"
IMAGE = f"{PROJECT}/app:v1"


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with ThreadedIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, issuer: FakeIssuer) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("stack-exchange"), "ES256")
    try:
        added = stack.cli(
            "federation", "issuer", "add", "github", "--issuer", issuer.url,
            "--audience", issuer.audience,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        stack.project(PROJECT)
        yield stack
    finally:
        stop_stack(stack)


@pytest.fixture(scope="module")
def robot(stack: Stack) -> Robot:
    """A robot whose only way in is a workflow of acme/app on main: its secret login is off."""
    robot = stack.robot(PROJECT, "ci", "repository:push")
    rule = stack.cli(
        "robot", "federation", "add", robot.name, "--issuer", "github",
        "--claim", "repository_owner_id=1234567", "--claim", "repository=acme/app",
        "--claim", "ref=refs/heads/main",
    )  # fmt: skip
    assert rule.returncode == 0, rule.stderr
    off = stack.cli("robot", "update", robot.name, "--secret-login", "off")
    assert off.returncode == 0, off.stderr
    return robot


def exchange(stack: Stack, robot: Robot, token: str, **form: str) -> tuple[int, dict[str, Any]]:
    """POST a token exchange to the running server; the status and the JSON answer."""
    url = stack.api_base.removesuffix("/api/v2.0") + "/service/token"
    fields = {
        "grant_type": GRANT_TYPE,
        "subject_token": token,
        "subject_token_type": JWT_TYPE,
        "resource": robot.name,
        "service": "registry",
        **form,
    }
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        url, data=urllib.parse.urlencode(fields).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body: dict[str, Any] = json.loads(response.read())
            return response.status, body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_job_pushes_and_pulls_with_a_temporary_secret_from_an_exchange(
    stack: Stack, robot: Robot, issuer: FakeIssuer
) -> None:
    id_token = issuer.mint(github_claims())
    status, body = exchange(stack, robot, id_token, requested_token_type=ROBOT_SECRET_TYPE)
    assert status == 200, body
    assert body["username"] == robot.name and body["issued_token_type"] == ROBOT_SECRET_TYPE
    secret = stack.remember(body["access_token"])
    # The ID token is taken once.
    status, refused = exchange(stack, robot, id_token, requested_token_type=ROBOT_SECRET_TYPE)
    assert status == 401 and "replay" in refused["errors"][0]["message"]

    # A client that knows only username and password.
    pusher = Skopeo(stack, Robot(robot.name, secret, robot.id))
    login = pusher.login()
    assert login.returncode == 0, login.stderr + stack.server_log()[-2000:]
    layout = stack.new_dir("image")
    digest = write_image(layout, "pushed with a temporary secret")
    pushed = pusher.push(layout, IMAGE)
    assert pushed.returncode == 0, pushed.stderr + stack.registry_log()[-2000:]
    pulled = stack.new_dir("pulled")
    assert pusher.pull(IMAGE, pulled).returncode == 0
    assert layout_digest(pulled) == digest == pusher.digest(IMAGE)

    # The robot's own secret is off, and a wrong temporary-looking secret is refused.
    assert Skopeo(stack, robot).login().returncode != 0
    assert pusher.login("tst_" + "A" * 43).returncode != 0

    # The log names the workload; neither the secret nor the ID token is logged or stored.
    log = stack.server_log()
    assert "robot secret issued grant=token_exchange" in log and "repository='acme/app'" in log
    for text in (secret, id_token):
        assert text not in log and text[-40:] not in log
        assert text[-40:] not in stack.registry_log()
    database = (stack.directory / "tokenserver.db").read_bytes()
    wal = stack.directory / "tokenserver.db-wal"
    for data in (database, wal.read_bytes() if wal.exists() else b""):
        assert secret[4:].encode() not in data and id_token[-40:].encode() not in data

    # A change of the robot's rules ends the secret at once.
    with sqlite3.connect(stack.directory / "tokenserver.db") as db:
        (rule_id,) = db.execute(
            "SELECT id FROM federation_rule WHERE robot_id = ?", (robot.id,)
        ).fetchone()
    tightened = stack.cli(
        "robot", "federation", "add", robot.name, "--issuer", "github",
        "--claim", "repository_id=7654321",
    )  # fmt: skip
    assert tightened.returncode == 0, tightened.stderr
    assert stack.cli("robot", "federation", "remove", robot.name, str(rule_id)).returncode == 0
    assert pusher.login().returncode != 0


def test_an_exchanged_access_token_is_a_bearer_token_the_registry_takes(
    stack: Stack, robot: Robot, issuer: FakeIssuer
) -> None:
    repository = f"{PROJECT}/bearer"
    status, body = exchange(
        stack, robot, issuer.mint(github_claims()), scope=f"repository:{repository}:pull,push"
    )
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["scope"] == f"repository:{repository}:pull,push"
    # Start an upload and list tags with it, as a client holding only the token would.
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    upload = urllib.request.Request(
        f"http://{stack.registry}/v2/{repository}/blobs/uploads/", method="POST", headers=headers
    )
    with urllib.request.urlopen(upload, timeout=30) as response:  # noqa: S310
        assert response.status == 202
    tags = urllib.request.Request(
        f"http://{stack.registry}/v2/{repository}/tags/list", headers=headers
    )
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(tags, timeout=30)  # noqa: S310
    assert unknown.value.code == 404  # authorized: the repository has no tags yet
