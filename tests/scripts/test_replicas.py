"""scripts/replicas' own rules, in this process: what it refuses before starting anything, and
that it never signals a process it did not start. (tests/e2e/test_replicas_script.py runs it.)"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def replicas() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replicas_script", ROOT / "scripts/replicas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = replicas.main(list(argv))
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    return code, out, err


def test_a_command_is_required(replicas: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(replicas, capsys)
    assert code == 2
    assert "a command is required: up, down or status" in err


@pytest.mark.parametrize("port", ["0", "80", "1023", "65532", "99999", "abc", "-1", "8090x", "²"])
def test_up_refuses_a_base_port_out_of_range(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path, port: str
) -> None:
    code, out, err = run(replicas, capsys, "up", "--dir", str(tmp_path / "r"), "--base-port", port)
    assert code == 2, err
    assert err.startswith(f"scripts/replicas: --base-port {port!r}: must be a number from 1024 ")
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("bad", ['"', "$", "`", "\\", "\n", "\t", "\x00", "\x7f"])
def test_up_refuses_a_directory_its_generated_files_cannot_hold(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: str
) -> None:
    directory = str(tmp_path / f"a{bad}b")
    code, _, err = run(replicas, capsys, "up", "--dir", directory)
    assert code == 2
    assert err.startswith("scripts/replicas: --dir ") and "choose another directory" in err
    assert len(err.splitlines()) == 1  # a newline in the path is shown escaped
    assert not Path(directory).exists()


def test_up_refuses_a_file_as_its_directory(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = run(replicas, capsys, "up", "--dir", str(tmp_path / "file"))
    assert code == 2
    assert err == f"scripts/replicas: --dir {tmp_path / 'file'}: exists and is not a directory\n"


def test_a_directory_keeps_the_ports_it_was_set_up_with(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"base_port": 18090}))
    code, _, err = run(replicas, capsys, "up", "--dir", str(tmp_path), "--base-port", "18100")
    assert code == 2
    assert f"--base-port 18100: {tmp_path} was set up with --base-port 18090" in err
    # The same port, or none, is the directory's: `status` shows them without being told.
    code, out, _ = run(replicas, capsys, "status", "--dir", str(tmp_path))
    assert code == 3  # nothing runs
    assert "http://127.0.0.1:18090 " in out and "127.0.0.1:18094 " in out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_a_damaged_state_file_is_named(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    (tmp_path / "state.json").write_text(content)
    code, _, err = run(replicas, capsys, "down", "--dir", str(tmp_path))
    assert code == 2
    assert err.startswith(f"scripts/replicas: {tmp_path / 'state.json'}: ")
    assert err.endswith("remove the directory to start afresh\n")


def test_down_and_status_where_nothing_was_set_up(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(replicas, capsys, "down", "--dir", str(tmp_path / "none"))
    assert (code, out) == (0, f"scripts/replicas: nothing set up in {tmp_path / 'none'}\n")
    code, out, _ = run(replicas, capsys, "status", "--dir", str(tmp_path / "none"))
    assert (code, out) == (3, f"scripts/replicas: nothing set up in {tmp_path / 'none'}\n")
    assert not (tmp_path / "none").exists()


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process this script did not start."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


def test_down_never_signals_a_process_it_did_not_start(
    replicas: ModuleType,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    bystander: subprocess.Popen[bytes],
) -> None:
    # Stale pid files (a reboot, a reused pid) point at other programs, or hold garbage.
    (tmp_path / "state.json").write_text(json.dumps({"base_port": 18090}))
    (tmp_path / "run").mkdir()
    (tmp_path / "nginx").mkdir()
    (tmp_path / "run" / "replica-1.pid").write_text(f"{bystander.pid}\n")
    (tmp_path / "run" / "replica-2.pid").write_text("-1\n")
    (tmp_path / "run" / "registry.pid").write_text("not a pid")
    (tmp_path / "nginx" / "nginx.pid").write_text(f"{bystander.pid}")
    code, out, _ = run(replicas, capsys, "down", "--dir", str(tmp_path))
    assert code == 0
    assert bystander.poll() is None  # still running
    assert out.count("not running") == 5
    assert not (tmp_path / "run" / "replica-1.pid").exists()


def test_up_names_a_port_another_program_holds_and_remembers_nothing(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", free_port()))
        other.listen()
        port = other.getsockname()[1]
        # The balancer's port is the base; a base whose next ports overflow cannot be tried.
        if port > 65531:
            pytest.skip("the free port is too high to be a base")
        code, _, err = run(replicas, capsys, "up", "--dir", str(tmp_path), "--base-port", str(port))
    assert code == 2
    assert "is in use by another program: stop it, or choose another --base-port" in err
    assert not (tmp_path / "state.json").exists()  # free to choose another base port


def test_one_command_at_a_time_per_directory(
    replicas: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"base_port": 18090}))
    with (tmp_path / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running `up` holds it
        for command in ("up", "down", "status"):
            code, out, err = run(replicas, capsys, command, "--dir", str(tmp_path))
            assert (code, out) == (1, "")
            assert err == (
                f"scripts/replicas: another scripts/replicas command is running on {tmp_path}; "
                "try again when it is done\n"
            )
    code, _, _ = run(replicas, capsys, "down", "--dir", str(tmp_path))
    assert code == 0
