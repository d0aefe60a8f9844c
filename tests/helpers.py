"""Helpers shared by the CLI and end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tokenserver.domain.models import LOCAL, Level, Robot
from tokenserver.domain.permissions import Permission, parse_access
from tokenserver.domain.secrets import KdfCost, Secret
from tokenserver.runtime import Runtime
from tokenserver.services.robots import RobotSpec

# The KDF cost of the tests that are not about hashing: scrypt with N=16, r=1, p=1 takes
# microseconds where the production cost takes a tenth of a second or more, and hashes
# the same way (parameters recorded in the hash, verified at the stored cost).
FAST_KDF_COST = KdfCost(log2_n=4, r=1, p=1)


class FakeClock:
    """A clock the test moves (`now += seconds`) instead of sleeping."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without TOKENSERVER_* overrides, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSERVER_")}
    env.update(extra)
    return env


def run_cli(
    config: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`tokenserver ARGS --config CONFIG` in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tokenserver", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        input=stdin,
        env=clean_env(**(env or {})),
        timeout=60,
        check=False,
    )


async def make_robot(
    runtime: Runtime,
    project: str,
    name: str,
    *permissions: str,
    duration: int = -1,
    description: str = "",
) -> tuple[Robot, Secret]:
    """A project robot created as the command line does (the local operator)."""
    spec = RobotSpec(
        name=name,
        level=Level.PROJECT,
        permissions=(Permission(project, tuple(parse_access(p) for p in permissions)),),
        duration=duration,
        description=description,
    )
    return await runtime.robots.create(LOCAL, spec)
