"""The lockout threshold across processes, with real parts: two `tokenserver serve` replicas on
one PostgreSQL behind Debian's nginx (round robin on loopback), and `serve --workers 2` on one
SQLite file (the kernel spreads connections over the workers). A guesser gets the threshold of
one server: before, each process counted its own failures."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, wait_for
from tests.e2e.test_proxy import NGINX, NGINX_CONF
from tests.helpers import clean_env, free_port, run_cli
from tests.postgres import PostgresServer

THRESHOLD = 4
TOKEN = "/service/token?service=registry&scope=repository:p/app:pull"
# The first lockout lasts a second: answers within it must be refusals.
FIRST_WAIT = 1.0

BALANCER = """
    upstream replicas {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_set_header Host $host;
        }}
    }}
"""


@dataclass
class Front:
    """Where clients connect (nginx, or the workers' shared port), and the robot to guess."""

    port: int
    directory: Path
    config: Path
    env: dict[str, str]

    def robot(self, name: str) -> tuple[str, str]:
        created = run_cli(
            self.config, "robot", "create", "--project", "p", "--name", name,
            "--permission", "repository:pull", env=self.env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        export = json.loads(created.stdout)
        return export["name"], export["secret"]

    def status(self, user: str, password: str) -> int:
        # A new connection each time: the balancer (or the kernel) picks a process for each.
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            connection.request("GET", TOKEN, headers={"Authorization": f"Basic {credentials}"})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status == 429:
            assert json.loads(body)["errors"][0]["code"] == "TOO_MANY_REQUESTS"
        return response.status


def start(
    command: list[str], env: dict[str, str], log: Path, processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    processes.append(process)
    return process


def serve(config: Path, env: dict[str, str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "tokenserver", "serve", "--config", str(config), *extra]


@pytest.fixture(params=["postgresql-replicas-behind-nginx", "sqlite-workers"])
def front(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Front]:
    processes: list[subprocess.Popen[bytes]] = []
    config = tmp_path / "tokenserver.toml"
    settings = {"TOKENSERVER_SECURITY_LOCKOUT_THRESHOLD": str(THRESHOLD)}
    if request.param.startswith("postgresql"):
        if NGINX is None:
            pytest.skip("nginx not installed: run scripts/test-deps, which installs it")
        postgres: PostgresServer = request.getfixturevalue("postgres")
        settings["TOKENSERVER_DATABASE_URL"] = postgres.empty_database()
    init = run_cli(config, "init", env={**settings, "TOKENSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert init.returncode == 0, init.stderr
    assert run_cli(config, "project", "create", "p", env=settings).returncode == 0
    try:
        if request.param.startswith("postgresql"):
            assert NGINX is not None
            ports = [free_port(), free_port()]
            for port in ports:
                env = clean_env(**settings, TOKENSERVER_SERVER_PORT=str(port))
                log = tmp_path / f"replica-{port}.log"
                wait_for(
                    f"http://127.0.0.1:{port}/healthz",
                    start(serve(config, env), env, log, processes),
                    log,
                )
            nginx_dir = tmp_path / "nginx"
            (nginx_dir / "tmp").mkdir(parents=True)
            port = free_port()
            (nginx_dir / "nginx.conf").write_text(
                NGINX_CONF.format(
                    user="user root;" if os.geteuid() == 0 else "",
                    dir=nginx_dir,
                    servers=BALANCER.format(
                        port=port,
                        servers="".join(f"        server 127.0.0.1:{p};\n" for p in ports),
                    ),
                )
            )
            command = [NGINX, "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")]
            log = nginx_dir / "nginx.out"
            wait_for(f"http://127.0.0.1:{port}/healthz", start(command, {}, log, processes), log)
        else:
            port = free_port()
            env = clean_env(**settings, TOKENSERVER_SERVER_PORT=str(port))
            log = tmp_path / "workers.log"
            process = start(serve(config, env, "--workers", "2"), env, log, processes)
            wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
        yield Front(port, tmp_path, config, settings)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_guesses_spread_over_processes_are_refused_past_the_threshold(front: Front) -> None:
    for attempt in range(3):
        name, secret = front.robot(f"ci{attempt}")
        assert [front.status(name, secret) for _ in range(4)] == [200] * 4  # every cache warm
        for i in range(THRESHOLD - 1):
            assert front.status(name, f"Wrong{i}Secret") == 401
        began = time.monotonic()  # the lockout begins after this, and lasts FIRST_WAIT at least
        assert front.status(name, "LastWrongSecret") == 401
        answers = []
        for i in range(6):
            status = front.status(name, f"Another{i}Wrong")
            answers.append((status, time.monotonic() - began))
        within = [status for status, elapsed in answers if elapsed < FIRST_WAIT]
        assert set(within) <= {429}, answers  # before: each process's own count, 401
        if len(within) == len(answers):
            break
        # A machine so loaded that the lockout ended before the guesses were answered: again,
        # with another robot (the address's score is far below its threshold).
    else:
        pytest.fail("the machine was too slow to see a one-second lockout three times")
    # The replicas have both refused a guess: each knows of the lockout, so the right secret,
    # which they hold in their caches, is refused too (on workers the kernel may have given
    # every refused guess to one of them; it learns within 0.5 s, as the README says).
    if front.env.get("TOKENSERVER_DATABASE_URL") and time.monotonic() - began < FIRST_WAIT:
        statuses = [front.status(name, secret) for _ in range(2)]
        if time.monotonic() - began < FIRST_WAIT:
            assert statuses == [429, 429]
