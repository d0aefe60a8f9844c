"""The README is what an operator follows on day one: its tables must hold what the code does."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tokenserver.cli import build_parser
from tokenserver.config import render_config
from tokenserver.domain.permissions import PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS
from tokenserver.http.openapi import document

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _table_rows(text: str, first_cell: str) -> list[str]:
    """The rows of the Markdown table whose header's first cell is `first_cell`, as a renderer
    sees them: the table ends at the first line that is not a row (a blank line ends it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                deeper = _commands(sub, f"{prefix}{name} ")
                found |= deeper or {f"{prefix}{name}"}
    return found


def test_every_command_is_a_row_of_the_rendered_command_table() -> None:
    # A blank line inside the table used to end it: the audit, keys and import rows vanished.
    rows = "\n".join(_table_rows(_section("Command line"), "command"))
    missing = set()
    for command in _commands(build_parser()):
        group, _, action = command.partition(" ")
        # A row names the command either whole (`robot create`) or as a group with its actions
        # listed beside it (`keys add ...`, `keys list`; `robot disable ROBOT` / `enable ROBOT`).
        whole = f"tokenserver {command}" in rows
        listed = action and re.search(rf"`(?:{group} )?{action}[ `]", rows)
        if not (whole or listed):
            missing.add(command)
    assert not missing, f"commands without a row in the README's command table: {missing}"


def test_every_config_key_is_in_the_configuration_table() -> None:
    rows = "\n".join(_table_rows(_section("Configuration"), "key"))
    config = tomllib.loads(render_config())
    missing = {
        f"{section}.{key}"
        for section, keys in config.items()
        for key in keys
        if f"`{section}.{key}`" not in rows
    }
    assert not missing, f"config keys missing from the README's Configuration table: {missing}"


@pytest.mark.parametrize(
    ("kind", "table"), [("project", PROJECT_PERMISSIONS), ("system", SYSTEM_PERMISSIONS)]
)
def test_the_permission_tables_list_exactly_what_a_robot_may_hold(
    kind: str, table: frozenset[tuple[str, str]]
) -> None:
    block = README.split(f"<!-- {kind}-permissions -->")[1].split(f"<!-- /{kind}-permissions -->")[
        0
    ]
    listed = {
        (resource, action.strip())
        for resource, actions in re.findall(r"^\| `([a-z-]+)` \| ([a-z, ]+) \|$", block, re.M)
        for action in actions.split(",")
    }
    assert listed == set(table)


def test_nothing_points_outside_the_repository() -> None:
    # The protocol notes the team keeps are not shipped: a user has only the repository.
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    pointing = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".toml", ".js", ".html", ".sh", ".yml"))
        and re.search(r"REFERENCE\.md|\.\./shared/", (ROOT / name).read_text(errors="replace"))
        and name != "tests/docs/test_readme.py"
    ]
    assert pointing == []


@pytest.mark.parametrize(
    "written",
    [
        "keys/token.key",
        "var/keys/token-2.key",
        "tokenserver.toml",
        "tokenserver.db",
        "tokenserver.db-wal",
        "ci-robot.json",
        "robot$demo+ci.json",
        "deploy/robot$ci.json",
    ],
)
def test_files_init_and_exports_write_are_never_committed(written: str) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed to read .gitignore the way git does")
    result = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", "-q", written], check=False
    )
    assert result.returncode == 0, f"{written} would be committable"


def test_the_endpoint_table_lists_exactly_the_served_documents_paths() -> None:
    block = README.split("<!-- endpoints -->")[1].split("<!-- /endpoints -->")[0]
    listed = {}
    for row in block.strip().splitlines()[2:]:
        path, methods = (cell.strip() for cell in row.strip("|").split("|")[:2])
        listed[path.strip("`")] = sorted(m.strip() for m in methods.split(","))
    served = {
        path: sorted(m.upper() for m in item if m != "parameters")
        for path, item in document()["paths"].items()
    }
    assert listed == served
