"""What a token-exchange form may hold (tokenserver/domain/exchange.py), as flat tables."""

from __future__ import annotations

import pytest

from tokenserver.domain.exchange import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_TYPE,
    ROBOT_SECRET_TYPE,
    Exchange,
    parse_exchange,
)
from tokenserver.errors import BadRequest

ROBOT = "robot$ci+builder"
SAML2_TYPE = "urn:ietf:params:oauth:token-type:saml2"
BASE: dict[str, list[str]] = {
    "subject_token": ["eyJ.eyJ.sig"],
    "subject_token_type": [JWT_TYPE],
    "resource": [ROBOT],
    "scope": ["repository:ci/app:pull"],
}


def parsed(**changes: list[str]) -> Exchange:
    fields = {**BASE, **changes}
    return parse_exchange(lambda name: fields.get(name, []))


def test_an_access_token_exchange() -> None:
    exchange = parsed()
    assert (exchange.robot, exchange.subject_token.reveal()) == (ROBOT, "eyJ.eyJ.sig")
    assert exchange.scopes == ("repository:ci/app:pull",) and not exchange.secret
    assert "eyJ" not in repr(exchange)  # the token stays a Secret


@pytest.mark.parametrize(
    "changes",
    [
        {"subject_token_type": [ID_TOKEN_TYPE]},
        {"resource": [], "audience": [ROBOT]},
        {"audience": [ROBOT]},
        {"resource": [ROBOT, ROBOT]},
        {"requested_token_type": [ACCESS_TOKEN_TYPE]},
        {"scope": ["repository:ci/app:pull", "repository:ci/b:push repository:ci/c:pull"]},
    ],
)
def test_accepted_forms(changes: dict[str, list[str]]) -> None:
    exchange = parsed(**changes)
    assert exchange.robot == ROBOT and not exchange.secret


def test_a_robot_secret_takes_no_scope() -> None:
    exchange = parsed(requested_token_type=[ROBOT_SECRET_TYPE], scope=[])
    assert exchange.secret and exchange.scopes == ()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"subject_token": []}, "subject_token is required"),
        ({"subject_token": [""]}, "subject_token is empty"),
        ({"subject_token": ["a", "b"]}, "subject_token is given 2 times"),
        ({"subject_token_type": []}, "subject_token_type must be"),
        ({"subject_token_type": [ACCESS_TOKEN_TYPE]}, "subject_token_type must be"),
        ({"subject_token_type": [SAML2_TYPE]}, "subject_token_type must be"),
        ({"actor_token": ["x"]}, "actor_token is not supported"),
        ({"actor_token_type": [JWT_TYPE]}, "actor_token is not supported"),
        ({"resource": []}, "resource (or audience) is required"),
        ({"resource": [""]}, "resource (or audience) is required"),
        ({"resource": [ROBOT, "robot$ci+other"]}, "name one robot"),
        ({"audience": ["robot$ci+other"]}, "name one robot"),
        ({"requested_token_type": ["urn:x"]}, "requested_token_type must be"),
        ({"requested_token_type": [ROBOT_SECRET_TYPE] * 2}, "given 2 times"),
        ({"scope": []}, "scope is required"),
        ({"scope": ["", "  "]}, "scope is required"),
        ({"requested_token_type": [ROBOT_SECRET_TYPE]}, "scope is not taken"),
    ],
)  # fmt: skip
def test_refused_forms_name_the_field(changes: dict[str, list[str]], words: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parsed(**changes)
    assert words in refused.value.message
    assert "eyJ" not in refused.value.message  # never the token
