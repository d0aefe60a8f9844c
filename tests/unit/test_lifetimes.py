"""How long a token lasts (domain/lifetimes.py): the config key token.max_lifetime, a robot's
token_lifetime checked against it, and the signer's cap, which holds whatever is stored."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tokenserver.config import load_settings
from tokenserver.domain.lifetimes import FOLLOW_GLOBAL, TokenLifetimes
from tokenserver.domain.scopes import Scope
from tokenserver.errors import BadRequest, ConfigError
from tokenserver.keys import SigningKey, generate_private_key, libtrust_kid
from tokenserver.services.tokens import TokenSigner

LIFETIMES = TokenLifetimes(default=1800, maximum=7200)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokenserver.toml"
    path.write_text(text)
    return path


# ---- the config key ---------------------------------------------------------------------------


def test_max_lifetime_defaults_to_a_day_and_is_read_from_file_and_environment(
    tmp_path: Path,
) -> None:
    assert load_settings(_write(tmp_path, ""), environ={}).token.max_lifetime == 86400
    path = _write(tmp_path, "[token]\nmax_lifetime = 3600\n")
    assert load_settings(path, environ={}).token.max_lifetime == 3600
    env = {"TOKENSERVER_TOKEN_MAX_LIFETIME": "604800"}
    assert load_settings(path, environ=env).token.max_lifetime == 604800


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[token]\nmax_lifetime = 59\n", {}, "token.max_lifetime: must be between 60 and 604800"),
        ("[token]\nmax_lifetime = 604801\n", {}, "token.max_lifetime: must be between 60"),
        ('[token]\nmax_lifetime = "day"\n', {}, "token.max_lifetime: expected an integer"),
        (
            "",
            {"TOKENSERVER_TOKEN_MAX_LIFETIME": "1e9"},
            "token.max_lifetime (from TOKENSERVER_TOKEN_MAX_LIFETIME): expected an integer",
        ),
        # Below token.lifetime, every token would already be longer than the maximum.
        (
            "[token]\nlifetime = 3600\nmax_lifetime = 1800\n",
            {},
            "token.max_lifetime: must be at least token.lifetime (3600), got 1800",
        ),
        (
            "[token]\nmax_lifetime = 1800\n",
            {"TOKENSERVER_TOKEN_LIFETIME": "1801"},
            "token.max_lifetime: must be at least token.lifetime (1801), got 1800",
        ),
    ],
)
def test_a_bad_max_lifetime_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, text), environ=env)
    assert str(caught.value).startswith(message), caught.value


def test_max_lifetime_equal_to_the_lifetime_is_taken(tmp_path: Path) -> None:
    path = _write(tmp_path, "[token]\nlifetime = 600\nmax_lifetime = 600\n")
    token = load_settings(path, environ={}).token
    assert (token.lifetime, token.max_lifetime) == (600, 600)


# ---- a robot's token_lifetime -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "effective"),
    [(None, 1800), (60, 60), (3600, 3600), (7200, 7200), (86400, 7200), (2**62, 7200)],
)
def test_the_effective_lifetime_is_the_robots_own_capped_or_the_default(
    own: int | None, effective: int
) -> None:
    assert LIFETIMES.effective(own) == effective


@pytest.mark.parametrize(
    ("asked", "stored"), [(FOLLOW_GLOBAL, None), (60, 60), (1800, 1800), (7200, 7200)]
)
def test_a_lifetime_within_bounds_is_stored_and_0_stores_none(
    asked: int, stored: int | None
) -> None:
    assert LIFETIMES.check(asked) == stored


@pytest.mark.parametrize("asked", [-1, 1, 59, 7201, 86400, 2**63])
def test_a_lifetime_out_of_bounds_is_refused_naming_the_field_and_bounds(asked: int) -> None:
    with pytest.raises(BadRequest) as caught:
        LIFETIMES.check(asked)
    assert caught.value.message == (
        f"token_lifetime {asked} is out of range: use 60 to 7200 seconds (token.max_lifetime), "
        "or 0 for the server's token.lifetime (1800 s)"
    )


# ---- the signer -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> SigningKey:
    private = generate_private_key("ES256")
    return SigningKey("ES256", private, libtrust_kid(private.public_key()))


@pytest.mark.parametrize(
    ("lifetime", "lasts"), [(None, 600), (60, 60), (3600, 3600), (7200, 7200), (7201, 7200)]
)
def test_the_signer_writes_the_lifetime_into_exp_and_expires_in_capped_at_its_maximum(
    key: SigningKey, lifetime: int | None, lasts: int
) -> None:
    signer = TokenSigner(key, issuer="iss", service="reg", lifetime=600, max_lifetime=7200)
    access = (Scope("repository", "p/app", ("pull",)),)
    for _ in range(2):  # the second time the access JSON is remembered: exp is not
        issued = signer.sign("robot$p+ci", access, 1_000_000.9, lifetime=lifetime)
        claims = jwt.decode(issued.token, key.private_key.public_key(), algorithms=["ES256"],
                            audience="reg", options={"verify_exp": False, "verify_iat": False,
                                                     "verify_nbf": False})  # fmt: skip
        assert (claims["iat"], claims["exp"], issued.expires_in) == (
            1_000_000, 1_000_000 + lasts, lasts
        )  # fmt: skip


def test_a_signer_without_a_maximum_gives_no_token_longer_than_its_lifetime(
    key: SigningKey,
) -> None:
    signer = TokenSigner(key, issuer="iss", service="reg", lifetime=600)
    assert signer.sign("robot$p+ci", (), 0, lifetime=3600).expires_in == 600
    assert signer.sign("robot$p+ci", (), 0, lifetime=300).expires_in == 300
