"""Escaping caller-supplied text for log lines, terminals and tables."""

from __future__ import annotations

import pytest

from tokenserver.domain.text import TRUNCATED, escape, printable, quote, truncate


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("robot$demo+ci", "robot$demo+ci"),
        ("docker/27.0 go/go1.22 (linux)", "docker/27.0 go/go1.22 (linux)"),
        ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("\x00", "\\x00"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),  # DEL, NEL and CSI (C1)
        ("a\u2028b\u2029", "a\\u2028b\\u2029"),  # line and paragraph separators
        ("\u202eevil", "\\u202eevil"),  # right-to-left override
        ("\ud800", "\\ud800"),  # a lone surrogate, which no stream could even encode
        ("\U000e0041", "\\U000e0041"),  # a tag character
        ("a\\nb", "a\\\\nb"),  # a spelled-out escape cannot pass for one
    ],
)
def test_escape_shows_every_unprintable_character(text: str, escaped: str) -> None:
    assert escape(text) == escaped
    assert escaped.isprintable()


def test_escape_returns_printable_text_itself() -> None:
    text = "repository:p/app:pull,push"
    assert escape(text) is text
    assert escape(text, " ") is text


def test_escape_also_escapes_the_separators_asked_for() -> None:
    assert escape("/a b", " ") == "/a\\x20b"
    assert escape("it's", "'") == "it\\'s"
    assert escape('say "hi"', '"') == 'say \\"hi\\"'


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("robot$p+ci", "'robot$p+ci'"),
        ("a b", "'a b'"),
        ("it's", "'it\\'s'"),
        ("x' granted='repository:p/a:push", "'x\\' granted=\\'repository:p/a:push'"),
        ("a\nb", "'a\\nb'"),
        ("", "''"),
    ],
)
def test_quote_keeps_a_field_in_its_quotes(text: str, quoted: str) -> None:
    assert quote(text) == quoted


def test_printable_leaves_printable_text_alone_and_escapes_the_rest() -> None:
    assert printable("already \\n escaped") == "already \\n escaped"
    assert printable("raw\nnewline \\") == "raw\\nnewline \\\\"


@pytest.mark.parametrize("length", [0, 1, 255, 256])
def test_truncate_keeps_what_fits(length: int) -> None:
    assert truncate("x" * length, 256) == "x" * length


def test_truncate_marks_what_it_cut() -> None:
    cut = truncate("x" * 65536, 256)
    assert len(cut) == 256
    assert cut.endswith(TRUNCATED)
    assert cut.startswith("x" * (256 - len(TRUNCATED)))
