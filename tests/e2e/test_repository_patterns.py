"""Repository patterns end to end: the real registry (distribution 2.8.2) accepts what a robot
limited to some repositories of a project may do, and refuses the rest, through skopeo, docker
(a daemon push) and helm (a chart is an OCI repository); a deny pattern inside an allow; a
system robot with patterns on every project; a cross-repository mount whose `from` lies
outside the patterns. One ES256 stack."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.clients import Docker, Helm, Skopeo, layout_digest
from tests.e2e.conftest import Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image

PULL_PUSH = ("repository:pull,repository:push",)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("stack-patterns"), "ES256")
    try:
        stack.project("demo")
        yield stack
    finally:
        stop_stack(stack)


def cli_robot(stack: Stack, name: str, *flags: str) -> Robot:
    result = stack.cli("robot", "create", "--project", "demo", "--name", name, *flags)
    assert result.returncode == 0, result.stderr
    export = json.loads(result.stdout)
    return Robot(export["name"], stack.remember(export["secret"]), export["id"])


def api_robot(stack: Stack, body: dict[str, Any]) -> Robot:
    status, _, created = stack.api("POST", "/robots", {"duration": -1, **body})
    assert status == 201, created
    assert isinstance(created, dict)
    return Robot(created["name"], stack.remember(created["secret"]), created["id"])


def access(*pairs: str, effect: str = "allow") -> list[dict[str, str]]:
    return [
        {"resource": p.split(":")[0], "action": p.split(":")[1], "effect": effect} for p in pairs
    ]


@pytest.fixture(scope="module")
def team_a(stack: Stack) -> Robot:
    return cli_robot(stack, "team-a", "--permission", *PULL_PUSH, "--repository", "team-a/*")


def refused(result: Any) -> None:
    assert result.returncode != 0
    text = result.stderr.lower()
    assert any(w in text for w in ("denied", "unauthorized", "authentication required", "401"))


def test_skopeo_pushes_and_pulls_only_matching_repositories(stack: Stack, team_a: Robot) -> None:
    skopeo = Skopeo(stack, team_a)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    digest = write_image(layout, "team-a via skopeo")
    pushed = skopeo.push(layout, "demo/team-a/app:1")
    assert pushed.returncode == 0, pushed.stderr + stack.registry_log()[-2000:]
    pulled = stack.new_dir("pulled")
    result = skopeo.pull("demo/team-a/app:1", pulled)
    assert result.returncode == 0, result.stderr
    assert layout_digest(pulled) == digest
    refused(skopeo.push(layout, "demo/team-b/app:1"))
    refused(skopeo.push(layout, "demo/app:1"))
    refused(skopeo.push(layout, "demo/team-a/x/app:1"))
    assert (
        "scopes='repository:demo/team-b/app:pull,push' granted='repository:demo/team-b/app:'"
        in (stack.server_log())
    )


def test_docker_pushes_only_matching_repositories(
    stack: Stack, team_a: Robot, dockerd: str
) -> None:
    docker = Docker(stack, dockerd)
    login = docker.login(team_a)
    assert login.returncode == 0, login.stderr
    allowed = f"{stack.registry}/demo/team-a/web:1"
    docker.image(allowed.split("/", 1)[1], "team-a via docker")
    pushed = docker("push", allowed)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-2000:]
    for outside in ("demo/team-b/web:1", "demo/web:1"):
        target = f"{stack.registry}/{outside}"
        assert docker("tag", allowed, target).returncode == 0
        result = docker("push", target)
        assert result.returncode != 0
        assert "denied" in result.stderr or "unauthorized" in result.stderr, result.stderr


def test_helm_pushes_charts_only_to_matching_repositories(stack: Stack, team_a: Robot) -> None:
    helm = Helm(stack, 3)
    login = helm.login(team_a)
    assert login.returncode == 0, login.stderr
    package = helm.package("chart", "0.1.0")
    pushed = helm.push(package, "demo/team-a")  # the chart's repository: demo/team-a/chart
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-2000:]
    result, pulled = helm.pull("demo/team-a", "chart", "0.1.0")
    assert result.returncode == 0, result.stderr
    assert pulled.read_bytes() == package.read_bytes()
    refused(helm.push(package, "demo/team-b"))
    refused(helm.push(package, "demo"))


def test_a_deny_pattern_inside_an_allow(stack: Stack) -> None:
    robot = cli_robot(
        stack, "guarded",
        # The allow reaches every repository; the deny only under secrets/.
        "--permission", *PULL_PUSH,
        "--deny", "repository:push", "--repository", "secrets/**",
    )  # fmt: skip
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    write_image(layout, "guarded")
    assert skopeo.push(layout, "demo/guarded/app:1").returncode == 0
    refused(skopeo.push(layout, "demo/secrets/db:1"))
    refused(skopeo.push(layout, "demo/secrets/x/db:1"))


def test_a_system_robot_with_patterns_on_every_project(stack: Stack) -> None:
    stack.project("later")
    robot = api_robot(
        stack,
        {
            "name": "fleet",
            "level": "system",
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "*",
                    "access": access("repository:pull", "repository:push"),
                    "repositories": ["base/*"],
                }
            ],
        },
    )
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    digest = write_image(layout, "fleet base")
    for project in ("demo", "later"):
        pushed = skopeo.push(layout, f"{project}/base/alpine:1")
        assert pushed.returncode == 0, pushed.stderr
        assert skopeo.digest(f"{project}/base/alpine:1") == digest
        refused(skopeo.push(layout, f"{project}/app:1"))


def _token(stack: Stack, robot: Robot, *scopes: str) -> str:
    port = stack.api_base.split(":")[2].split("/")[0]
    query = "&".join(f"scope={s}" for s in scopes)
    basic = base64.b64encode(f"{robot.name}:{robot.secret}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/service/token?service=registry&{query}",
        headers={"Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        token: str = json.loads(response.read())["token"]
    return token


def _mount(stack: Stack, token: str, target: str, digest: str, source: str) -> int:
    """POST a cross-repository mount to the registry; its status (201: mounted)."""
    request = urllib.request.Request(
        f"http://{stack.registry}/v2/{target}/blobs/uploads/?mount={digest}&from={source}",
        method="POST",
        data=b"",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_a_cross_repository_mount_needs_pull_on_its_source_under_the_patterns(
    stack: Stack, team_a: Robot
) -> None:
    # Layers in a repository outside the patterns, pushed by a robot that may.
    owner = cli_robot(stack, "owner", "--permission", *PULL_PUSH)
    writer = Skopeo(stack, owner)
    assert writer.login().returncode == 0
    layout = stack.new_dir("image")
    write_image(layout, "shared layer")
    assert writer.push(layout, "demo/team-b/base:1").returncode == 0
    assert writer.push(layout, "demo/team-a/base:1").returncode == 0
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    blob = json.loads((layout / "blobs" / "sha256" / manifest.split(":")[1]).read_text())["layers"][
        0
    ]["digest"]

    # What a client asks before a mount: push on the target, pull on `from`.
    outside = _token(
        stack,
        team_a,
        "repository:demo/team-a/mounted:push,pull",
        "repository:demo/team-b/base:pull",
    )
    assert _mount(stack, outside, "demo/team-a/mounted", blob, "demo/team-b/base") == 401
    inside = _token(
        stack,
        team_a,
        "repository:demo/team-a/mounted:push,pull",
        "repository:demo/team-a/base:pull",
    )
    assert _mount(stack, inside, "demo/team-a/mounted", blob, "demo/team-a/base") == 201
