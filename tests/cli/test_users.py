"""`tokenserver user set-password`: a lost password (the admin's included) is set again from
the command line, which acts as the system administrator; and what `init` says about the
admin it creates, or refuses to create."""

from __future__ import annotations

import asyncio
import getpass
import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST_KDF_COST, call_cli
from tokenserver import cli
from tokenserver.config import load_settings
from tokenserver.domain.secrets import Secret, verify_secret
from tokenserver.errors import Unauthorized
from tokenserver.runtime import open_runtime

OLD = "Adm1nPassword"
NEW = "N3wPassword"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tokenserver.toml"
    result = call_cli(path, "init", env={"TOKENSERVER_ADMIN_PASSWORD": OLD})
    assert result.returncode == 0, result.stderr
    return path


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
    """A name no user can have (bytes that are not UTF-8, escapes, a huge one) is looked up
    nowhere and shown escaped."""
    result = set_password(config, name, "--password", "-", stdin=NEW)
    assert result.returncode == 1
    assert "not found" in result.stderr
    assert "\x1b" not in result.stderr
    assert "Traceback" not in result.stderr
    assert verify_secret(OLD, stored_hash(config))
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
