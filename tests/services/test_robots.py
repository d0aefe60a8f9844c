"""Project and robot services over the real SQLite store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import with_migrated_database
from tests.helpers import make_robot
from tokenserver.config import Settings
from tokenserver.domain.federation import Condition, Identity
from tokenserver.domain.models import LOCAL, Level, Robot
from tokenserver.domain.permissions import Access, Effect, RequestedPermission
from tokenserver.errors import BadRequest, Conflict, ProjectNotFound, RobotNotFound
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.ports import AuditScope, NewIssuer, NewRobot, NewRule, RobotChanges
from tokenserver.services.robots import RobotSpec
from tokenserver.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore, StorageError


@pytest.fixture
async def rt(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(with_migrated_database(settings), sign=False) as runtime:
        yield runtime


async def test_create_computes_expiry_from_creation(rt: Runtime) -> None:
    await rt.projects.create(LOCAL, "p")
    robot, secret = await make_robot(rt, "p", "ci", "repository:pull", duration=7, description="d")
    assert robot.expires_at == robot.creation_time + 7 * 86400
    assert abs(robot.creation_time - time.time()) < 5
    never, _ = await make_robot(rt, "p", "forever", "repository:pull", duration=-1)
    assert never.expires_at == -1
    assert secret.reveal() not in robot.secret_hash


@pytest.mark.parametrize("duration", [0, -2, 36501, 2**31])
async def test_invalid_durations_are_refused(rt: Runtime, duration: int) -> None:
    await rt.projects.create(LOCAL, "p")
    with pytest.raises(BadRequest, match="duration"):
        await make_robot(rt, "p", "ci", "repository:pull", duration=duration)


async def test_names_are_unique_per_project(rt: Runtime) -> None:
    await rt.projects.create(LOCAL, "a")
    await rt.projects.create(LOCAL, "b")
    await make_robot(rt, "a", "ci", "repository:pull", duration=-1)
    await make_robot(rt, "b", "ci", "repository:pull", duration=-1)
    with pytest.raises(Conflict):
        await make_robot(rt, "a", "ci", "repository:pull", duration=-1)


async def test_robot_refs(rt: Runtime) -> None:
    await rt.projects.create(LOCAL, "p")
    robot, _ = await make_robot(rt, "p", "ci", "repository:pull", duration=-1)
    for ref in (str(robot.id), "robot$p+ci", "p+ci"):
        assert (await rt.robots.get(LOCAL, ref)).id == robot.id
    for ref in ("999", "robot$p+nope", "ci", "robot$q+ci", "", "\u0661"):
        with pytest.raises(RobotNotFound):
            await rt.robots.get(LOCAL, ref)


async def test_missing_project(rt: Runtime) -> None:
    with pytest.raises(ProjectNotFound):
        await make_robot(rt, "nope", "ci", "repository:pull", duration=-1)
    with pytest.raises(ProjectNotFound):
        await rt.robots.list(LOCAL, "nope")
    with pytest.raises(ProjectNotFound):
        await rt.projects.delete(LOCAL, "nope")


async def test_description_is_capped(rt: Runtime) -> None:
    await rt.projects.create(LOCAL, "p")
    with pytest.raises(BadRequest, match="description"):
        await make_robot(rt, "p", "ci", "repository:pull", duration=-1, description="x" * 1025)


async def test_failed_refresh_keeps_the_old_secret(rt: Runtime) -> None:
    await rt.projects.create(LOCAL, "p")
    robot, _ = await make_robot(rt, "p", "ci", "repository:pull", duration=-1)
    with pytest.raises(BadRequest):
        await rt.robots.refresh_secret(LOCAL, "p+ci", "short")
    assert (await rt.robots.get(LOCAL, "p+ci")).secret_hash == robot.secret_hash


async def test_database_is_wal_and_versioned(rt: Runtime, settings: Settings) -> None:
    with sqlite3.connect(settings.database.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer"):
        await SqliteStore.open(path)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot use database"):
        await SqliteStore.open(path)


async def test_a_database_of_the_first_released_schema_is_upgraded(tmp_path: Path) -> None:
    # tests/data/schema-v1.sql is the first released schema, frozen: a database made by that
    # release, with data in it, must open with this tokenserver and keep its data.
    path = tmp_path / "v1.db"
    root = Path(__file__).resolve().parents[1]
    with sqlite3.connect(path) as db:
        db.executescript((root / "data" / "schema-v1.sql").read_text())
        db.execute(
            "INSERT INTO project (name, public, creation_time, update_time) VALUES ('old', 1, 1, 1)"
        )
        db.execute("PRAGMA user_version=1")
    store = await SqliteStore.open(path)
    try:
        project = await store.find_project("old")
        assert project is not None
        assert project.public
        # Schema 4: a project keeps metadata (none yet).
        assert await store.project_metadata([project.id]) == {project.id: {}}
        assert await store.update_project(project.id, None, 2, {"auto_scan": "true"})
        assert await store.project_metadata([project.id]) == {project.id: {"auto_scan": "true"}}
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# Rows as the first released schema stored them: robot 1 ordinary, robot 2 legacy, each with a
# refresh token created long ago.
_V1_REFRESH_TOKENS = """
INSERT INTO project (id, name, public, creation_time, update_time) VALUES (1, 'lib', 0, 1, 1);
INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at,
    creation_time, update_time, permissions, legacy_id, legacy_project_id)
