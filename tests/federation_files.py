"""Files an issuer names (its JWKS, its CA bundle), written with keys generated for the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tokenserver.keys import make_certificate, write_certificate

GITHUB = "https://token.actions.githubusercontent.com"


def rsa_jwk(kid: str | None = "rsa-1", *, private: bool = False) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key if private else key.public_key()))
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def ec_jwk(kid: str | None = "ec-1", curve: ec.EllipticCurve | None = None) -> dict[str, Any]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def write_jwks(path: Path, *keys: dict[str, Any]) -> Path:
    """A JWKS file of `keys` (default: one RSA and one P-256 public key)."""
    path.write_text(json.dumps({"keys": list(keys) or [rsa_jwk(), ec_jwk()]}))
    return path


def write_ca(path: Path) -> Path:
    """A PEM file holding one self-signed certificate."""
    write_certificate(path, make_certificate(ec.generate_private_key(ec.SECP256R1()), "test-ca"))
    return path
