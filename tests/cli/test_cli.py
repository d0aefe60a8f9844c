"""The command line: JSON on stdout, messages on stderr, exit codes.

Commands run in this process (`tokenserver.cli.main`, a cheap KDF); `serve` and a few smoke
tests of the installed command run in a process of their own, as a user runs them."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import FAST_KDF_COST, call_cli, clean_env, run_cli
from tokenserver.cli import main
from tokenserver.config import load_settings
from tokenserver.domain.models import LOCAL
from tokenserver.domain.secrets import verify_secret


def cli(
    config: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("serve",):
        # A server installs signal handlers and runs until stopped: a process of its own.
        return run_cli(config, *args, stdin=stdin, env=env)
    return call_cli(config, *args, stdin=stdin, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "tokenserver.toml"
    path.parent.mkdir()
    result = cli(path, "init", "--listen", "127.0.0.1:9999", "--service", "reg", "--issuer", "iss")
    assert result.returncode == 0, result.stderr
    return path


def test_init_creates_everything_and_prints_the_registry_block(config: Path) -> None:
    directory = config.parent
    settings = load_settings(config, environ={})
    assert stat.S_IMODE((directory / "keys" / "token.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.database.path.stat().st_mode) == 0o600
    assert settings.token.signing_key == directory / "keys" / "token.key"
    key = serialization.load_pem_private_key(settings.token.signing_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    block = cli(config, "registry-config").stdout
    assert block == (
        "auth:\n"
        "  token:\n"
        '    realm: "http://127.0.0.1:9999/service/token"\n'
        '    service: "reg"\n'
        '    issuer: "iss"\n'
        f'    rootcertbundle: "{directory / "keys" / "token.crt"}"\n'
    )


def test_init_never_overwrites(config: Path) -> None:
    key = (config.parent / "keys" / "token.key").read_bytes()
    text = config.read_text()
    result = cli(config, "init", "--service", "changed")
    assert result.returncode == 0
    assert "kept" in result.stderr
    assert (config.parent / "keys" / "token.key").read_bytes() == key
    assert config.read_text() == text


def test_init_recreates_a_missing_certificate_from_the_key(config: Path) -> None:
    cert = config.parent / "keys" / "token.crt"
    cert.unlink()
    ok(cli(config, "init"))
    assert cert.exists()


def test_init_rs256(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    ok(cli(config, "init", "--algorithm", "RS256"))
    key = serialization.load_pem_private_key((tmp_path / "keys" / "token.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_config_from_the_environment_variable(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENSERVER_CONFIG", str(config))
    capsys.readouterr()
    assert main(["registry-config"]) == 0
    assert '"reg"' in capsys.readouterr().out


def test_the_installed_command_answers_help() -> None:
    command = Path(sys.executable).parent / "tokenserver"
    result = subprocess.run(
        [command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "robot" in result.stdout


def test_output_cut_short_by_its_reader_is_no_traceback(config: Path) -> None:
    """`tokenserver registry-config | head -1`: the reader goes away before the command writes;
    it stops quietly with the status a shell gives a command SIGPIPE stopped."""
    command = Path(sys.executable).parent / "tokenserver"
    process = subprocess.Popen(
        [command, "registry-config", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the interpreter has even started: every write fails
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == ""


def test_version_prints_the_installed_package_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"tokenserver {importlib.metadata.version('tokenserver')}\n"


def test_the_installed_command_hashes_at_the_production_cost(tmp_path: Path) -> None:
    """Only tests pass `main` a cheap KDF: the command as users run it hashes at the cost
    stored hashes have always had."""
    config = tmp_path / "tokenserver.toml"
    init = run_cli(config, "init", env={"TOKENSERVER_ADMIN_PASSWORD": "Giv3nPassword"})
    assert init.returncode == 0, init.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "tokenserver.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE username='admin'").fetchone()
    assert stored.startswith("scrypt$14$8$5$")
    assert verify_secret("Giv3nPassword", stored)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"TOKENSERVER_TOKEN_LIFETIME": "5"}, "token.lifetime"),
        ({"TOKENSERVER_TOKEN_ALGORITHM": "HS256"}, "token.algorithm"),
    ],
)
def test_bad_config_exits_2_naming_the_key(config: Path, env: dict[str, str], key: str) -> None:
    result = cli(config, "project", "list", env=env)
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = cli(tmp_path / "none.toml", "project", "list")
    assert result.returncode == 2
    assert "tokenserver init" in result.stderr


def test_serve_with_a_mismatched_key_exits_2(config: Path) -> None:
    cert = config.parent / "keys" / "token.crt"
    cert.unlink()
    result = cli(config, "serve")
    assert result.returncode == 2
    assert "token.certificate" in result.stderr
    assert "Traceback" not in result.stderr


async def _create_users(config: Path, *names: str) -> None:
    from tokenserver.runtime import open_runtime

    settings = load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)
    async with open_runtime(settings, sign=False) as runtime:
        for name in names:
            await runtime.users.create(LOCAL, name, "Passw0rdX")


def test_attack_user_named_like_a_robot_under_custom_prefix(config: Path) -> None:
    """Users created before the prefix became `bot-` would be shadowed by robots: every command
    that opens the database refuses to start, naming them and the key."""
    asyncio.run(_create_users(config, "bot-ci", "bot-CI", "bot-cd"))
    bot = {"TOKENSERVER_ROBOTS_NAME_PREFIX": "bot-"}
    for args in (("serve",), ("project", "list"), ("init",)):
        result = cli(config, *args, env=bot)
        assert result.returncode == 2, (args, result.stderr)
        assert "robots.name_prefix" in result.stderr
        assert "'bot-ci', 'bot-cd'" in result.stderr
        assert "bot-CI" not in result.stderr  # not a robot name: upper case
        assert "Traceback" not in result.stderr
    ok(cli(config, "project", "list"))  # under the prefix they were created with, all is well
    ok(cli(config, "project", "list", env={"TOKENSERVER_ROBOTS_NAME_PREFIX": "ci-"}))


def test_init_refuses_a_prefix_that_makes_admin_a_robot(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    result = cli(config, "init", env={"TOKENSERVER_ROBOTS_NAME_PREFIX": "ad"})
    assert result.returncode == 2
    assert "robots.name_prefix" in result.stderr and "'admin'" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before writing the config, keys, database


@pytest.mark.parametrize(
    "args",
    [(), ("robot",), ("robot", "create", "--project", "p"), ("robot", "create", "--duration", "x")],
)
def test_bad_usage_exits_2(config: Path, args: tuple[str, ...]) -> None:
    assert cli(config, *args).returncode == 2


def test_projects(config: Path) -> None:
    created = ok(cli(config, "project", "create", "web", "--public"))
    assert created["name"] == "web"
    assert created["metadata"] == {"public": "true"}
    ok(cli(config, "project", "create", "api"))
    duplicate = cli(config, "project", "create", "api")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    invalid = cli(config, "project", "create", "Bad_Name")
    assert invalid.returncode == 1
    assert "invalid project name" in invalid.stderr
    assert [p["name"] for p in ok(cli(config, "project", "list", "--json"))] == ["api", "web"]
    assert "web\tpublic" in cli(config, "project", "list").stdout
    ok(cli(config, "project", "delete", "web"))
    assert cli(config, "project", "delete", "web").returncode == 1
    assert [p["name"] for p in ok(cli(config, "project", "list", "--json"))] == ["api"]


def test_project_list_shows_the_metadata_a_project_keeps(config: Path) -> None:
    ok(cli(config, "project", "create", "web"))
    settings = load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)

    async def set_metadata() -> None:
        from tokenserver.runtime import open_runtime

        async with open_runtime(settings, sign=False) as rt:
            await rt.projects.update(LOCAL, "web", metadata={"auto_scan": "true"})

    asyncio.run(set_metadata())
    (web,) = ok(cli(config, "project", "list", "--json"))
    assert web["metadata"] == {"public": "false", "auto_scan": "true"}


def test_robot_lifecycle(config: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    export = ok(
        cli(
            config, "robot", "create", "--project", "p", "--name", "ci",
            "--permission", "repository:pull,repository:push",
            "--permission", "artifact:delete", "--description", "CI pushes",
        )
    )  # fmt: skip
    assert set(export) == {"id", "name", "secret", "creation_time", "expires_at"}
    assert export["name"] == "robot$p+ci"
    assert export["expires_at"] > 0  # 30 days by default
    robot = ok(cli(config, "robot", "show", "robot$p+ci"))
    assert robot["duration"] == 30
    assert robot["expires_at"] == export["expires_at"]
    assert robot["description"] == "CI pushes"
    assert robot["permissions"] == [
        {
            "kind": "project",
            "namespace": "p",
            "access": [
                {"resource": "repository", "action": "pull", "effect": "allow"},
                {"resource": "repository", "action": "push", "effect": "allow"},
                {"resource": "artifact", "action": "delete", "effect": "allow"},
            ],
        }
    ]
    assert ok(cli(config, "robot", "show", str(export["id"])))["name"] == "robot$p+ci"
    assert ok(cli(config, "robot", "show", "p+ci"))["id"] == export["id"]

    # The secret is stored only as a salted hash.
    settings = load_settings(config, environ={})
    assert export["secret"].encode() not in settings.database.path.read_bytes()

    ok(cli(config, "robot", "disable", "p+ci"))
    assert ok(cli(config, "robot", "show", "p+ci"))["disable"] is True
    ok(cli(config, "robot", "enable", "p+ci"))
    assert ok(cli(config, "robot", "show", "p+ci"))["disable"] is False

    refreshed = ok(cli(config, "robot", "refresh-secret", "p+ci"))
    assert set(refreshed) == {"secret"}
    assert refreshed["secret"] != export["secret"]
    manual = cli(config, "robot", "refresh-secret", "p+ci", "--secret", "-", stdin="Manu4lSecret\n")
    assert manual.returncode == 0
    assert manual.stdout == ""
    weak = cli(config, "robot", "refresh-secret", "p+ci", "--secret", "weak")
    assert weak.returncode == 1
    assert "at least 1 uppercase letter" in weak.stderr

    ok(cli(config, "robot", "delete", "robot$p+ci"))
    missing = cli(config, "robot", "show", "p+ci")
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_manual_secret_is_what_gets_stored(config: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    ok(
        cli(
            config,
            "robot",
            "create",
            "--project",
            "p",
            "--name",
            "ci",
            "--permission",
            "repository:pull",
        )
    )
    ok(cli(config, "robot", "refresh-secret", "p+ci", "--secret", "Manu4lSecret"))
    import sqlite3

    settings = load_settings(config, environ={})
    with sqlite3.connect(settings.database.path) as db:
        (stored,) = db.execute("SELECT secret_hash FROM robot").fetchone()
    assert verify_secret("Manu4lSecret", stored)
    assert "Manu4lSecret" not in stored


def test_robot_create_refusals(config: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    base = ("robot", "create", "--project", "p", "--name")
    unknown = cli(config, *base, "ci", "--permission", "repository:admin")
    assert unknown.returncode == 1
    assert "unknown permission 'repository:admin'" in unknown.stderr
    assert "repository:" in unknown.stderr
    assert "pull|push" in unknown.stderr
    assert cli(config, *base, "CI", "--permission", "repository:pull").returncode == 1
    assert (
        cli(config, *base, "ci", "--permission", "repository:pull", "--duration", "0").returncode
        == 2
    )
    no_project = cli(
        config,
        "robot",
        "create",
        "--project",
        "nope",
        "--name",
        "ci",
        "--permission",
        "repository:pull",
    )
    assert no_project.returncode == 1
    assert "project 'nope' not found" in no_project.stderr
    ok(cli(config, *base, "ci", "--permission", "repository:pull", "--duration", "-1"))
    duplicate = cli(config, *base, "ci", "--permission", "repository:pull")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr


def test_export_file_is_private_and_never_overwritten(config: Path, tmp_path: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    target = tmp_path / "robot.json"
    result = cli(
        config, "robot", "create", "--project", "p", "--name", "ci",
        "--permission", "repository:pull", "--export", str(target),
    )  # fmt: skip
    assert result.returncode == 0
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    export = json.loads(target.read_text())
    assert export["name"] == "robot$p+ci"
    again = cli(
        config, "robot", "create", "--project", "p", "--name", "ci2",
        "--permission", "repository:pull", "--export", str(target),
    )  # fmt: skip
    assert again.returncode == 2
    assert json.loads(target.read_text()) == export


def test_robot_list_filters_by_name(config: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    for name in ("ci-build", "ci-deploy", "backup"):
        ok(
            cli(
                config,
                "robot",
                "create",
                "--project",
                "p",
                "--name",
                name,
                "--permission",
                "repository:pull",
            )
        )
    names = [r["name"] for r in ok(cli(config, "robot", "list", "--project", "p", "--json"))]
    assert names == ["robot$p+ci-build", "robot$p+ci-deploy", "robot$p+backup"]
    filtered = ok(cli(config, "robot", "list", "--project", "p", "--name", "ci-", "--json"))
    assert [r["name"] for r in filtered] == ["robot$p+ci-build", "robot$p+ci-deploy"]
    table = cli(config, "robot", "list", "--project", "p", "--name", "backup").stdout
    assert "robot$p+backup\tenabled" in table
    assert "ci-build" not in table


def test_audit_lists_operations_newest_first(config: Path) -> None:
    ok(cli(config, "project", "create", "p"))
    export = ok(
        cli(
            config,
            "robot",
            "create",
            "--project",
            "p",
            "--name",
            "ci",
            "--permission",
            "repository:pull",
        )
    )
    ok(cli(config, "robot", "disable", "p+ci"))
    assert cli(config, "robot", "delete", "p+nope").returncode == 1
    entries = ok(cli(config, "audit", "--json"))
    assert [(e["operation"], e["resource_type"], e["resource"], e["outcome"]) for e in entries][
        :4
    ] == [
        ("delete", "robot", "p+nope", "failure: NOT_FOUND"),
        ("disable", "robot", "robot$p+ci", "success"),
        ("create", "robot", "robot$p+ci", "success"),
        ("create", "project", "p", "success"),
    ]
    assert all(e["username"] == "local-admin" for e in entries[:4])
    assert export["secret"] not in json.dumps(entries)
    table = cli(config, "audit", "--page-size", "1")
    assert table.returncode == 0
    assert "\tdelete\trobot\tp+nope\tfailure: NOT_FOUND" in table.stdout
    assert len(table.stdout.splitlines()) == 1
    assert cli(config, "audit", "--page", "0").returncode == 2


def test_init_creates_the_admin_once(tmp_path: Path) -> None:
    config = tmp_path / "tokenserver.toml"
    first = cli(config, "init")
    assert first.returncode == 0
    assert "created the system admin 'admin' with password: " in first.stderr
    second = cli(config, "init")
    assert "created the system admin" not in second.stderr
    chosen = tmp_path / "other" / "tokenserver.toml"
    chosen.parent.mkdir()
    given = cli(chosen, "init", env={"TOKENSERVER_ADMIN_PASSWORD": "Giv3nPassword"})
    assert given.returncode == 0
    assert "Giv3nPassword" not in given.stderr + given.stdout
    import sqlite3

    with sqlite3.connect(chosen.parent / "tokenserver.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE username='admin'").fetchone()
    assert verify_secret("Giv3nPassword", stored)
    weak = tmp_path / "weak" / "tokenserver.toml"
    weak.parent.mkdir()
    refused = cli(weak, "init", env={"TOKENSERVER_ADMIN_PASSWORD": "weak"})
    assert refused.returncode == 2
    assert "TOKENSERVER_ADMIN_PASSWORD: the password must be 8-128" in refused.stderr


def test_refresh_tokens_are_listed_and_revoked_from_the_cli(config: Path) -> None:
    import asyncio

    from tokenserver.domain.models import Principal, PrincipalKind
    from tokenserver.runtime import open_runtime

    ok(cli(config, "project", "create", "p"))
    ok(
        cli(
            config,
            "robot",
            "create",
            "--project",
            "p",
            "--name",
            "ci",
            "--permission",
            "repository:pull",
        )
    )
    settings = load_settings(config, environ={})

    async def issue(client_id: str) -> str:
        async with open_runtime(settings, sign=False) as rt:
            robot = await rt.robots.resolve("p+ci")
            principal = Principal(PrincipalKind.ROBOT, "robot$p+ci", robot=robot)
            return (await rt.refresh.issue(principal, client_id)).reveal()

    tokens = [asyncio.run(issue(c)) for c in ("docker", "helm")]
    listed = ok(cli(config, "robot", "refresh-tokens", "p+ci", "--json"))
    assert [t["client_id"] for t in listed] == ["helm", "docker"]
    assert not any(token in json.dumps(listed) for token in tokens)
    assert "\thelm" in cli(config, "robot", "refresh-tokens", "p+ci").stdout
    one = cli(config, "robot", "revoke-refresh-tokens", "p+ci", "--id", str(listed[0]["id"]))
    assert one.returncode == 0
    assert "revoked 1" in one.stderr
    assert [
        t["client_id"] for t in ok(cli(config, "robot", "refresh-tokens", "p+ci", "--json"))
    ] == ["docker"]
    assert cli(config, "robot", "revoke-refresh-tokens", "p+ci", "--id", "999").returncode == 1
    every = cli(config, "robot", "revoke-refresh-tokens", "p+ci")
    assert "revoked 1" in every.stderr
    assert ok(cli(config, "robot", "refresh-tokens", "p+ci", "--json")) == []


def test_import_harbor(config: Path, tmp_path: Path) -> None:
    from tests.harbor_export import export

    good = tmp_path / "harbor.json"
    good.write_text(json.dumps(export()))
    report = ok(cli(config, "import-harbor", str(good)))
    assert report == {
        "projects_created": 2, "projects_existing": 0, "robots_created": 5, "robots_existing": 0,
    }  # fmt: skip
    assert ok(cli(config, "import-harbor", str(good)))["robots_created"] == 0
    names = [r["name"] for r in ok(cli(config, "robot", "list", "--project", "lib", "--json"))]
    assert names == ["robot$lib+ci", "robot$legacy", "robot$lib+off", "robot$lib+gone"]

    bad = tmp_path / "bad.json"
    data = export([{"id": 77, "name": "lib+x", "project_id": 7, "secret": "nothex", "salt": "s"}])
    data["project"].append({"project_id": 70, "name": "lib2", "public": "false"})
    bad.write_text(json.dumps(data))
    refused = cli(config, "import-harbor", str(bad))
    assert refused.returncode == 1
    assert "robot row 5 (id 77): unreadable secret" in refused.stderr
    assert "lib2" not in cli(config, "project", "list").stdout
    (tmp_path / "broken.json").write_text("{")
    assert cli(config, "import-harbor", str(tmp_path / "broken.json")).returncode == 2
    assert cli(config, "import-harbor", str(tmp_path / "missing.json")).returncode == 2
