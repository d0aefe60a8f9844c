"""Attacks on `tokenserver webhook add` (an outside review): bytes that are not UTF-8 in
its arguments or on stdin (a shell passes them as they are; Python hands them over as lone
surrogates), which the API refuses as "not valid Unicode" and the database cannot hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_federation_commands import ok, refused
from tests.cli.test_webhook_commands import ADD, URL, config
from tests.helpers import call_cli, clean_env

__all__ = ["config"]

NOT_UTF8 = "a\udcedb"  # how Python shows argv bytes 'a\xedb' (surrogateescape)


def test_attack_a_name_that_is_not_utf8_is_refused_without_a_traceback(config: Path) -> None:
    """Today the store raises UnicodeEncodeError and the command dies with a traceback."""
    args = ("webhook", "add", "--project", "p", "--name", NOT_UTF8, "--address", URL)
    refused(call_cli(config, *args), 2, "--name")


@pytest.mark.parametrize(
    ("flag", "extra", "stdin"),
    [
        ("--address", ("--address", URL + "/" + NOT_UTF8), None),
        ("--auth-header", ("--address", URL, "--auth-header", "-"), "Bearer \udcff\udcfe\n"),
    ],
)
def test_attack_an_address_or_header_that_is_not_utf8_is_refused(
    config: Path, flag: str, extra: tuple[str, ...], stdin: str | None
) -> None:
    """Today both are stored (as JSON escapes of lone surrogates): the API then shows an
    address it would refuse in a PUT of the policy as GET shows it, and the header sent is
    not what the operator typed."""
    refused(call_cli(config, *ADD, *extra, stdin=stdin), 2, flag)
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json")) == []


@pytest.mark.parametrize(
    ("flag", "args"),
    [
        ("--description", (*ADD, "--address", URL, "--description", NOT_UTF8)),
        ("--project", ("webhook", "add", "--project", NOT_UTF8, "--name", "n", "--address", URL)),
        ("--project", ("webhook", "list", "--project", NOT_UTF8)),
    ],
)
def test_other_text_flags_that_are_not_utf8_are_refused(
    config: Path, flag: str, args: tuple[str, ...]
) -> None:
    refused(call_cli(config, *args), 2, flag, "not valid UTF-8")
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json")) == []


def test_bytes_that_are_not_utf8_in_a_real_process_are_refused(config: Path) -> None:
    """As a shell runs it: the name's bytes in argv, the header's on stdin (strictly
    decoded there: no surrogates, a decoding error)."""
    command = [sys.executable, "-m", "tokenserver", "webhook", "add", "--project", "p"]
    tail = ["--address", URL, "--config", str(config)]
    for extra, stdin, flag in (
        ([b"--name", b"a\xedb"], b"", "--name"),
        ([b"--name", b"n", b"--auth-header", b"-"], b"Bearer \xff\xfe\n", "--auth-header"),
    ):
        result = subprocess.run(
            [*command, *extra, *tail],
            input=stdin,
            capture_output=True,
            env=clean_env(),
            check=False,
        )
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert flag in stderr and "not valid UTF-8" in stderr and "Traceback" not in stderr
        assert b"\xff" not in result.stderr
    assert ok(call_cli(config, "webhook", "list", "--project", "p", "--json")) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("project", "create", NOT_UTF8), "argument 3"),
        (
            (
                "robot",
                "create",
                "--project",
                NOT_UTF8,
                "--name",
                "ci",
                "--permission",
                "repository:pull",
            ),
            "--project",
        ),
        (
            (
                "robot",
                "create",
                "--project",
                "p",
                "--name",
                "ci",
                "--description",
                NOT_UTF8,
                "--permission",
                "repository:pull",
            ),
            "--description",
        ),
        (("user", "create", NOT_UTF8), "argument 3"),
    ],
)
def test_every_command_refuses_arguments_that_are_not_utf8(
    config: Path, args: tuple[str, ...], named: str
) -> None:
    """Not only the webhook commands: any argument that is not UTF-8 is a usage error naming
    it (these ended in a traceback from the store)."""
    refused(call_cli(config, *args), 2, named, "not valid UTF-8")
