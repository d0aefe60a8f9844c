"""What `tokenserver serve` answers to bytes aiohttp cannot parse as a request: the JSON
envelope with aiohttp's status, the connection closed, nothing of what was sent repeated.

The server here is built as `serve` builds it (`make_runner`), on a real socket: aiohttp
answers these before any middleware runs, so a test client's server would not show them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.conftest import with_migrated_database
from tokenserver.config import Settings
from tokenserver.http.app import create_app
from tokenserver.http.openapi import document
from tokenserver.http.runner import make_runner

SECRET = b"zoCPsecretSessionToken0e1WCJ9T8KZf"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


async def exchange(port: int, *parts: bytes) -> Answer:
    """Send `parts` (each written and drained in turn) and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        # NOTE: a safety net, not a timed assertion: a server that kept the connection open
        # would hang the test instead of failing it.
        raw = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    status = re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", status_line)
    assert status is not None, raw[:200]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status.group(1)), headers, body, raw)


@pytest.fixture
async def port(settings: Settings) -> AsyncIterator[int]:
    runner = make_runner(create_app(with_migrated_database(settings)))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield site.port
    finally:
        await runner.cleanup()


def head(*lines: bytes) -> bytes:
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


# What a client may send that is not HTTP/1.1 aiohttp can read, and a part of it that must
# not come back.
UNPARSABLE = {
    "TLS client hello on the plain port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET + b"\x00" * 32,
        SECRET,
    ),
    "NUL in the request line": (head(b"GET /he\x00" + SECRET + b" HTTP/1.1", b"Host: x"), SECRET),
    "header line too long, with a session cookie": (
        head(b"GET /healthz HTTP/1.1", b"Host: x", b"Cookie: session=" + SECRET + b"a" * 9000),
        SECRET,
    ),
    "request line too long": (head(b"GET /" + SECRET + b"b" * 9000 + b" HTTP/1.1"), SECRET),
    "header name with a space": (
        head(b"GET /healthz HTTP/1.1", b"Host: x", b"Bad " + SECRET + b": y"),
        SECRET,
    ),
    "too many headers": (
        head(b"GET /healthz HTTP/1.1", *(b"X-%d: " % i + SECRET for i in range(200))),
        SECRET,
    ),
    "method with a control character": (head(b"G\x01T /" + SECRET + b" HTTP/1.1"), SECRET),
    "no target or version": (head(SECRET), SECRET),
    "chunk size not hexadecimal": (
        head(b"POST /service/token HTTP/1.1", b"Host: x", b"Transfer-Encoding: chunked")
        + SECRET
        + b"\r\nxx\r\n0\r\n\r\n",
        SECRET,
    ),
    "two Content-Lengths": (
        head(b"POST /service/token HTTP/1.1", b"Content-Length: 1", b"Content-Length: 2") + SECRET,
        SECRET,
    ),
}


def assert_json_error(answer: Answer, status: int, sent: bytes) -> dict[str, str]:
    assert answer.status == status, answer.raw[:300]
    assert answer.headers["content-type"] == "application/json; charset=utf-8", answer.headers
    document = json.loads(answer.body)
    (error,) = document["errors"]
    assert set(error) == {"code", "message"}
    assert sent not in answer.raw
    assert sent.decode("latin-1") not in error["message"]
    return dict(error)


@pytest.mark.parametrize("raw,sent", UNPARSABLE.values(), ids=UNPARSABLE.keys())
async def test_unparsable_request_answered_in_json(port: int, raw: bytes, sent: bytes) -> None:
    """aiohttp answered these in text/plain, quoting the offending bytes back."""
    answer = await exchange(port, raw)  # returns once the server closed the connection
    error = assert_json_error(answer, 400, sent)
    assert error["code"] == "BAD_REQUEST"
    assert error["message"].startswith("the request is not valid HTTP/1.1: ")


async def test_tls_on_the_plain_port_is_named(port: int) -> None:
    answer = await exchange(port, UNPARSABLE["TLS client hello on the plain port"][0])
    error = assert_json_error(answer, 400, SECRET)
    assert "TLS sent to a plain-HTTP port" in error["message"]


async def test_line_too_long_is_named(port: int) -> None:
    answer = await exchange(port, UNPARSABLE["header line too long, with a session cookie"][0])
    error = assert_json_error(answer, 400, SECRET)
    assert error["message"].endswith("a line of its head is too long")


async def test_attack_unparsable_request_after_a_good_one_on_the_same_connection(
    port: int,
) -> None:
    """The connection's first request is answered as usual; the garbage after it in JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head(b"GET /healthz HTTP/1.1", b"Host: x"))
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 "), first
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", first)
        assert length is not None, first
        await reader.readexactly(int(length.group(1)))
        writer.write(b"\x16\x03\x01" + SECRET + b"\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 60)  # a safety net, as in `exchange`
    finally:
        writer.close()
    assert re.match(rb"HTTP/1\.[01] 400 ", raw), raw[:300]
    assert SECRET not in raw
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["errors"][0]["code"] == "BAD_REQUEST"


async def test_a_good_request_is_served_as_before(port: int) -> None:
    answer = await exchange(port, head(b"GET /healthz HTTP/1.1", b"Host: x", b"Connection: close"))
    assert answer.status == 200, answer.raw[:300]


def test_every_operation_documents_the_400_of_an_unparsable_request() -> None:
    """Any operation's request can be cut or garbled on the way: each may be answered 400."""
    missing = [
        f"{method.upper()} {path}"
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
        and "400" not in operation["responses"]
    ]
    assert not missing, missing
