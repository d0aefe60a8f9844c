"""Caller-supplied text made safe to show: in a log line, a terminal, a table cell.

A request can put anything in a path, a header, a name or a form field: newlines that forge
log lines, terminal escapes that rewrite the operator's screen, tabs that shift a table's
columns, bidirectional overrides, lone surrogates that cannot even be written out. Every
such character is shown as an escape instead, so one record stays one line and reads as
what was sent.
"""

from __future__ import annotations

TRUNCATED = "...(truncated)"

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "'": "\\'", '"': '\\"'}


def _escaped(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, also: str = "") -> str:
    """`text` with every non-printable character (C0 and C1 controls, DEL, line and
    paragraph separators, format characters such as bidi overrides, lone surrogates), the
    backslash and each character of `also` (a field's separator or quote) written as a
    backslash escape (`\\n`, `\\x1b`, `\\u2028`, ...). Printable text comes back unchanged.

    The backslash is escaped too, so text that spells out an escape cannot pass for one.
    """
    # NOTE: the token endpoint logs every request: the common, all-printable case costs a
    # C-level scan or two, not a loop in Python.
    if text.isprintable() and "\\" not in text:
        for c in also:
            if c in text:
                break
        else:
            return text
    return "".join(
        c if c.isprintable() and c != "\\" and c not in also else _escaped(c) for c in text
    )


def quote(text: str) -> str:
    """`text` escaped and in single quotes: one field of a log line, whatever it holds
    (spaces included)."""
    if text.isprintable() and "\\" not in text and "'" not in text:
        return f"'{text}'"
    return "'" + escape(text, also="'") + "'"


def printable(text: str) -> str:
    """`text` unchanged when it is all printable, else escaped: for text composed of parts
    already escaped (a log message) or stored escaped, which must not be escaped twice."""
    return text if text.isprintable() else escape(text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in TRUNCATED when it was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED
