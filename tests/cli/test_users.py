"""`tokenserver user ...`: a lost password (the admin's included) is set again from the
command line, which acts as the system administrator; users are created, listed, made system
admins and deleted there too; and what `init` says about the admin it creates, or refuses to
create."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST_KDF_COST, call_cli, initialised
from tokenserver import cli
from tokenserver.config import load_settings
from tokenserver.domain.roles import Role
from tokenserver.domain.secrets import Secret, verify_secret
from tokenserver.errors import Unauthorized
from tokenserver.runtime import open_runtime

OLD = "Adm1nPassword"
NEW = "N3wPassword"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(tmp_path / "tokenserver.toml", env={"TOKENSERVER_ADMIN_PASSWORD": OLD})


def stored_hash(config: Path, username: str = "admin") -> str:
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        row = db.execute("SELECT password_hash FROM users WHERE username = ?", (username,))
        stored: str = row.fetchone()[0]
    return stored


def audit(config: Path) -> list[tuple[str, str, str, str, str]]:
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        rows = db.execute(
            "SELECT operator, operation, resource_type, resource, outcome FROM audit_log "
            "ORDER BY id DESC"
        )
        return list(rows.fetchall())


def set_password(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return call_cli(config, "user", "set-password", *args, stdin=stdin)


# ---- set-password ----------------------------------------------------------------------------


def test_set_password_from_stdin_replaces_a_lost_admin_password(config: Path) -> None:
    result = set_password(config, "admin", "--password", "-", stdin=f"{NEW}\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "password of 'admin' set" in result.stderr
    assert NEW not in result.stderr
    assert verify_secret(NEW, stored_hash(config))
    assert not verify_secret(OLD, stored_hash(config))
    assert audit(config)[0] == ("local-admin", "update", "user", "admin/password", "success")
    assert NEW not in repr(audit(config))


def test_set_password_ends_the_users_sessions_and_refresh_tokens(config: Path) -> None:
    """As a password change through the API does: whoever held the lost password (or a
    session opened with it) is out."""
    settings = load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)

    async def before() -> Secret:
        async with open_runtime(settings, sign=False) as rt:
            session, admin = await rt.sessions.login("admin", Secret(OLD), "127.0.0.1")
            assert admin.user is not None
            await rt.store.add_refresh_token("digest", "docker", 1, user_id=admin.user.id, keep=5)
            return session

    session = asyncio.run(before())
    assert set_password(config, "admin", "--password", "-", stdin=NEW).returncode == 0

    async def after() -> None:
        async with open_runtime(settings, sign=False) as rt:
            with pytest.raises(Unauthorized):
                await rt.sessions.authenticate(session)
            admin = await rt.store.find_user("admin")
            assert admin is not None
            assert await rt.store.list_refresh_tokens(user_id=admin.id) == []
            _, again = await rt.sessions.login("admin", Secret(NEW), "127.0.0.1")
            assert again.user is not None and again.user.username == "admin"

    asyncio.run(after())


def test_set_password_asks_twice_on_a_terminal(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([NEW, NEW])
    prompts: list[str] = []

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", ask)
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert (
        cli.main(["user", "set-password", "admin", "--config", str(config)], kdf_cost=FAST_KDF_COST)
        == 0
    )
    assert prompts == ["new password for 'admin': ", "the same again: "]
    assert verify_secret(NEW, stored_hash(config))


def test_set_password_refuses_two_different_answers(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([NEW, NEW + "x"])

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", Terminal())
    status = cli.main(
        ["user", "set-password", "admin", "--config", str(config)], kdf_cost=FAST_KDF_COST
    )
    assert status == 2
    assert "the two passwords differ; nothing changed" in capsys.readouterr().err
    assert verify_secret(OLD, stored_hash(config))


def test_attack_a_password_on_the_command_line_is_refused(config: Path) -> None:
    """It would be visible to every user in `ps` and stay in the shell's history."""
    result = set_password(config, "admin", "--password", NEW)
    assert result.returncode == 2
    assert "--password takes only '-'" in result.stderr
    assert NEW not in result.stderr
    assert verify_secret(OLD, stored_hash(config))


def test_without_a_terminal_or_stdin_nothing_is_guessed(config: Path) -> None:
    result = set_password(config, "admin", stdin=f"{NEW}\n")
    assert result.returncode == 2
    assert "give it on stdin with --password -" in result.stderr
    assert verify_secret(OLD, stored_hash(config))


