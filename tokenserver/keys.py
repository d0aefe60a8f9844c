"""Signing keys: generation, the registry's certificate, libtrust key IDs, loading once."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tokenserver.errors import ConfigError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

CERTIFICATE_DAYS = 3650


def libtrust_kid(public_key: PublicKey) -> str:
    """The libtrust key ID distribution 2.x matches a JWT's `kid` against.

    SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12
    groups of 4 joined by `:` (e.g. `PYYO:TEWU:...:Z7Q6`).
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm}")


def make_certificate(key: PrivateKey, common_name: str) -> x509.Certificate:
    """A self-signed certificate for the registry's `rootcertbundle` (it checks no dates)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode`; never overwrite (FileExistsError if it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_private_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_new_file(path, pem, 0o600)


def write_certificate(path: Path, certificate: x509.Certificate) -> None:
    write_new_file(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The key that signs tokens, loaded once at start: never parse PEM per request.

    `kid` is the libtrust key ID (distribution 2.x); `thumbprint` the RFC 7638 JWK thumbprint
    (distribution 3.x); `certificate_der` the certificate for an `x5c` header.
    """

    algorithm: str
    private_key: PrivateKey
    kid: str
    thumbprint: str = ""
    certificate_der: bytes = b""

    def jwk(self, kid: str) -> dict[str, str]:
        """The public key as a JWK, for a JWKS file (distribution 3's `auth.token.jwks`)."""
        return {**public_jwk(self.private_key.public_key()), "kid": kid, "alg": self.algorithm,
                "use": "sig"}  # fmt: skip


def _b64url_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The members RFC 7638 hashes: EC {crv, kty, x, y}; RSA {e, kty, n}."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        size = (key.curve.key_size + 7) // 8

        def coordinate(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()

        return {"crv": "P-256", "kty": "EC", "x": coordinate(numbers.x), "y": coordinate(numbers.y)}
    numbers_rsa = key.public_numbers()
    return {"e": _b64url_uint(numbers_rsa.e), "kty": "RSA", "n": _b64url_uint(numbers_rsa.n)}


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638: base64url(SHA-256(the required members, sorted, no white space))."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _public_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(key_path: Path) -> PrivateKey:
    """An EC or RSA private key from an unencrypted PEM file; ConfigError otherwise."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError("token.signing_key", f"{key_path} not found") from None
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError("token.signing_key", f"cannot load {key_path}: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError("token.signing_key", f"{key_path} is neither an EC nor an RSA key")
    return key


def algorithm_of(key: PrivateKey) -> str:
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"


def load_certificates(cert_path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a single certificate or a rootcertbundle)."""
    try:
        return x509.load_pem_x509_certificates(cert_path.read_bytes())
    except FileNotFoundError:
        raise ConfigError("token.certificate", f"{cert_path} not found") from None
    except (ValueError, OSError) as e:
        raise ConfigError("token.certificate", f"cannot load {cert_path}: {e}") from None


def load_signing_key(key_path: Path, cert_path: Path, algorithm: str | None = None) -> SigningKey:
    """Load the key, check it suits `algorithm` (when given), and find its certificate in
    `cert_path` (which may be a bundle of several)."""
    key = load_private_key(key_path)
    if algorithm == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigError("token.signing_key", "ES256 needs a P-256 (secp256r1) key")
    elif algorithm == "RS256" and (not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048):
        raise ConfigError("token.signing_key", "RS256 needs an RSA key of at least 2048 bits")
    public = key.public_key()
    for certificate in load_certificates(cert_path):
        cert_public = certificate.public_key()
        if isinstance(cert_public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey) and (
            _public_der(cert_public) == _public_der(public)
        ):
            return SigningKey(
                algorithm or algorithm_of(key),
                key,
                libtrust_kid(public),
                jwk_thumbprint(public),
                certificate.public_bytes(serialization.Encoding.DER),
            )
    raise ConfigError("token.certificate", f"{cert_path} does not match the signing key")


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class JwsSigner:
    """Compact JWS (RFC 7515) signing with one key and a header fixed for that key.

    Not pyjwt's `encode`, which serialises the header and prepares the key again on every call:
    that was half the signing cost on the warm token path (scripts/bench). The header is
    encoded once here; each token costs its payload's encoding and one signature. pyjwt still
    verifies these tokens in the tests, as the registry does.
    """

    def __init__(self, key: SigningKey, headers: dict[str, object]) -> None:
        header = {"alg": key.algorithm, "typ": "JWT", **headers}
        self._prefix = b64url(_compact_json(header).encode()) + b"."
        # NOTE: the key type is decided here, once: isinstance against these ABCs is slow
        # enough to show per token.
        self._signature = _signature_function(key.private_key)

    def sign(self, payload: str) -> str:
        """Sign claims serialised as JSON (the caller knows which of them are fixed)."""
        signing_input = self._prefix + b64url(payload.encode())
        signature = self._signature(signing_input)
        return (signing_input + b"." + b64url(signature)).decode()


def _signature_function(key: PrivateKey) -> Callable[[bytes], bytes]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_key, size = key, (key.curve.key_size + 7) // 8

        def ecdsa(data: bytes) -> bytes:
            # JWS wants the raw r || s, not the DER OpenSSL returns (RFC 7518 §3.4).
            r, s = decode_dss_signature(ec_key.sign(data, _ECDSA_SHA256))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return ecdsa
    rsa_key = key

    def pkcs1(data: bytes) -> bytes:
        return rsa_key.sign(data, _PKCS1V15, _SHA256)

    return pkcs1
