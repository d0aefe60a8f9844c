"""The storage contract (tokenserver/services/ports.py `Store`), one suite for every adapter.

The `store` fixture opens SQLite, and PostgreSQL (a database at the current schema with no
rows on the tests' private server, tests/postgres.py): both pass the same tests unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import with_migrated_database
from tests.postgres import PostgresServer
from tests.storage.test_postgres import at_version
from tokenserver.config import Settings
from tokenserver.domain.federation import KEEP_FAILURES, KEEP_LOGINS, Condition, Identity
from tokenserver.domain.harbor_query import AUDIT_EXT_KEYS
from tokenserver.domain.lockouts import BASE_SPAN, CHECK_STALE_SECONDS, HALF_LIFE, lockout_key
from tokenserver.domain.models import MAX_AUDIT_FIELD, AuditEntry, KeyState, Level
from tokenserver.domain.permissions import Access, Effect, Permission
from tokenserver.domain.roles import Role
from tokenserver.domain.webhooks import Target
from tokenserver.errors import Conflict, NotFound, ProjectNotFound, RobotNotFound, UserNotFound
from tokenserver.runtime import open_runtime
from tokenserver.services.ports import (
    AuditScope,
    IssuerRemoval,
    NewIssuer,
    NewRobot,
    NewRule,
    NewUser,
    NewWebhookPolicy,
    RobotChanges,
    Store,
    UserChange,
)
from tokenserver.storage.postgres import PostgresStore
from tokenserver.storage.sql import SqlStore
from tokenserver.storage.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from tokenserver.storage.sqlite import SqliteStore

PULL = (Access("repository", "pull"),)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-cached"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    opened: SqlStore
    if request.param == "sqlite":
        settings: Settings = request.getfixturevalue("settings")
        opened = await SqliteStore.open(with_migrated_database(settings).database.path)
    else:
        # Cached: a server's store, whose reads must honour its own writes at once.
        server: PostgresServer = request.getfixturevalue("postgres")
        cache_size = 1000 if request.param == "postgresql-cached" else 0
        # Every test closes its store: one database, emptied for each, serves them all.
        opened = await PostgresStore.open(server.emptied_database(), cache_size=cache_size)
    try:
        yield opened
    finally:
        await opened.close()


def new_robot(name: str, project_id: int | None, **extra: object) -> NewRobot:
    fields: dict[str, object] = {
        "name": name,
        "project_id": project_id,
        "level": Level.PROJECT if project_id is not None else Level.SYSTEM,
        "description": "",
        "secret_hash": f"hash-{name}",
        "duration": -1,
        "expires_at": -1,
        "creation_time": 100,
        "permissions": (Permission("p", PULL, project_id=project_id),),
        **extra,
    }
    return NewRobot(**fields)  # type: ignore[arg-type]


def new_user(name: str, sysadmin: bool = False) -> NewUser:
    return NewUser(name, f"{name}@example.com", name, "", f"pw-{name}", sysadmin)


# ---- projects ----------------------------------------------------------------------------


async def test_projects_are_created_found_listed_updated_and_deleted(store: Store) -> None:
    alpha = await store.create_project("alpha", False, None, 10)
    await store.create_project("beta", True, None, 11)
    assert (alpha.name, alpha.public, alpha.creation_time) == ("alpha", False, 10)
    assert await store.find_project("alpha") == alpha
    assert await store.find_project_by_id(alpha.id) == alpha
    assert await store.find_project("gamma") is None
    assert [p.name for p in await store.list_projects()] == ["alpha", "beta"]
    assert [p.name for p in await store.list_projects("et")] == ["beta"]
    assert await store.update_project(alpha.id, True, 20)
    updated = await store.find_project_by_id(alpha.id)
    assert updated is not None and updated.public and updated.update_time == 20
    assert not await store.update_project(9999, True, 20)
    assert await store.delete_project(alpha.id)
    assert not await store.delete_project(alpha.id)
    assert await store.find_project("alpha") is None


async def test_a_taken_project_name_is_a_conflict(store: Store) -> None:
    await store.create_project("alpha", False, None, 10)
    with pytest.raises(Conflict):
        await store.create_project("alpha", True, None, 11)


async def test_deleting_a_project_deletes_its_robots_and_members(store: Store) -> None:
    project = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", project.id))
    user = await store.create_user(new_user("alice"), 1)
    await store.add_member(project.id, user.id, Role.DEVELOPER, 1)
    assert await store.delete_project(project.id)
    assert await store.find_robot_by_id(robot.id) is None
    assert await store.find_member(project.id, user.id) is None
    assert await store.find_user("alice") is not None


async def test_projects_keep_their_metadata_and_updates_merge_it(store: Store) -> None:
    p = await store.create_project("p", False, None, 1, {"auto_scan": "true"})
    q = await store.create_project("q", True, None, 1)
    assert await store.project_metadata([p.id, q.id, 9999]) == {
        p.id: {"auto_scan": "true"},
        q.id: {},
    }
    assert await store.project_metadata([]) == {}
    assert await store.update_project(p.id, None, 5, {"severity": "high", "x": "é\u2028"})
    found = await store.find_project_by_id(p.id)
    assert found is not None and not found.public and found.update_time == 5
    assert (await store.project_metadata([p.id]))[p.id] == {
        "auto_scan": "true",
        "severity": "high",
        "x": "é\u2028",
    }
    assert await store.update_project(p.id, True, 6, {"auto_scan": "false"})
    found = await store.find_project_by_id(p.id)
    assert found is not None and found.public
    assert (await store.project_metadata([p.id]))[p.id]["auto_scan"] == "false"
    assert await store.update_project(q.id, False, 7)  # metadata untouched
    assert (await store.project_metadata([q.id]))[q.id] == {}
    assert not await store.update_project(9999, None, 8, {"auto_scan": "true"})


async def test_concurrent_metadata_updates_of_different_keys_all_count(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    results = await asyncio.gather(
        *(store.update_project(p.id, None, 2, {f"k{i}": str(i)}) for i in range(12))
    )
    assert all(results)
    assert (await store.project_metadata([p.id]))[p.id] == {f"k{i}": str(i) for i in range(12)}


async def test_a_metadata_key_is_added_once_and_deleted(store: Store) -> None:
    p = await store.create_project("p", False, None, 1, {"auto_scan": "true"})
    assert await store.add_project_metadata(p.id, "severity", "high", 2)
    assert not await store.add_project_metadata(p.id, "severity", "low", 3)
    assert not await store.add_project_metadata(p.id, "auto_scan", "false", 3)
    assert not await store.add_project_metadata(9999, "severity", "low", 3)
    assert (await store.project_metadata([p.id]))[p.id] == {"auto_scan": "true", "severity": "high"}
    found = await store.find_project_by_id(p.id)
    assert found is not None and found.update_time == 2
    # Keys that are not plain JSON path names go and come as any other.
    assert await store.add_project_metadata(p.id, 'a."b', "x", 4)
    assert await store.delete_project_metadata(p.id, 'a."b', 5)
    assert await store.delete_project_metadata(p.id, "severity", 5)
    assert await store.delete_project_metadata(p.id, "severity", 6)  # not held: still true
    assert not await store.delete_project_metadata(9999, "severity", 6)
    assert (await store.project_metadata([p.id]))[p.id] == {"auto_scan": "true"}
    found = await store.find_project_by_id(p.id)
    assert found is not None and found.update_time == 6


async def test_of_concurrent_adds_of_one_key_one_wins(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    results = await asyncio.gather(
        *(store.add_project_metadata(p.id, "severity", str(i), 2) for i in range(8))
    )
    assert results.count(True) == 1
    won = results.index(True)
    assert (await store.project_metadata([p.id]))[p.id] == {"severity": str(won)}


# ---- robots ------------------------------------------------------------------------------


async def test_robots_are_found_by_name_and_id_at_their_level(store: Store) -> None:
    project = await store.create_project("p", True, None, 1)
    robot = await store.create_robot(new_robot("ci", project.id, description="builds"))
    system = await store.create_robot(new_robot("fleet", None))
    assert robot.project_name == "p" and robot.project_public and robot.description == "builds"
    assert robot.permissions == (Permission("p", PULL, project_id=project.id),)
    assert await store.find_robot("p", "ci") == robot
    assert await store.find_robot(None, "ci") is None
    assert await store.find_robot(None, "fleet") == system
    assert await store.find_robot("p", "fleet") is None
    assert await store.find_robot_by_id(robot.id) == robot
    assert await store.find_robot_by_id(9999) is None


async def test_robot_names_are_unique_per_level(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    q = await store.create_project("q", False, None, 1)
    await store.create_robot(new_robot("ci", p.id))
    await store.create_robot(new_robot("ci", q.id))  # another project: fine
    await store.create_robot(new_robot("ci", None))  # a system robot: fine
    with pytest.raises(Conflict):
        await store.create_robot(new_robot("ci", p.id))
    with pytest.raises(Conflict):
        await store.create_robot(new_robot("ci", None))


async def test_attack_a_robot_for_a_project_deleted_meanwhile_is_project_not_found(
    store: Store,
) -> None:
    """Not Conflict: answered 409 "robot 'r0' already exists in this project" (seen on
    PostgreSQL replicas, a robot created while its project was being deleted)."""
    project = await store.create_project("p", False, None, 1)
    assert await store.delete_project(project.id)
    with pytest.raises(ProjectNotFound):
        await store.create_robot(new_robot("ci", project.id))
    assert await store.list_robots(project.id) == []
    assert (await store.create_robot(new_robot("ci", None))).project_id is None


async def test_robots_are_listed_by_id_with_a_name_filter(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    for name in ("b-one", "a-two", "c-one"):
        await store.create_robot(new_robot(name, p.id))
    await store.create_robot(new_robot("sys-one", None))
    assert [r.name for r in await store.list_robots(p.id)] == ["b-one", "a-two", "c-one"]
    assert [r.name for r in await store.list_robots(p.id, "one")] == ["b-one", "c-one"]
    assert [r.name for r in await store.list_robots(None)] == ["sys-one"]


async def test_robot_updates_change_only_what_is_given(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id, description="old"))
    assert await store.update_robot(robot.id, 50, RobotChanges(disabled=True))
    changed = await store.find_robot_by_id(robot.id)
    assert changed is not None
    assert changed.disabled and changed.description == "old" and changed.update_time == 50
    assert changed.secret_hash == robot.secret_hash and changed.permissions == robot.permissions
    push = (Access("repository", "push"),)
    assert await store.update_robot(
        robot.id,
        60,
        RobotChanges(
            description="new",
            duration=30,
            expires_at=3000,
            secret_hash="h2",
            permissions=(Permission("p", push, project_id=p.id),),
            disabled=False,
        ),
    )
    changed = await store.find_robot_by_id(robot.id)
    assert changed is not None and not changed.disabled
    assert (changed.description, changed.duration, changed.expires_at) == ("new", 30, 3000)
    assert changed.secret_hash == "h2" and changed.permissions[0].access == push
    assert not await store.update_robot(9999, 60, RobotChanges(disabled=True))


async def test_a_robots_token_lifetime_is_kept_changed_and_cleared(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    plain = await store.create_robot(new_robot("plain", p.id))
    assert plain.token_lifetime is None
    assert await store.longest_token_lifetime() is None
    robot = await store.create_robot(new_robot("ci", p.id, token_lifetime=3600))
    assert robot.token_lifetime == 3600
    assert await store.longest_token_lifetime() == 3600

    async def stored() -> int | None:
        found = await store.find_robot_by_id(robot.id)
        assert found is not None
        return found.token_lifetime

    assert await store.update_robot(robot.id, 50, RobotChanges(disabled=True))
    assert await stored() == 3600  # None keeps it
    assert await store.update_robot(robot.id, 51, RobotChanges(token_lifetime=604800))
    assert await stored() == 604800
    assert await store.longest_token_lifetime() == 604800
    assert await store.update_robot(robot.id, 52, RobotChanges(token_lifetime=0))
    assert await stored() is None  # FOLLOW_GLOBAL clears it
    assert await store.longest_token_lifetime() is None
    assert await store.update_robot(robot.id, 53, RobotChanges(token_lifetime=0))
    assert await stored() is None
    assert (await store.list_robots(p.id))[0].token_lifetime is None


async def test_robot_permissions_are_replaced_only_if_unchanged(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    push = (Permission("p", (Access("repository", "push"),), project_id=p.id),)
    deny = (Permission("p", (Access("repository", "pull", Effect.DENY),), project_id=p.id),)
    assert await store.replace_robot_permissions(robot.id, 70, robot.permissions, push)
    # Someone else's view is stale now: its swap must fail and change nothing.
    assert not await store.replace_robot_permissions(robot.id, 80, robot.permissions, deny)
    changed = await store.find_robot_by_id(robot.id)
    assert changed is not None and changed.permissions == push and changed.update_time == 70
    assert not await store.replace_robot_permissions(9999, 80, push, deny)


async def test_robot_repository_patterns_round_trip(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    patterned = (
        Permission("p", (Access("repository", "push"),), project_id=p.id),
        Permission(
            "p",
            (Access("repository", "pull", Effect.DENY),),
            project_id=p.id,
            repositories=("secrets/**", "team-a/*"),
        ),
    )
    assert await store.update_robot(robot.id, 60, RobotChanges(permissions=patterned))
    changed = await store.find_robot_by_id(robot.id)
    assert changed is not None and changed.permissions == patterned
    # A swap compares what is stored, patterns included.
    plain = (Permission("p", (Access("repository", "pull", Effect.DENY),), project_id=p.id),)
    assert not await store.replace_robot_permissions(robot.id, 70, plain, plain)
    assert await store.replace_robot_permissions(robot.id, 70, patterned, plain)


async def test_robot_use_only_moves_forward(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    assert robot.last_used_at is None
    await store.record_robot_use({robot.id: 500})
    await store.record_robot_use({robot.id: 400, 9999: 1})  # older, and an unknown robot
    found = await store.find_robot_by_id(robot.id)
    assert found is not None and found.last_used_at == 500


async def test_legacy_robots_are_found_only_as_legacy(store: Store) -> None:
    p = await store.create_project("lib", False, None, 1)
    legacy = await store.create_robot(new_robot("old", p.id, legacy_id=23, legacy_project_id=7))
    assert legacy.legacy
    assert await store.find_legacy_robot("old") == legacy
    assert await store.find_robot("lib", "old") is None  # not as lib+old
    assert await store.delete_robot(legacy.id)
    assert not await store.delete_robot(legacy.id)


# ---- users and members -------------------------------------------------------------------


async def test_users_are_created_found_listed_and_their_passwords_changed(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 5)
    await store.create_user(new_user("bob"), 6)
    assert alice.username == "alice" and alice.password_hash == "pw-alice" and not alice.sysadmin
    assert await store.find_user("alice") == alice
    assert await store.find_user_by_id(alice.id) == alice
    assert [u.username for u in await store.list_users()] == ["alice", "bob"]
    assert [u.username for u in await store.list_users("ob")] == ["bob"]
    with pytest.raises(Conflict):
        await store.create_user(new_user("alice"), 7)
    assert await store.update_user_password(alice.id, "pw-2", 8)
    found = await store.find_user("alice")
    assert found is not None and found.password_hash == "pw-2"
    assert not await store.update_user_password(9999, "x", 8)


async def test_user_profiles_are_replaced(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 5)
    assert await store.update_user_profile(alice.id, "a@example.org", "Alice A", "ops", 9)
    found = await store.find_user_by_id(alice.id)
    assert found is not None
    assert (found.email, found.realname, found.comment) == ("a@example.org", "Alice A", "ops")
    assert found.update_time == 9 and found.password_hash == alice.password_hash
    assert not await store.update_user_profile(9999, "", "", "", 9)


async def test_deleting_a_user_takes_its_memberships_sessions_and_tokens(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 1)
    bob = await store.create_user(new_user("bob"), 1)
    owned = await store.create_project("owned", False, alice.id, 1)
    await store.add_member(owned.id, bob.id, Role.GUEST, 1)
    await store.add_session("sa", alice.id, 1, 100)
    await store.add_session("sb", bob.id, 1, 100)
    await store.add_refresh_token("ta", "docker", 1, user_id=alice.id, keep=5)
    await store.add_refresh_token("tb", "docker", 1, user_id=bob.id, keep=5)
    assert await store.delete_user(alice.id) is UserChange.DONE
    assert await store.find_user("alice") is None
    assert await store.find_user_by_id(alice.id) is None
    assert await store.find_member(owned.id, alice.id) is None
    assert await store.find_session("sa", 50) is None
    assert await store.find_refresh_token("ta") is None
    project = await store.find_project_by_id(owned.id)
    assert project is not None and project.owner_id is None and project.owner_name == ""
    # bob keeps everything
    assert await store.find_member(owned.id, bob.id) is not None
    assert await store.find_session("sb", 50) is not None
    assert await store.find_refresh_token("tb") is not None
    assert await store.delete_user(alice.id) is UserChange.MISSING
    again = await store.create_user(new_user("alice"), 2)
    assert again.id not in (alice.id, bob.id)  # ids are never reused


async def test_the_last_system_admin_is_neither_deleted_nor_demoted(store: Store) -> None:
    root = await store.create_user(new_user("root", sysadmin=True), 1)
    other = await store.create_user(new_user("other", sysadmin=True), 1)
    plain = await store.create_user(new_user("plain"), 1)
    assert await store.set_user_sysadmin(other.id, False, 2) is UserChange.DONE
    assert await store.set_user_sysadmin(root.id, False, 3) is UserChange.LAST_SYSADMIN
    assert await store.delete_user(root.id) is UserChange.LAST_SYSADMIN
    found = await store.find_user_by_id(root.id)
    assert found is not None and found.sysadmin and found.update_time == 1
    assert await store.set_user_sysadmin(plain.id, False, 4) is UserChange.DONE  # no admin
    assert await store.delete_user(plain.id) is UserChange.DONE
    assert await store.set_user_sysadmin(other.id, True, 5) is UserChange.DONE
    found = await store.find_user_by_id(other.id)
    assert found is not None and found.sysadmin and found.update_time == 5
    assert await store.delete_user(root.id) is UserChange.DONE
    assert await store.set_user_sysadmin(9999, True, 6) is UserChange.MISSING
    assert await store.set_user_sysadmin(9999, False, 6) is UserChange.MISSING


async def test_removals_at_once_leave_one_system_admin(store: Store) -> None:
    """Each removal checks that another admin remains; run at once (several connections on
    PostgreSQL), two of them must not each count on the other's admin."""
    for round_ in range(10):
        for i in range(7):
            await store.create_user(new_user(f"a{round_}-{i}", sysadmin=True), 1)
        admins = [u for u in await store.list_users() if u.sysadmin]
        results = await asyncio.gather(
            *(
                store.delete_user(a.id) if i % 2 else store.set_user_sysadmin(a.id, False, 2)
                for i, a in enumerate(admins)
            )
        )
        assert results.count(UserChange.LAST_SYSADMIN) == 1, round_
        assert results.count(UserChange.DONE) == len(admins) - 1
        assert sum(u.sysadmin for u in await store.list_users()) == 1


