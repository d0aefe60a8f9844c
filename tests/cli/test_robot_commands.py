"""Robot commands an operator gets wrong on day one: export paths that would lose a secret,
durations too long to show, audit entries that must name the robot as it is, and names a
shell has changed."""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import call_cli, initialised
from tokenserver import cli as cli_module
from tokenserver.config import load_settings
from tokenserver.domain.models import LOCAL, Level
from tokenserver.domain.permissions import RequestedPermission, parse_access
from tokenserver.domain.secrets import verify_secret
from tokenserver.runtime import open_runtime
from tokenserver.services.robots import RobotSpec

CREATE = ("robot", "create", "--project", "p", "--name", "ci", "--permission", "repository:pull")


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


def refused(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """The one-line message of a refusal with `status` that says each of `words`."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(tmp_path / "etc" / "tokenserver.toml", then=[("project", "create", "p")])


def robots(config: Path) -> list[str]:
    return [r["name"] for r in ok(call_cli(config, "robot", "list", "--project", "p", "--json"))]


def stored_hash(config: Path, name: str) -> str:
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        (found,) = db.execute("SELECT secret_hash FROM robot WHERE name = ?", (name,)).fetchone()
    return str(found)


def audit(config: Path) -> list[tuple[str, str, str]]:
    """The audit log, newest first: (operation, resource, outcome) of robot entries."""
    entries = ok(call_cli(config, "audit", "--json", "--page-size", "100"))
    return [
        (e["operation"], e["resource"], e["outcome"])
        for e in entries
        if e["resource_type"] == "robot"
    ]


# ---- item 4: --export never loses a secret ---------------------------------------------------


def _bad_export_paths(tmp: Path) -> dict[str, tuple[str, str]]:
    """Each odd path with the words its refusal must say."""
    (tmp / "plain-file").write_text("x")
    (tmp / "a-directory").mkdir()
    (tmp / "existing.json").write_text("{}")
    (tmp / "dangling.json").symlink_to(tmp / "nowhere")
    return {
        "a file as parent": (f"{tmp}/plain-file/robot.json", "is not a directory"),
        "a file as grandparent": (f"{tmp}/plain-file/sub/robot.json", "is not a directory"),
        "a missing directory": (f"{tmp}/missing/robot.json", "does not exist"),
        "missing directories": (f"{tmp}/missing/deeper/robot.json", "does not exist"),
        "a directory": (f"{tmp}/a-directory", "names a directory"),
        "a directory-like name": (f"{tmp}/new-directory/", "names a directory"),
        "an existing file": (f"{tmp}/existing.json", "exists; refusing to overwrite"),
        "a dangling symlink": (f"{tmp}/dangling.json", "exists; refusing to overwrite"),
        "/proc": ("/proc/tokenserver-robot.json", "cannot create it"),
        "/sys": ("/sys/tokenserver-robot.json", "cannot create"),
        "a name too long": (f"{tmp}/{'r' * 300}.json", "File name too long"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "a file as parent",
        "a file as grandparent",
        "a missing directory",
        "missing directories",
        "a directory",
        "a directory-like name",
        "an existing file",
        "a dangling symlink",
        "/proc",
        "/sys",
        "a name too long",
    ],
)
def test_an_export_path_that_cannot_be_written_is_refused_before_the_robot_exists(
    config: Path, tmp_path: Path, case: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path, words = _bad_export_paths(work)[case]
    before = sorted(p.name for p in work.rglob("*"))
    result = call_cli(config, *CREATE, "--export", path)
    message = refused(result, 2, "--export", path, words)
    assert len(message.strip().splitlines()) == 1
    assert result.stdout == ""
    assert robots(config) == []  # nothing to lose: the robot was not created
    assert sorted(p.name for p in work.rglob("*")) == before  # and no directory was made
    assert audit(config) == []


def test_an_export_file_is_private_and_removed_when_the_robot_is_refused(
    config: Path, tmp_path: Path
) -> None:
    target = tmp_path / "ci.json"
    result = call_cli(config, *CREATE, "--export", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"secret written to {target}" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    export = json.loads(target.read_text())
    assert export["name"] == "robot$p+ci"
    assert verify_secret(export["secret"], stored_hash(config, "ci"))
    # The file is made before the robot; a refused robot leaves none behind.
    again = tmp_path / "again.json"
    refused(call_cli(config, *CREATE, "--export", str(again)), 1, "already exists")
    assert not again.exists()


def test_a_failed_export_write_prints_the_secret_instead_of_losing_it(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_module, "_write_fd", disk_full)
    target = tmp_path / "ci.json"
    result = call_cli(config, *CREATE, "--export", str(target))
    refused(result, 2, f"cannot write --export {target}", "No space left", "on stdout")
    export = json.loads(result.stdout)
    assert export["name"] == "robot$p+ci"
    assert verify_secret(export["secret"], stored_hash(config, "ci"))
    assert not target.exists()  # no empty or partial file to mistake for the export


def test_refresh_secret_exports_to_a_file(config: Path, tmp_path: Path) -> None:
    created = ok(call_cli(config, *CREATE))
    target = tmp_path / "ci.json"
    result = call_cli(config, "robot", "refresh-secret", "p+ci", "--export", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    export = json.loads(target.read_text())
    assert set(export) == {"id", "name", "secret", "creation_time", "expires_at"}
    assert (export["id"], export["name"]) == (created["id"], "robot$p+ci")
    assert export["secret"] != created["secret"]
    assert verify_secret(export["secret"], stored_hash(config, "ci"))
    manual = tmp_path / "manual.json"
    ok(
        call_cli(
            config, "robot", "refresh-secret", "p+ci", "--secret", "-", "--export", str(manual),
            stdin="Manu4lSecret\n",
        )
    )  # fmt: skip
    assert json.loads(manual.read_text())["secret"] == "Manu4lSecret"


@pytest.mark.parametrize("case", ["a missing directory", "an existing file", "/proc"])
def test_refresh_secret_refuses_a_bad_export_path_and_keeps_the_old_secret(
    config: Path, tmp_path: Path, case: str
) -> None:
    created = ok(call_cli(config, *CREATE))
    path, words = _bad_export_paths(tmp_path)[case]
    result = call_cli(config, "robot", "refresh-secret", "p+ci", "--export", path)
    refused(result, 2, "--export", path, words)
    assert result.stdout == ""
    assert verify_secret(created["secret"], stored_hash(config, "ci"))


def test_a_failed_refresh_secret_export_prints_the_new_secret(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(call_cli(config, *CREATE))

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_module, "_write_fd", disk_full)
    target = tmp_path / "ci.json"
    result = call_cli(config, "robot", "refresh-secret", "p+ci", "--export", str(target))
    refused(result, 2, "refreshed the secret of robot$p+ci", "on stdout")
    assert verify_secret(json.loads(result.stdout)["secret"], stored_hash(config, "ci"))
    assert not target.exists()


@pytest.mark.parametrize("command", ["jwks", "bundle"])
@pytest.mark.parametrize("case", ["a missing directory", "a directory", "a file as parent"])
def test_keys_output_paths_are_checked(
    config: Path, tmp_path: Path, command: str, case: str
) -> None:
    path, words = _bad_export_paths(tmp_path)[case]
    refused(call_cli(config, "keys", command, "--output", path), 2, "--output", path, words)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", ["jwks", "bundle"])
def test_keys_output_that_cannot_be_written_is_a_usage_error(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """A path that passes the checks but cannot be written after all (a full disk, /proc as
    root): one message naming the flag and the path, no traceback, nothing half written."""
    target = tmp_path / "published"
    target.write_text("before\n")

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_module, "_write_fd", disk_full)
    result = call_cli(config, "keys", command, "--output", str(target))
    refused(result, 2, f"--output {target}: cannot write it", "No space left")
    assert target.read_text() == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("published")) == [
        "published"
    ]


@pytest.mark.parametrize("command", ["jwks", "bundle"])
def test_keys_output_into_proc_is_a_usage_error(config: Path, command: str) -> None:
    result = call_cli(config, "keys", command, "--output", "/proc/tokenserver-keys")
    refused(result, 2, "--output /proc/tokenserver-keys")


# ---- item 9: durations are bounded -----------------------------------------------------------


@pytest.mark.parametrize("duration", ["99999999", "36501", "0", "-2", "2147483648"])
def test_a_duration_out_of_range_is_a_usage_error(config: Path, duration: str) -> None:
    result = call_cli(config, *CREATE, "--duration", duration)
    refused(result, 2, "--duration", "36500")
    assert robots(config) == []


def test_the_longest_duration_is_listed(config: Path) -> None:
    ok(call_cli(config, *CREATE, "--duration", "36500"))
    table = call_cli(config, "robot", "list", "--project", "p")
    assert table.returncode == 0, table.stderr
    assert "robot$p+ci\tenabled\texpires 21" in table.stdout


def test_a_stored_duration_past_the_bound_is_listed_and_can_be_disabled(config: Path) -> None:
    # What an earlier release accepted (`--duration 99999999`): an expiry in year 275817.
    created = ok(call_cli(config, *CREATE))
    with sqlite3.connect(load_settings(config, environ={}).database.path) as db:
        db.execute(
            "UPDATE robot SET duration = 99999999, expires_at = creation_time + 99999999 * 86400"
        )
    table = call_cli(config, "robot", "list", "--project", "p")
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    assert "robot$p+ci\tenabled\texpires 9999-12-31T23:59:59.000Z" in table.stdout
    shown = ok(call_cli(config, "robot", "show", "p+ci"))
    assert shown["duration"] == 99999999
    ok(call_cli(config, "robot", "disable", "p+ci"))
    assert ok(call_cli(config, "robot", "list", "--project", "p", "--json"))[0]["disable"] is True
    assert (
        shown["expires_at"]
        == ok(call_cli(config, "robot", "show", str(created["id"])))["expires_at"]
    )


# ---- item 10: the audit log names the robot and the real outcome -----------------------------


def _system_robot(config: Path, name: str) -> int:
    async def create() -> int:
        async with open_runtime(load_settings(config, environ={}), sign=False) as rt:
            robot, _ = await rt.robots.create(
                LOCAL,
                RobotSpec(
                    name=name,
                    level=Level.SYSTEM,
                    permissions=(
                        RequestedPermission("*", (parse_access("repository:pull"),), "project"),
                    ),
                    duration=-1,
                ),
            )
            return robot.id

    return asyncio.run(create())


def test_the_audit_log_names_a_robot_by_its_full_name_however_it_was_typed(
    config: Path,
) -> None:
    created = ok(call_cli(config, *CREATE))
    fleet = _system_robot(config, "fleet")
    typed = {
        "robot$p+ci": [str(created["id"]), "p+ci", "robot$p+ci"],
        "robot$fleet": [str(fleet), "fleet", "robot$fleet"],
    }
    for full, forms in typed.items():
        for form in forms:
            ok(call_cli(config, "robot", "disable", form))
            ok(call_cli(config, "robot", "enable", form))
            ok(call_cli(config, "robot", "refresh-secret", form))
            ok(call_cli(config, "robot", "revoke-refresh-tokens", form))
            assert audit(config)[:4] == [
                ("revoke-refresh-tokens", full, "success"),
                ("refresh", full, "success"),
                ("enable", full, "success"),
                ("disable", full, "success"),
            ], form
    assert ("create", "robot$p+ci", "success") in audit(config)
    assert ("create", "robot$fleet", "success") in audit(config)
    ok(call_cli(config, "robot", "delete", "fleet"))
    assert audit(config)[0] == ("delete", "robot$fleet", "success")


def test_a_failed_robot_action_is_never_recorded_as_a_success(config: Path) -> None:
    ok(call_cli(config, *CREATE))
    refused(call_cli(config, "robot", "revoke-refresh-tokens", "p+ci", "--id", "999"), 1)
    assert audit(config)[0] == ("revoke-refresh-tokens", "robot$p+ci", "failure: NOT_FOUND")
    refused(call_cli(config, *CREATE), 1, "already exists")
    assert audit(config)[0] == ("create", "robot$p+ci", "failure: CONFLICT")
    refused(call_cli(config, "robot", "delete", "p+nope"), 1, "not found")
    assert audit(config)[0] == ("delete", "p+nope", "failure: NOT_FOUND")
    refused(call_cli(config, "robot", "refresh-secret", "p+ci", "--secret", "weak"), 1)
    assert audit(config)[0] == ("refresh", "robot$p+ci", "failure: BAD_REQUEST")
    assert not any(outcome == "success" for op, _, outcome in audit(config) if op != "create")


@pytest.mark.parametrize(
    "secret", ["Abcdefgh1\0", "Abc\0defgh1", "Abcdefgh1\x7f", "Abcdefgh1\x1b[2J"]
)
def test_attack_a_chosen_secret_with_a_control_character_is_refused(
    config: Path, secret: str
) -> None:
    """`Abcdefgh1\\0` was taken, and then `Abcdefgh1` logged in too: scrypt's HMAC pads its key
    with zero bytes."""
    ok(call_cli(config, *CREATE))
    before = stored_hash(config, "ci")
    result = call_cli(config, "robot", "refresh-secret", "p+ci", "--secret", "-", stdin=secret)
    message = refused(result, 1, "the secret must not contain control characters")
    assert "Abcdefgh" not in message and "\x1b" not in message
    assert stored_hash(config, "ci") == before
    assert audit(config)[0] == ("refresh", "robot$p+ci", "failure: BAD_REQUEST")


# ---- item 11: a name the shell changed -------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("robot+ci", "'robot$...+ci'"), ("robot", "'robot$...'"), ("robot-x+ci", "'robot$...-x+ci'")],
)
@pytest.mark.parametrize("command", ["show", "disable", "delete", "refresh-secret"])
def test_a_robot_name_the_shell_expanded_gets_a_hint_to_quote_it(
    config: Path, typed: str, shown: str, command: str
) -> None:
    ok(call_cli(config, *CREATE))
    result = call_cli(config, "robot", command, typed)
    message = refused(result, 1, f"robot {typed!r} not found", shown, "single quotes")
    assert len(message.strip().splitlines()) == 1


@pytest.mark.parametrize("typed", ["p+nope", "robot$p+nope", "robots+ci", "99"])
def test_other_missing_robots_get_no_quoting_hint(config: Path, typed: str) -> None:
    message = refused(call_cli(config, "robot", "show", typed), 1, "not found")
    assert "quote" not in message


def test_no_quoting_hint_under_a_prefix_without_a_dollar(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    ok(call_cli(config, "init", env={"TOKENSERVER_ROBOTS_NAME_PREFIX": "bot-"}))
    env = {"TOKENSERVER_ROBOTS_NAME_PREFIX": "bot-"}
    message = refused(call_cli(config, "robot", "show", "bot+ci", env=env), 1, "not found")
    assert "quote" not in message


# ---- repository patterns ---------------------------------------------------------------------


def test_repository_flags_limit_the_entry_made_by_the_flags_before_them(config: Path) -> None:
    ok(
        call_cli(
            config, "robot", "create", "--project", "p", "--name", "ci",
            "--permission", "repository:pull,repository:push",
            "--repository", "team-a/*", "--repository", "team-b/**",
            "--deny", "repository:push", "--repository", "team-b/secrets/**",
            "--permission", "robot:read",
        )
    )  # fmt: skip
    shown = ok(call_cli(config, "robot", "show", "p+ci"))
    assert [(e.get("repositories", None)) for e in shown["permissions"]] == [
        ["team-a/*", "team-b/**"],
        ["team-b/secrets/**"],
        None,
    ]
    assert [[(a["resource"], a["action"], a["effect"]) for a in e["access"]]
            for e in shown["permissions"]] == [
        [("repository", "pull", "allow"), ("repository", "push", "allow")],
        [("repository", "push", "deny")],
        [("robot", "read", "allow")],
    ]  # fmt: skip
    listed = call_cli(config, "robot", "list", "--project", "p").stdout
    assert (
        "repository:pull,repository:push on team-a/*,team-b/**;"
        "repository:push on team-b/secrets/**;robot:read"
    ) in listed


def held(config: Path) -> list[tuple[list[str] | None, list[str]]]:
    """The robot p+ci's entries: (patterns or None, ["effect resource:action", ...])."""
    shown = ok(call_cli(config, "robot", "show", "p+ci"))["permissions"]
    return [
        (
            e.get("repositories"),
            [f"{a['effect']} {a['resource']}:{a['action']}" for a in e["access"]],
        )
        for e in shown
    ]


def test_a_deny_with_its_own_patterns_leaves_the_allow_before_it_whole(config: Path) -> None:
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "ci",
                "--permission", "repository:pull,repository:push",
                "--deny", "repository:push", "--repository", "secrets/**"))  # fmt: skip
    assert held(config) == [
        (None, ["allow repository:pull", "allow repository:push"]),
        (["secrets/**"], ["deny repository:push"]),
    ]


