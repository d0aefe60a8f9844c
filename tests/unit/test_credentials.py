from __future__ import annotations

from base64 import b64encode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenserver.domain.credentials import parse_basic
from tokenserver.errors import BadRequest, Unauthorized


def basic(raw: bytes) -> str:
    return "Basic " + b64encode(raw).decode()


def test_no_header_means_anonymous() -> None:
    assert parse_basic(None) is None


@pytest.mark.parametrize(
    ("raw", "user", "password"),
    [
        (b"robot$p+ci:s3cret", "robot$p+ci", "s3cret"),
        (b"u:pa:ss:word", "u", "pa:ss:word"),
        ("ü:pässword".encode(), "ü", "pässword"),
    ],
)
def test_valid_credentials(raw: bytes, user: str, password: str) -> None:
    credentials = parse_basic(basic(raw))
    assert credentials is not None
    assert credentials.username == user
    assert credentials.password.reveal() == password


def test_scheme_is_case_insensitive() -> None:
    assert parse_basic("basic " + b64encode(b"u:p").decode()) is not None


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Bearer abc", Unauthorized),
        ("Basic", BadRequest),
        ("Basic !!!", BadRequest),
        ("Basic " + b64encode(b"no-colon").decode(), BadRequest),
        (basic(b"\xff\xfe:\xff"), BadRequest),
        (basic(b"user:"), Unauthorized),
        (basic(b":password"), Unauthorized),
        ("Basic " + "A" * 8100, BadRequest),
    ],
)
def test_bad_headers(header: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_basic(header)


@given(st.text(max_size=200))
def test_any_header_gives_credentials_or_a_client_error(header: str) -> None:
    try:
        credentials = parse_basic(header)
    except (BadRequest, Unauthorized):
        return
    assert credentials is not None
    assert credentials.username
    assert ":" not in credentials.username
    assert credentials.password.reveal()


@given(st.binary(max_size=200))
def test_any_payload_gives_credentials_or_a_client_error(raw: bytes) -> None:
    try:
        credentials = parse_basic(basic(raw))
    except (BadRequest, Unauthorized):
        return
    assert credentials is not None
    assert f"{credentials.username}:{credentials.password.reveal()}".encode() == raw


def test_a_workload_id_token_fits_as_the_password() -> None:
    """A robot's password may be an OIDC ID token: GitHub's are about 2.8 kB (3.8 kB in
    Basic) and some issuers' are larger: a header up to 8,000 characters is read."""
    token = "eyJ" + "A" * 5900
    parsed = parse_basic(basic(f"robot$p+ci:{token}".encode()))
    assert parsed is not None
    assert parsed.password.reveal() == token
