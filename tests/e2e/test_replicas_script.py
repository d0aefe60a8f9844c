"""`scripts/replicas up|down` as a user runs it: its private PostgreSQL, two replicas, nginx as
their balancer and the real registry whose realm is the balancer; skopeo pushes and pulls
through the balancer with both replicas up and with one stopped; `up` again brings that one
back and leaves the rest alone; `down` stops everything, twice. The directory's name has a
space in it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.clients import run
from tests.e2e.oci import write_image
from tests.helpers import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("PostgreSQL", "replica 1", "replica 2", "balancer", "registry")


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    """A port whose next four are free too."""
    for _ in range(100):
        base = free_port()
        if base <= 65531 and all(_free(base + i) for i in range(5)):
            return base
    raise RuntimeError("no five free ports in a row")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat[stat.rfind(")") + 2 :].startswith("Z")


@dataclass
class Replicas:
    directory: Path
    base: int

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.base + 3}"

    def script(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts/replicas"), command, "--dir", str(self.directory),
             "--base-port", str(self.base)],
            capture_output=True, text=True, env=clean_env(), timeout=600, check=False,
        )  # fmt: skip

    def states(self, output: str) -> dict[str, str]:
        """Each component's state in the table `up`, `down` and `status` print."""
        found = {}
        for name in COMPONENTS:
            match = re.search(rf"^  {name} +\S+ +(\S+(?: running)?) ", output, re.MULTILINE)
            assert match, output
            found[name] = match.group(1)
        return found

    def pids(self) -> dict[str, int]:
        run_dir = self.directory / "run"
        pids = {p.stem: int(p.read_text()) for p in run_dir.glob("*.pid")}
        pids["nginx"] = int((self.directory / "nginx" / "nginx.pid").read_text())
        return pids

    def tokenserver(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command as the README says: `. DIR/env`, then `tokenserver ...`."""
        command = '. "$1" && shift && exec "$@"'
        return subprocess.run(
            ["bash", "-c", command, "-", str(self.directory / "env"),
             str(ROOT / ".venv/bin/tokenserver"), *args],
            capture_output=True, text=True, env=clean_env(), timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture
def replicas() -> Iterator[Replicas]:
    # Not under pytest's mode 0700 tree: PostgreSQL and nginx's worker run as other users.
    parent = Path(tempfile.mkdtemp(prefix="ts replicas ", dir="/tmp"))
    parent.chmod(0o755)
    stack = Replicas(parent / "stack dir", free_base_port())
    try:
        yield stack
    finally:
        stack.script("down")
        shutil.rmtree(parent, ignore_errors=True)


def test_replicas_up_push_through_the_balancer_with_a_replica_stopped_then_down(
    replicas: Replicas,
) -> None:
    up = replicas.script("up")
    assert up.returncode == 0, up.stderr
    assert set(replicas.states(up.stdout).values()) == {"started"}
    assert f"registry      {replicas.registry} " in up.stdout
    assert f"its token realm is http://127.0.0.1:{replicas.base}/service/token" in up.stdout

    created = replicas.tokenserver("project", "create", "rep")
    assert created.returncode == 0, created.stderr
    created = replicas.tokenserver(
        "robot", "create", "--project", "rep", "--name", "ci", "--permission", "repository:push"
    )
    assert created.returncode == 0, created.stderr
    robot = json.loads(created.stdout)
    authfile = replicas.directory.parent / "auth.json"

    def push(tag: str) -> None:
        layout = replicas.directory.parent / f"image-{tag}"
        write_image(layout, f"image {tag}")
        pushed = run(
            "skopeo", "copy", "--dest-tls-verify=false", "--dest-authfile", str(authfile),
            f"oci:{layout}:latest", f"docker://{replicas.registry}/rep/app:{tag}",
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr

    def pull(tag: str) -> None:
        pulled = run(
            "skopeo", "copy", "--src-tls-verify=false", "--src-authfile", str(authfile),
            f"docker://{replicas.registry}/rep/app:{tag}",
            f"oci:{replicas.directory.parent / f'pulled-{tag}'}:latest",
        )  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr

    login = run(
        "skopeo", "login", "--tls-verify=false", "--authfile", str(authfile),
        "-u", robot["name"], "--password-stdin", replicas.registry,
        stdin=robot["secret"] + "\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    push("both")
    # The balancer spread the token requests over both replicas.
    logs = replicas.directory / "logs"
    for n in (1, 2):
        # One line per token request (written after its event-loop turn: the push that
        # followed each token request came later).
        assert "token issued" in (logs / f"replica-{n}.log").read_text()

    # `up` again: nothing to do, nothing restarted.
    before = replicas.pids()
    again = replicas.script("up")
    assert again.returncode == 0, again.stderr
    assert set(replicas.states(again.stdout).values()) == {"running"}
    assert replicas.pids() == before

    # Replica 1 stops: pushes and pulls through the balancer go on, on replica 2.
    os.kill(before["replica-1"], signal.SIGTERM)
    deadline = time.monotonic() + 60
    while alive(before["replica-1"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(before["replica-1"])
    status = replicas.script("status")
    assert status.returncode == 3
    assert replicas.states(status.stdout)["replica 1"] == "stopped"
    push("one")
    pull("both")
    # nginx did send requests to the stopped replica, and retried them on the other.
    errors = (replicas.directory / "nginx" / "error.log").read_text().splitlines()
    upstream = f'upstream: "http://127.0.0.1:{replicas.base + 1}/'
    assert any("[error]" in line and upstream in line for line in errors), errors

    # `up` brings replica 1 back, and only it.
    again = replicas.script("up")
    assert again.returncode == 0, again.stderr
    states = replicas.states(again.stdout)
    assert states.pop("replica 1") == "started"
    assert set(states.values()) == {"running"}
    after = replicas.pids()
    assert after["replica-1"] != before["replica-1"]
    assert {k: v for k, v in after.items() if k != "replica-1"} == {
        k: v for k, v in before.items() if k != "replica-1"
    }
    pull("one")

    # `down` stops everything, and again finds nothing to stop.
    down = replicas.script("down")
    assert down.returncode == 0, down.stderr
    assert set(replicas.states(down.stdout).values()) == {"stopped"}
    assert not any(alive(pid) for pid in after.values())
    assert all(_free(replicas.base + i) for i in range(5))
    down = replicas.script("down")
    assert down.returncode == 0, down.stderr
    assert set(replicas.states(down.stdout).values()) == {"not running"}

    # No secret in a log: the robot's, the admin's, the database's.
    url = (replicas.directory / "env").read_text()
    database_password = re.search(r"postgresql://tokenserver:([^@]+)@", url)
    assert database_password
    secrets = [
        robot["secret"],
        (replicas.directory / "admin-password").read_text().strip(),
        database_password.group(1),
    ]
    logs_text = [up.stdout, up.stderr] + [
        log.read_text()
        for log in [*logs.glob("*.log"), *(replicas.directory / "nginx").glob("*.log"),
                    replicas.directory / "postgres" / "server.log"]
    ]  # fmt: skip
    for text in logs_text:
        for secret in secrets:
            assert secret not in text
    for private in ("env", "admin-password", "state.json"):
        assert (replicas.directory / private).stat().st_mode & 0o777 == 0o600
