"""The server's log handler and formatters: the lines of one turn of the event loop go out in
one write at its end, in order, none lost; the time is written as logging's own formatter
writes it, worked out once per second."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tokenserver.http.observability import (
    TEXT_FORMAT,
    JsonFormatter,
    TextFormatter,
    TurnHandler,
)


class Stream(io.StringIO):
    """Counts the writes (each a system call on a real stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(32, "Broken pipe")


@pytest.fixture
def stream() -> Stream:
    return Stream()


def _logger(stream: io.StringIO) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"test.turn.{id(stream)}")
    handler = TurnHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)


@pytest.fixture
def log(stream: Stream) -> Iterator[logging.Logger]:
    yield from _logger(stream)


async def test_the_lines_of_one_turn_are_written_together_at_its_end(
    log: logging.Logger, stream: Stream
) -> None:
    for i in range(10):
        log.info("line %d", i)
    assert stream.getvalue() == ""  # held until the turn ends
    await asyncio.sleep(0)
    assert stream.getvalue() == "".join(f"line {i}\n" for i in range(10))
    assert stream.writes == 1
    log.info("next turn")
    await asyncio.sleep(0)
    assert stream.getvalue().endswith("line 9\nnext turn\n") and stream.writes == 2


async def test_a_line_from_another_thread_is_written_at_once_after_those_held(
    log: logging.Logger, stream: Stream
) -> None:
    log.info("from the loop")
    thread = threading.Thread(target=log.info, args=("from a thread",))
    thread.start()
    thread.join()  # the loop is blocked meanwhile: its turn has not ended
    assert stream.getvalue() == "from the loop\nfrom a thread\n"
    await asyncio.sleep(0)
    assert stream.getvalue() == "from the loop\nfrom a thread\n"


def test_with_no_loop_running_a_line_is_written_at_once(
    log: logging.Logger, stream: Stream
) -> None:
    log.info("at once")
    assert stream.getvalue() == "at once\n"


async def test_flush_writes_what_is_held(log: logging.Logger, stream: Stream) -> None:
    """logging.shutdown (at exit) flushes every handler: nothing held is lost."""
    log.info("held")
    for handler in log.handlers:
        handler.flush()
    assert stream.getvalue() == "held\n"


async def test_attack_a_broken_stream_raises_nothing_into_the_loop() -> None:
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    for log in _logger(Broken()):
        log.info("nowhere to go")
        await asyncio.sleep(0)
        log.info("still nowhere")
        await asyncio.sleep(0)
    assert errors == []


@pytest.mark.parametrize("created", [0.0, 1.999, 1_796_000_000.5, 1_796_000_001.0005])
def test_the_text_time_is_what_logging_writes(created: float) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    cached = TextFormatter()
    cached.format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    )  # another second
    assert cached.format(record) == logging.Formatter(TEXT_FORMAT).format(record)


def _raised() -> logging.LogRecord:
    try:
        raise ValueError("boom")
    except ValueError:
        return logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("it",), sys.exc_info()
        )


@pytest.mark.parametrize(
    "record",
    [
        logging.LogRecord(
            "tokenserver.token", logging.INFO, __file__, 1, "a %s b %d", ("x", 3), None
        ),
        logging.LogRecord("aiohttp.access", logging.WARNING, __file__, 1, "plain", None, None),
        logging.LogRecord("x", logging.INFO, __file__, 1, "ctl \x1b[31m %s", ("\n",), None),
        _raised(),
        logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None, sinfo="Stack:\n  here"),
    ],
    ids=["args", "no-args", "control-characters", "traceback", "stack"],
)
def test_the_text_line_is_what_logging_writes(record: logging.LogRecord) -> None:
    """The text formatter's quick way writes, field for field, what logging's own formatter
    writes with the same format (but for control characters, which it escapes)."""
    expected = logging.Formatter(TEXT_FORMAT).format(logging.makeLogRecord(record.__dict__))
    line = TextFormatter().format(record)
    if record.name == "x" and record.args == ("\n",):
        assert line == expected.replace("\x1b", "\\x1b").replace("\n", "\\n")
    else:
        assert line == expected


def test_the_json_time_follows_the_seconds() -> None:
    formatter = JsonFormatter()
    for created in (1_796_000_000.2, 1_796_000_000.9, 1_796_000_001.1):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.created = created
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(created))
        assert json.loads(formatter.format(record))["time"] == expected
