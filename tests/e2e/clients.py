"""Real clients, each with private state so tests never share credentials."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import tempfile
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


def rootfs_tar(stack: Stack, content: str) -> Path:
    """A one-file root file system tarball, for `docker import` and `podman import`."""
    directory = stack.new_dir("rootfs")
    (directory / "hello.txt").write_text(content)
    tar = directory / "rootfs.tar"
    subprocess.run(["tar", "-C", str(directory), "-cf", str(tar), "hello.txt"], check=True)
    return tar


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
        tar = rootfs_tar(self.stack, content)
        result = self("import", str(tar), f"{self.stack.registry}/{reference}")
        assert result.returncode == 0, result.stderr


class Podman:
    """podman as root with vfs storage, its own storage and auth file."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.root = stack.new_dir("podman")
        self.authfile = self.root / "auth.json"
        # NOTE: podman refuses a runroot longer than 50 characters.
        self.runroot = Path(tempfile.mkdtemp(prefix="ts-pd-", dir="/tmp"))
        stack.cleanups.append(self.runroot)

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(
            "podman",
            "--root", str(self.root / "storage"),
            "--runroot", str(self.runroot),
            "--storage-driver", "vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=none",
            *args,
            stdin=stdin,
        )  # fmt: skip

    def login(self, robot: Robot, password: str | None = None) -> subprocess.CompletedProcess[str]:
        return self(
            "login", "--tls-verify=false", "--authfile", str(self.authfile),
            "-u", robot.name, "--password-stdin", self.stack.registry,
            stdin=(robot.secret if password is None else password) + "\n",
        )  # fmt: skip

    def image(self, reference: str, content: str) -> None:
        """Make an image from a one-file root file system (no download needed)."""
        tar = rootfs_tar(self.stack, content)
        result = self("import", str(tar), f"{self.stack.registry}/{reference}")
        assert result.returncode == 0, result.stderr

    def push(self, reference: str) -> subprocess.CompletedProcess[str]:
        return self(
            "push", "--tls-verify=false", "--authfile", str(self.authfile),
            f"{self.stack.registry}/{reference}",
        )  # fmt: skip

    def pull(self, reference: str) -> subprocess.CompletedProcess[str]:
        return self(
            "pull", "--tls-verify=false", "--authfile", str(self.authfile),
            f"{self.stack.registry}/{reference}",
        )  # fmt: skip


_NAMESPACES = itertools.count(1)


class Containerd:
    """`ctr` against a private containerd, in a namespace of its own: no image or content is
    shared with another instance, so every pull fetches from the registry.

    ctr keeps no credentials: they go with each pull, as the CRI plugin sends a pod's pull
    secret. containerd asks for a token with the OAuth2 POST password grant
    (client_id=containerd-client) and falls back to GET with Basic on a 401.
    """

    def __init__(self, stack: Stack, address: str) -> None:
        self.stack = stack
        self.address = address
        self.namespace = f"e2e{os.getpid()}-{next(_NAMESPACES)}"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("ctr", "--address", self.address, "--namespace", self.namespace, *args)

    def pull(
        self, reference: str, username: str, password: str
    ) -> subprocess.CompletedProcess[str]:
        # NOTE: ctr splits --user at the first colon: robot names and JWTs hold none.
        return self(
            "images", "pull", "--plain-http", "--user", f"{username}:{password}",
            f"{self.stack.registry}/{reference}",
        )  # fmt: skip

    def digest(self, reference: str) -> str | None:
        """The manifest digest of the pulled image `reference`, None if it is not here."""
        listed = self("images", "list")
        assert listed.returncode == 0, listed.stderr
        name = f"{self.stack.registry}/{reference}"
        for line in listed.stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == name:
                return fields[2]
        return None


HELM = Path(__file__).resolve().parents[2] / ".tools"


class Helm:
    """The official helm 3 or helm 4 binary with private HELM_*_HOME directories."""

    def __init__(self, stack: Stack, major: int) -> None:
        self.stack = stack
        self.major = major
        self.binary = HELM / f"helm{major}" / "helm"
        home = stack.new_dir(f"helm{major}-")
        self.env = {
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        self.home = home

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(str(self.binary), *args, stdin=stdin, env=self.env)

    def login(self, robot: Robot, password: str | None = None) -> subprocess.CompletedProcess[str]:
        # NOTE: helm 3.17's login spells plain HTTP --insecure; helm 4 has --plain-http.
        plain = "--insecure" if self.major == 3 else "--plain-http"
        return self(
            "registry", "login", self.stack.registry, "--username", robot.name,
            "--password-stdin", plain,
            stdin=(robot.secret if password is None else password) + "\n",
        )  # fmt: skip

    def package(self, name: str, version: str) -> Path:
        chart = self.stack.new_dir("chart") / name
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
        (chart / "values.yaml").write_text("replicas: 1\n")
        (chart / "templates" / "cm.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        )
        out = self.stack.new_dir("packaged")
        result = self("package", str(chart), "-d", str(out))
        assert result.returncode == 0, result.stderr
        return out / f"{name}-{version}.tgz"

    def push(self, package: Path, project: str) -> subprocess.CompletedProcess[str]:
        return self("push", str(package), f"oci://{self.stack.registry}/{project}", "--plain-http")

    def pull(
        self, project: str, name: str, version: str
    ) -> tuple[subprocess.CompletedProcess[str], Path]:
        out = self.stack.new_dir("pulled-chart")
        result = self(
            "pull", f"oci://{self.stack.registry}/{project}/{name}", "--version", version,
            "--plain-http", "-d", str(out),
        )  # fmt: skip
        return result, out / f"{name}-{version}.tgz"
