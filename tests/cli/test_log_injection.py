"""The logs of a real `tokenserver serve` (text and JSON) and the tables of the CLI, fed
what an attacker can send: one request is one line, its control characters shown escaped.

The servers run in processes of their own, as users run them, but hash at the tests' cheap
KDF cost: these tests read logs; each wrong login cost two runs at the production cost, and
each right one a rehash, most of the file's time."""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import FAST_KDF_COST, call_cli, clean_env, free_port
from tokenserver.config import load_settings
from tokenserver.domain.text import TRUNCATED

ADMIN_PASSWORD = "L0gsAdminPassword"
# What a forged line would look like: the format of a real one, claiming an admin's deletion.
FORGED = "2026-11-30 05:00:00,000 INFO tokenserver.access 10.0.0.1 DELETE /api/v2.0/robots/5 200"


class Served:
    """A `tokenserver serve` process and every line of its log, read as they come."""

    def __init__(self, config: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.config, self.port, self.process = config, port, process
        self._lines: list[str] = []
        self._read = 0  # where the next `log()` starts
        self._syncs = itertools.count(1)
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self._lines.append(raw.decode("utf-8").removesuffix("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, text: str) -> int:
        """The index of the first line from `_read` on that holds `text`, once logged."""
        deadline = time.monotonic() + 30
        with self._changed:
            while True:
                for index in range(self._read, len(self._lines)):
                    if text in self._lines[index]:
                        return index
                remaining = deadline - time.monotonic()
                assert not self._ended and remaining > 0, f"no {text!r} in:\n" + "\n".join(
                    self._lines
                )
                self._changed.wait(remaining)

    def request(self, raw: bytes) -> bytes:
        """Send `raw` as it is (no client library to clean it up) and read the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(raw)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def log(self) -> list[str]:
        """The lines logged since the last call (or the start): everything the requests sent
        in between made the server log. A request of our own marks the end: its line comes
        after theirs, as each was answered (and logged) before the next was sent."""
        mark = f"end-of-log-{next(self._syncs)}"
        self.request(get(b"/healthz", b"X-Request-Id: " + mark.encode()))
        end = self.wait_for(mark)
        with self._changed:
            lines, self._read = self._lines[self._read : end], end + 1
        return checked(lines)

    def stop(self) -> list[str]:
        """Stop the server; every line it logged."""
        self.process.terminate()
        self.process.wait(timeout=20)
        self._reader.join(timeout=20)
        return checked(self._lines)


def checked(lines: list[str]) -> list[str]:
    # Nothing raw may reach the operator's terminal: no escape, no NUL, no CR.
    text = "\n".join(lines)
    for raw in ("\x1b", "\x00", "\r", "\x85", "\u2028"):
        assert raw not in text, repr(raw)
    return lines


@contextmanager
def serve(directory: Path, log_format: str) -> Iterator[Served]:
    config = directory / "tokenserver.toml"
    port = free_port()
    init = call_cli(
        config,
        "init",
        "--listen",
        f"127.0.0.1:{port}",
        env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    assert init.returncode == 0, init.stderr
    cost = FAST_KDF_COST
    # `python -m tokenserver serve`, but for the cost `main` hashes at.
    program = (
        "from tokenserver.cli import main; from tokenserver.domain.secrets import KdfCost; "
        f"raise SystemExit(main(kdf_cost=KdfCost({cost.log2_n}, {cost.r}, {cost.p})))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program, "serve", "--config", str(config)],
        env=clean_env(TOKENSERVER_LOG_FORMAT=log_format),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        served = Served(config, port, process)
        served.wait_for("serving on")  # logged once listening
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["text", "json"])
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, str]]:
    """One server per log format for the tests of this module that only send it requests
    and read what it logged of them: starting a server was most of their time."""
    with serve(tmp_path_factory.mktemp(f"served-{request.param}"), request.param) as served:
        yield served, request.param
        served.stop()  # and its whole log, start and stop included, checked


@pytest.fixture
def server(shared_server: tuple[Served, str]) -> tuple[Served, str]:
    """The shared server; its `log()` holds only what this test's requests made it log."""
    served, _ = shared_server
    served.log()  # the earlier tests' lines, which are not this test's
    return shared_server


def messages(lines: list[str], log_format: str) -> list[str]:
    """What each line says: the whole line in text, the message in JSON (every line must be
    one JSON object)."""
    if log_format == "text":
        return lines
    return [json.loads(line)["message"] for line in lines]


def get(path: bytes, *headers: bytes) -> bytes:
    return (
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + (b"".join(h + b"\r\n" for h in headers) + b"\r\n")
    )


def test_attack_log_line_forged_by_percent_encoded_newline(server: tuple[Served, str]) -> None:
    served, log_format = server
    forged = FORGED.replace(" ", "%20").encode()
    path = b"/healthz%0A" + forged + b"%0D%1B[2J%00%E2%80%A8end"
    answer = served.request(get(path, b"X-Request-Id: forge-1", b"User-Agent: curl/8 it's"))
    assert answer.startswith(b"HTTP/1.1 404"), answer[:100]
    said = messages(served.log(), log_format)
    (line,) = [m for m in said if "forge-1" in m]
    assert "/healthz\\n2026-11-30\\x2005:00:00,000\\x20INFO" in line
    assert "\\r\\x1b[2J\\x00\\u2028end 404 " in line
    assert "agent='curl/8 it\\'s'" in line
    assert not any(m.startswith(FORGED[:30]) for m in said)
    assert not any("tokenserver.access 10.0.0.1" in m and "forge-1" not in m for m in said)


def test_attack_log_field_shifted_by_a_percent_encoded_space(server: tuple[Served, str]) -> None:
    """A space in the path would make `200 0.1ms id=...` text of the path, then another
    status and id follow: the line would read as a success."""
    served, log_format = server
    path = b"/healthz%20200%200.1ms%20id=admin-op"
    served.request(get(path, b"X-Request-Id: forge-2"))
    said = messages(served.log(), log_format)
    (line,) = [m for m in said if "forge-2" in m]
    assert " GET /healthz\\x20200\\x200.1ms\\x20id=admin-op 404 " in line


def test_attack_token_log_line_forged_by_the_account_name(server: tuple[Served, str]) -> None:
    served, log_format = server
    # No colon: Basic credentials end the user name at the first one.
    forged = "2026-11-30 05.00.00,000 INFO tokenserver.token token issued grant=basic account=x"
    account = f"robot$p+ci\x1b[1A\u202e\n{forged}"
    basic = b64encode(f"{account}:Wr0ngSecret".encode()).decode().encode()
    answer = served.request(
        get(b"/service/token?service=registry", b"Authorization: Basic " + basic)
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    said = messages(served.log(), log_format)
    (line,) = [m for m in said if "token denied" in m]
    assert f"account='robot$p+ci\\x1b[1A\\u202e\\n{forged}' client=127.0.0.1 " in line
    assert not any(m.startswith(forged[:30]) for m in said)


def test_attack_token_log_line_forged_by_a_quote_in_the_account_name(
    server: tuple[Served, str],
) -> None:
    """A quote would close the account field early and append a forged `granted=` field."""
    served, log_format = server
    account = "x' granted='everything"
    basic = b64encode(f"{account}:Wr0ngSecret".encode()).decode().encode()
    served.request(get(b"/service/token?service=registry", b"Authorization: Basic " + basic))
    said = messages(served.log(), log_format)
    (line,) = [m for m in said if "token denied" in m]
    assert "account='x\\' granted=\\'everything' client=" in line


# ---- the audit log, as `tokenserver audit` prints it ------------------------------------------


def test_attack_audit_table_forged_by_a_resource_name(tmp_path: Path) -> None:
    """Through the API, an authenticated caller names a project that prints as a second,
    forged audit line (an admin deleting a robot) with a terminal escape."""
    with serve(tmp_path, "text") as served:
        forged = "\n2026-11-29T10:00:00.000Z\tadmin\tdelete\trobot\t5\tsuccess\x1b[2K"
        path = "/api/v2.0/projects/ghost" + "".join(
            f"%{ord(c):02X}" if not c.isalnum() else c for c in forged
        )
        auth = b64encode(f"admin:{ADMIN_PASSWORD}".encode())
        answer = served.request(
            b"DELETE " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Basic " + auth + b"\r\n\r\n"
        )  # fmt: skip
        assert answer.startswith(b"HTTP/1.1 404"), answer[:100]
        served.stop()
        table = call_cli(served.config, "audit")
        assert table.returncode == 0, table.stderr
        (line,) = table.stdout.splitlines()
        assert line.split("\t")[1:] == [
            "admin",
            "delete",
            "project",
            "ghost\\n2026-11-29T10:00:00.000Z\\tadmin\\tdelete\\trobot\\t5\\tsuccess\\x1b[2K",
            "failure: NOT_FOUND",
        ]


def test_attack_audit_table_with_rows_written_before_the_fix(tmp_path: Path) -> None:
    """Rows already in a database (written raw, unbounded) are shown escaped and cut."""
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init").returncode == 0
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        db.execute(
            "INSERT INTO audit_log (op_time, operator, operation, resource_type, resource, "
            "outcome) VALUES (1, 'anonymous', 'create', 'project', ?, 'failure: UNAUTHORIZED')",
            ("x\n1970-01-01T00:00:00.000Z\tadmin\tdelete\trobot\t5\tsuccess\x1b]0;pwned\x07"
             + "y" * 65536,),
        )  # fmt: skip
    table = call_cli(config, "audit")
    assert table.returncode == 0, table.stderr
    (line,) = table.stdout.splitlines()
    cells = line.split("\t")
    assert len(cells) == 6
    assert cells[4].startswith("x\\n1970-01-01T00:00:00.000Z\\tadmin\\tdelete\\trobot\\t5\\t")
    assert "\\x1b]0;pwned\\x07" in cells[4]
    assert cells[4].endswith(TRUNCATED)
    assert len(cells[4]) < 400
    entries = json.loads(call_cli(config, "audit", "--json").stdout)
    assert entries[0]["resource"].endswith(TRUNCATED)


def test_attack_refresh_token_table_forged_by_a_client_id(tmp_path: Path) -> None:
    """A robot names the client its refresh token is for; `robot refresh-tokens` lists it."""
    with serve(tmp_path, "text") as served:
        assert call_cli(served.config, "project", "create", "p").returncode == 0
        export = json.loads(
            call_cli(
                served.config, "robot", "create", "--project", "p", "--name", "ci",
                "--permission", "repository:pull",
            ).stdout
        )  # fmt: skip
        auth = b64encode(f"{export['name']}:{export['secret']}".encode())
        answer = served.request(
            get(
                b"/service/token?offline_token=true&client_id=docker%0A2%09fake%1B[8m",
                b"Authorization: Basic " + auth,
            )
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        served.stop()
        listing = call_cli(served.config, "robot", "refresh-tokens", "p+ci")
        assert listing.returncode == 0, listing.stderr
        (line,) = listing.stdout.splitlines()
        assert line.split("\t")[2] == "docker\\n2\\tfake\\x1b[8m"


def test_attack_oversized_cookie_puts_the_session_token_in_the_log(
    server: tuple[Served, str],
) -> None:
    """aiohttp refuses a header line past 8190 bytes and logged the line it refused: a cookie
    padded past that limit wrote the session token beside it into the server's log."""
    served, log_format = server
    token = "zoCPsecretSessionToken0e1WCJ9T8KZf1G3E4MkI8o8ja6Q"
    answer = served.request(
        get(b"/api/v2.0/users/current", b"Cookie: sid=" + token.encode() + b"; pad=" + b"a" * 9000)
    )
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:100]
    lines = served.log()
    assert not any(token in line or "aaaaaaaa" in line for line in lines)
    said = messages(lines, log_format)
    assert any("could not parse a request: LineTooLong (status 400)" in m for m in said), said


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03zoCPsecretSessionToken" + b"\x00" * 32,
        get(b"/api/v2.0/users/current", b"Cookie: sid=zoCPsecretSessionToken; p=" + b"a" * 9000),
        b"GET /he\x00zoCPsecretSessionToken HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["TLS on the plain port", "cookie past the line limit", "NUL in the request line"],
)
def test_attack_unparsable_request_answered_by_serve_in_json(
    server: tuple[Served, str], raw: bytes
) -> None:
    """`serve` answers what aiohttp cannot parse in the JSON envelope, not in aiohttp's
    text that quoted the bytes sent (a session token with them), and logs none of them."""
    served, _ = server
    answer = served.request(raw)  # returns once the server closed the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:100]
    assert b"\r\nContent-Type: application/json; charset=utf-8\r\n" in head, head
    assert json.loads(body)["errors"][0]["code"] == "BAD_REQUEST"
    assert b"zoCPsecretSessionToken" not in answer
    lines = served.log()
    assert not any("zoCPsecretSessionToken" in line for line in lines), lines
