from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenserver.domain.names import (
    RobotName,
    check_name,
    check_not_robot_name,
    is_repository_name,
    parse_robot_name,
    project_of,
    reads_as_robot_name,
    shell_expanded,
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


@given(st.text(max_size=300))
def test_check_name_accepts_exactly_harbors_pattern(name: str) -> None:
    import re

    expected = bool(re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", name)) and len(name) <= 255
    try:
        check_name("robot", name)
    except BadRequest:
        assert not expected
    else:
        assert expected


@given(st.text(max_size=300))
def test_robot_name_parsing_round_trips(username: str) -> None:
    parsed = parse_robot_name("robot$", username)
    if parsed is not None:
        assert parsed.full("robot$") == username


@given(st.text(alphabet="abc/.-_:0123456789", max_size=80))
def test_valid_repository_names_have_no_empty_or_dot_components(name: str) -> None:
    if is_repository_name(name):
        assert ".." not in name
        assert all(part for part in name.split("/"))
        assert name[0] not in "._-" and name[-1] not in "._-/"


@pytest.mark.parametrize(
    ("prefix", "username", "robot"),
    [
        ("bot-", "bot-ci", True),  # the system robot `ci`
        ("bot-", "bot-ci.x_2", True),
        ("bot-", "robot$ci", True),  # legacy names are robot names under any prefix
        ("bot-", "bot-CI", False),  # not a robot name: upper case
        ("bot-", "bot-", False),
        ("bot-", "bot--ci", False),
        ("bot-", "ci", False),
        ("bot-", "Bot-ci", False),  # names are never case-folded
        ("robot$", "bot-ci", False),
        ("robot$", "robot$ci", True),
        ("ad", "admin", True),
    ],
)
def test_reads_as_robot_name(prefix: str, username: str, robot: bool) -> None:
    assert reads_as_robot_name(prefix, username) is robot
    if robot:
        with pytest.raises(BadRequest, match=r"robots\.name_prefix"):
            check_not_robot_name(prefix, username)
    else:
        assert check_not_robot_name(prefix, username) == username


@pytest.mark.parametrize(
    ("prefix", "ref", "expanded"),
    [
        ("robot$", "robot+ci", True),  # robot$demo+ci, $demo unset
        ("robot$", "robot-x+ci", True),  # robot$demo-x+ci
        ("robot$", "robot.x+ci", True),
        ("robot$", "robot", True),  # robot$fleet
        ("robot$", "robot$demo+ci", False),  # typed in quotes
        ("robot$", "robotics+ci", False),  # a project named robotics
        ("robot$", "demo+ci", False),
        ("robot$", "9", False),
        ("bot-", "bot+ci", False),  # no '$' in the prefix: nothing for a shell to expand
        ("$", "+ci", True),
    ],
)
def test_shell_expanded_names(prefix: str, ref: str, expanded: bool) -> None:
    assert shell_expanded(prefix, ref) is expanded
