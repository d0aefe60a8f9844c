"""Two `tokenserver serve` replicas on one PostgreSQL, the real registry, real skopeo: the
registry's realm points at one replica and then the other; one replica is killed mid-run and
the other keeps serving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import Skopeo
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.e2e.oci import write_image
from tests.helpers import free_port
from tests.postgres import PostgresServer


def point_registry_at(stack: Stack, port: int) -> None:
    """Rewrite the registry's realm to replica `port` and restart the registry."""
    config = stack.directory / "registry.yml"
    lines = [
        f'    realm: "http://127.0.0.1:{port}/service/token"' if "realm:" in line else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")
    stack.restart_registry()


@pytest.fixture
def replicas(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, int]]:
    """Replica A (started with the registry, its realm) and replica B's port."""
    stack = start_stack(
        tmp_path_factory.mktemp("replicas"), "ES256", database_url=postgres.empty_database()
    )
    port_b = free_port()
    try:
        stack.processes.append(stack.serve(port_b, f"replica-{port_b}.log"))
    except BaseException:
        stop_stack(stack)
        raise
    yield stack, port_b
    stop_stack(stack)


def test_two_replicas_serve_the_registry_and_survive_losing_one(
    replicas: tuple[Stack, int], postgres: PostgresServer
) -> None:
    stack, port_b = replicas
    replica_a = stack.processes[0]
    stack.project("rep")
    robot = stack.robot("rep", "ci", "repository:push")
    skopeo = Skopeo(stack, robot)

    # Realm on A: push.
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    write_image(layout, "through replica A")
    pushed = skopeo.push(layout, "rep/app:a")
    assert pushed.returncode == 0, pushed.stderr

    # Realm on B: pull what went through A, push more.
    point_registry_at(stack, port_b)
    pulled = skopeo.pull("rep/app:a", stack.new_dir("pulled"))
    assert pulled.returncode == 0, pulled.stderr
    write_image(layout, "through replica B")
    pushed = skopeo.push(layout, "rep/app:b")
    assert pushed.returncode == 0, pushed.stderr
    # B served tokens: its one line per token request says so.
    log_b = (stack.directory / f"replica-{port_b}.log").read_text()
    assert "token issued" in log_b and "method=GET status=200" in log_b

    # Kill A while pulls run through B: every one succeeds.
    failures: list[str] = []

    def pull_repeatedly(target: Path) -> None:
        for i in range(4):
            result = skopeo.pull("rep/app:b", target / str(i))
            if result.returncode != 0:
                failures.append(result.stderr)

    worker = threading.Thread(target=pull_repeatedly, args=(stack.new_dir("during"),))
    worker.start()
    replica_a.kill()
    replica_a.wait(timeout=10)
    worker.join(timeout=300)
    assert not worker.is_alive() and failures == []

    # B alone: a secret refreshed through its API counts at once.
    status, _, body = stack.api("PATCH", f"/robots/{robot.id}", {}, base=port_b)
    assert status == 200, body
    assert isinstance(body, dict)
    assert skopeo.login().returncode != 0  # the old secret
    robot.secret = stack.remember(body["secret"])
    assert skopeo.login().returncode == 0
    assert skopeo.pull("rep/app:a", stack.new_dir("after")).returncode == 0

    # No secret in the shared database, nor the database password in any log.
    dump = postgres.dump(stack.env["TOKENSERVER_DATABASE_URL"].rsplit("/", 1)[1])
    assert "rep" in dump and robot.name.split("+")[1] in dump
    for secret in stack.secrets:
        assert secret not in dump
    for log in stack.directory.glob("*.log"):
        assert postgres.password not in log.read_text()
