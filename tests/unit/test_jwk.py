from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from tokenserver.keys import generate_private_key, jwk_thumbprint, public_jwk

# RFC 7638 section 3.1: the example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
    "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _b64_int(text: str) -> int:
    import base64

    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_thumbprint_matches_rfc_7638_example() -> None:
    key = rsa.RSAPublicNumbers(e=65537, n=_b64_int(RFC7638_N)).public_key()
    assert public_jwk(key) == {"e": "AQAB", "kty": "RSA", "n": RFC7638_N}
    assert jwk_thumbprint(key) == RFC7638_THUMBPRINT


def test_ec_jwk_has_fixed_length_coordinates() -> None:
    for _ in range(20):
        jwk = public_jwk(generate_private_key("ES256").public_key())
        assert set(jwk) == {"crv", "kty", "x", "y"}
        assert len(jwk["x"]) == len(jwk["y"]) == 43
