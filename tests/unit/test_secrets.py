from __future__ import annotations

import re

import pytest

from tokenserver.domain.secrets import (
    DUMMY_HASH,
    MANUAL_SECRET_RULE,
    Secret,
    check_manual_secret,
    dummy_hash,
    generate_secret,
    hash_secret,
    needs_rehash,
    verify_secret,
)
from tokenserver.errors import BadRequest
from tokenserver.services.users import check_password


def test_generated_secrets_meet_the_rule_and_differ() -> None:
    seen = {generate_secret().reveal() for _ in range(200)}
    assert len(seen) == 200
    for value in seen:
        assert re.fullmatch(r"[A-Za-z0-9]{32}", value)
        assert check_manual_secret(value).reveal() == value


@pytest.mark.parametrize("value", ["Abcdefg1", "A" * 63 + "b1" + "c" * 63, "Passw0rd!with$ymbols"])
def test_manual_secret_accepted(value: str) -> None:
    assert check_manual_secret(value).reveal() == value


@pytest.mark.parametrize(
    "value", ["Abcdef1", "abcdefg1", "ABCDEFG1", "Abcdefgh", "A1" + "b" * 127, "", "Äbcdefg1"]
)
def test_manual_secret_refused_with_harbors_message(value: str) -> None:
    with pytest.raises(BadRequest) as info:
        check_manual_secret(value)
    assert info.value.message == MANUAL_SECRET_RULE


@pytest.mark.parametrize(
    "value",
    [
        "Abcdefg1\x00",
        "Abc\x00defg1",
        "Abcdefg1\x1f",
        "Abcdefg1\x7f",
        "Abcdefg1\x9f",
        "Abcdefg1\ud800",
    ],
)
def test_attack_control_characters_are_refused_in_secrets_and_passwords(value: str) -> None:
    """A NUL made a shorter twin of the secret (scrypt's HMAC pads its key with zeros)."""
    with pytest.raises(BadRequest) as info:
        check_manual_secret(value)
    assert info.value.message.startswith("the secret must not contain control characters")
    with pytest.raises(BadRequest) as info:
        check_password(value.replace("A", "Ä"))
    assert info.value.message.startswith("the password must not contain control characters")
    assert value not in info.value.message


def test_printable_non_ascii_passwords_stay_accepted() -> None:
    assert check_password("Pässw0rd\u00a0\u20ac").reveal() == "Pässw0rd\u00a0\u20ac"


def test_secret_repr_hides_the_value() -> None:
    secret = Secret("Sup3rSecretValue")
    assert "Sup3r" not in repr(secret)
    assert "Sup3r" not in str(secret)
    assert "Sup3r" not in f"{[secret]}"


def test_hash_is_salted_scrypt_and_verifies() -> None:
    secret = generate_secret()
    first, second = hash_secret(secret), hash_secret(secret)
    assert first != second
    assert first.startswith("scrypt$14$8$5$")
    assert secret.reveal() not in first
    assert verify_secret(secret.reveal(), first)
    assert verify_secret(secret.reveal(), second)
    assert not verify_secret(secret.reveal() + "x", first)


@pytest.mark.parametrize(
    "stored", ["", "scrypt$", "md5$x", "scrypt$14$8$5$!!$!!", "scrypt$x$8$5$AAAA$AAAA"]
)
def test_unreadable_hashes_never_verify(stored: str) -> None:
    assert not verify_secret("anything", stored)


def test_dummy_hash_costs_a_kdf_and_never_matches() -> None:
    assert DUMMY_HASH.startswith("scrypt$14$8$5$")
    assert not verify_secret("", DUMMY_HASH)
    assert not verify_secret(generate_secret().reveal(), DUMMY_HASH)


def test_each_unknown_account_gets_a_dummy_hash_of_its_own() -> None:
    first, again, other = dummy_hash("nobody"), dummy_hash("nobody"), dummy_hash("nobody2")
    assert first == again
    assert first != other
    for stored in (first, other):
        assert stored.startswith("scrypt$14$8$5$")
        assert not needs_rehash(stored)  # the same parameters, so the same cost, as real ones
        assert not verify_secret("", stored)
        assert not verify_secret(generate_secret().reveal(), stored)


def test_attack_wrong_password_answers_faster_for_an_imported_harbor_robot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Harbor's PBKDF2 is cheap: checking it alone would tell imported robots apart by time."""
    import hashlib

    from tokenserver.domain import secrets

    salt = "AbCdEf0123456789AbCdEf0123456789"
    key = hashlib.pbkdf2_hmac("sha256", b"Right1Secret", salt.encode(), 4096, 16).hex()
    stored = secrets.harbor_hash(salt, key)
    runs: list[tuple[int, int, int]] = []
    real = secrets._scrypt

    def counted(secret: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        runs.append((log2_n, r, p))
        return real(secret, salt, log2_n, r, p)

    monkeypatch.setattr(secrets, "_scrypt", counted)
    assert verify_secret("Right1Secret", stored)
    assert not verify_secret("Wrong1Secret", stored)
    current = (secrets.SCRYPT_LOG2_N, secrets.SCRYPT_R, secrets.SCRYPT_P)
    assert runs == [current, current]  # the same KDF work as a robot of our own
