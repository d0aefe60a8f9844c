"""Only `tokenserver init` creates a database. Any other command, run with a configuration
whose database does not exist (a forgotten TOKENSERVER_DATABASE_URL, a moved file), refuses
with exit 2 instead of "succeeding" into a new, empty database no server reads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_dispatch import subcommands
from tests.helpers import call_cli, free_port, initialised, run_cli
from tests.postgres import PostgresServer
from tokenserver import cli
from tokenserver.config import load_settings

# Every command that opens the database, with arguments that would succeed on one.
COMMANDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("serve",): (),
    ("project", "create"): ("p",),
    ("project", "list"): (),
    ("project", "delete"): ("p",),
    ("robot", "create"): ("--project", "p", "--name", "ci", "--permission", "repository:pull"),
    ("robot", "list"): ("--project", "p"),
    ("robot", "show"): ("p+ci",),
    ("robot", "disable"): ("p+ci",),
    ("robot", "enable"): ("p+ci",),
    ("robot", "delete"): ("p+ci",),
    ("robot", "refresh-secret"): ("p+ci",),
    ("robot", "refresh-tokens"): ("p+ci",),
    ("robot", "revoke-refresh-tokens"): ("p+ci",),
    ("robot", "revoke-previous-secret"): ("p+ci",),
    ("robot", "update"): ("p+ci", "--secret-login", "off"),
    ("robot", "federation", "add"): ("p+ci", "--issuer", "github", "--claim", "sub=x"),
    ("robot", "federation", "list"): ("p+ci",),
    ("robot", "federation", "remove"): ("p+ci", "1"),
    ("robot", "federation", "failures"): ("p+ci",),
    ("robot", "federation", "logins"): ("p+ci",),
    ("federation", "issuer", "add"): ("github", "--issuer", "https://x.example", "--audience", "a"),
    ("federation", "issuer", "list"): (),
    ("federation", "issuer", "remove"): ("github",),
    ("webhook", "add"): ("--system", "--name", "h", "--address", "https://h.example/"),
    ("webhook", "list"): ("--system",),
    ("webhook", "enable"): ("1",),
    ("webhook", "disable"): ("1",),
    ("webhook", "remove"): ("1",),
    ("webhook", "deliveries"): ("1",),
    ("keys", "add"): (),
    ("keys", "list"): (),
    ("keys", "bundle"): (),
    ("keys", "activate"): ("1",),
    ("keys", "retire"): ("1",),
    ("keys", "jwks"): (),
    ("import-harbor", "{export}"): (),
    ("audit",): (),
    ("user", "create"): ("bob", "--password", "-"),
    ("user", "list"): (),
    ("user", "set-password"): ("admin", "--password", "-"),
    ("user", "set-sysadmin"): ("admin", "true"),
    ("user", "delete"): ("bob",),
}
# The commands that need no database.
WITHOUT_DATABASE = {("init",), ("registry-config",)}
# Where `serve` would listen had it started: free when the module is loaded.
LISTEN_PORT = free_port()


def argv(words: tuple[str, ...], directory: Path) -> list[str]:
    export = directory / "harbor.json"
    export.write_text(json.dumps({"project": [], "robot": []}))
    return [w.format(export=export) for w in (*words, *COMMANDS[words])]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(tmp_path / "tokenserver.toml", "--listen", f"127.0.0.1:{LISTEN_PORT}")


def test_every_command_that_opens_the_database_is_checked_here() -> None:
    """A command added later joins this table (or WITHOUT_DATABASE): it must refuse too."""
    leaves = {words for words, _, leaf in subcommands(cli.build_parser()) if leaf}
    checked = {words[:1] if words[0] == "import-harbor" else words for words in COMMANDS}
    assert leaves == checked | WITHOUT_DATABASE, leaves ^ (checked | WITHOUT_DATABASE)


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_commands_refuse_a_missing_database_and_create_none(
    config: Path, words: tuple[str, ...]
) -> None:
    database = load_settings(config, environ={}).database.path
    database.unlink()
    # A server that wrongly started would run until stopped: in a process of its own, which
    # the timeout of run_cli ends.
    run = run_cli if words == ("serve",) else call_cli
    result = run(config, *argv(words, config.parent), stdin="N3wPassword\n")
    assert result.returncode == 2, result.stderr
    assert (
        f"tokenserver: no database at {database}; set database.url (TOKENSERVER_DATABASE_URL) "
        "if this server's database is elsewhere, or run 'tokenserver init' to create a new server"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not database.exists()
    assert not Path(f"{database}-wal").exists()


def test_a_database_in_another_directory_is_not_created_with_its_directory(
    config: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "moved" / "tokenserver.db"
    env = {"TOKENSERVER_DATABASE_PATH": str(elsewhere)}
    result = call_cli(config, "project", "create", "p", env=env)
    assert result.returncode == 2
    assert f"no database at {elsewhere}" in result.stderr
    assert not elsewhere.parent.exists()


def test_attack_an_empty_file_is_no_database(config: Path) -> None:
    """`touch tokenserver.db` (or another program's empty file) gets no schema but from
    init, and is left as it was."""
    database = load_settings(config, environ={}).database.path
    database.unlink()
    database.touch()
    result = call_cli(config, "project", "create", "p")
    assert result.returncode == 2
    assert f"no database at {database}" in result.stderr
    assert database.stat().st_size == 0
    assert call_cli(config, "init").returncode == 0
    assert call_cli(config, "project", "create", "p").returncode == 0


def test_attack_another_programs_database_is_not_taken_over(config: Path) -> None:
    database = load_settings(config, environ={}).database.path
    database.unlink()
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    result = call_cli(config, "audit")
    assert result.returncode == 2
    assert f"no database at {database}" in result.stderr
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"notes"}


def test_init_still_creates_and_the_commands_then_work(config: Path) -> None:
    database = load_settings(config, environ={}).database.path
    database.unlink()
    assert call_cli(config, "init").returncode == 0
    assert database.exists()
    assert call_cli(config, "project", "create", "p").returncode == 0


def test_postgresql_without_the_schema_is_refused_without_its_password(
    config: Path, postgres: PostgresServer
) -> None:
    """The README's PostgreSQL recipe: a command against a database init never ran on
    creates no schema there, and the message shows the URL without its password."""
    url = postgres.empty_database()
    env = {"TOKENSERVER_DATABASE_URL": url}
    result = call_cli(config, "project", "create", "p", env=env)
    assert result.returncode == 2
    assert "no tokenserver database at postgresql://" in result.stderr
    assert "run 'tokenserver init' with this database.url" in result.stderr
    assert postgres.password not in result.stderr
    database = url.rsplit("/", 1)[1]
    assert postgres.sql("SELECT to_regclass('tokenserver_schema')", database).strip() == ""
    assert call_cli(config, "init", env=env).returncode == 0
    assert call_cli(config, "project", "create", "p", env=env).returncode == 0
