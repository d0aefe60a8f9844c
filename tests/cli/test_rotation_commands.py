"""Issue 19 at the command line: `refresh-secret --keep-previous`, `revoke-previous-secret`,
`robot list --expiring`, and Kubernetes pull secrets (`--k8s-secret`)."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_robot_commands import CREATE, audit, ok, refused, robots, stored_hash
from tests.helpers import call_cli, initialised
from tokenserver.config import load_settings
from tokenserver.domain.secrets import verify_secret

DAY = 86400


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return initialised(
        tmp_path / "etc" / "tokenserver.toml",
        "--realm",
        "https://registry.example.com/service/token",
        then=[("project", "create", "p")],
    )


def database(config: Path) -> str:
    return str(load_settings(config, environ={}).database.path)


def previous(config: Path, name: str) -> tuple[str | None, int | None]:
    with sqlite3.connect(database(config)) as db:
        row = db.execute(
            "SELECT previous_secret_hash, previous_secret_expires_at FROM robot WHERE name = ?",
            (name,),
        ).fetchone()
    return row[0], row[1]


def logs_in(config: Path, name: str, secret: str) -> bool:
    """Whether `secret` matches the robot's current or (working) previous secret."""
    with sqlite3.connect(database(config)) as db:
        current, old, until = db.execute(
            "SELECT secret_hash, previous_secret_hash, previous_secret_expires_at "
            "FROM robot WHERE name = ?",
            (name,),
        ).fetchone()
    if verify_secret(secret, current):
        return True
    return old is not None and until > time.time() and verify_secret(secret, old)


# ---- --keep-previous and revoke-previous-secret ------------------------------------------------


def test_refresh_secret_keeps_the_previous_secret_for_the_span_given(config: Path) -> None:
    first = ok(call_cli(config, *CREATE))["secret"]
    old_hash = stored_hash(config, "ci")
    before = int(time.time())
    result = call_cli(config, "robot", "refresh-secret", "p+ci", "--keep-previous", "24h")
    new = ok(result)["secret"]
    assert "keeps working until" in result.stderr and "revoke-previous-secret" in result.stderr
    kept, until = previous(config, "ci")
    assert kept == old_hash and until is not None
    assert before + DAY <= until <= int(time.time()) + DAY
    assert logs_in(config, "ci", first) and logs_in(config, "ci", new)
    shown = ok(call_cli(config, "robot", "show", "p+ci"))
    assert shown["previous_secret_expires_at"] == until
    assert audit(config)[0] == ("refresh-keep-previous", "robot$p+ci", "success")


def test_revoke_previous_secret_ends_it_and_says_so_when_there_is_none(config: Path) -> None:
    first = ok(call_cli(config, *CREATE))["secret"]
    new = ok(call_cli(config, "robot", "refresh-secret", "p+ci", "--keep-previous", "1h"))["secret"]
    result = call_cli(config, "robot", "revoke-previous-secret", "robot$p+ci")
    assert result.returncode == 0, result.stderr
    assert "no longer work" in result.stderr
    assert previous(config, "ci") == (None, None)
    assert not logs_in(config, "ci", first) and logs_in(config, "ci", new)
    refused(call_cli(config, "robot", "revoke-previous-secret", "p+ci"), 1, "no previous secret")
    assert audit(config)[:2] == [
        ("revoke-previous-secret", "robot$p+ci", "failure: NOT_FOUND"),
        ("revoke-previous-secret", "robot$p+ci", "success"),
    ]
    refused(call_cli(config, "robot", "revoke-previous-secret", "p+nobody"), 1, "not found")


@pytest.mark.parametrize("span", ["0", "31d", "2592001", "abc", "-5", "1.5h", "24 h", "", "h"])
def test_a_keep_previous_that_is_no_span_is_a_usage_error(config: Path, span: str) -> None:
    ok(call_cli(config, *CREATE))
    old_hash = stored_hash(config, "ci")
    refused(
        call_cli(config, "robot", "refresh-secret", "p+ci", "--keep-previous", span),
        2,
        "--keep-previous",
    )
    assert stored_hash(config, "ci") == old_hash


@pytest.mark.parametrize(
    ("span", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("24h", DAY), ("30d", 30 * DAY)]
)
def test_keep_previous_spans(config: Path, span: str, seconds: int) -> None:
    ok(call_cli(config, *CREATE, "--duration", "-1"))
    before = int(time.time())
    ok(call_cli(config, "robot", "refresh-secret", "p+ci", "--keep-previous", span))
    _, until = previous(config, "ci")
    assert until is not None and before + seconds <= until <= int(time.time()) + seconds


