"""What only the PostgreSQL adapter has: its migrations, its connection errors, an outage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, basic
from tests.postgres import PostgresServer
from tokenserver.domain.federation import Condition, Identity
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.services.ports import AuditScope, NewIssuer, NewRule, RobotChanges, UserChange
from tokenserver.storage.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore, safe_url
from tokenserver.storage.sql import StorageError

DATA = Path(__file__).resolve().parents[1] / "data"


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def first_released(postgres: PostgresServer, rows: str) -> str:
    """A new database at the first released schema (version 1, as its migration table
    recorded it), holding `rows` (SQL, the test's own): its URL."""
    url = postgres.empty_database()
    name = database_name(url)
    postgres.sql((DATA / "pg-schema-v1.sql").read_text(), name)
    version_1 = (
        "CREATE TABLE tokenserver_schema (version INTEGER PRIMARY KEY, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); "
        "INSERT INTO tokenserver_schema (version) VALUES (1); "
    )
    postgres.sql(version_1 + rows, name)
    return url


async def test_a_database_of_the_first_released_schema_is_upgraded(
    postgres: PostgresServer,
) -> None:
    url = first_released(
        postgres,
        "INSERT INTO users (username, password_hash, creation_time, update_time) "
        "VALUES ('old', 'h', 1, 1); "
        "INSERT INTO project (name, public, creation_time, update_time) VALUES ('old', true, 1, 1)",
    )
    store = await PostgresStore.open(url)
    try:
        project = await store.find_project("old")
        assert project is not None and project.public
        user = await store.find_user("old")
        assert user is not None
        await store.add_session("h" * 64, user.id, 10, 20)  # a table of version 2
        assert (await store.find_session("h" * 64, 15)) is not None
        # Version 4: a project keeps metadata (none yet); a user can be deleted.
        assert await store.project_metadata([project.id]) == {project.id: {}}
        assert await store.update_project(project.id, None, 2, {"auto_scan": "true"})
        assert await store.project_metadata([project.id]) == {project.id: {"auto_scan": "true"}}
        assert await store.delete_user(user.id) is UserChange.DONE
    finally:
        await store.close()
    versions = postgres.sql(
        "SELECT version FROM tokenserver_schema ORDER BY version", database_name(url)
    )
    assert versions.split() == [str(v) for v in range(1, SCHEMA_VERSION + 1)]


async def test_attack_legacy_refresh_tokens_from_before_the_upgrade_are_dropped(
    postgres: PostgresServer,
) -> None:
    # As on SQLite (tests/services/test_robots.py): a legacy robot's token from before schema
    # 3 is dropped; an ordinary one stays, its idle time counted from the upgrade.
    url = first_released(
        postgres,
        "INSERT INTO project (id, name, public, creation_time, update_time) "
        "VALUES (1, 'lib', false, 1, 1); "
        "INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at, "
        "creation_time, update_time, permissions, legacy_id, legacy_project_id) VALUES "
        "(1, 'ci', 1, 'project', 'h', -1, -1, 1, 1, '[]', NULL, NULL), "
        "(2, 'old', 1, 'project', 'legacy', -1, -1, 1, 1, '[]', 23, 7); "
        "INSERT INTO refresh_token (robot_id, token_hash, client_id, created_at) "
        "VALUES (1, 'plain', 'docker', 1), (2, 'legacy', 'docker', 1)",
    )
    before = int(time.time())
    store = await PostgresStore.open(url)
    try:
        assert await store.find_refresh_token("legacy") is None
        kept = await store.find_refresh_token("plain")
        assert kept is not None and kept.created_at == 1
        assert kept.last_used_at >= before
        assert kept.legacy_access is None and kept.expires_at is None
    finally:
        await store.close()


async def test_audit_entries_from_before_schema_5_belong_to_no_project(
    postgres: PostgresServer,
) -> None:
    # As on SQLite (tests/services/test_robots.py).
    url = first_released(
        postgres,
        "INSERT INTO project (id, name, public, creation_time, update_time) "
        "VALUES (1, 'lib', false, 1, 1); "
        "INSERT INTO audit_log (op_time, operator, operation, resource_type, resource, outcome) "
        "VALUES (1, 'admin', 'create', 'project', 'lib', 'success')",
    )
    store = await PostgresStore.open(url)
    try:
        entries, total = await store.list_audit(0, 10)
        assert total == 1 and (entries[0].resource, entries[0].project_id) == ("lib", None)
        assert await store.list_audit(0, 10, scope=AuditScope(project_id=1)) == ([], 0)
    finally:
        await store.close()


def at_version(postgres: PostgresServer, version: int, rows: str) -> str:
    """A new database at schema `version`, made by the released migrations up to it, holding
    `rows`: its URL."""
    url = postgres.empty_database()
    name = database_name(url)
    steps = "".join(
        f"{MIGRATIONS[v]}; INSERT INTO tokenserver_schema (version) VALUES ({v});"  # noqa: S608
        for v in range(1, version + 1)
    )
    postgres.sql(
        "CREATE TABLE tokenserver_schema (version INTEGER PRIMARY KEY, "
        f"applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); {steps} {rows}",
        name,
    )
    return url


async def test_a_database_of_schema_5_gets_robot_federation(postgres: PostgresServer) -> None:
    # As on SQLite (tests/services/test_robots.py).
    url = at_version(
        postgres,
        5,
        "INSERT INTO project (id, name, public, creation_time, update_time) "
        "VALUES (1, 'lib', false, 1, 1); "
        "INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at, "
        "creation_time, update_time, permissions) "
        "VALUES (1, 'ci', 1, 'project', 'h', -1, -1, 1, 1, '[]'); "
        "INSERT INTO refresh_token (robot_id, token_hash, client_id, created_at, last_used_at) "
        "VALUES (1, 'plain', 'docker', 1, 1)",
    )
    store = await PostgresStore.open(url)
    try:
        robot = await store.find_robot_by_id(1)
        assert robot is not None and robot.name == "ci" and robot.secret_login
        token = await store.find_refresh_token("plain")
        assert token is not None and not token.federated
        issuer = await store.add_issuer(
            NewIssuer("github", "https://token.actions.githubusercontent.com", ("a",), None,
                      None, 600, 1)
        )  # fmt: skip
        rule = await store.add_federation_rule(
            1, NewRule(issuer.id, (Condition("repository_id", ("7",)),)), 2, 20
        )
        assert await store.list_federation_rules(1) == [rule]
        assert await store.set_secret_login(1, False, 3)
        assert await store.find_refresh_token("plain") is None
        await store.add_federation_failure(1, 4, "github", "sub", "no rule matched")
        assert len(await store.list_federation_failures(1)) == 1
        assert await store.use_jti(issuer.url, "j", 10, 4)
        who = Identity("github", issuer.url, "sub", "a", rule.id, 10)
        assert await store.add_temporary_secret("t", 1, who, 4, 10, keep=20)
        assert await store.find_temporary_secret("t") is not None
    finally:
        await store.close()
    versions = postgres.sql(
        "SELECT version FROM tokenserver_schema ORDER BY version", database_name(url)
    )
    assert versions.split() == [str(v) for v in range(1, SCHEMA_VERSION + 1)]


async def test_a_database_of_schema_6_gets_token_lifetimes(postgres: PostgresServer) -> None:
    # As on SQLite (tests/services/test_robots.py).
    url = at_version(
        postgres,
        6,
        "INSERT INTO project (id, name, public, creation_time, update_time) "
        "VALUES (1, 'lib', false, 1, 1); "
        "INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at, "
        "creation_time, update_time, permissions, secret_login) "
        "VALUES (1, 'ci', 1, 'project', 'h', -1, -1, 1, 1, '[]', false)",
    )
    store = await PostgresStore.open(url)
    try:
        robot = await store.find_robot_by_id(1)
        assert robot is not None and (robot.name, robot.project_name) == ("ci", "lib")
        assert robot.token_lifetime is None and not robot.secret_login
        assert await store.longest_token_lifetime() is None
        assert await store.update_robot(1, 5, RobotChanges(token_lifetime=3600))
        robot = await store.find_robot_by_id(1)
        assert robot is not None and robot.token_lifetime == 3600
    finally:
        await store.close()
    versions = postgres.sql(
        "SELECT version FROM tokenserver_schema ORDER BY version", database_name(url)
    )
    assert versions.split() == [str(v) for v in range(1, SCHEMA_VERSION + 1)]


async def test_replicas_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.empty_database()
    stores = await asyncio.gather(*(PostgresStore.open(url) for _ in range(4)))
    for store in stores:
        await store.close()
    count = postgres.sql("SELECT count(*) FROM tokenserver_schema", database_name(url))
    assert int(count) == SCHEMA_VERSION


async def test_a_newer_database_is_refused(postgres: PostgresServer) -> None:
    url = postgres.empty_database()
    await (await PostgresStore.open(url)).close()  # the current schema
    postgres.sql(
        f"INSERT INTO tokenserver_schema (version) VALUES ({SCHEMA_VERSION + 1})",  # noqa: S608
        database_name(url),
    )
    with pytest.raises(StorageError, match="newer"):
        await PostgresStore.open(url)


async def test_connection_errors_are_clear_and_never_show_the_password(
    postgres: PostgresServer,
) -> None:
    wrong = postgres.url().replace(postgres.password, "Wr0ngPassw0rd")
    with pytest.raises(StorageError) as refused:
        await PostgresStore.open(wrong)
    assert "Wr0ngPassw0rd" not in str(refused.value)
    assert "password authentication failed" in str(refused.value)

    closed = "postgresql://tokenserver:S3cretPass@127.0.0.1:1/db"
    with pytest.raises(
        StorageError, match=r"cannot connect to postgresql://tokenserver@127\.0\.0\.1:1/db"
    ) as unreachable:
        await PostgresStore.open(closed)
    assert "S3cretPass" not in str(unreachable.value)
    assert safe_url(closed) == "postgresql://tokenserver@127.0.0.1:1/db"

    for malformed in ("postgresql://u:S3cretPass@h:port/db", "postgresql://u:S3cretPass@[::1/db"):
        with pytest.raises(StorageError) as refused:
            await PostgresStore.open(malformed)
        assert "S3cretPass" not in str(refused.value)


async def test_an_outage_is_a_503_and_the_server_recovers(
    postgres: PostgresServer, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    """The server stopped and started again under a running tokenserver. The tests' own
    server, as test_pg_cache's outage: another cluster made for this test took a second."""
    settings = make_settings(database__url=postgres.empty_database())
    app = create_app(settings)
    client = await aiohttp_client(app)
    admin = await app[RUNTIME].users.ensure_admin(None)
    assert admin is not None
    headers = basic("admin", admin.reveal())
    assert (await client.get("/readyz")).status == 200
    postgres.pause()
    try:
        r = await client.get("/api/v2.0/projects", headers=headers)
        assert r.status == 503
        assert (await r.json())["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
        r = await client.get("/service/token", headers=basic("robot$p+ci", "Secr3tValue"))
        assert r.status == 503
        assert (await client.get("/readyz")).status == 503
    finally:
        postgres.resume()
    r = await client.get("/api/v2.0/projects", headers=headers)
    assert r.status == 200, await r.text()
