"""Helpers shared by the CLI and end-to-end tests."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tokenserver.domain.models import LOCAL, Level, Robot
from tokenserver.domain.permissions import RequestedPermission, parse_access
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


def call_cli(
    config: Path,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    kdf_cost: KdfCost = FAST_KDF_COST,
) -> subprocess.CompletedProcess[str]:
    """`run_cli`, in this process: `tokenserver.cli.main` with the same environment (no
    TOKENSERVER_* but `env`), stdin, captured stdout and stderr and exit status, hashing at
    `kdf_cost`. A new interpreter per command made most of the CLI tests' time."""
    from tokenserver.cli import main

    argv = [*args, "--config", str(config)]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TOKENSERVER_"):
                patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv, kdf_cost=kdf_cost)
            except SystemExit as e:  # argparse's usage errors, as the process would exit
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    return subprocess.CompletedProcess(
        ["tokenserver", *argv], status, out.getvalue(), err.getvalue()
    )


def initialised(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    then: Sequence[Sequence[str]] = (),
) -> Path:
    """`config`, as `call_cli(config, "init", *args, env=env)` and then each command of `then`
    (`call_cli(config, *command)`) leave it and its directory (the keys, the database): for
    the tests that start from an initialised directory and do not test init. Made once per
    process for these arguments and copied (modes kept): init, which creates the database and
    runs every migration, was most of a CLI test's time. Everything init writes is relative
    to the config's directory, which must not hold anything yet."""
    template = _initialised(
        config.name, args, tuple(sorted((env or {}).items())), tuple(map(tuple, then))
    )
    shutil.copytree(template, config.parent, dirs_exist_ok=True)
    return config


@functools.cache
def _initialised(
    name: str,
    args: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    then: tuple[tuple[str, ...], ...],
) -> Path:
    temporary = Path(tempfile.mkdtemp(prefix="tokenserver-init-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    directory = temporary / "config"
    directory.mkdir()  # not mkdtemp's mode 0700: the copy gives the config's directory this one's
    config = directory / name
    for command, command_env in ((("init", *args), dict(env)), *((c, None) for c in then)):
        result = call_cli(config, *command, env=command_env)
        assert result.returncode == 0, (command, result.stderr)
    return directory


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
        permissions=(RequestedPermission(project, tuple(parse_access(p) for p in permissions)),),
        duration=duration,
        description=description,
    )
    return await runtime.robots.create(LOCAL, spec)
