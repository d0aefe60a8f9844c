"""schemathesis against the served OpenAPI document, on a real server (on SQLite and on
PostgreSQL): with a fixed example budget, no 5xx, and every response (status, content type,
headers, body) matches the document. Generated bodies also carry input no database can hold
(lone surrogates, integers past 64 bits) at any depth."""

from __future__ import annotations

import subprocess
import sys
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.e2e.conftest import wait_for
from tests.helpers import clean_env, free_port, run_cli
from tests.hostile import with_hostile_value
from tests.postgres import PostgresServer
from tokenserver.http.openapi import document

ADMIN = "Sch3maAdminPassword"
AUTH = {"Authorization": "Basic " + b64encode(f"admin:{ADMIN}".encode()).decode()}
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(document())


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Also the body with a lone surrogate or an integer past 64 bits in one place: the
    documented 400, never a 500."""
    if not isinstance(body, dict) or not body:
        return st.just(body)
    return st.one_of(st.just(body), with_hostile_value(body))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    config = directory / "tokenserver.toml"
    port = free_port()
    database: dict[str, str] = {}
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        database["TOKENSERVER_DATABASE_URL"] = postgres.empty_database()
    init = run_cli(
        config,
        "init",
        "--listen",
        f"127.0.0.1:{port}",
        env={"TOKENSERVER_ADMIN_PASSWORD": ADMIN, **database},
    )
    assert init.returncode == 0, init.stderr
    assert run_cli(config, "project", "create", "p", env=database).returncode == 0
    log = directory / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tokenserver", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Generated requests may look like guessing: keep the throttle out of the way.
            env=clean_env(TOKENSERVER_SECURITY_LOCKOUT_THRESHOLD="1000000",
                          TOKENSERVER_SECURITY_LOCKOUT_ADDRESS_THRESHOLD="1000000", **database),
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz", server, log)
        yield f"{base}/api/v2.0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: Any, live: str) -> None:
    case.call_and_validate(base_url=live, headers=AUTH, checks=CHECKS)