VALUES (1, 'ci', 1, 'project', 'h', -1, -1, 1, 1, '[]', NULL, NULL),
       (2, 'old', 1, 'project', 'legacy', -1, -1, 1, 1, '[]', 23, 7);
INSERT INTO refresh_token (robot_id, token_hash, client_id, created_at)
VALUES (1, 'plain', 'docker', 1), (2, 'legacy', 'docker', 1);
"""


async def test_attack_legacy_refresh_tokens_from_before_the_upgrade_are_dropped(
    tmp_path: Path,
) -> None:
    # A legacy robot's refresh token stored before schema 3 holds neither its JWT's grant nor
    # its end: it would serve the stored policies for ever. Ordinary tokens stay, their idle
    # time counted from the upgrade (their last use is unknown).
    path = tmp_path / "v1.db"
    root = Path(__file__).resolve().parents[1]
    with sqlite3.connect(path) as db:
        db.executescript((root / "data" / "schema-v1.sql").read_text() + _V1_REFRESH_TOKENS)
        db.execute("PRAGMA user_version=1")
    before = int(time.time())
    store = await SqliteStore.open(path)
    try:
        assert await store.find_refresh_token("legacy") is None
        kept = await store.find_refresh_token("plain")
        assert kept is not None and kept.created_at == 1
        assert kept.last_used_at >= before
        assert kept.legacy_access is None and kept.expires_at is None
    finally:
        await store.close()


async def test_audit_entries_from_before_schema_5_belong_to_no_project(tmp_path: Path) -> None:
    # Their resource text cannot tell the project apart from a later one of the same name:
    # only holders of audit-log:list read them.
    path = tmp_path / "v1.db"
    root = Path(__file__).resolve().parents[1]
    with sqlite3.connect(path) as db:
        db.executescript((root / "data" / "schema-v1.sql").read_text() + _V1_AUDIT)
        db.execute("PRAGMA user_version=1")
    store = await SqliteStore.open(path)
    try:
        entries, total = await store.list_audit(0, 10)
        assert total == 1 and (entries[0].resource, entries[0].project_id) == ("lib", None)
        assert await store.list_audit(0, 10, scope=AuditScope(project_id=1)) == ([], 0)
    finally:
        await store.close()


async def test_a_database_of_schema_5_gets_robot_federation(tmp_path: Path) -> None:
    # Made by the release before robot federation (its migrations, as released), with a robot
    # and a refresh token: the robot keeps its secret login, the token is not a federated one.
    path = tmp_path / "v5.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 6):
            db.executescript(MIGRATIONS[version])
        db.executescript(_V5_ROBOT)
        db.execute("PRAGMA user_version=5")
    store = await SqliteStore.open(path)
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
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_a_database_of_schema_6_gets_token_lifetimes(tmp_path: Path) -> None:
    # Made by the release before per-robot token lifetimes (its migrations, as released), with
    # a robot: it keeps everything and has no lifetime of its own; one can be set.
    path = tmp_path / "v6.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 7):
            db.executescript(MIGRATIONS[version])
        db.executescript(_V5_ROBOT)
        db.execute("PRAGMA user_version=6")
    store = await SqliteStore.open(path)
    try:
        robot = await store.find_robot_by_id(1)
        assert robot is not None and (robot.name, robot.project_name) == ("ci", "lib")
        assert robot.token_lifetime is None and robot.secret_login
        assert await store.longest_token_lifetime() is None
        assert await store.update_robot(1, 5, RobotChanges(token_lifetime=3600))
        robot = await store.find_robot_by_id(1)
        assert robot is not None and robot.token_lifetime == 3600
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


_V5_ROBOT = """
INSERT INTO project (id, name, public, creation_time, update_time) VALUES (1, 'lib', 0, 1, 1);
INSERT INTO robot (id, name, project_id, level, secret_hash, duration, expires_at,
    creation_time, update_time, permissions)
