"""`tokenserver serve`: HTTPS, and plain HTTP only where it is safe or explicitly allowed.

The server runs as users run it, in a process of its own; init runs in-process (`call_cli`),
as a process of its own in tests/cli/test_cli.py."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import call_cli, clean_env, free_port, run_cli
from tokenserver.config import env_name


def tls_pair(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class Stderr:
    """Every line a server process writes to stderr, read as it comes on a thread of its own."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def until_serving(self, count: int = 1) -> None:
        """Until the `count`-th "serving on", which a server logs once it listens
        (test_serving_is_logged_once_listening): waiting for that line instead of polling
        the port. Fails if the process ends first, or after 30 s."""

        def served() -> bool:
            return self._ended or sum("serving on" in line for line in self._lines) >= count

        with self._changed:
            assert self._changed.wait_for(served, timeout=30) and not self._ended, (
                "it did not serve:\n" + "".join(self._lines)
            )

    def text(self) -> str:
        """All it wrote, once it has ended."""
        self._reader.join(timeout=20)
        assert not self._reader.is_alive()
        return "".join(self._lines)


def test_serves_https_with_the_configured_pair(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{port}").returncode == 0
    tls_pair(tmp_path)
    env = clean_env(
        TOKENSERVER_SERVER_TLS_CERTIFICATE="tls.crt", TOKENSERVER_SERVER_TLS_KEY="tls.key"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        Stderr(process).until_serving()
        context = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=context, timeout=10
        ) as response:
            assert response.status == 200
        realm = call_cli(
            config,
            "registry-config",
            env={
                "TOKENSERVER_SERVER_TLS_CERTIFICATE": "tls.crt",
                "TOKENSERVER_SERVER_TLS_KEY": "tls.key",
            },
        ).stdout
        assert f'realm: "https://127.0.0.1:{port}/service/token"' in realm
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_plain_http_off_loopback_needs_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"0.0.0.0:{port}").returncode == 0
    refused = run_cli(config, "serve")
    assert refused.returncode == 2
    assert "server.allow_plain_http" in refused.stderr
    assert "Traceback" not in refused.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
        env=clean_env(TOKENSERVER_SERVER_ALLOW_PLAIN_HTTP="true"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = Stderr(process)
    try:
        stderr.until_serving()  # past every start-up check
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
    err = stderr.text()
    assert "WARNING" in err
    assert "plain HTTP on non-loopback address 0.0.0.0" in err


def test_half_a_tls_pair_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init").returncode == 0
    # In-process, as the other TLS refusals (test_plain_http_off_loopback_needs_the_setting
    # refuses in a process of its own).
    result = call_cli(config, "serve", env={"TOKENSERVER_SERVER_TLS_CERTIFICATE": "x.crt"})
    assert result.returncode == 2
    assert "server.tls_key" in result.stderr


def test_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    import json
    import signal

    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{port}").returncode == 0
    assert call_cli(config, "project", "create", "pub", "--public").returncode == 0
    parent = subprocess.Popen(
        [sys.executable, "-m", "tokenserver", "serve", "--workers", "2", "--config", str(config)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = Stderr(parent)
    try:
        stderr.until_serving(count=2)  # both workers (their stderr is the parent's)
        url = f"http://127.0.0.1:{port}/service/token?scope=repository:pub/app:pull"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read())["token"]
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert len(children) == 2
        for _ in range(20):
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=20)
    err = stderr.text()
    assert parent.returncode == 0, err
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_a_busy_port_is_named_and_exits_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """It used to log "serving on ..." and then die with a 23-line traceback, exit 1."""
    caplog.set_level(logging.INFO)
    config = tmp_path / "tokenserver.toml"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert call_cli(config, "init", "--listen", f"127.0.0.1:{port}").returncode == 0
        result = call_cli(config, "serve")
    assert result.returncode == 2
    assert (
        f"tokenserver: server.port: cannot listen on 127.0.0.1:{port}: the address is in use"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not [r for r in caplog.records if "serving on" in r.getMessage()]


def test_an_address_not_of_this_host_names_the_host(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"192.0.2.1:{port}").returncode == 0
    env = {"TOKENSERVER_SERVER_ALLOW_PLAIN_HTTP": "true"}
    result = call_cli(config, "serve", env=env)
    assert result.returncode == 2
    assert f"tokenserver: server.host: cannot listen on 192.0.2.1:{port}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_serving_is_logged_once_listening(tmp_path: Path) -> None:
    """When "serving on" is logged, a connection is accepted at once (no retry loop)."""
    config = tmp_path / "tokenserver.toml"
    port = free_port()
    assert call_cli(config, "init", "--listen", f"127.0.0.1:{port}").returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"serving on 127.0.0.1:{port}, realm http://127.0.0.1:{port}/service/token" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "serving on" not in err  # once
    assert err.rstrip().endswith("INFO tokenserver stopped"), err  # a stop is logged too


def test_a_missing_tls_file_is_named_with_its_key_and_path(tmp_path: Path) -> None:
    """It used to say "cannot load the TLS pair: [Errno 2] No such file or directory"."""
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init").returncode == 0
    tls_pair(tmp_path)
    for key, env in (
        ("server.tls_key", {"TOKENSERVER_SERVER_TLS_CERTIFICATE": "tls.crt"}),
        ("server.tls_certificate", {"TOKENSERVER_SERVER_TLS_KEY": "tls.key"}),
    ):
        variable = env_name(*key.split("."))
        missing = {**env, variable: "missing.pem"}
        result = call_cli(config, "serve", env=missing)
        assert result.returncode == 2
        assert (
            f"tokenserver: {key}: cannot read {tmp_path / 'missing.pem'}: No such file"
            in result.stderr
        )


def test_a_tls_pair_that_does_not_load_names_both_files(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    assert call_cli(config, "init").returncode == 0
    tls_pair(tmp_path)
    env = {
        "TOKENSERVER_SERVER_TLS_CERTIFICATE": "tls.crt",
        "TOKENSERVER_SERVER_TLS_KEY": "keys/token.key",  # another key: not the pair
    }
    result = call_cli(config, "serve", env=env)
    assert result.returncode == 2
    assert (
        f"cannot load the TLS pair {tmp_path / 'tls.crt'} and {tmp_path / 'keys' / 'token.key'}"
        in result.stderr
    )