@pytest.mark.parametrize("weak", ["", "short1A", "alllowercase1", "NoDigitsHere"])
def test_set_password_applies_the_password_rule_and_audits_the_refusal(
    config: Path, weak: str
) -> None:
    result = set_password(config, "admin", "--password", "-", stdin=f"{weak}\n")
    assert result.returncode == 1
    assert "the password must be 8-128 characters long" in result.stderr
    assert verify_secret(OLD, stored_hash(config))
    assert audit(config)[0][3:] == ("admin/password", "failure: BAD_REQUEST")


@pytest.mark.parametrize("name", ["nobody", "ad min", "\udcff\x1b[2J", "x" * 10_000])
def test_attack_unknown_or_impossible_user_names_are_not_found(config: Path, name: str) -> None:
    """A name no user can have (escapes, a huge one) is looked up nowhere and shown escaped;
    bytes that are not UTF-8 are a usage error before anything is looked up."""
    result = set_password(config, name, "--password", "-", stdin=NEW)
    assert "\x1b" not in result.stderr
    assert "Traceback" not in result.stderr
    assert verify_secret(OLD, stored_hash(config))
    if not name.isascii() and "\udcff" in name:
        assert result.returncode == 2 and "not valid UTF-8" in result.stderr
        return
    assert result.returncode == 1
    assert "not found" in result.stderr
    assert audit(config)[0][4] == "failure: NOT_FOUND"


def test_set_password_for_another_user(config: Path) -> None:
    settings = load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)

    async def create() -> None:
        from tokenserver.domain.models import LOCAL

        async with open_runtime(settings, sign=False) as rt:
            await rt.users.create(LOCAL, "alice", "Al1cePassword")

    asyncio.run(create())
    assert set_password(config, "alice", "--password", "-", stdin=NEW).returncode == 0
    assert verify_secret(NEW, stored_hash(config, "alice"))
    assert verify_secret(OLD, stored_hash(config, "admin"))


# ---- init and the admin ----------------------------------------------------------------------


def test_init_says_it_created_the_admin_with_the_given_password(tmp_path: Path) -> None:
    """It used to say "the system admin 'admin' exists" right after creating it."""
    config = tmp_path / "tokenserver.toml"
    first = call_cli(config, "init", env={"TOKENSERVER_ADMIN_PASSWORD": OLD})
    assert first.returncode == 0, first.stderr
    assert (
        "created the system admin 'admin' with the password in TOKENSERVER_ADMIN_PASSWORD"
        in first.stderr
    )
    assert "exists" not in first.stderr
    assert OLD not in first.stderr + first.stdout
    again = call_cli(config, "init", env={"TOKENSERVER_ADMIN_PASSWORD": NEW})
    assert again.returncode == 0, again.stderr
    assert "the system admin 'admin' exists" in again.stderr
    assert "TOKENSERVER_ADMIN_PASSWORD is not used" in again.stderr
    assert "tokenserver user set-password admin" in again.stderr
    assert "created the system admin" not in again.stderr
    assert verify_secret(OLD, stored_hash(config))