def test_a_refresh_without_keep_previous_ends_the_previous_secret(config: Path) -> None:
    ok(call_cli(config, *CREATE))
    ok(call_cli(config, "robot", "refresh-secret", "p+ci", "--keep-previous", "1h"))
    ok(call_cli(config, "robot", "refresh-secret", "p+ci"))
    assert previous(config, "ci") == (None, None)
    assert audit(config)[0] == ("refresh", "robot$p+ci", "success")


# ---- robot list --expiring ---------------------------------------------------------------------


def _expiring_world(config: Path) -> None:
    ok(call_cli(config, "project", "create", "q"))
    now = int(time.time())
    for project, name, expires, disabled in (
        ("p", "hour", now + 3600, 0),
        ("q", "days", now + 3 * DAY, 0),
        ("p", "weeks", now + 20 * DAY, 0),
        ("p", "never", -1, 0),
        ("p", "gone", now - 10, 0),
        ("p", "off", now + 60, 1),
    ):
        ok(call_cli(config, "robot", "create", "--project", project, "--name", name,
                    "--permission", "repository:pull"))  # fmt: skip
        with sqlite3.connect(database(config)) as db:
            db.execute(
                "UPDATE robot SET expires_at = ?, disabled = ? WHERE name = ?",
                (expires, disabled, name),
            )


def test_robot_list_expiring_lists_every_project_soonest_first(config: Path) -> None:
    _expiring_world(config)
    listed = ok(call_cli(config, "robot", "list", "--expiring", "7d", "--json"))
    assert [r["name"] for r in listed] == ["robot$p+hour", "robot$q+days"]
    rows = call_cli(config, "robot", "list", "--expiring", "7d").stdout.splitlines()
    assert [row.split("\t")[1] if "\t" in row else row.split()[1] for row in rows] == [
        "robot$p+hour",
        "robot$q+days",
    ]
    month = ok(call_cli(config, "robot", "list", "--expiring", "30d", "--project", "p", "--json"))
    assert [r["name"] for r in month] == ["robot$p+hour", "robot$p+weeks"]
    assert ok(call_cli(config, "robot", "list", "--expiring", "60s", "--json")) == []


def test_robot_list_expiring_takes_system_robots_too(config: Path) -> None:
    from tests.cli.test_robot_commands import _system_robot

    robot_id = _system_robot(config, "sweeper")
    with sqlite3.connect(database(config)) as db:
        db.execute(
            "UPDATE robot SET expires_at = ? WHERE id = ?", (int(time.time()) + 3600, robot_id)
        )
    listed = ok(call_cli(config, "robot", "list", "--expiring", "1d", "--json"))
    assert [r["name"] for r in listed] == ["robot$sweeper"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("robot", "list"), ("--project",)),
        (("robot", "list", "--expiring", "soon"), ("--expiring",)),
        (("robot", "list", "--expiring", "0"), ("--expiring",)),
    ],
)
def test_robot_list_usage_errors(config: Path, argv: tuple[str, ...], words: tuple[str]) -> None:
    refused(call_cli(config, *argv), 2, *words)


# ---- Kubernetes pull secrets ------------------------------------------------------------------


def dockerconfig(manifest: dict[str, Any]) -> dict[str, Any]:
    assert manifest["kind"] == "Secret" and manifest["apiVersion"] == "v1"
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    config: dict[str, Any] = json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"]))
    return config


def test_robot_create_prints_a_pull_secret_whose_credentials_log_in(config: Path) -> None:
    result = call_cli(
        config, *CREATE, "--k8s-secret", "ci-pull", "--namespace", "apps",
        "--registry", "registry.example.com:5000",
    )  # fmt: skip
    manifest = ok(result)
    assert manifest["metadata"] == {"name": "ci-pull", "namespace": "apps"}
    entry = dockerconfig(manifest)["auths"]["registry.example.com:5000"]
    assert entry["username"] == "robot$p+ci"
    assert base64.b64decode(entry["auth"]).decode() == f"robot$p+ci:{entry['password']}"
    assert verify_secret(entry["password"], stored_hash(config, "ci"))
    assert "shown only once" in result.stderr


