"""`robot create/update --token-lifetime`, `robot list` and `robot show` (issue 18 item 3), in
process: the flag's bounds are the configuration's, `none` clears it, mistakes exit 2 with
one line naming the flag."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_robot_commands import CREATE, ok, refused
from tests.helpers import call_cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "tokenserver.toml"
    path.parent.mkdir()
    path.write_text("[token]\nmax_lifetime = 7200\n")
    ok(call_cli(path, "init"))
    ok(call_cli(path, "project", "create", "p"))
    return path


def show(config: Path, robot: str = "p+ci") -> Any:
    return ok(call_cli(config, "robot", "show", robot))


def listed(config: Path) -> str:
    result = call_cli(config, "robot", "list", "--project", "p")
    assert result.returncode == 0, result.stderr
    return result.stdout


def audit(config: Path) -> list[tuple[str, str, str]]:
    entries = ok(call_cli(config, "audit", "--json"))
    return [(e["operation"], e["resource"], e["outcome"]) for e in entries]


def test_create_with_a_lifetime_shows_and_lists_it(config: Path) -> None:
    ok(call_cli(config, *CREATE, "--token-lifetime", "3600"))
    shown = show(config)
    assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (3600, 3600)
    assert "robot$p+ci\tenabled\texpires " in listed(config)
    assert "\ttokens 3600 s\trepository:pull\n" in listed(config)
    ok(call_cli(config, "robot", "create", "--project", "p", "--name", "plain",
                "--permission", "repository:pull"))  # fmt: skip
    assert "token_lifetime" not in show(config, "p+plain")
    assert show(config, "p+plain")["effective_token_lifetime"] == 1800
    assert "robot$p+plain\tenabled\texpires 20" in listed(config)
    assert "\ttokens 1800 s (token.lifetime)\trepository:pull\n" in listed(config)


def test_update_sets_and_clears_it_and_is_audited(config: Path) -> None:
    ok(call_cli(config, *CREATE))
    result = call_cli(config, "robot", "update", "p+ci", "--token-lifetime", "7200")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "the tokens of robot$p+ci last 7200 s from its next token on\n"
    assert show(config)["token_lifetime"] == 7200
    for word in ("none", "default"):
        result = call_cli(config, "robot", "update", "robot$p+ci", "--token-lifetime", word)
        assert result.returncode == 0, result.stderr
        assert "last 1800 s (token.lifetime) from its next token on" in result.stderr
        assert "token_lifetime" not in show(config)
    assert audit(config)[:3] == [
        ("update", "robot$p+ci", "success"),
        ("update", "robot$p+ci", "success"),
        ("update", "robot$p+ci", "success"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("59", "--token-lifetime: expected seconds (60 to token.max_lifetime) or none, got '59'"),
        ("0", "--token-lifetime: expected seconds (60 to token.max_lifetime) or none, got '0'"),
        ("-1", "got '-1'"),
        ("1h", "got '1h'"),
        ("", "got ''"),
        ("604801", "got '604801'"),
        ("99999999999999999999999", "got '99999999999999999999999'"),
        # Within what any configuration allows, past this one's token.max_lifetime.
        ("7201", "--token-lifetime: token_lifetime 7201 is out of range: use 60 to 7200 seconds "
                 "(token.max_lifetime)"),
    ],
)  # fmt: skip
def test_a_lifetime_out_of_bounds_is_a_usage_error_naming_the_flag(
    config: Path, value: str, message: str
) -> None:
    result = call_cli(config, *CREATE, "--token-lifetime", value)
    refused(result, 2, message)
    assert ok(call_cli(config, "robot", "list", "--project", "p", "--json")) == []
    ok(call_cli(config, *CREATE, "--token-lifetime", "600"))
    refused(call_cli(config, "robot", "update", "p+ci", "--token-lifetime", value), 2, message)
    assert show(config)["token_lifetime"] == 600
    ok(call_cli(config, "robot", "delete", "p+ci"))


def test_update_without_a_change_is_a_usage_error(config: Path) -> None:
    ok(call_cli(config, *CREATE))
    refused(
        call_cli(config, "robot", "update", "p+ci"),
        2,
        "robot update: give --secret-login, --token-lifetime or --permission",
    )


def test_update_of_an_unknown_robot_is_refused(config: Path) -> None:
    refused(
        call_cli(config, "robot", "update", "p+nope", "--token-lifetime", "600"),
        1,
        "robot 'p+nope' not found",
    )


def test_a_lowered_maximum_is_listed_as_a_cap(config: Path) -> None:
    ok(call_cli(config, *CREATE, "--token-lifetime", "7200"))
    lowered = {"TOKENSERVER_TOKEN_MAX_LIFETIME": "3600"}
    result = call_cli(config, "robot", "list", "--project", "p", env=lowered)
    assert "\ttokens 3600 s (its 7200 s capped by token.max_lifetime)\t" in result.stdout
    shown = ok(call_cli(config, "robot", "show", "p+ci", env=lowered))
    assert (shown["token_lifetime"], shown["effective_token_lifetime"]) == (7200, 3600)
    # Past the new maximum, a new value is refused; the stored one is kept.
    refused(
        call_cli(config, "robot", "update", "p+ci", "--token-lifetime", "5000", env=lowered),
        2,
        "use 60 to 3600 seconds (token.max_lifetime)",
    )
    assert show(config)["token_lifetime"] == 7200


def test_a_maximum_below_the_lifetime_stops_every_command(config: Path) -> None:
    result: subprocess.CompletedProcess[str] = call_cli(
        config, "robot", "list", "--project", "p", env={"TOKENSERVER_TOKEN_MAX_LIFETIME": "600"}
    )
    refused(result, 2, "token.max_lifetime: must be at least token.lifetime (1800), got 600")


def test_update_of_permissions_keeps_the_lifetime_or_sets_it_with_them(config: Path) -> None:
    ok(call_cli(config, *CREATE, "--token-lifetime", "3600"))
    ok(call_cli(config, "robot", "update", "p+ci", "--permission", "repository:push"))
    assert show(config)["token_lifetime"] == 3600
    result = call_cli(config, "robot", "update", "p+ci", "--permission", "repository:pull",
                      "--repository", "team-a/*", "--token-lifetime", "600")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the tokens of robot$p+ci last 600 s from its next token on" in result.stderr
    shown = show(config)
    assert shown["token_lifetime"] == 600
    assert shown["permissions"][0]["repositories"] == ["team-a/*"]
    assert "\ttokens 600 s\trepository:pull on team-a/*\n" in listed(config)