async def test_a_taken_email_is_a_conflict_an_empty_one_is_not(store: Store) -> None:
    """Harbor's `harbor_user.email` is UNIQUE: a second user with it is 409, on creation and
    on a profile change; users without an email are many."""
    alice = await store.create_user(new_user("alice"), 1)
    with pytest.raises(Conflict, match=r"user bob or email alice@example\.com already exists"):
        await store.create_user(replace(new_user("bob"), email=alice.email), 1)
    assert await store.find_user("bob") is None
    bob = await store.create_user(new_user("bob"), 1)
    with pytest.raises(Conflict, match=r"email alice@example\.com already exists"):
        await store.update_user_profile(bob.id, alice.email, "Bob", "", 2)
    assert await store.update_user_profile(alice.id, alice.email, "Alice A", "", 2)  # her own
    assert await store.update_user_profile(bob.id, "", "", "", 2)
    await store.create_user(replace(new_user("carol"), email=""), 1)
    await store.create_user(replace(new_user("dave"), email=""), 1)
    with pytest.raises(Conflict, match="user 'dave' already exists"):
        await store.create_user(replace(new_user("dave"), email=""), 1)
    assert await store.list_users_sharing_email() == []


async def test_attack_users_taking_one_email_at_once_one_wins(store: Store) -> None:
    async def create(name: str) -> bool:
        try:
            await store.create_user(replace(new_user(name), email="same@example.com"), 1)
        except Conflict:
            return False
        return True

    assert sorted(await asyncio.gather(*(create(f"u{i}") for i in range(6)))) == [False] * 5 + [
        True
    ]


