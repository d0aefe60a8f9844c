"""Issue 19 with the real parts: pull secret manifests against kubectl's own, their credentials
against the real registry, and rotation with a grace period as skopeo sees it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import Skopeo, run
from tests.e2e.conftest import Stack
from tests.e2e.oci import write_image
from tests.helpers import call_cli

KUBECTL = Path(__file__).resolve().parents[2] / ".tools" / "kubectl" / "kubectl"
PULL, PUSH = "repository:pull", "repository:push"


@pytest.fixture(scope="module")
def kubectl() -> Path:
    if not KUBECTL.exists():
        message = "kubectl not installed: run scripts/test-deps (scripts/install-kubectl)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return KUBECTL


def kubectl_secret(
    kubectl: Path, name: str, registry: str, username: str, password: str, namespace: str | None
) -> dict[str, Any]:
    """What `kubectl create secret docker-registry --dry-run=client -o json` makes (no
    cluster, no kubeconfig: a client-side dry run)."""
    home = Path(os.environ.get("TMPDIR", "/tmp"))
    result = subprocess.run(
        [str(kubectl), "create", "secret", "docker-registry", name,
         f"--docker-server={registry}", f"--docker-username={username}",
         f"--docker-password={password}", *(["--namespace", namespace] if namespace else []),
         "--dry-run=client", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": str(home / "no-kubeconfig")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    made: dict[str, Any] = json.loads(result.stdout)
    return made


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tokenserver.toml"
    assert call_cli(path, "init").returncode == 0
    assert call_cli(path, "project", "create", "demo").returncode == 0
    return path


@pytest.mark.parametrize(
    ("registry", "namespace", "secret"),
    [
        ("registry.example.com", None, None),
        ("127.0.0.1:5000", "apps", None),
        ("[::1]:5000", "kube-system", "Ab1<&>\"\\x'$HOME`"),
        ("https://index.docker.io/v1/", "a", "Sp4ce s and ~!@#%^*()_+={}|;:,.?/"),
    ],
)
def test_the_manifest_data_is_what_kubectl_makes_byte_for_byte(
    kubectl: Path, config: Path, registry: str, namespace: str | None, secret: str | None
) -> None:
    flags = ["--k8s-secret", "demo-pull", "--registry", registry]
    flags += ["--namespace", namespace] if namespace else []
    made = call_cli(
        config, "robot", "create", "--project", "demo", "--name", "puller",
        "--permission", PULL, *flags,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    ours = json.loads(made.stdout)
    if secret is not None:  # a chosen secret with what shells and JSON treat specially
        made = call_cli(
            config, "robot", "refresh-secret", "demo+puller", "--secret", "-", *flags,
            stdin=secret + "\n",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        ours = json.loads(made.stdout)
    entry = json.loads(base64.b64decode(ours["data"][".dockerconfigjson"]))["auths"][registry]
    theirs = kubectl_secret(
        kubectl, "demo-pull", registry, "robot$demo+puller", entry["password"], namespace
    )
    assert ours["data"] == theirs["data"]  # the same bytes, base64 and all
    assert (ours["kind"], ours["apiVersion"], ours["type"]) == (
        theirs["kind"], theirs["apiVersion"], theirs["type"],
    )  # fmt: skip
    theirs["metadata"].pop("creationTimestamp", None)
    assert ours["metadata"] == theirs["metadata"]
    if secret is not None:
        assert entry["password"] == secret


def authfile(stack: Stack, manifest: dict[str, Any]) -> Path:
    """The manifest's `.dockerconfigjson` as a container tool's auth file, as the kubelet
    hands it to the runtime."""
    path = stack.new_dir("pull-secret") / "auth.json"
    path.write_bytes(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    return path


def inspect(stack: Stack, auth: Path, reference: str) -> subprocess.CompletedProcess[str]:
    return run(
        "skopeo", "inspect", "--tls-verify=false", "--authfile", str(auth),
        f"docker://{stack.registry}/{reference}",
    )  # fmt: skip


def test_a_pull_secret_logs_in_to_the_registry(stack: Stack) -> None:
    stack.project("e2e-k8s")
    pusher = stack.robot("e2e-k8s", "ci", PULL, PUSH)
    layout = stack.new_dir("image")
    write_image(layout, "pull secret " + stack.algorithm)
    pushed = Skopeo(stack, pusher)
    assert pushed.login().returncode == 0
    assert pushed.push(layout, "e2e-k8s/app:v1").returncode == 0
    made = stack.cli(
        "robot", "create", "--project", "e2e-k8s", "--name", "puller", "--permission", PULL,
        "--k8s-secret", "e2e-pull", "--registry", stack.registry,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    manifest = json.loads(made.stdout)
    entry = json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    stack.remember(entry["auths"][stack.registry]["password"])
    result = inspect(stack, authfile(stack, manifest), "e2e-k8s/app:v1")
    assert result.returncode == 0, result.stderr + stack.server_log()
    # The project is private: only the secret's robot could read it.
    assert "token issued grant=basic account='robot$e2e-k8s+puller'" in stack.server_log()


def test_rotation_keeps_the_old_secret_working_at_the_registry_until_revoked(
    stack: Stack,
) -> None:
    stack.project("e2e-rotate")
    robot = stack.robot("e2e-rotate", "ci", PULL, PUSH)
    old = Skopeo(stack, robot)
    assert old.login().returncode == 0
    layout = stack.new_dir("image")
    write_image(layout, "rotation " + stack.algorithm)
    assert old.push(layout, "e2e-rotate/app:v1").returncode == 0
    refreshed = stack.cli(
        "robot", "refresh-secret", robot.name, "--keep-previous", "1h",
        "--k8s-secret", "e2e-rotate", "--registry", stack.registry,
    )  # fmt: skip
    assert refreshed.returncode == 0, refreshed.stderr
    manifest = json.loads(refreshed.stdout)
    new = authfile(stack, manifest)
    stack.remember(json.loads(new.read_text())["auths"][stack.registry]["password"])
    # Both work: the old secret (a fresh token request each time) and the new one.
    assert old.push(layout, "e2e-rotate/app:v2").returncode == 0
    assert inspect(stack, new, "e2e-rotate/app:v2").returncode == 0
    revoked = stack.cli("robot", "revoke-previous-secret", robot.name)
    assert revoked.returncode == 0, revoked.stderr
    after = old.push(layout, "e2e-rotate/app:v3")
    assert after.returncode != 0
    assert inspect(stack, new, "e2e-rotate/app:v2").returncode == 0