VALUES (1, 'ci', 1, 'project', 'h', -1, -1, 1, 1, '[]');
INSERT INTO refresh_token (robot_id, token_hash, client_id, created_at, last_used_at)
VALUES (1, 'plain', 'docker', 1, 1);
"""


_V1_AUDIT = """
INSERT INTO project (id, name, public, creation_time, update_time) VALUES (1, 'lib', 0, 1, 1);
INSERT INTO audit_log (op_time, operator, operation, resource_type, resource, outcome)
VALUES (1, 'admin', 'create', 'project', 'lib', 'success');
"""


PULL = Access("repository", "pull")


def _system_robot(name: str, *entries: RequestedPermission) -> RobotSpec:
    return RobotSpec(name=name, level=Level.SYSTEM, permissions=entries, duration=-1)


async def test_attack_project_deletion_overwrites_a_concurrent_permission_change(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion read the system robots, then wrote each back without the project's
    allows: a change made in between (here an admin's new deny) was silently lost."""
    await rt.projects.create(LOCAL, "gone")
    await rt.projects.create(LOCAL, "p1")
    robot, _ = await rt.robots.create(
        LOCAL,
        _system_robot(
            "r",
            RequestedPermission("gone", (PULL,), "project"),
            RequestedPermission("*", (PULL,), "project"),
        ),
    )
    changed = (
        RequestedPermission("*", (PULL,), "project"),
        RequestedPermission("p1", (Access("repository", "pull", Effect.DENY),), "project"),
    )
    listed = rt.store.list_robots

    async def list_then_change(*args: object) -> list[Robot]:
        robots = await listed(*args)  # type: ignore[arg-type]
        await rt.robots.update(LOCAL, str(robot.id), _system_robot("r", *changed))
        return robots

    monkeypatch.setattr(rt.store, "list_robots", list_then_change)
    await rt.projects.delete(LOCAL, "gone")
    after = await rt.robots.resolve(str(robot.id))
    assert [(p.namespace, p.access) for p in after.permissions] == [
        (p.namespace, p.access) for p in changed
    ]


async def test_attack_robot_written_after_its_project_was_deleted_shows_an_unenforced_allow(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A robot naming a project was written just after that project's deletion had swept the
    robots: GET showed an allow pinned to the dead project, which a later PUT of what GET
    showed turned into an allow on a new project of that name."""
    await rt.projects.create(LOCAL, "racq")
    created = rt.store.create_robot

    async def delete_then_create(robot: NewRobot) -> Robot:
        await rt.projects.delete(LOCAL, "racq")
        return await created(robot)

    monkeypatch.setattr(rt.store, "create_robot", delete_then_create)
    robot, _ = await rt.robots.create(
        LOCAL,
        _system_robot(
            "ghost",
            RequestedPermission(
                "racq", (PULL, Access("repository", "delete", Effect.DENY)), "project"
            ),
        ),
    )
    shown = await rt.robots.resolve(str(robot.id))
    assert [(p.namespace, p.access) for p in shown.permissions] == [
        ("racq", (Access("repository", "delete", Effect.DENY),))
    ]