_SHARED_EMAILS = (
    "INSERT INTO users (id, username, email, password_hash, creation_time, update_time) VALUES "
    "(1, 'alice', 'a@example.com', 'h', 1, 1), (2, 'bob', 'a@example.com', 'h', 1, 1), "
    "(3, 'carol', 'a@example.com', 'h', 1, 1), (4, 'dave', '', 'h', 1, 1), "
    "(5, 'erin', '', 'h', 1, 1), (6, 'frank', 'f@example.com', 'h', 1, 1)"
)


async def _upgraded_store_keeps_shared_emails(store: SqlStore) -> None:
    """Users that shared an email before schema 12 keep it (the upgrade fails not, drops no
    one) and are listed; anyone else is held to the rule, and so is each of them once its
    email changes. No new user joins them, even when the oldest holder has left the email."""
    shared = await store.list_users_sharing_email()
    assert [u.username for u in shared] == ["alice", "bob", "carol"]
    assert [u.username for u in await store.list_users()][3:] == ["dave", "erin", "frank"]
    with pytest.raises(Conflict):
        await store.create_user(replace(new_user("gina"), email="a@example.com"), 2)
    assert await store.update_user_profile(3, "a@example.com", "Carol", "", 2)  # kept
    assert await store.update_user_profile(2, "b@example.com", "", "", 2)  # bob leaves it
    with pytest.raises(Conflict):
        await store.update_user_profile(2, "a@example.com", "", "", 3)  # and may not return
    with pytest.raises(Conflict):
        await store.update_user_profile(2, "f@example.com", "", "", 3)
    assert [u.username for u in await store.list_users_sharing_email()] == ["alice", "carol"]
    assert await store.update_user_profile(1, "z@example.com", "", "", 3)  # the oldest leaves
    with pytest.raises(Conflict):  # carol still holds it
        await store.create_user(replace(new_user("gina"), email="a@example.com"), 2)
    with pytest.raises(Conflict):
        await store.update_user_profile(4, "a@example.com", "", "", 3)
    assert [u.username for u in await store.list_users_sharing_email()] == ["carol"]
    assert await store.update_user_profile(3, "c@example.com", "", "", 4)
    assert await store.list_users_sharing_email() == []
    gina = await store.create_user(replace(new_user("gina"), email="a@example.com"), 5)
    assert gina.email == "a@example.com"


