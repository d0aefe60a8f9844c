from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tokenserver.domain.scopes import Scope
from tokenserver.errors import ConfigError
from tokenserver.keys import (
    JwsSigner,
    SigningKey,
    generate_private_key,
    libtrust_kid,
    load_signing_key,
    make_certificate,
    write_certificate,
    write_private_key,
)
from tokenserver.services.tokens import TokenSigner

# The key ID in the distribution token spec's example header.
SPEC_EXAMPLE_KID = "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"
_KID_SHAPE = re.compile(r"[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}")


def test_spec_example_kid_has_the_shape_we_produce() -> None:
    assert _KID_SHAPE.fullmatch(SPEC_EXAMPLE_KID)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_kid_matches_an_independent_openssl_computation(algorithm: str, tmp_path: Path) -> None:
    key = generate_private_key(algorithm)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(pem)
    script = (
        "openssl pkey -pubin -in pub.pem -outform DER | openssl dgst -sha256 -binary"
        " | head -c 30 | base32 -w0"
    )
    encoded = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, check=True, text=True
    ).stdout.strip()
    expected = ":".join(encoded[i : i + 4] for i in range(0, 48, 4))
    kid = libtrust_kid(key.public_key())
    assert kid == expected
    assert _KID_SHAPE.fullmatch(kid)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_written_key_is_private_and_loads_with_kid(algorithm: str, tmp_path: Path) -> None:
    key = generate_private_key(algorithm)
    write_private_key(tmp_path / "k.pem", key)
    write_certificate(tmp_path / "c.pem", make_certificate(key, "tokenserver"))
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    loaded = load_signing_key(tmp_path / "k.pem", tmp_path / "c.pem", algorithm)
    assert loaded.kid == libtrust_kid(key.public_key())
    token = jwt.encode({"a": 1}, loaded.private_key, algorithm=algorithm)
    assert jwt.decode(token, key.public_key(), algorithms=[algorithm]) == {"a": 1}


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    key = generate_private_key("ES256")
    write_private_key(tmp_path / "k.pem", key)
    before = (tmp_path / "k.pem").read_bytes()
    with pytest.raises(FileExistsError):
        write_private_key(tmp_path / "k.pem", generate_private_key("ES256"))
    assert (tmp_path / "k.pem").read_bytes() == before


def test_key_of_the_wrong_type_for_the_algorithm_is_a_config_error(tmp_path: Path) -> None:
    key = generate_private_key("ES256")
    write_private_key(tmp_path / "k.pem", key)
    write_certificate(tmp_path / "c.pem", make_certificate(key, "x"))
    with pytest.raises(ConfigError) as info:
        load_signing_key(tmp_path / "k.pem", tmp_path / "c.pem", "RS256")
    assert info.value.key == "token.signing_key"


def test_certificate_of_another_key_is_a_config_error(tmp_path: Path) -> None:
    write_private_key(tmp_path / "k.pem", generate_private_key("ES256"))
    write_certificate(tmp_path / "c.pem", make_certificate(generate_private_key("ES256"), "x"))
    with pytest.raises(ConfigError, match="does not match") as info:
        load_signing_key(tmp_path / "k.pem", tmp_path / "c.pem", "ES256")
    assert info.value.key == "token.certificate"


@pytest.mark.parametrize("content", [b"", b"not a pem", b"-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_garbage_key_is_a_config_error(content: bytes, tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_signing_key(tmp_path / "k.pem", tmp_path / "c.pem", "ES256")
    assert info.value.key == "token.signing_key"


def test_missing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_signing_key(tmp_path / "none.pem", tmp_path / "c.pem", "ES256")


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_jws_signer_tokens_verify_with_pyjwt(algorithm: str) -> None:
    """Our compact JWS is standard: pyjwt (as the registry) verifies signature and header."""
    private = generate_private_key(algorithm)
    key = SigningKey(algorithm, private, libtrust_kid(private.public_key()))
    signer = JwsSigner(key, {"kid": key.kid})
    claims = {"sub": "robot$p+ci", "access": [{"type": "repository", "name": "p/a", "actions": []}]}
    token = signer.sign(json.dumps(claims))
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT", "kid": key.kid}
    assert jwt.decode(token, private.public_key(), algorithms=[algorithm]) == claims
    other = generate_private_key(algorithm)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.public_key(), algorithms=[algorithm])
    assert signer.sign(json.dumps(claims)) != token or algorithm == "RS256"  # ECDSA nonces differ


@pytest.mark.parametrize(
    ("subject", "name"),
    [("robot$p+ci", "p/app"), ('we"ird\\ü\u2028', 'p/a"b'), ("", "x/\u00e9\n")],
)
def test_token_claims_built_from_parts_are_the_json_pyjwt_reads(subject: str, name: str) -> None:
    """TokenSigner writes the claims' JSON by hand (fixed parts once, access per grant):
    whatever the subject and names hold, the registry reads exactly these claims."""
    private = generate_private_key("ES256")
    key = SigningKey("ES256", private, libtrust_kid(private.public_key()))
    signer = TokenSigner(key, issuer='iss "x"', service="reg\\1", lifetime=600)
    access = (Scope("repository", name, ("pull", "push")), Scope("registry", "catalog", ()))
    for _ in range(2):  # the second time, the access JSON comes from the cache
        issued = signer.sign(subject, access, 1_000_000.5)
        claims = jwt.decode(
            issued.token, private.public_key(), algorithms=["ES256"], audience="reg\\1",
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )  # fmt: skip
        assert claims.pop("jti")
        assert claims == {
            "iss": 'iss "x"', "sub": subject, "aud": "reg\\1",
            "exp": 1_000_600, "nbf": 1_000_000, "iat": 1_000_000,
            "access": [
                {"type": "repository", "name": name, "actions": ["pull", "push"]},
                {"type": "registry", "name": "catalog", "actions": []},
            ],
        }  # fmt: skip


def test_token_ids_stay_unique_and_well_formed_past_a_batch() -> None:
    """jti comes from random ids drawn from the OS in batches of 1024: across batches they
    are still distinct, 120 bits each, base64url (no JSON escaping needed)."""
    private = generate_private_key("ES256")
    key = SigningKey("ES256", private, libtrust_kid(private.public_key()))
    signer = TokenSigner(key, issuer="iss", service="reg", lifetime=600)
    ids = [
        jwt.decode(
            signer.sign("robot$p+ci", (), 1_000_000).token,
            options={"verify_signature": False},
        )["jti"]
        for _ in range(2500)
    ]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20}", i) for i in ids)