def test_flags_with_the_same_patterns_make_one_entry(config: Path) -> None:
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "ci",
                "--permission", "repository:pull", "--deny", "repository:delete",
                "--permission", "repository:push", "--repository", "app",
                "--deny", "artifact:delete", "--repository", "app"))  # fmt: skip
    assert held(config) == [
        (None, ["allow repository:pull", "deny repository:delete"]),
        (["app"], ["allow repository:push", "deny artifact:delete"]),
    ]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--repository", "app", "--permission", "repository:pull"),
         "--repository app: give it after the --permission"),
        (("--permission", "repository:pull", "--repository", "Team-A/*"),
         "--repository Team-A/*: repository pattern 'Team-A/*' holds upper case"),
        (("--permission", "repository:pull", "--repository", "a/../b"),
         "--repository a/../b: repository pattern 'a/../b' holds '..'"),
        (("--permission", "repository:pull", "--repository", ""),
         "a repository pattern must not be empty"),
    ],
)  # fmt: skip
def test_bad_repository_flags_are_usage_errors(
    config: Path, flags: tuple[str, ...], words: str
) -> None:
    result = call_cli(config, "robot", "create", "--project", "p", "--name", "ci", *flags)
    refused(result, 2, words)
    assert robots(config) == []


def test_robot_update_replaces_the_permissions(config: Path) -> None:
    ok(call_cli(config, *CREATE))
    refused(
        call_cli(config, "robot", "update", "p+ci"),
        2,
        "give --secret-login, --token-lifetime or --permission",
    )
    ok(call_cli(config, "robot", "update", "p+ci", "--permission", "repository:push",
                "--repository", "web"))  # fmt: skip
    (entry,) = ok(call_cli(config, "robot", "show", "p+ci"))["permissions"]
    assert entry["repositories"] == ["web"]
    assert [a["action"] for a in entry["access"]] == ["push"]
    # The flags state every entry: one without --repository reaches every repository again
    # (a PUT without 'repositories' would have kept 'web').
    ok(call_cli(config, "robot", "update", "p+ci", "--permission", "repository:pull"))
    (entry,) = ok(call_cli(config, "robot", "show", "p+ci"))["permissions"]
    assert "repositories" not in entry
    assert [a["action"] for a in entry["access"]] == ["pull"]
