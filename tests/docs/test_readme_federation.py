"""The README's secretless-CI set-up runs as written: every `tokenserver` command of its shell
block, in order, against a fresh server, and the robot ends as the section says."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path

from tests.helpers import call_cli
from tokenserver.config import load_settings
from tokenserver.domain.federation import Condition
from tokenserver.runtime import open_runtime

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TITLE = "## Secretless CI: robots that log in with a workload's ID token"


def commands() -> list[list[str]]:
    """The section's first shell block: one command per line once `\\` continuations are
    joined, comments dropped."""
    section = README[README.index(TITLE) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def test_the_set_up_commands_run_as_written(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init").returncode == 0
    assert call_cli(config, "project", "create", "demo").returncode == 0
    ran = commands()
    assert [argv[:3] for argv in ran] == [
        ["tokenserver", "federation", "issuer"],
        ["tokenserver", "robot", "create"],
        ["tokenserver", "robot", "federation"],
        ["tokenserver", "robot", "update"],
    ]
    for argv in ran:
        result = call_cli(config, *argv[1:])
        assert result.returncode == 0, (argv, result.stderr)
        assert "warning" not in result.stderr.lower(), result.stderr

    async def robot_state() -> tuple[bool, list[tuple[Condition, ...]]]:
        settings = load_settings(config, environ={})
        async with open_runtime(settings, sign=False, create_database=False) as rt:
            robot = await rt.robots.resolve("demo+gha")
            rules = await rt.store.list_federation_rules(robot.id)
            return robot.secret_login, [rule.conditions for rule in rules]

    secret_login, rules = asyncio.run(robot_state())
    assert not secret_login
    assert rules == [
        (
            Condition("repository_owner_id", ("1234567",)),
            Condition("repository", ("acme/app",)),
            Condition("ref", ("refs/heads/main", "refs/tags/v*")),
        )
    ]