def test_the_registry_defaults_to_the_realms_host_and_says_so(config: Path) -> None:
    result = call_cli(config, *CREATE, "--k8s-secret", "ci-pull")
    manifest = ok(result)
    assert "namespace" not in manifest["metadata"]
    assert list(dockerconfig(manifest)["auths"]) == ["registry.example.com"]
    assert "registry registry.example.com (from server.realm)" in result.stderr


def test_the_registry_comes_from_server_registry_when_it_is_set(config: Path) -> None:
    result = call_cli(
        config, *CREATE, "--k8s-secret", "ci-pull",
        env={"TOKENSERVER_SERVER_REGISTRY": "registry.example.com:5000"},
    )  # fmt: skip
    manifest = ok(result)
    assert list(dockerconfig(manifest)["auths"]) == ["registry.example.com:5000"]
    assert "registry registry.example.com:5000 (from server.registry)" in result.stderr


def test_a_pull_secret_exported_to_a_private_file(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "pull.json"
    result = call_cli(config, *CREATE, "--k8s-secret", "ci-pull", "--export", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    entry = dockerconfig(json.loads(target.read_text()))["auths"]["registry.example.com"]
    assert verify_secret(entry["password"], stored_hash(config, "ci"))


def test_refresh_secret_prints_a_pull_secret_with_the_new_secret(config: Path) -> None:
    first = ok(call_cli(config, *CREATE))["secret"]
    result = call_cli(
        config, "robot", "refresh-secret", "p+ci", "--keep-previous", "1h",
        "--k8s-secret", "ci-pull", "--registry", "[::1]:5000",
    )  # fmt: skip
    entry = dockerconfig(ok(result))["auths"]["[::1]:5000"]
    assert entry["password"] != first
    assert verify_secret(entry["password"], stored_hash(config, "ci"))
    assert logs_in(config, "ci", first)
    chosen = call_cli(
        config, "robot", "refresh-secret", "p+ci", "--secret", "-", "--k8s-secret", "ci-pull",
        stdin="Ch0sen<&>\"secret\n",
    )  # fmt: skip
    entry = dockerconfig(ok(chosen))["auths"]["registry.example.com"]
    assert entry["password"] == 'Ch0sen<&>"secret'


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--k8s-secret", "Bad_Name"), ("--k8s-secret", "Kubernetes object name")),
        (("--k8s-secret", "-pull"), ("--k8s-secret",)),
        (("--k8s-secret", "a" * 254), ("--k8s-secret",)),
        (("--k8s-secret", "pull\n"), ("--k8s-secret",)),
        (("--k8s-secret", "pull", "--namespace", "Apps"), ("--namespace", "namespace")),
        (("--k8s-secret", "pull", "--namespace", "a.b"), ("--namespace",)),
        (("--k8s-secret", "pull", "--namespace", "n" * 64), ("--namespace",)),
        (("--k8s-secret", "pull", "--registry", "reg istry"), ("--registry", "not a registry")),
        (("--k8s-secret", "pull", "--registry", 'r"x'), ("--registry",)),
        (("--k8s-secret", "pull", "--registry", "r\u2028x"), ("--registry",)),
        (("--k8s-secret", "pull", "--registry", ""), ("--registry",)),
        # What docker would refuse (the outside review): no host, a label's dash, no such
        # port, dot segments.
        *(
            (("--k8s-secret", "pull", f"--registry={bad}"), ("--registry", "not a registry"))
            for bad in (
                "-",
                ".",
                "..",
                "-host",
                "host-.example.com",
                "h:99999",
                "h:0",
                "h:65536",
                "h/../x",
                "https://h/a/./b",
                "h/..",
            )
        ),
        (("--namespace", "apps"), ("--namespace", "--k8s-secret")),
        (("--registry", "registry.example.com"), ("--registry", "--k8s-secret")),
    ],
)
def test_attack_pull_secret_flags_are_checked_before_anything_changes(
    config: Path, tmp_path: Path, flags: tuple[str, ...], words: tuple[str, ...]
) -> None:
    export = tmp_path / "pull.json"
    refused(call_cli(config, *CREATE, *flags, "--export", str(export)), 2, *words)
    assert robots(config) == [] and not export.exists()
    ok(call_cli(config, *CREATE))
    old_hash = stored_hash(config, "ci")
    refused(call_cli(config, "robot", "refresh-secret", "p+ci", *flags), 2, *words)
    assert stored_hash(config, "ci") == old_hash
