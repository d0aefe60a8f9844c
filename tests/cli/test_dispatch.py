"""Each subcommand runs its own handler: an unknown command, or one declared without a handler,
is a usage error (exit 2), never another command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import call_cli, initialised
from tokenserver import cli


def subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, bool]]:
    """(command words, parser, is a leaf) for every parser under `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words = (*path, name)
                leaf = not any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
                yield words, child, leaf
                yield from subcommands(child, words)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(tmp_path / "tokenserver.toml")


def test_every_subcommand_declares_its_own_handler() -> None:
    found = list(subcommands(cli.build_parser()))
    assert ("keys", "jwks") in [words for words, _, _ in found]
    for words, parser, leaf in found:
        handler = parser.get_default("handler")
        if leaf:
            assert callable(handler), words
        else:  # a group's handler would run for any of its subcommands that lacks one
            assert handler is None, words


@pytest.mark.parametrize(
    "args",
    [("frobnicate",), ("keys", "frobnicate"), ("robot", "rename", "x"), ("project",), ("keys",)],
)
def test_unknown_or_missing_commands_exit_2_with_a_message(
    config: Path, args: tuple[str, ...]
) -> None:
    result = call_cli(config, *args)
    assert result.returncode == 2
    assert "usage: tokenserver" in result.stderr
    assert ("invalid choice" in result.stderr) or ("required" in result.stderr)
    assert result.stdout == ""


def test_attack_subcommand_without_a_handler_runs_another_command(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subcommand added without its own handler used to fall into a dispatcher's bare
    `else:`: `keys rotate-all` printed the JWKS and exited 0."""
    build = cli.build_parser

    def with_forgotten_handler() -> argparse.ArgumentParser:
        parser = build()
        keys = next(p for words, p, _ in subcommands(parser) if words == ("keys",))
        group = next(a for a in keys._actions if isinstance(a, argparse._SubParsersAction))
        group.add_parser("rotate-all").add_argument("--config")
        return parser

    monkeypatch.setattr(cli, "build_parser", with_forgotten_handler)
    with pytest.raises(SystemExit) as exited:
        cli.main(["keys", "rotate-all", "--config", str(config)])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "keys rotate-all: no such command" in captured.err
    assert captured.out == ""
    listed = call_cli(config, "keys", "list")
    assert [k["state"] for k in json.loads(listed.stdout)] == ["active"]
