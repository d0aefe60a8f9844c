"""End to end: containerd (`ctr images pull`, Debian's containerd 1.6) pulls with robot secrets.

containerd asks for a token with the OAuth2 POST password grant and falls back to GET with
Basic on a 401: the log shows which it used, and the other path must answer the same.
One stack (the token algorithm is the registry's business, not containerd's) and one image.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import jwt
import pytest

from tests.e2e.clients import Containerd, Skopeo
from tests.e2e.conftest import Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image

PROJECT = "e2e-ctr"
IMAGE = f"{PROJECT}/app:v1"
SCOPE = f"repository:{PROJECT}/app:pull"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("stack-containerd"), "ES256")
    try:
        yield stack
    finally:
        stop_stack(stack)


@pytest.fixture(scope="module")
def digest(stack: Stack) -> str:
    """IMAGE, pushed by skopeo; its manifest digest."""
    stack.project(PROJECT)
    pusher = Skopeo(stack, stack.robot(PROJECT, "pusher", "repository:push"))
    assert pusher.login().returncode == 0, stack.server_log()[-2000:]
    layout = stack.new_dir("image")
    digest = write_image(layout, "pulled by containerd")
    pushed = pusher.push(layout, IMAGE)
    assert pushed.returncode == 0, pushed.stderr
    return digest


def token_lines(stack: Stack, robot: Robot) -> list[str]:
    """The server's token log lines for `robot`, in order."""
    account = f"account='{robot.name}'"
    return [
        line for line in stack.server_log().splitlines() if "token " in line and account in line
    ]


def grant(stack: Stack, method: str, username: str, password: str) -> tuple[int, object]:
    """Ask the token endpoint for SCOPE the way the other path would: GET with Basic, or the
    OAuth2 POST password grant. Returns the status and, on 200, the token's `access`."""
    base = stack.api_base.removesuffix("/api/v2.0") + "/service/token"
    if method == "GET":
        query = urllib.parse.urlencode({"service": "registry", "scope": SCOPE})
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
            f"{base}?{query}", headers={"Authorization": f"Basic {basic}"}
        )
    else:
        form = {
            "grant_type": "password", "service": "registry", "client_id": "containerd-client",
            "username": username, "password": password, "scope": SCOPE,
        }  # fmt: skip
        request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
            base, data=urllib.parse.urlencode(form).encode(), method="POST"
        )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            token = json.loads(response.read())["access_token"]
    except urllib.error.HTTPError as e:
        return e.code, None
    return 200, jwt.decode(token, options={"verify_signature": False})["access"]


def test_ctr_pulls_with_a_robot_that_may_pull(stack: Stack, containerd: str, digest: str) -> None:
    robot = stack.robot(PROJECT, "reader", "repository:pull")
    ctr = Containerd(stack, containerd)
    pulled = ctr.pull(IMAGE, robot.name, robot.secret)
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-2000:]
    assert ctr.digest(IMAGE) == digest
    assert re.search(r'"GET /v2/e2e-ctr/app/blobs/sha256:[0-9a-f]{64} HTTP/1.1" 200 .*"containerd/',
                     stack.registry_log())  # fmt: skip
    # containerd took the POST path and never needed the fallback; GET grants the same.
    lines = token_lines(stack, robot)
    assert lines, stack.server_log()[-2000:]
    assert all("token issued grant=password" in line for line in lines), lines
    assert f"granted='{SCOPE}'" in lines[0]
    access = [{"type": "repository", "name": f"{PROJECT}/app", "actions": ["pull"]}]
    assert grant(stack, "POST", robot.name, robot.secret) == (200, access)
    assert grant(stack, "GET", robot.name, robot.secret) == (200, access)


def test_ctr_wrong_secret_is_refused_on_post_and_on_get(
    stack: Stack, containerd: str, digest: str
) -> None:
    robot = stack.robot(PROJECT, "wrong", "repository:pull")
    wrong = stack.remember(robot.secret[:-1] + ("y" if robot.secret.endswith("x") else "x"))
    ctr = Containerd(stack, containerd)
    pulled = ctr.pull(IMAGE, robot.name, wrong)
    assert pulled.returncode != 0
    assert "401" in pulled.stderr or "unauthorized" in pulled.stderr.lower(), pulled.stderr
    assert ctr.digest(IMAGE) is None
    # The POST's 401 sent containerd to GET with Basic, which refused it too.
    lines = token_lines(stack, robot)
    assert any("token denied grant=password" in line and "status=401" in line for line in lines)
    assert any("token denied grant=basic" in line and "status=401" in line for line in lines)
    assert not any("token issued" in line for line in lines), lines
    assert grant(stack, "POST", robot.name, wrong) == (401, None)
    assert grant(stack, "GET", robot.name, wrong) == (401, None)


def test_ctr_github_sized_password_is_refused_alike_on_post_and_on_get(
    stack: Stack, containerd: str, digest: str
) -> None:
    """A wrong password the size of a GitHub Actions ID token (~2.8 kB, the federated logins'
    password) travels both ways: the POST form and, after its 401, the Basic header."""
    robot = stack.robot(PROJECT, "long", "repository:pull")
    password = stack.remember("eyJ" + "A1b2" * 700)
    pulled = Containerd(stack, containerd).pull(IMAGE, robot.name, password)
    assert pulled.returncode != 0
    assert "401" in pulled.stderr, pulled.stderr
    lines = token_lines(stack, robot)
    assert any("token denied grant=password" in line and "status=401" in line for line in lines)
    assert any("token denied grant=basic" in line and "status=401" in line for line in lines)


def test_ctr_robot_without_pull_on_that_project_is_refused(
    stack: Stack, containerd: str, digest: str
) -> None:
    stack.project("e2e-ctr-other")
    robot = stack.robot("e2e-ctr-other", "reader", "repository:pull", "repository:push")
    ctr = Containerd(stack, containerd)
    pulled = ctr.pull(IMAGE, robot.name, robot.secret)
    assert pulled.returncode != 0
    assert "authorization failed" in pulled.stderr or "401" in pulled.stderr, pulled.stderr
    assert ctr.digest(IMAGE) is None
    # The robot logs in (its secret is right) and gets a token with no actions: the
    # registry refuses the pull, and GET answers the same empty grant.
    lines = token_lines(stack, robot)
    assert lines and all("token issued grant=password" in line for line in lines), lines
    assert f"granted='repository:{PROJECT}/app:'" in lines[0], lines
    access = [{"type": "repository", "name": f"{PROJECT}/app", "actions": []}]
    assert grant(stack, "POST", robot.name, robot.secret) == (200, access)
    assert grant(stack, "GET", robot.name, robot.secret) == (200, access)


def test_no_secret_sent_by_ctr_reaches_a_log_or_the_database(stack: Stack, digest: str) -> None:
    """Runs last: the secrets ctr sent in POST forms and Basic headers above, right and wrong,
    are absent from the server's and the registry's logs and the database, in clear."""
    assert len(stack.secrets) >= 5
    places = {"tokenserver log": stack.server_log(), "registry log": stack.registry_log()}
    places |= {
        path.name: path.read_bytes().decode("latin-1")
        for path in stack.directory.glob("tokenserver.db*")
    }
    for secret in stack.secrets:
        for place, text in places.items():
            assert secret not in text, f"a secret is in the {place}"
