"""Attacks on `tokenserver webhook add` (an outside review): bytes that are not UTF-8 in
its arguments or on stdin (a shell passes them as they are; Python hands them over as lone
surrogates), which the API refuses as "not valid Unicode" and the database cannot hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_webhook_commands import ADD, URL, config, ok, refused
from tests.helpers import call_cli

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
