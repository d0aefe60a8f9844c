from __future__ import annotations

import pytest

from tokenserver.domain.names import (
    RobotName,
    check_name,
    is_repository_name,
    parse_robot_name,
    project_of,
)
from tokenserver.errors import BadRequest


@pytest.mark.parametrize("name", ["a", "ci", "ci-bot", "ci.bot_2", "0", "a" * 255])
def test_check_name_accepts_harbor_names(name: str) -> None:
    assert check_name("robot", name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "CI",
        "ci bot",
        "ci--bot",
        "-ci",
        "ci-",
        "ci+x",
        "ci$",
        "ci/x",
        "é",
        "a" * 256,
        "..",
        "a%b",
    ],
)
def test_check_name_refuses_others(name: str) -> None:
    with pytest.raises(BadRequest):
        check_name("robot", name)


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("robot$p+ci", RobotName("p", "ci")),
        ("robot$my-proj+ci.bot", RobotName("my-proj", "ci.bot")),
        ("robot$p+ci+x", None),
        ("robot$p", RobotName(None, "p")),
        ("robot$sys-bot", RobotName(None, "sys-bot")),
        ("robot$Sys", None),
        ("robot$+ci", None),
        ("robot$P+ci", None),
        ("p+ci", None),
        ("admin", None),
    ],
)
def test_parse_robot_name(username: str, expected: RobotName | None) -> None:
    assert parse_robot_name("robot$", username) == expected


def test_parse_robot_name_honours_a_custom_prefix() -> None:
    assert parse_robot_name("bot_", "bot_p+ci") == RobotName("p", "ci")
    assert RobotName(None, "sys").full("bot_") == "bot_sys"
    assert parse_robot_name("bot_", "robot$p+ci") is None
    assert RobotName("p", "ci").full("bot_") == "bot_p+ci"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("p/app", True),
        ("p", True),
        ("localhost:5000/p/app", True),
        ("p/a__b", True),
        ("p/a---b", True),
        ("p/a___b", False),
        ("p/../app", False),
        ("p/UPPER", False),
        ("a" * 256, False),
        ("a" * 40 + "!", False),
    ],
)
def test_repository_names_follow_distribution(name: str, valid: bool) -> None:
    assert is_repository_name(name) is valid


def test_repository_grammar_does_not_backtrack_exponentially() -> None:
    # A pathological input for a naive `[a-z0-9]+([-]*[a-z0-9]+)*` regex.
    assert not is_repository_name("a" * 200 + "!")


def test_project_of_is_the_first_component() -> None:
    assert project_of("p/a/b") == "p"
    assert project_of("p") == "p"