async def test_a_sqlite_database_of_schema_11_keeps_users_that_share_an_email(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v11.db"
    with sqlite3.connect(path) as db:
        for version in range(1, 12):
            db.executescript(SQLITE_MIGRATIONS[version])
        db.executescript(_SHARED_EMAILS)
        db.execute("PRAGMA user_version=11")
    store = await SqliteStore.open(path)
    try:
        await _upgraded_store_keeps_shared_emails(store)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 12
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_postgresql_database_of_schema_11_keeps_users_that_share_an_email(
    postgres: PostgresServer,
) -> None:
    url = at_version(postgres, 11, _SHARED_EMAILS + "; SELECT setval('users_id_seq', 6)")
    store = await PostgresStore.open(url)
    try:
        await _upgraded_store_keeps_shared_emails(store)
    finally:
        await store.close()


async def test_the_server_names_users_that_share_an_email_at_start(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(settings.database.path) as db:
        for version in range(1, 12):
            db.executescript(SQLITE_MIGRATIONS[version])
        db.executescript(_SHARED_EMAILS)
        db.execute("PRAGMA user_version=11")
    async with open_runtime(settings, sign=True):
        pass
    [warning] = [r.getMessage() for r in caplog.records if r.name == "tokenserver.users"]
    assert warning.startswith(
        "these users share an email, which is otherwise unique: 'alice' <a@example.com>, "
        "'bob' <a@example.com>, 'carol' <a@example.com>. Give each its own"
    )
    caplog.clear()
    async with open_runtime(settings, sign=False):  # a command: the server says it
        pass
    assert not [r for r in caplog.records if r.name == "tokenserver.users"]


async def test_members_have_one_role_per_project(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    alice = await store.create_user(new_user("alice"), 1)
    member = await store.add_member(p.id, alice.id, Role.DEVELOPER, 2)
    assert member.role is Role.DEVELOPER
    assert await store.find_member(p.id, alice.id) == member
    assert await store.find_member_by_id(p.id, member.id) == member
    with pytest.raises(Conflict):
        await store.add_member(p.id, alice.id, Role.GUEST, 3)
    assert [m.id for m in await store.list_members(p.id, "ali")] == [member.id]
    assert await store.list_members(p.id, "zed") == []
    assert await store.update_member(p.id, member.id, Role.PROJECT_ADMIN, 4)
    found = await store.find_member(p.id, alice.id)
    assert found is not None and found.role is Role.PROJECT_ADMIN
    assert await store.delete_member(p.id, member.id)
    assert not await store.delete_member(p.id, member.id)
    assert await store.find_member(p.id, alice.id) is None


async def test_a_project_with_an_owner_is_created_with_its_owner_as_projectadmin(
    store: Store,
) -> None:
    alice = await store.create_user(new_user("alice"), 1)
    project = await store.create_project("p", False, alice.id, 2)
    member = await store.find_member(project.id, alice.id)
    assert member is not None and member.role is Role.PROJECT_ADMIN
    assert project.owner_id == alice.id


async def test_attack_create_project_for_a_deleted_owner_leaves_nothing(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 1)
    assert await store.delete_user(alice.id) is UserChange.DONE
    with pytest.raises(UserNotFound):
        await store.create_project("p", False, alice.id, 2)
    assert await store.find_project("p") is None  # the name is not taken
    assert (await store.create_project("p", False, None, 3)).name == "p"


async def test_attack_add_member_of_a_deleted_user_or_project_is_not_found(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    alice = await store.create_user(new_user("alice"), 1)
    assert await store.delete_user(alice.id) is UserChange.DONE
    with pytest.raises(UserNotFound):
        await store.add_member(p.id, alice.id, Role.GUEST, 2)
    bob = await store.create_user(new_user("bob"), 1)
    assert await store.delete_project(p.id)
    with pytest.raises(ProjectNotFound):
        await store.add_member(p.id, bob.id, Role.GUEST, 2)


async def test_attack_a_rolled_back_transaction_keeps_other_tasks_writes(store: Store) -> None:
    """SQLite shares one connection: another task's write sent while a transaction is open
    must not join it and vanish with its rollback (a deletion answered 200, then undone)."""
    alice = await store.create_user(new_user("alice"), 1)
    opened = asyncio.Event()

    async def failing() -> None:
        with pytest.raises(Conflict):
            async with store.transaction():
                await store.create_project("inside", False, None, 1)
                opened.set()
                for _ in range(5):  # let the other task send its statement
                    await asyncio.sleep(0)
                await store.create_project("inside", False, None, 1)

    async def outside() -> UserChange:
        await opened.wait()
        return await store.delete_user(alice.id)

    _, deleted = await asyncio.gather(failing(), outside())
    assert deleted is UserChange.DONE
    assert await store.find_user_by_id(alice.id) is None
    assert await store.find_project("inside") is None


async def test_attack_user_deleted_while_creating_projects_and_joining(store: Store) -> None:
    """A user's project creations and memberships racing the user's deletion: each either
    happens whole (the project with its owner's membership) or not at all, and says which;
    the deletion itself is never undone."""
    for round_ in range(10):
        other = await store.create_project(f"o{round_}", False, None, 1)
        dana = await store.create_user(new_user(f"dana{round_}"), 1)

        async def create(i: int, owner: int = dana.id, r: int = round_) -> object:
            try:
                return await store.create_project(f"r{r}-{i}", False, owner, 2)
            except UserNotFound as e:
                return e

        async def join(project: int = other.id, user: int = dana.id) -> object:
            try:
                return await store.add_member(project, user, Role.DEVELOPER, 2)
            except UserNotFound as e:
                return e

        results = await asyncio.gather(
            *(create(i) for i in range(6)),
            join(),
            store.delete_user(dana.id),
            *(create(i) for i in range(6, 11)),
        )
        assert results[7] is UserChange.DONE
        assert await store.find_user_by_id(dana.id) is None
        for i in range(11):
            found = await store.find_project(f"r{round_}-{i}")
            outcome = results[i if i < 6 else i + 2]
            if isinstance(outcome, UserNotFound):
                assert found is None, (round_, i)
            else:
                # created whole before the deletion, which then took its owner away
                assert found is not None and found.owner_id is None, (round_, i)
                assert await store.list_members(found.id) == []
        assert await store.list_members(other.id) == []


# ---- refresh tokens and sessions -----------------------------------------------------------


async def test_refresh_tokens_keep_the_newest_and_are_revoked(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    for i in range(4):
        await store.add_refresh_token(f"h{i}", "docker", 10 + i, robot_id=robot.id, keep=3)
    assert await store.find_refresh_token("h0") is None  # the oldest went
    kept = await store.list_refresh_tokens(robot_id=robot.id)
    assert [t.created_at for t in kept] == [13, 12, 11]
    found = await store.find_refresh_token("h3")
    assert found is not None and found.robot_id == robot.id and found.client_id == "docker"
    assert await store.delete_refresh_tokens(robot_id=robot.id, token_id=found.id) == 1
    assert await store.delete_refresh_tokens(robot_id=robot.id) == 2
    assert await store.list_refresh_tokens(robot_id=robot.id) == []


async def test_refresh_tokens_keep_their_last_use_end_and_legacy_grant(store: Store) -> None:
    p = await store.create_project("lib", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    legacy = await store.create_robot(new_robot("old", p.id, legacy_id=23, legacy_project_id=7))
    grant = (Access("repository", "pull"), Access("helm-chart", "read"))
    added = await store.add_refresh_token(
        "hl", "docker", 50, robot_id=legacy.id, keep=3, expires_at=2**62, legacy_access=grant
    )
    plain = await store.add_refresh_token("hp", "docker", 60, robot_id=robot.id, keep=3)
    empty = await store.add_refresh_token(
        "he", "docker", 70, robot_id=legacy.id, keep=3, expires_at=None, legacy_access=()
    )
    assert await store.find_refresh_token("hl") == added
    assert added.last_used_at == 50 and added.expires_at == 2**62
    assert added.legacy_access == grant
    found = await store.find_refresh_token("hp")
    assert found == plain and found.last_used_at == 60
    assert found.expires_at is None and found.legacy_access is None
    # A JWT that granted nothing is not the same as a token without a JWT's grant.
    found = await store.find_refresh_token("he")
    assert found == empty and found.legacy_access == ()
    assert (await store.list_refresh_tokens(robot_id=legacy.id))[1].legacy_access == grant


async def test_refresh_token_use_only_moves_forward(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    token = await store.add_refresh_token("h", "docker", 100, robot_id=robot.id, keep=3)
    await store.record_refresh_token_use({token.id: 500})
    await store.record_refresh_token_use({token.id: 400, 9999: 1})  # older, and an unknown one
    found = await store.find_refresh_token("h")
    assert found is not None and found.last_used_at == 500
    assert (await store.list_refresh_tokens(robot_id=robot.id))[0].last_used_at == 500


async def test_attack_tokens_and_sessions_of_a_robot_or_user_deleted_meanwhile_are_not_found(
    store: Store,
) -> None:
    """The robot or user was deleted between its login's check and the insert (a deletion
    racing `docker login`, a replica's read cache): it is gone, never Conflict ("refresh
    token already stored": a 409 where the client expects 401)."""
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    alice = await store.create_user(new_user("alice"), 1)
    assert await store.delete_robot(robot.id)
    assert await store.delete_user(alice.id) is UserChange.DONE
    with pytest.raises(RobotNotFound):
        await store.add_refresh_token("h1", "docker", 2, robot_id=robot.id, keep=50)
    with pytest.raises(UserNotFound):
        await store.add_refresh_token("h2", "docker", 2, user_id=alice.id, keep=50)
    with pytest.raises(UserNotFound):
        await store.add_session("s1", alice.id, 2, 100)
    assert await store.find_refresh_token("h1") is None
    assert await store.find_session("s1", 3) is None


async def test_sessions_expire_and_end(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 1)
    bob = await store.create_user(new_user("bob"), 1)
    await store.add_session("s1", alice.id, 100, 200)
    await store.add_session("s2", alice.id, 100, 300)
    await store.add_session("s3", bob.id, 100, 300)
    found = await store.find_session("s1", 150)
    assert found is not None and found.user_id == alice.id and found.expires_at == 200
    assert await store.find_session("s1", 200) is None  # expired
    await store.delete_sessions(before=250)  # housekeeping removes s1
    await store.delete_sessions(token_hash="s3")
    assert await store.find_session("s3", 150) is None
    assert await store.find_session("s2", 150) is not None
    await store.delete_sessions(user_id=alice.id)
    assert await store.find_session("s2", 150) is None


# ---- keys, audit, transactions ----------------------------------------------------------


async def test_one_key_is_active_at_a_time(store: Store) -> None:
    first = await store.add_key("a.key", "a.crt", KeyState.ACTIVE, 1)
    second = await store.add_key("b.key", "b.crt", KeyState.PUBLISHED, 2)
    assert await store.activate_key(second.id)
    states = {k.id: k.state for k in await store.list_keys()}
    assert states == {first.id: KeyState.PUBLISHED, second.id: KeyState.ACTIVE}
    assert await store.retire_key(first.id, 3)
    assert {k.id: k.state for k in await store.list_keys()}[first.id] is KeyState.RETIRED
    assert not await store.activate_key(9999)


async def test_audit_pages_are_newest_first(store: Store) -> None:
    for i in range(5):
        await store.add_audit(AuditEntry(i, "admin", "create", "project", f"p{i}", "success"))
    page, total = await store.list_audit(1, 2)
    assert total == 5 and [e.resource for e in page] == ["p3", "p2"]


async def audit_log(store: Store) -> tuple[int, int]:
    """Five entries, two projects' and one of none; the projects' ids."""
    first = (await store.create_project("first", False, None, 1)).id
    second = (await store.create_project("second", False, None, 1)).id
    for entry in [
        AuditEntry(100, "admin", "create", "project", "first", "success", project_id=first),
        AuditEntry(200, "Alice", "create", "robot", "robot$first+ci", "success", 0, first),
        AuditEntry(300, "bob", "delete", "robot", "robot$second+x_y", "failure: FORBIDDEN", 0,
                   second),
        AuditEntry(400, "admin", "create", "user", "50%off", "success"),
        AuditEntry(500, "zoë", "update", "member", "second/3", "success", project_id=second),
    ]:  # fmt: skip
        await store.add_audit(entry)
    return first, second


async def audited(store: Store, q: str = "", sort: str = "", **scope: Any) -> list[str]:
    entries, total = await store.list_audit(
        0, 100, AUDIT_EXT_KEYS.query(q, sort), AuditScope(**scope)
    )
    assert total == len(entries)
    return [e.resource for e in entries]


@pytest.mark.parametrize(
    ("q", "resources"),
    [
        ("", ["second/3", "50%off", "robot$second+x_y", "robot$first+ci", "first"]),
        ("username=admin", ["50%off", "first"]),
        ("username=ADMIN", []),
        ("username=~ALI", ["robot$first+ci"]),
        ("username=~zo", ["second/3"]),
        ("username=~ë", ["second/3"]),
        ("username=~Ë", []),  # only ASCII letters fold, on both databases
        ("resource=~%", ["50%off"]),  # no LIKE: % and _ are themselves
        ("resource=~_", ["robot$second+x_y"]),
        ("resource=~%25", ["50%off"]),
        ("op_time=[200~400]", ["50%off", "robot$second+x_y", "robot$first+ci"]),
        ("op_time=[~200]", ["robot$first+ci", "first"]),
        ("op_time=[1970-01-01T00:08:20~]", ["second/3"]),
        ("op_time=300", ["robot$second+x_y"]),
        ("operation={update delete}", ["second/3", "robot$second+x_y"]),
        ("operation={}", []),
        ("operation=(create create),resource_type=robot", ["robot$first+ci"]),
        ("operation=(create delete)", []),
        ("operation=()", ["second/3", "50%off", "robot$second+x_y", "robot$first+ci", "first"]),
        ("resource=[a~s]", ["robot$second+x_y", "robot$first+ci", "first"]),
        ("id=[2~3]", ["robot$second+x_y", "robot$first+ci"]),
        ("op_result=false", ["robot$second+x_y"]),
        ("op_result={true}", ["second/3", "50%off", "robot$first+ci", "first"]),
        ("op_desc=~robot: robot$second", ["robot$second+x_y"]),
        ("op_desc=create user: 50%off", ["50%off"]),
        ("username=a\x00", []),  # PostgreSQL cannot hold a NUL: nothing, as on SQLite
        ("resource=~\x00", []),
    ],
)
async def test_audit_queries_filter_in_the_database(
    store: Store, q: str, resources: list[str]
) -> None:
    await audit_log(store)
    assert await audited(store, q) == resources


async def test_audit_queries_scope_order_and_page(store: Store) -> None:
    first, second = await audit_log(store)
    assert await audited(store, f"project_id={first}") == ["robot$first+ci", "first"]
    assert await audited(store, project_id=second) == ["second/3", "robot$second+x_y"]
    # A condition never widens the scope.
    assert await audited(store, f"project_id={first}", project_id=second) == []
    # Code point order on both databases (PostgreSQL's default collation would not say so).
    assert await audited(store, sort="username,-op_time") == [
        "robot$first+ci", "50%off", "first", "robot$second+x_y", "second/3"
    ]  # fmt: skip
    assert (await audited(store, sort="project_id,op_time"))[0] == "50%off"  # NULL first
    assert (await audited(store, sort="-project_id"))[-1] == "50%off"
    page, total = await store.list_audit(1, 2, AUDIT_EXT_KEYS.query("op_result=true"))
    assert total == 4 and [e.resource for e in page] == ["50%off", "robot$first+ci"]
    assert page[0].project_id is None and page[1].project_id == first
    # Members see their projects' entries, for the roles given.
    alice = await store.create_user(new_user("alice"), 1)
    await store.add_member(first, alice.id, Role.GUEST, 1)
    await store.add_member(second, alice.id, Role.LIMITED_GUEST, 1)
    roles = (Role.GUEST, Role.DEVELOPER)
    assert await audited(store, member_id=alice.id, roles=roles) == ["robot$first+ci", "first"]
    assert await audited(store, member_id=alice.id) == []


async def test_audit_queries_as_long_as_a_request_can_carry(store: Store) -> None:
    await audit_log(store)
    many = " ".join(str(i) for i in range(1, 3000))
    assert await audited(store, f"id=({' '.join(['2'] * 3000)})") == ["robot$first+ci"]
    assert await audited(store, f"id=({many})") == []
    assert len(await audited(store, f"id={{{many}}}")) == 5
    assert len(await audited(store, sort=",".join(["id", "-op_time"] * 1500))) == 5


async def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.create_project("half", False, None, 1)
            raise RuntimeError("stop")
    assert await store.find_project("half") is None
    async with store.transaction():
        await store.create_project("whole", False, None, 1)
    assert await store.find_project("whole") is not None
    await store.ping()


async def test_a_users_sessions_keep_only_the_newest(store: Store) -> None:
    alice = await store.create_user(new_user("alice"), 1)
    bob = await store.create_user(new_user("bob"), 1)
    await store.add_session("b1", bob.id, 100, 300, keep=2)
    for i in range(4):
        await store.add_session(f"a{i}", alice.id, 100, 300, keep=2)
    kept = [h for h in ("a0", "a1", "a2", "a3") if await store.find_session(h, 150)]
    assert kept == ["a2", "a3"]
    assert await store.find_session("b1", 150) is not None


# ---- robot federation ------------------------------------------------------------------------

GITHUB = "https://token.actions.githubusercontent.com"
OWNER = (Condition("repository_owner_id", ("1234567",)),)


def new_issuer(name: str = "github", url: str = GITHUB, **extra: object) -> NewIssuer:
    fields: dict[str, object] = {
        "name": name,
        "url": url,
        "audiences": ("registry.example",),
        "jwks_file": None,
        "ca_file": None,
        "max_token_lifetime": 600,
        "created_at": 5,
        **extra,
    }
    return NewIssuer(**fields)  # type: ignore[arg-type]


async def test_issuers_are_added_found_listed_and_unique(store: Store) -> None:
    github = await store.add_issuer(new_issuer(audiences=("a", "b"), jwks_file="/k.json"))
    gitlab = await store.add_issuer(new_issuer("gitlab", "https://gitlab.com"))
    assert (github.name, github.url, github.audiences) == ("github", GITHUB, ("a", "b"))
    assert (github.jwks_file, github.ca_file, github.max_token_lifetime) == ("/k.json", None, 600)
    assert await store.find_issuer("github") == github
    assert await store.find_issuer_by_url(GITHUB) == github
    # The URL is compared exactly: a token's iss must be the issuer's, byte for byte.
    for other in (GITHUB + "/", GITHUB.upper(), "https://token.actions.githubusercontent.com."):
        assert await store.find_issuer_by_url(other) is None
    assert [i.name for i in await store.list_issuers()] == ["github", "gitlab"]
    assert gitlab.id != github.id
    with pytest.raises(Conflict):
        await store.add_issuer(new_issuer("github", "https://other.example"))
    with pytest.raises(Conflict):
        await store.add_issuer(new_issuer("other", GITHUB))


async def test_an_issuer_that_rules_use_is_not_removed(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    issuer = await store.add_issuer(new_issuer())
    await store.add_issuer(new_issuer("spare", "https://spare.example"))
    one = await store.create_robot(new_robot("one", p.id))
    two = await store.create_robot(new_robot("two", p.id))
    for robot in (one, two, two):
        await store.add_federation_rule(robot.id, NewRule(issuer.id, OWNER), 10, 20)
    assert await store.delete_issuer("github") == IssuerRemoval(False, 2)
    assert await store.find_issuer("github") is not None
    assert await store.delete_issuer("spare") == IssuerRemoval(True)
    assert await store.delete_issuer("spare") == IssuerRemoval(False)
    await store.delete_robot(one.id)
    await store.replace_federation_rules(two.id, [], 11)
    assert await store.delete_issuer("github") == IssuerRemoval(True)
    assert await store.list_issuers() == []


async def test_rules_are_replaced_added_and_removed(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    gitlab = await store.add_issuer(new_issuer("gitlab", "https://gitlab.com"))
    ref = Condition("ref", ("refs/heads/main", "refs/tags/v*"))
    nested = Condition("kubernetes.io.namespace", ("ci-\u00e9",))
    rules = await store.replace_federation_rules(
        robot.id, [NewRule(github.id, (*OWNER, ref)), NewRule(gitlab.id, (nested,))], 20
    )
    assert [(r.robot_id, r.issuer, r.conditions, r.created_at) for r in rules] == [
        (robot.id, "github", (*OWNER, ref), 20),
        (robot.id, "gitlab", (nested,), 20),
    ]
    assert await store.list_federation_rules(robot.id) == rules
    added = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 30, 20)
    assert added.conditions == OWNER and added.created_at == 30
    assert [r.id for r in await store.list_federation_rules(robot.id)] == [
        rules[0].id, rules[1].id, added.id
    ]  # fmt: skip
    assert await store.delete_federation_rule(robot.id, rules[0].id, 40)
    assert not await store.delete_federation_rule(robot.id, rules[0].id, 40)
    other = await store.create_robot(new_robot("other", p.id))
    assert not await store.delete_federation_rule(other.id, added.id, 40)  # not its rule
    assert [r.id for r in await store.list_federation_rules(robot.id)] == [rules[1].id, added.id]
    updated = await store.find_robot_by_id(robot.id)
    assert updated is not None and updated.update_time == 40
    # Deleting the robot takes its rules.
    await store.delete_robot(robot.id)
    assert await store.list_federation_rules(robot.id) == []
    with pytest.raises(RobotNotFound):
        await store.replace_federation_rules(robot.id, [], 50)
    with pytest.raises(RobotNotFound):
        await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 50, 20)


async def test_the_same_rules_again_change_nothing(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    first = await store.replace_federation_rules(robot.id, [NewRule(github.id, OWNER)], 20)
    await store.add_refresh_token("f", "docker", 21, robot_id=robot.id, keep=5, federated=True)
    again = await store.replace_federation_rules(robot.id, [NewRule(github.id, OWNER)], 30)
    assert again == first  # same ids, same times
    assert await store.find_refresh_token("f") is not None


async def test_rule_changes_revoke_only_federated_refresh_tokens(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    plain = await store.add_refresh_token("s", "docker", 1, robot_id=robot.id, keep=9)
    assert not plain.federated
    federated = await store.add_refresh_token(
        "f1", "docker", 2, robot_id=robot.id, keep=9, federated=True
    )
    assert federated.federated and await store.find_refresh_token("f1") == federated
    assert not (await store.find_refresh_token("s") or plain).federated
    await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 3, 20)
    assert await store.find_refresh_token("f1") is None
    assert await store.find_refresh_token("s") is not None
    await store.add_refresh_token("f2", "docker", 3, robot_id=robot.id, keep=9, federated=True)
    sub = (Condition("sub", ("repo:acme/app:*",)),)
    (rule,) = await store.replace_federation_rules(robot.id, [NewRule(github.id, sub)], 4)
    assert await store.find_refresh_token("f2") is None
    await store.add_refresh_token("f3", "docker", 3, robot_id=robot.id, keep=9, federated=True)
    assert await store.delete_federation_rule(robot.id, rule.id, 5)
    assert await store.find_refresh_token("f3") is None
    assert await store.find_refresh_token("s") is not None


async def test_a_robot_holds_at_most_the_limit_of_rules(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    for _ in range(3):
        await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 3)
    with pytest.raises(Conflict, match="at most 3"):
        await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 3)
    assert len(await store.list_federation_rules(robot.id)) == 3


async def test_attack_rules_added_at_once_never_pass_the_limit(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    results = await asyncio.gather(
        *(store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 5) for _ in range(12)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert len(await store.list_federation_rules(robot.id)) == 5


async def test_attack_parallel_replacements_leave_one_of_the_rule_sets(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    github = await store.add_issuer(new_issuer())
    sets = [
        [NewRule(github.id, (Condition("sub", (f"set{i}-rule{j}",)),)) for j in range(1 + i % 3)]
        for i in range(10)
    ]
    await asyncio.gather(*(store.replace_federation_rules(robot.id, s, 1) for s in sets))
    found = [r.conditions for r in await store.list_federation_rules(robot.id)]
    assert found in [[rule.conditions for rule in s] for s in sets]


async def test_a_rule_naming_a_removed_issuer_is_not_stored(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    with pytest.raises(NotFound):
        await store.add_federation_rule(robot.id, NewRule(9999, OWNER), 1, 20)
    with pytest.raises(NotFound):
        await store.replace_federation_rules(robot.id, [NewRule(9999, OWNER)], 1)
    assert await store.list_federation_rules(robot.id) == []


async def test_secret_login_is_turned_off_only_for_a_robot_with_rules(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    assert robot.secret_login
    github = await store.add_issuer(new_issuer())
    with pytest.raises(Conflict, match="no federation rules"):
        await store.set_secret_login(robot.id, False, 2)
    rule = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 3, 20)
    await store.add_refresh_token("s", "docker", 3, robot_id=robot.id, keep=9)
    await store.add_refresh_token("f", "docker", 3, robot_id=robot.id, keep=9, federated=True)
    assert await store.set_secret_login(robot.id, False, 4)
    found = await store.find_robot_by_id(robot.id)
    assert found is not None and not found.secret_login and found.update_time == 4
    # Its tokens from secret logins end; those from federated logins stay.
    assert await store.find_refresh_token("s") is None
    assert await store.find_refresh_token("f") is not None
    # Its last rule stays while the secret login is off.
    with pytest.raises(Conflict, match="secret login is off"):
        await store.delete_federation_rule(robot.id, rule.id, 5)
    with pytest.raises(Conflict, match="secret login is off"):
        await store.replace_federation_rules(robot.id, [], 5)
    assert [r.id for r in await store.list_federation_rules(robot.id)] == [rule.id]
    assert await store.find_refresh_token("f") is not None  # nothing changed
    assert await store.set_secret_login(robot.id, True, 6)
    assert await store.delete_federation_rule(robot.id, rule.id, 7)
    assert not await store.set_secret_login(9999, True, 8)


async def test_attack_secret_login_off_and_removing_the_last_rule_at_once(store: Store) -> None:
    # Whichever runs first, the robot never ends with its secret login off and no rule.
    p = await store.create_project("p", False, None, 1)
    github = await store.add_issuer(new_issuer())
    for i in range(6):
        robot = await store.create_robot(new_robot(f"r{i}", p.id))
        rule = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 20)
        await asyncio.gather(
            store.set_secret_login(robot.id, False, 2),
            store.delete_federation_rule(robot.id, rule.id, 2),
            return_exceptions=True,
        )
        found = await store.find_robot_by_id(robot.id)
        assert found is not None
        assert found.secret_login or await store.list_federation_rules(robot.id)


async def test_robot_changes_may_set_secret_login(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    assert await store.update_robot(robot.id, 2, RobotChanges(secret_login=False))
    found = await store.find_robot_by_id(robot.id)
    assert found is not None and not found.secret_login
    assert await store.update_robot(robot.id, 3, RobotChanges(description="d"))
    found = await store.find_robot_by_id(robot.id)
    assert found is not None and not found.secret_login


async def test_failures_keep_the_newest_escaped(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    other = await store.create_robot(new_robot("other", p.id))
    await store.add_federation_failure(other.id, 1, "github", "x", "y")
    for i in range(KEEP_FAILURES + 5):
        await store.add_federation_failure(robot.id, 100 + i, "github", f"sub{i}", f"reason {i}")
    failures = await store.list_federation_failures(robot.id)
    assert len(failures) == KEEP_FAILURES
    assert [f.at for f in failures] == [100 + i for i in range(KEEP_FAILURES + 4, 4, -1)]
    newest = failures[0]
    assert (newest.robot_id, newest.issuer, newest.subject) == (robot.id, "github", "sub54")
    assert len(await store.list_federation_failures(other.id)) == 1
    # A token's sub is the caller's: NUL, escapes and kilobytes are stored harmless.
    await store.add_federation_failure(robot.id, 200, "gith\u0000ub", "\x1b[2J" + "s" * 5000, "r")
    stored = (await store.list_federation_failures(robot.id))[0]
    assert stored.issuer == "gith\\x00ub"
    assert stored.subject.startswith("\\x1b[2J") and len(stored.subject) <= MAX_AUDIT_FIELD
    # Text escaped by the service is kept as it is: escaped once, not twice.
    subject = '<img src=x onerror=alert(1)> &amp; "q" \\x41 \\x1b'
    reason = "claim 'sub' did not match: it is '\\'q\\' \\\\x41 &amp;'"
    await store.add_federation_failure(robot.id, 250, "github", subject, reason)
    stored = (await store.list_federation_failures(robot.id))[0]
    assert (stored.subject, stored.reason) == (subject, reason)
    # A robot deleted meanwhile records nothing, and raises nothing.
    await store.delete_robot(robot.id)
    await store.add_federation_failure(robot.id, 300, "github", "s", "r")
    assert await store.list_federation_failures(robot.id) == []


async def test_logins_keep_the_newest_with_the_workload(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    robot = await store.create_robot(new_robot("ci", p.id))
    who = Identity(
        issuer="github", iss="https://token.actions.githubusercontent.com", sub="repo:a/b:ref:x",
        aud="tokenserver", rule_id=3, expires_at=2_000_000_000, jti="j", repository="a/b",
        ref="refs/heads/main", sha="f" * 40, run_id="42",
    )  # fmt: skip
    for i in range(KEEP_LOGINS + 3):
        await store.add_federation_login(robot.id, 100 + i, replace(who, jti=f"j{i}"))
    logins = await store.list_federation_logins(robot.id)
    assert len(logins) == KEEP_LOGINS
    assert logins[0].at == 100 + KEEP_LOGINS + 2 and logins[0].robot_id == robot.id
    assert logins[0].identity == replace(who, jti=f"j{KEEP_LOGINS + 2}")
    # Bounded however long the (already escaped) text is.
    await store.add_federation_login(robot.id, 300, replace(who, sub="s" * 5000))
    assert len((await store.list_federation_logins(robot.id))[0].identity.sub) <= MAX_AUDIT_FIELD
    await store.delete_robot(robot.id)
    await store.add_federation_login(robot.id, 400, who)
    assert await store.list_federation_logins(robot.id) == []


async def test_a_jti_is_used_once_until_it_expires(store: Store) -> None:
    github = await store.add_issuer(new_issuer())
    gitlab = await store.add_issuer(new_issuer("gitlab", "https://gitlab.com"))
    assert await store.use_jti(github.url, "j1", 200, 100)
    assert not await store.use_jti(github.url, "j1", 200, 150)
    assert await store.use_jti(gitlab.url, "j1", 200, 150)  # per issuer
    # Hostile jtis are stored as hashes: NUL, kilobytes, a lone surrogate.
    for jti in ("a\u0000b", "x" * 9000, "\ud800"):
        assert await store.use_jti(github.url, jti, 300, 150)
        assert not await store.use_jti(github.url, jti, 300, 150)
    # Once expired it is forgotten (the token it came with is refused by then).
    assert await store.use_jti(github.url, "j1", 400, 200)
    # Kept by the issuer's URL: removing and adding the issuer again forgets nothing.
    assert await store.use_jti(gitlab.url, "j3", 400, 200)
    assert (await store.delete_issuer("gitlab")).removed
    await store.add_issuer(new_issuer("gitlab", "https://gitlab.com"))
    assert not await store.use_jti(gitlab.url, "j3", 400, 200)


async def test_attack_one_jti_presented_at_once_is_used_once(store: Store) -> None:
    github = await store.add_issuer(new_issuer())
    results = await asyncio.gather(*(store.use_jti(github.url, "same", 500, 100) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


def workload(rule_id: int, sub: str = "repo:acme/app:ref:refs/heads/main") -> Identity:
    return Identity(
        issuer="github", iss=GITHUB, sub=sub, aud="registry.example", rule_id=rule_id,
        expires_at=500, jti="j-1", repository="acme/app", ref="refs/heads/main", run_id="9",
    )  # fmt: skip


async def test_temporary_secrets_are_stored_found_listed_kept_and_revoked(store: Store) -> None:
    p = await store.create_project("p", False, None, 1)
    github = await store.add_issuer(new_issuer())
    robot = await store.create_robot(new_robot("ci", p.id))
    other = await store.create_robot(new_robot("other", p.id))
    rule = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 20)
    other_rule = await store.add_federation_rule(other.id, NewRule(github.id, OWNER), 1, 20)
    added = await store.add_temporary_secret("h1", robot.id, workload(rule.id), 10, 100, keep=3)
    assert added is not None and (added.robot_id, added.created_at, added.expires_at) == (
        robot.id, 10, 100,
    )  # fmt: skip
    assert await store.find_temporary_secret("h1") == added
    assert added.identity == workload(rule.id)  # every field comes back
    assert await store.find_temporary_secret("h2") is None
    # The robot keeps its `keep` newest; another robot's are its own.
    elsewhere = workload(other_rule.id)
    assert await store.add_temporary_secret("o1", other.id, elsewhere, 10, 100, keep=3)
    for i in range(2, 5):
        await store.add_temporary_secret(f"h{i}", robot.id, workload(rule.id), 10 + i, 100, keep=3)
    assert [s.created_at for s in await store.list_temporary_secrets(robot.id, 20)] == [14, 13, 12]
    assert await store.find_temporary_secret("h1") is None
    # Listed while live; expired ones are forgotten by the next one stored (any robot's).
    assert await store.list_temporary_secrets(robot.id, 100) == []
    await store.add_temporary_secret("o2", other.id, elsewhere, 100, 200, keep=3)
    assert await store.find_temporary_secret("h4") is None
    assert await store.find_temporary_secret("o1") is None
    # A change of the robot's rules revokes them; the same rules again do not.
    await store.add_temporary_secret("h5", robot.id, workload(rule.id), 110, 300, keep=3)
    await store.replace_federation_rules(robot.id, [NewRule(github.id, OWNER)], 120)
    assert await store.find_temporary_secret("h5") is not None
    (rule,) = await store.replace_federation_rules(
        robot.id, [NewRule(github.id, (Condition("repository_id", ("7",)),))], 130
    )
    assert await store.find_temporary_secret("h5") is None
    await store.add_temporary_secret("h6", robot.id, workload(rule.id), 140, 300, keep=3)
    second = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 150, 20)
    assert await store.find_temporary_secret("h6") is None
    await store.add_temporary_secret("h7", robot.id, workload(rule.id), 160, 300, keep=3)
    assert await store.delete_federation_rule(robot.id, second.id, 170)
    assert await store.find_temporary_secret("h7") is None
    # Revoked on demand (a disabled robot, a new secret), and with the robot.
    await store.add_temporary_secret("h8", robot.id, workload(rule.id), 180, 300, keep=3)
    assert await store.delete_temporary_secrets(robot.id) == 1
    assert await store.find_temporary_secret("h8") is None
    assert await store.find_temporary_secret("o2") is not None
    await store.delete_robot(other.id)
    assert await store.find_temporary_secret("o2") is None


async def test_a_temporary_secret_needs_its_robot_enabled_and_its_rule_standing(
    store: Store,
) -> None:
    p = await store.create_project("p", False, None, 1)
    github = await store.add_issuer(new_issuer())
    robot = await store.create_robot(new_robot("ci", p.id))
    rule = await store.add_federation_rule(robot.id, NewRule(github.id, OWNER), 1, 20)
    # The rule that admitted the workload was removed (or replaced) meanwhile.
    gone = workload(rule.id + 99)
    assert await store.add_temporary_secret("a", robot.id, gone, 2, 9, keep=3) is None
    assert await store.update_robot(robot.id, 3, RobotChanges(disabled=True))
    assert await store.add_temporary_secret("b", robot.id, workload(rule.id), 4, 9, keep=3) is None
    assert await store.add_temporary_secret("c", 9999, workload(rule.id), 4, 9, keep=3) is None
    assert await store.list_temporary_secrets(robot.id, 5) == []
    assert await store.update_robot(robot.id, 6, RobotChanges(disabled=False))
    assert await store.add_temporary_secret("d", robot.id, workload(rule.id), 7, 9, keep=3)


async def test_attack_a_rule_change_and_a_new_temporary_secret_at_once(store: Store) -> None:
    # Whichever runs first, no secret outlives the change of the rule that admitted it.
    p = await store.create_project("p", False, None, 1)
    github = await store.add_issuer(new_issuer())
    robot = await store.create_robot(new_robot("ci", p.id))
    for i in range(6):
        (rule,) = await store.replace_federation_rules(
            robot.id, [NewRule(github.id, (Condition("repository_id", (str(i),)),))], 2
        )
        await asyncio.gather(
            store.add_temporary_secret(f"s{i}", robot.id, workload(rule.id), 3, 99, keep=20),
            store.replace_federation_rules(
                robot.id, [NewRule(github.id, (Condition("repository_id", ("x",)),))], 3
            ),
        )
        assert await store.find_temporary_secret(f"s{i}") is None


async def test_removing_an_issuer_keeps_its_jtis_used(store: Store) -> None:
    """Changing an issuer is removing and adding it again: its tokens exchanged before stay
    used (an outside review)."""
    github = await store.add_issuer(new_issuer())
    assert await store.use_jti(github.url, "j", 500, 100)
    assert await store.delete_issuer("github") == IssuerRemoval(True)
    again = await store.add_issuer(new_issuer())
    assert not await store.use_jti(again.url, "j", 500, 100)


# ---- shared lockouts ----------------------------------------------------------------------

NOW = 1_700_000_000.0  # well inside a period: failures a few seconds apart share its base


async def test_failures_add_up_and_decay(store: Store) -> None:
    key = lockout_key("pair", "robot$p+ci\x00192.0.2.1")
    for i in range(3):
        row = await store.add_lockout_failure(key, NOW + i)
    assert row.key == key and row.locked_until == 0
    assert row.score(NOW + 2) == pytest.approx(1 + 0.5 ** (1 / 300) + 0.5 ** (2 / 300))
    assert row.score(NOW + 2 + HALF_LIFE) == pytest.approx(row.score(NOW + 2) / 2)
    assert await store.find_lockouts([key, lockout_key("addr", "192.0.2.1")]) == [row]
    assert await store.find_lockouts([]) == []


async def test_a_score_is_carried_into_the_next_period_and_forgotten_after(store: Store) -> None:
    key = lockout_key("addr", "192.0.2.1")
    end = (NOW // BASE_SPAN + 1) * BASE_SPAN  # the next period begins
    await store.add_lockout_failure(key, end - 1)
    row = await store.add_lockout_failure(key, end + 1)
    assert row.score(end + 1) == pytest.approx(1 + 0.5 ** (2 / HALF_LIFE))
    # A replica whose clock is a period behind adds to the row as it stands.
    row = await store.add_lockout_failure(key, end - 2)
    assert row.score(end + 1) == pytest.approx(1 + 0.5 ** (2 / HALF_LIFE) + 0.5 ** (3 / HALF_LIFE))
    # Two periods on, what there was has decayed past counting: it starts afresh.
    row = await store.add_lockout_failure(key, end + 2 * BASE_SPAN + 5)
    assert row.score(end + 2 * BASE_SPAN + 5) == pytest.approx(1)


async def test_attack_failures_added_at_once_all_count(store: Store) -> None:
    key = lockout_key("addr", "192.0.2.9")
    await asyncio.gather(*(store.add_lockout_failure(key, NOW) for _ in range(20)))
    (row,) = await store.find_lockouts([key])
    assert row.score(NOW) == pytest.approx(20)


async def test_lockouts_only_extend_and_are_listed_and_cleared(store: Store) -> None:
    a, b, c = (lockout_key("addr", f"192.0.2.{i}") for i in range(3))
    for key in (a, b, c):
        await store.add_lockout_failure(key, NOW)
    await store.extend_lockout(a, NOW + 100)
    await store.extend_lockout(a, NOW + 50)  # shorter: kept as it was
    await store.extend_lockout(b, NOW + 10)
    await store.extend_lockout(lockout_key("addr", "nobody"), NOW + 10)  # no row: none made
    assert [(r.key, r.locked_until) for r in await store.list_lockouts(NOW, 10)] == [
        (a, NOW + 100), (b, NOW + 10),
    ]  # fmt: skip
    assert [r.key for r in await store.list_lockouts(NOW + 20, 10)] == [a]
    assert len(await store.list_lockouts(NOW, 1)) == 1
    await store.clear_lockout(a)
    assert {r.key for r in await store.find_lockouts([a, b, c])} == {b, c}
    # Adding a failure keeps the lockout.
    row = await store.add_lockout_failure(b, NOW + 1)
    assert row.locked_until == NOW + 10


async def test_running_checks_are_counted_for_others_until_they_end_or_go_stale(
    store: Store,
) -> None:
    pair, other_pair = lockout_key("pair", "a\x00ip"), lockout_key("pair", "b\x00ip")
    address = lockout_key("addr", "ip")
    assert await store.begin_check("c1", pair, address, NOW) == (0, 0)
    assert await store.begin_check("c2", pair, address, NOW) == (1, 1)
    assert await store.begin_check("c3", other_pair, address, NOW) == (0, 2)
    await store.end_check("c1")
    assert await store.begin_check("c4", pair, address, NOW) == (1, 2)
    # A check begun CHECK_STALE_SECONDS ago belongs to a process that died.
    later = NOW + CHECK_STALE_SECONDS
    assert await store.begin_check("c5", pair, address, later) == (0, 0)
    await store.prune_lockouts(later)
    assert await store.begin_check("c6", pair, address, NOW + 1) == (1, 1)  # only c5 is left


async def test_scores_decayed_to_nothing_are_pruned_unless_locked(store: Store) -> None:
    old, locked, recent = (lockout_key("addr", name) for name in ("old", "locked", "recent"))
    for key in (old, locked):
        await store.add_lockout_failure(key, NOW - 4 * BASE_SPAN)
    await store.extend_lockout(locked, NOW + 60)
    await store.add_lockout_failure(recent, NOW - 10)
    await store.prune_lockouts(NOW)
    assert {r.key for r in await store.find_lockouts([old, locked, recent])} == {locked, recent}


@pytest.mark.parametrize("text", ["a\x00b", "x" * 9000, "\ud800", "robot$p+ci\x00::1"])
async def test_attack_hostile_names_make_storable_lockout_keys(store: Store, text: str) -> None:
    key = lockout_key("pair", text)
    assert len(key) == 32 and key != lockout_key("addr", text)
    row = await store.add_lockout_failure(key, NOW)
    assert await store.find_lockouts([key]) == [row]


# ---- webhooks ----------------------------------------------------------------------------


async def test_count_webhook_policies_with_auth_headers(store: Store) -> None:
    """Policies of every project and of the system, each counted once, however many of its
    targets have a header; a target without one does not count."""
    assert await store.count_webhook_policies_with_auth_headers() == 0
    project = await store.create_project("alpha", False, None, 10)
    plain = Target("http://127.0.0.1:9/plain")

    def policy(project_id: int | None, name: str, *targets: Target) -> NewWebhookPolicy:
        return NewWebhookPolicy(project_id, name, "", targets, ("ROBOT_CREATED",), True)

    for row in (
        policy(project.id, "none", plain),
        policy(project.id, "one", plain, Target("http://127.0.0.1:9/a", "v1:sealed-a")),
        policy(None, "two", Target("http://127.0.0.1:9/b", "v1:b"), Target("http://h/", "v1:c")),
    ):
        assert await store.add_webhook_policy(row, 20, 10) is not None
    assert await store.count_webhook_policies_with_auth_headers() == 2
