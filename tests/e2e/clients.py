"""Real clients, each with private state so tests never share credentials."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import Robot, Stack


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


class Skopeo:
    """skopeo with its own auth file (or none: anonymous)."""

    def __init__(self, stack: Stack, robot: Robot | None = None) -> None:
        self.stack = stack
        self.authfile = stack.new_dir("skopeo") / "auth.json"
        self.robot = robot

    def _auth(self, direction: str = "") -> list[str]:
        if self.robot is None:
            return [f"--{direction}no-creds"] if direction else ["--no-creds"]
        return [f"--{direction}authfile" if direction else "--authfile", str(self.authfile)]

    def login(self, password: str | None = None) -> subprocess.CompletedProcess[str]:
        assert self.robot is not None
        return run(
            "skopeo", "login", "--tls-verify=false", "--authfile", str(self.authfile),
            "-u", self.robot.name, "--password-stdin", self.stack.registry,
            stdin=(self.robot.secret if password is None else password) + "\n",
        )  # fmt: skip

    def push(self, layout: Path, reference: str) -> subprocess.CompletedProcess[str]:
        return run(
            "skopeo", "copy", "--dest-tls-verify=false", *self._auth("dest-"),
            f"oci:{layout}:latest", f"docker://{self.stack.registry}/{reference}",
        )  # fmt: skip

    def pull(self, reference: str, layout: Path) -> subprocess.CompletedProcess[str]:
        return run(
            "skopeo", "copy", "--src-tls-verify=false", *self._auth("src-"),
            f"docker://{self.stack.registry}/{reference}", f"oci:{layout}:latest",
        )  # fmt: skip

    def digest(self, reference: str) -> str:
        result = run(
            "skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", *self._auth(),
            f"docker://{self.stack.registry}/{reference}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def delete(self, reference: str) -> subprocess.CompletedProcess[str]:
        return run(
            "skopeo", "delete", "--tls-verify=false", *self._auth(),
            f"docker://{self.stack.registry}/{reference}",
        )  # fmt: skip


def layout_digest(layout: Path) -> str:
    digest: str = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    return digest


def docker_login(
    stack: Stack, user: str, password: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`docker login` with the CLI alone (no daemon) and a private config directory."""
    config = stack.new_dir("docker")
    result = run(
        "docker", "--config", str(config), "login", "-u", user, "--password-stdin", stack.registry,
        stdin=password + "\n",
    )  # fmt: skip
    return result, config


class Docker:
    """The docker CLI talking to a private daemon, with its own client config."""

    def __init__(self, stack: Stack, host: str) -> None:
        self.stack = stack
        self.host = host
        self.config = stack.new_dir("docker")

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run("docker", "--config", str(self.config), "-H", self.host, *args, stdin=stdin)

    def login(self, robot: Robot) -> subprocess.CompletedProcess[str]:
        return self(
            "login", "-u", robot.name, "--password-stdin", self.stack.registry,
            stdin=robot.secret + "\n",
        )  # fmt: skip

    def image(self, reference: str, content: str) -> None:
        """Make an image from a one-file root file system (no download needed)."""
        directory = self.stack.new_dir("rootfs")
        (directory / "hello.txt").write_text(content)
        tar = directory / "rootfs.tar"
        subprocess.run(["tar", "-C", str(directory), "-cf", str(tar), "hello.txt"], check=True)
        result = self("import", str(tar), f"{self.stack.registry}/{reference}")
        assert result.returncode == 0, result.stderr
