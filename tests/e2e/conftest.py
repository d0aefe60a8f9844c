"""The real stack: `tokenserver serve` and the Debian `docker-registry` (distribution 2.8.2) in
token mode trusting tokenserver's certificate, driven by real clients (skopeo, docker CLI)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import clean_env, free_port, run_cli

ADMIN_PASSWORD = "E2eAdm1nPassword"
TOOLS = ("docker-registry", "skopeo", "docker", "dockerd", "podman", "containerd", "ctr")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    for item in items:
        if "tests/e2e/" not in str(item.path).replace(os.sep, "/"):
            continue
        item.add_marker(pytest.mark.e2e)
        if missing:
            reason = f"{', '.join(missing)} not installed: run scripts/test, which installs them"
            if os.environ.get("CI"):
                # In CI the end-to-end tests must run: a missing tool is a failure, not a skip.
                item.add_marker(pytest.mark.xfail(reason=reason, run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (a loopback URL we built)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")


@dataclass
class Robot:
    name: str
    secret: str
    id: int


@dataclass
class Stack:
    """A running tokenserver and registry pair, and the clients' helpers."""

    directory: Path
    config: Path
    registry: str  # host:port
    algorithm: str
    api_base: str
    harbor_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    cleanups: list[Path] = field(default_factory=list)
    # Every secret, refresh token and legacy JWT the tests used: none may leak (see
    # test_no_secret_reaches_a_log_or_the_database).
    secrets: list[str] = field(default_factory=list)

    def remember(self, secret: str) -> str:
        self.secrets.append(secret)
        return secret

    counter: int = 0

    # TOKENSERVER_* variables for every command and server (the database URL on PostgreSQL).
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, stdin=stdin, env=self.env)

    def project(self, name: str, *, public: bool = False) -> str:
        result = self.cli("project", "create", name, *(["--public"] if public else []))
        assert result.returncode == 0, result.stderr
        return name

    def robot(self, project: str, name: str, *permissions: str, duration: int = -1) -> Robot:
        args = ["robot", "create", "--project", project, "--name", name]
        for permission in permissions:
            args += ["--permission", permission]
        result = self.cli(*args, "--duration", str(duration))
        assert result.returncode == 0, result.stderr
        export = json.loads(result.stdout)
        return Robot(export["name"], self.remember(export["secret"]), export["id"])

    def expire(self, robot: Robot) -> None:
        """Move the robot's expiry into the past: a day cannot pass in a test."""
        with sqlite3.connect(self.directory / "tokenserver.db") as db:
            db.execute(
                "UPDATE robot SET expires_at = ? WHERE id = ?", (int(time.time()) - 1, robot.id)
            )

    def new_dir(self, name: str) -> Path:
        self.counter += 1
        path = self.directory / f"{name}{self.counter}"
        path.mkdir()
        return path

    def api(
        self,
        method: str,
        path: str,
        body: object = None,
        auth: tuple[str, str] | None = None,
        base: int | None = None,
    ) -> tuple[int, dict[str, str], object]:
        """Call the management API over real HTTP (as admin unless `auth` is given), of the
        server on port `base` if given."""
        api_base = self.api_base if base is None else f"http://127.0.0.1:{base}/api/v2.0"
        user, password = auth or ("admin", ADMIN_PASSWORD)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
            api_base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"null")

    def restart_registry(self) -> None:
        """Restart the registry: it reads its rootcertbundle only at start."""
        old = self.processes[1]
        old.terminate()
        old.wait(timeout=10)
        registry_env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        log = self.directory / "registry.log"
        with log.open("ab") as out:
            self.processes[1] = subprocess.Popen(
                ["docker-registry", "serve", str(self.directory / "registry.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=registry_env,
            )
        wait_for(f"http://{self.registry}/v2/", self.processes[1], log)

    def serve(
        self, port: int, log_name: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """`tokenserver serve` with this stack's config on `port`, up and answering."""
        env = clean_env(
            TOKENSERVER_LEGACY_VERIFICATION_KEY="harbor-token.pem",
            TOKENSERVER_SERVER_PORT=str(port),
            **self.env,
            **(extra_env or {}),
        )
        log = self.directory / log_name
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tokenserver", "serve", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
        return process

    def server_log(self) -> str:
        """The server's log so far. The server writes the lines of one event-loop turn
        together, after that turn: a request it answers now comes in a later turn, so
        every line of the requests answered before it is in the file once it is answered."""
        origin = self.api_base.removesuffix("/api/v2.0")
        with urllib.request.urlopen(f"{origin}/healthz", timeout=30) as response:  # noqa: S310
            response.read()
        return (self.directory / "tokenserver.log").read_text()

    def registry_log(self) -> str:
        return (self.directory / "registry.log").read_text()


def start_stack(
    directory: Path,
    algorithm: str,
    server_env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> Stack:
    port, registry_port = free_port(), free_port()
    config = directory / "tokenserver.toml"
    stack = Stack(
        directory,
        config,
        f"127.0.0.1:{registry_port}",
        algorithm,
        f"http://127.0.0.1:{port}/api/v2.0",
        env={"TOKENSERVER_DATABASE_URL": database_url} if database_url else {},
    )
    init = run_cli(
        config,
        "init",
        "--listen",
        f"127.0.0.1:{port}",
        "--algorithm",
        algorithm,
        env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD, **stack.env},
    )
    assert init.returncode == 0, init.stderr
    # The old Harbor's token key, for legacy robot$ accounts.
    (directory / "harbor-token.pem").write_bytes(
        stack.harbor_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    stack.processes.append(stack.serve(port, "tokenserver.log", server_env))

    auth_block = stack.cli("registry-config").stdout
    (directory / "registry.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {directory / 'registry-data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {stack.registry}\n  secret: e2e-http-secret\n" + auth_block
    )
    # NOTE: REGISTRY_* variables override the registry's config (skopeo's REGISTRY_AUTH_FILE
    # even crashes it), so the registry gets none.
    registry_env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    registry_log = directory / "registry.log"
    with registry_log.open("wb") as out:
        stack.processes.append(
            subprocess.Popen(
                ["docker-registry", "serve", str(directory / "registry.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=registry_env,
            )
        )
    wait_for(f"http://{stack.registry}/v2/", stack.processes[-1], registry_log)
    return stack


@pytest.fixture(scope="module", params=["ES256", "RS256"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp(f"stack-{request.param}")
    stack = start_stack(directory, request.param)
    try:
        yield stack
    finally:
        stop_stack(stack)


def stop_stack(stack: Stack) -> None:
    for process in stack.processes:
        process.terminate()
    for process in stack.processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    for path in stack.cleanups:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[str]:
    """A private Docker daemon (Debian's docker.io) for push and pull; yields its socket.

    No iptables, no bridge, vfs storage: it only moves images. 127.0.0.0/8 registries are
    plain http to it. Paths are short: unix sockets are limited to 108 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix="ts-dk-", dir="/tmp"))
    socket_path = root / "docker.sock"
    log = root / "dockerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "dockerd",
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "pid"),
                "-H", f"unix://{socket_path}",
                "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=vfs",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            ping = subprocess.run(
                ["docker", "-H", f"unix://{socket_path}", "version"],
                capture_output=True,
                check=False,
            )
            if ping.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture(scope="session")
def containerd() -> Iterator[str]:
    """A private containerd (Debian's) for `ctr images pull`; yields its socket's path.

    Its own root, state, socket and opt directory; the CRI plugin is off, so no CNI or
    kubelet is needed: it only pulls. ctr resolves and authenticates in its own process and
    stores no credential, so each pull carries its own. Paths are short: unix sockets are
    limited to 108 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix="ts-ct-", dir="/tmp"))
    socket_path = root / "containerd.sock"
    config = root / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{root / "root"}"\n'
        f'state = "{root / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket_path}"\n'
        # NOTE: the opt plugin defaults to /opt/containerd, shared with any other containerd.
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{root / "opt"}"\n'
    )
    log = root / "containerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["containerd", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            ping = subprocess.run(
                ["ctr", "--address", str(socket_path), "version"],
                capture_output=True,
                check=False,
            )
            if ping.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield str(socket_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        subprocess.run(["rm", "-rf", str(root)], check=False)
