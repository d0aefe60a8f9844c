"""A real reverse proxy in front: Debian's nginx on loopback, forwarding with
`X-Forwarded-For $proxy_add_x_forwarded_for` to `tokenserver serve`.

nginx connects to tokenserver from 127.0.0.2 (`proxy_bind`), the only trusted proxy; clients
connect to nginx from 127.0.0.1 and 127.0.0.3. One server trusts nginx, another does not.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, wait_for
from tests.helpers import clean_env, free_port, run_cli

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
PROXY_ADDRESS = "127.0.0.2"  # nginx's side of its connections to tokenserver
CLIENT, OTHER_CLIENT = "127.0.0.1", "127.0.0.3"
FORGED = "6.6.6.6"

if NGINX is None:
    reason = "nginx not installed: run scripts/test-deps, which installs it"
    pytestmark = (
        pytest.mark.xfail(reason=reason, run=False, strict=True)
        if os.environ.get("CI")
        else pytest.mark.skip(reason=reason)
    )


NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
{servers}
}}
"""

NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.3:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {proxy};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"""


@dataclass
class Proxied:
    """A tokenserver behind nginx: nginx's port, and the server's log."""

    port: int
    log: Path

    def read_log_with(self, line: str) -> str:
        """The server's log once it holds `line` (or as it is after 30 s)."""
        deadline = time.monotonic() + 30
        while line not in (text := self.log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return text

    def get(
        self, path: str, headers: dict[str, str], source: str = CLIENT
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(
            "127.0.0.1" if source == CLIENT else source, self.port, timeout=60,
            source_address=(source, 0),
        )  # fmt: skip
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post_json(
        self, path: str, body: object, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(
                "POST",
                path,
                body=json.dumps(body),
                headers={"Content-Type": "application/json", **headers},
            )
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@dataclass
class ProxyStack:
    trusting: Proxied  # server.trusted_proxies = ["127.0.0.2/32"]
    untrusting: Proxied  # no trusted proxies
    robot: str
    secret: str


@pytest.fixture(scope="module")
def proxy_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyStack]:
    assert NGINX is not None
    directory = tmp_path_factory.mktemp("proxy")
    config = directory / "tokenserver.toml"
    init = run_cli(config, "init", env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert init.returncode == 0, init.stderr
    assert run_cli(config, "project", "create", "p").returncode == 0
    created = run_cli(
        config, "robot", "create", "--project", "p", "--name", "ci",
        "--permission", "repository:pull",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    export = json.loads(created.stdout)

    processes: list[subprocess.Popen[bytes]] = []
    try:
        servers = {}
        for name, trusted in (("trusting", f"{PROXY_ADDRESS}/32"), ("untrusting", "")):
            port = free_port()
            log = directory / f"{name}.log"
            env = clean_env(
                TOKENSERVER_SERVER_PORT=str(port),
                TOKENSERVER_SERVER_TRUSTED_PROXIES=trusted,
                TOKENSERVER_SECURITY_LOCKOUT_THRESHOLD="3",
            )
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
            wait_for(f"http://127.0.0.1:{port}/healthz", processes[-1], log)
            servers[name] = (port, log)

        nginx_dir = directory / "nginx"
        (nginx_dir / "tmp").mkdir(parents=True)
        fronts = {name: free_port() for name in servers}
        (nginx_dir / "nginx.conf").write_text(
            NGINX_CONF.format(
                # As root, nginx's workers would run as nobody, which cannot use these
                # directories; as another user the directive does not apply.
                user="user root;" if os.geteuid() == 0 else "",
                dir=nginx_dir,
                servers="".join(
                    NGINX_SERVER.format(port=fronts[name], upstream=upstream, proxy=PROXY_ADDRESS)
                    for name, (upstream, _) in servers.items()
                ),
            )
        )
        nginx_log = nginx_dir / "nginx.out"
        with nginx_log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        NGINX,
                        "-p",
                        str(nginx_dir),
                        "-c",
                        str(nginx_dir / "nginx.conf"),
                        "-e",
                        str(nginx_dir / "error.log"),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        for name in servers:
            wait_for(f"http://127.0.0.1:{fronts[name]}/healthz", processes[-1], nginx_log)
        yield ProxyStack(
            Proxied(fronts["trusting"], servers["trusting"][1]),
            Proxied(fronts["untrusting"], servers["untrusting"][1]),
            export["name"],
            export["secret"],
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


TOKEN = "/service/token?service=registry&scope=repository:p/app:pull"


def test_attack_forged_x_forwarded_for_through_nginx_does_not_change_the_lockout_key(
    proxy_stack: ProxyStack,
) -> None:
    server, robot = proxy_stack.trusting, proxy_stack.robot
    # The client at 127.0.0.1 claims another address on every failure; nginx appends the
    # real one ("6.6.6.1, 127.0.0.1").
    for i in range(3):
        status, _, _ = server.get(
            TOKEN, {**basic(robot, f"Wrong{i}Secret"), "X-Forwarded-For": f"{FORGED[:-1]}{i}"}
        )
        assert status == 401
    status, headers, body = server.get(
        TOKEN, {**basic(robot, proxy_stack.secret), "X-Forwarded-For": "192.0.2.1"}
    )
    assert status == 429, body
    assert json.loads(body)["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    assert int(headers["Retry-After"]) >= 1
    # Another client of the same nginx is not locked out: the key is the client, not nginx.
    status, _, body = server.get(TOKEN, basic(robot, proxy_stack.secret), source=OTHER_CLIENT)
    assert status == 200, body
    assert json.loads(body)["token"]

    # The line is written once the answer is ready: wait for the last one.
    log = server.read_log_with(f"client={OTHER_CLIENT} scopes='repository:p/app:pull' granted=")
    assert statuses(log, CLIENT) == {401, 429}
    assert statuses(log, OTHER_CLIENT) == {200}
    assert "GET /service/token" not in log  # one line per token request, the token log's
    assert FORGED[:-1] not in log and "192.0.2.1" not in log
    assert f"client={PROXY_ADDRESS}" not in log


def statuses(log: str, client: str) -> set[int]:
    """The statuses of the token lines of `client` asking for the test's scope."""
    return {
        int(match)
        for line in log.splitlines()
        if f" client={client} scopes='repository:p/app:pull' " in line
        for match in re.findall(r" status=(\d+) ", line)
    }


def test_attack_forged_x_forwarded_for_ignored_without_trusted_proxies(
    proxy_stack: ProxyStack,
) -> None:
    server, robot = proxy_stack.untrusting, proxy_stack.robot
    for i in range(3):
        status, _, _ = server.get(
            TOKEN, {**basic(robot, f"Wrong{i}Secret"), "X-Forwarded-For": f"{FORGED[:-1]}{i}"}
        )
        assert status == 401
    # Every request comes from nginx's address, whatever the headers say: as before this
    # setting existed, the proxy's clients share one lockout key.
    status, _, _ = server.get(
        TOKEN, {**basic(robot, proxy_stack.secret), "X-Forwarded-For": "192.0.2.1"}
    )
    assert status == 429
    status, _, _ = server.get(TOKEN, basic(robot, proxy_stack.secret), source=OTHER_CLIENT)
    assert status == 429
    log = server.read_log_with(" status=429 ")
    assert statuses(log, PROXY_ADDRESS) == {401, 429}
    assert FORGED[:-1] not in log and "192.0.2.1" not in log
    assert f"client={CLIENT}" not in log


def test_a_forged_forwarded_proto_is_overwritten_by_nginx(proxy_stack: ProxyStack) -> None:
    # nginx sets X-Forwarded-Proto to the scheme the client used (http here), so the
    # client's own "https" does not reach tokenserver; the cookie is not Secure.
    status, headers, body = proxy_stack.trusting.post_json(
        "/c/login",
        {"principal": "admin", "password": ADMIN_PASSWORD},
        {"X-Forwarded-Proto": "https"},
    )
    assert status == 200, body
    attributes = [a.strip().lower() for a in headers["Set-Cookie"].split(";")]
    assert "httponly" in attributes and "secure" not in attributes