def test_init_with_a_generated_password_points_at_set_password(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    result = call_cli(config, "init")
    assert "created the system admin 'admin' with password: " in result.stderr
    assert "change it with 'tokenserver user set-password admin'" in result.stderr
    assert "the system admin 'admin' exists" in call_cli(config, "init").stderr


@pytest.mark.parametrize("weak", ["weak", "", "longbutnodigits"])
def test_init_refuses_a_weak_admin_password_before_writing_anything(
    tmp_path: Path, weak: str
) -> None:
    """It used to write the config, the key, the certificate and the database first, and
    then not say which setting was weak."""
    directory = tmp_path / "etc"
    result = call_cli(
        directory / "tokenserver.toml", "init", env={"TOKENSERVER_ADMIN_PASSWORD": weak}
    )
    assert result.returncode == 2
    assert "tokenserver: TOKENSERVER_ADMIN_PASSWORD: the password must be 8-128" in result.stderr
    assert not directory.exists()


# ---- create, list, set-sysadmin, delete --------------------------------------------------------

BOB = "B0bPassword"


def user(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return call_cli(config, "user", *args, stdin=stdin)


def users(config: Path) -> dict[str, bool]:
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        return dict(db.execute("SELECT username, sysadmin = 1 FROM users ORDER BY id").fetchall())


def test_user_create_reads_the_password_from_stdin_and_prints_the_user(config: Path) -> None:
    result = user(
        config,
        "create",
        "bob",
        "--password",
        "-",
        "--email",
        "bob@example.com",
        "--realname",
        "Bob B",
        stdin=f"{BOB}\n",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["username"], shown["email"], shown["realname"]) == (
        "bob",
        "bob@example.com",
        "Bob B",
    )
    assert shown["sysadmin_flag"] is False
    assert "created user 'bob'" in result.stderr
    assert BOB not in result.stdout + result.stderr
    assert verify_secret(BOB, stored_hash(config, "bob"))
    assert audit(config)[0] == ("local-admin", "create", "user", "bob", "success")
    assert BOB not in repr(audit(config))
    again = user(config, "create", "bob", "--password", "-", stdin=BOB)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_user_create_asks_twice_on_a_terminal_and_makes_system_admins(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([BOB, BOB])

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", Terminal())
    argv = ["user", "create", "carol", "--sysadmin", "--config", str(config)]
    assert cli.main(argv, kdf_cost=FAST_KDF_COST) == 0
    assert users(config) == {"admin": True, "carol": True}


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (("--password", BOB), "", 2, "--password takes only '-'"),
        ((), BOB, 2, "give it on stdin with --password -"),
        (("--password", "-"), "weak", 1, "the password must be 8-128"),
        (("--password", "-", "--comment", "x" * 300), BOB, 1, "comment longer than 255"),
    ],
)
def test_attack_user_create_refuses_what_it_must(
    config: Path, args: tuple[str, ...], stdin: str, status: int, message: str
) -> None:
    result = user(config, "create", "dave", *args, stdin=stdin)
    assert result.returncode == status
    assert message in result.stderr
    assert BOB not in result.stderr
    assert "Traceback" not in result.stderr
    assert users(config) == {"admin": True}


def test_user_create_refuses_a_name_that_reads_as_a_robot(config: Path) -> None:
    result = user(config, "create", "robot$ci", "--password", "-", stdin=BOB)
    assert result.returncode == 1
    assert users(config) == {"admin": True}


def test_user_list_shows_every_user(config: Path) -> None:
    assert user(config, "create", "bob", "--password", "-", stdin=BOB).returncode == 0
    result = user(config, "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(r[1], r[2]) for r in rows] == [("admin", "sysadmin"), ("bob", "-")]
    listed = json.loads(user(config, "list", "--json").stdout)
    assert [u["username"] for u in listed] == ["admin", "bob"]
    assert "password" not in json.dumps(listed)


def test_set_sysadmin_promotes_demotes_and_keeps_the_last_one(config: Path) -> None:
    assert user(config, "create", "bob", "--password", "-", stdin=BOB).returncode == 0
    result = user(config, "set-sysadmin", "bob", "true")
    assert result.returncode == 0, result.stderr
    assert "'bob' is now a system admin" in result.stderr
    assert audit(config)[0] == ("local-admin", "update", "user", "bob/sysadmin", "success")
    assert user(config, "set-sysadmin", "admin", "false").returncode == 0
    assert users(config) == {"admin": False, "bob": True}
    result = user(config, "set-sysadmin", "bob", "false")
    assert result.returncode == 1
    assert "'bob' is the last system admin" in result.stderr
    assert users(config) == {"admin": False, "bob": True}
    assert user(config, "set-sysadmin", "admin", "true").returncode == 0
    result = user(config, "set-sysadmin", "bob", "false")
    assert result.returncode == 0 and "'bob' is no longer a system admin" in result.stderr
    assert user(config, "set-sysadmin", "nobody", "true").returncode == 1
    bad = user(config, "set-sysadmin", "bob", "yes")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_user_delete_removes_the_user_and_what_it_held(config: Path) -> None:
    settings = load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)
    assert user(config, "create", "bob", "--password", "-", stdin=BOB).returncode == 0

    async def before() -> Secret:
        from tokenserver.domain.models import LOCAL

        async with open_runtime(settings, sign=False) as rt:
            await rt.projects.create(LOCAL, "team")
            await rt.members.add(LOCAL, "team", Role.DEVELOPER, username="bob")
            session, bob = await rt.sessions.login("bob", Secret(BOB), "127.0.0.1")
            assert bob.user is not None
            await rt.store.add_refresh_token("digest", "docker", 1, user_id=bob.user.id, keep=5)
            return session

    session = asyncio.run(before())
    result = user(config, "delete", "bob")
    assert result.returncode == 0, result.stderr
    assert "deleted user 'bob'" in result.stderr
    assert audit(config)[0] == ("local-admin", "delete", "user", "bob", "success")
    assert users(config) == {"admin": True}

    async def after() -> None:
        async with open_runtime(settings, sign=False) as rt:
            with pytest.raises(Unauthorized):
                await rt.sessions.authenticate(session)
            assert await rt.store.find_refresh_token("digest") is None
            team = await rt.store.find_project("team")
            assert team is not None and await rt.store.list_members(team.id) == []

    asyncio.run(after())
    again = user(config, "delete", "bob")
    assert again.returncode == 1 and "not found" in again.stderr


def test_user_delete_refuses_admin_and_the_last_system_admin(config: Path) -> None:
    result = user(config, "delete", "admin")
    assert result.returncode == 1 and "'admin' cannot be deleted" in result.stderr
    assert (
        user(config, "create", "carol", "--sysadmin", "--password", "-", stdin=BOB).returncode == 0
    )
    assert user(config, "set-sysadmin", "admin", "false").returncode == 0
    result = user(config, "delete", "carol")
    assert result.returncode == 1
    assert "'carol' is the last system admin and cannot be deleted" in result.stderr
    assert audit(config)[0] == ("local-admin", "delete", "user", "carol", "failure: FORBIDDEN")
    assert users(config) == {"admin": False, "carol": True}


@pytest.mark.parametrize("name", ["nobody", "\udcff\x1b[2J", "x" * 10_000])
def test_attack_deleting_unknown_or_impossible_names(config: Path, name: str) -> None:
    result = user(config, "delete", name)
    # Bytes that are not UTF-8 are a usage error before anything is looked up.
    code, words = (2, "not valid UTF-8") if "\udcff" in name else (1, "not found")
    assert result.returncode == code
    assert words in result.stderr
    assert "\x1b" not in result.stderr and "Traceback" not in result.stderr
    assert users(config) == {"admin": True}


@pytest.mark.parametrize(
    "password", ["Passw0rd1\0zz", "Passw0rd1\0", "Pass\x1b[2Jw0rd1", "Passw0rd1\x85"]
)
def test_attack_a_password_with_a_control_character_is_refused(config: Path, password: str) -> None:
    """`user create --password -` took `Passw0rd1\\0zz`; no password holds a control character
    (C0, DEL, C1), and the message names the rule, never the password."""
    for command in (("create", "dave"), ("set-password", "admin")):
        result = user(config, *command, "--password", "-", stdin=f"{password}\n")
        assert result.returncode == 1, result.stderr
        assert "the password must not contain control characters" in result.stderr
        assert "Passw0rd1" not in result.stderr and "Traceback" not in result.stderr
        assert audit(config)[0][4] == "failure: BAD_REQUEST"
    assert users(config) == {"admin": True}
    assert verify_secret(OLD, stored_hash(config))
    if "\0" not in password:  # an environment variable cannot hold a NUL
        directory = config.parent / "other"
        env = {"TOKENSERVER_ADMIN_PASSWORD": password}
        result = call_cli(directory / "tokenserver.toml", "init", env=env)
        assert result.returncode == 2
        assert "TOKENSERVER_ADMIN_PASSWORD: the password must not contain" in result.stderr
        assert not directory.exists()


def test_the_local_admin_still_manages_other_system_admins(config: Path) -> None:
    """Only a system admin acts on a system admin: the command line is one."""
    assert (
        user(config, "create", "carol", "--sysadmin", "--password", "-", stdin=BOB).returncode == 0
    )
    assert set_password(config, "carol", "--password", "-", stdin=NEW).returncode == 0
    assert verify_secret(NEW, stored_hash(config, "carol"))
    assert user(config, "set-sysadmin", "admin", "false").returncode == 0
    assert user(config, "set-sysadmin", "admin", "true").returncode == 0
    assert user(config, "delete", "carol").returncode == 0
    assert users(config) == {"admin": True}
