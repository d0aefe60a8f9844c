"""`server.event_loop`: uvloop by default where it imports, asyncio on request or without it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import uvloop

from tests.helpers import call_cli, clean_env, free_port
from tokenserver.errors import ConfigError
from tokenserver.eventloop import event_loop


@pytest.mark.parametrize(
    ("choice", "name", "kind"),
    [("auto", "uvloop", uvloop.Loop), ("uvloop", "uvloop", uvloop.Loop),
     ("asyncio", "asyncio", asyncio.BaseEventLoop)],
)  # fmt: skip
def test_the_loop_asked_for_is_the_loop_made(choice: str, name: str, kind: type) -> None:
    chosen = event_loop(choice)
    loop = chosen.new()
    try:
        assert chosen.name == name and isinstance(loop, kind)
        if name == "asyncio":
            assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_auto_falls_back_to_asyncio_where_uvloop_does_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    chosen = event_loop("auto")
    loop = chosen.new()
    try:
        assert chosen.name == "asyncio" and not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_uvloop_asked_for_where_it_does_not_import_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ConfigError) as raised:
        event_loop("uvloop")
    assert raised.value.key == "server.event_loop"
    assert "uvloop cannot be imported" in str(raised.value)


def test_serve_without_uvloop_when_asked_for_it_exits_2_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{free_port()}").returncode == 0
    monkeypatch.setitem(sys.modules, "uvloop", None)
    result = call_cli(config, "serve", env={"TOKENSERVER_SERVER_EVENT_LOOP": "uvloop"})
    assert result.returncode == 2
    assert "tokenserver: server.event_loop: uvloop cannot be imported" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_loop_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{free_port()}").returncode == 0
    result = call_cli(config, "serve", env={"TOKENSERVER_SERVER_EVENT_LOOP": "trio"})
    assert result.returncode == 2
    assert "server.event_loop" in result.stderr and "trio" in result.stderr


@pytest.mark.parametrize(("choice", "name"), [("", "uvloop"), ("asyncio", "asyncio")])
def test_serve_runs_on_the_chosen_loop_and_says_which(
    tmp_path: Path, choice: str, name: str
) -> None:
    """A subprocess smoke test: the default is uvloop; the start-up line names the loop, and
    the server answers a token request on it."""
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{port}").returncode == 0
    env = clean_env()
    if choice:
        env["TOKENSERVER_SERVER_EVENT_LOOP"] = choice
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.rstrip().endswith(f", event loop {name}"), line
        url = f"http://127.0.0.1:{port}/service/token?service=registry&scope=repository:p/a:pull"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "token issued grant=anonymous account='' client=127.0.0.1 " in err
