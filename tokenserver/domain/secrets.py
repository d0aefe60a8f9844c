"""Robot secrets and user passwords: generation, the rules for chosen ones, and the salted KDF.

KDF choice: scrypt (N=2^14, r=8, p=5; OWASP's equivalent of N=2^17, p=1 at 16 MiB of memory a
verification instead of 128 MiB). The hash string records its parameters, so they can be raised
later without invalidating stored secrets. These functions are CPU-bound and release the GIL;
callers on the event loop must run them in a thread.

The cost of new hashes is a `KdfCost`, `DEFAULT_KDF_COST` unless the caller passes another:
tests that are not about hashing pass a cheap one (the KDF is most of a test run otherwise).
Verification always reads the cost from the stored hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, field

from tokenserver.errors import BadRequest

SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits

# A message, not a password.
MANUAL_SECRET_RULE = "the secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number"  # noqa: E501, S105

# NOTE: scrypt keys HMAC with the secret, and HMAC pads a key with zero bytes: `Abcdefgh1\0`
# and `Abcdefgh1` hash alike, so a secret ending in NUL has a shorter twin that logs in too.
# No control character (C0, DEL, C1) or lone surrogate belongs in a secret a person types.
_UNTYPABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_no_control_characters(value: str, what: str) -> None:
    """Raise BadRequest, naming the rule but never `value`, if the chosen secret or password
    `value` holds a control character (C0, DEL, C1) or a lone surrogate. `what` names it
    ("secret", "password"). Every secret or password a caller chooses passes here."""
    if _UNTYPABLE.search(value):
        raise BadRequest(
            f"the {what} must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
        )


SCRYPT_LOG2_N = 14
SCRYPT_R = 8
SCRYPT_P = 5
_SALT_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class KdfCost:
    """scrypt's cost parameters for new hashes: N = 2^log2_n, block size r, parallelism p."""

    log2_n: int
    r: int
    p: int
    # How the hashes made at this cost begin; built once, as every token request asks.
    prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", f"scrypt${self.log2_n}${self.r}${self.p}$")


# What every deployment hashes with; not a configuration key.
DEFAULT_KDF_COST = KdfCost(SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)


class Secret:
    """A secret in memory. Its repr never shows it; use `reveal()` where it must leave."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _complex_enough(value: str) -> bool:
    return (
        re.search(r"[A-Z]", value) is not None
        and re.search(r"[a-z]", value) is not None
        and re.search(r"[0-9]", value) is not None
    )


def generate_secret() -> Secret:
    """32 characters from a CSPRNG over [A-Za-z0-9], with at least one upper, lower and digit."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
        if _complex_enough(value):
            return Secret(value)


def check_manual_secret(value: str) -> Secret:
    """Harbor's rule for a secret chosen by the user, without control characters; raise
    BadRequest when it is broken."""
    check_no_control_characters(value, "secret")
    if not 8 <= len(value) <= 128 or not value.isascii() or not _complex_enough(value):
        raise BadRequest(MANUAL_SECRET_RULE)
    return Secret(value)


def _scrypt(secret: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=256 * r * (1 << log2_n) + (1 << 20),
        dklen=_KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_secret(secret: Secret, cost: KdfCost = DEFAULT_KDF_COST) -> str:
    """A salted scrypt hash: `scrypt$<log2 N>$<r>$<p>$<salt>$<key>` (unpadded base64)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(secret.reveal(), salt, cost.log2_n, cost.r, cost.p)
    return f"{cost.prefix}{_b64(salt)}${_b64(key)}"


HARBOR_SCHEME = "harbor-pbkdf2"
_HARBOR_SALT = re.compile(r"[A-Za-z0-9]{1,64}")
_HARBOR_KEY = re.compile(r"[0-9a-f]{32}")


def harbor_hash(salt: str, hex_key: str) -> str:
    """Harbor's stored robot secret (PBKDF2-SHA256, 4096 iterations, 16-byte key, hex, with a
    per-robot salt) in our hash format. Raises ValueError if either part is malformed."""
    if not _HARBOR_SALT.fullmatch(salt) or not _HARBOR_KEY.fullmatch(hex_key):
        raise ValueError("expected an alphanumeric salt and a 32-digit lower-case hex key")
    return f"{HARBOR_SCHEME}${salt}${hex_key}"


def needs_rehash(stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
    """True for a hash not made with our KDF at `cost` (imported from Harbor)."""
    return not stored.startswith(cost.prefix)


def verify_secret(secret: str, stored: str, cost: KdfCost = DEFAULT_KDF_COST) -> bool:
    """True if `secret` matches `stored`; False for a mismatch or an unreadable hash. A scrypt
    hash is checked at the cost it records; a Harbor hash costs a run of our KDF at `cost`
    besides, as a hash of our own made at that cost would."""
    try:
        scheme, *parts = stored.split("$")
        if scheme == "scrypt":
            log2_n, r, p, salt, key = parts
            expected = _unb64(key)
            actual = _scrypt(secret, _unb64(salt), int(log2_n), int(r), int(p))
        elif scheme == HARBOR_SCHEME:
            salt, key = parts
            expected = bytes.fromhex(key)
            actual = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), 4096, 16)
            # NOTE: Harbor's PBKDF2 costs a few hundredths of our KDF: without this, a wrong
            # password answered faster would tell an imported robot (not yet logged in since
            # the import) from the rest. Run our KDF too, and discard it.
            _scrypt(secret, salt.encode(), cost.log2_n, cost.r, cost.p)
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# A well-formed hash that no secret matches (random salt and key): unknown accounts are checked
# against it so that they cost the same KDF work as known ones.
DUMMY_HASH = (
    f"{DEFAULT_KDF_COST.prefix}"
    f"{_b64(secrets.token_bytes(_SALT_BYTES))}${_b64(secrets.token_bytes(_KEY_BYTES))}"
)
_DUMMY_SALT_KEY = secrets.token_bytes(32)


def dummy_hash(account: str, cost: KdfCost = DEFAULT_KDF_COST) -> str:
    """DUMMY_HASH at `cost` (that of new hashes, so of known accounts' hashes) with a salt of
    its own for `account` (stable within this process): what an unknown account is checked
    against.

    NOTE: one shared dummy hash made distinct unknown names indistinguishable to anything keyed
    by the stored hash (the verifier shares one KDF run among concurrent checks of one secret
    against one hash), so a burst of unknown names cost one run where as many known accounts
    cost one each. With a hash per name, an unknown name costs exactly what a known one does.
    """
    salt = hashlib.blake2b(account.encode(), key=_DUMMY_SALT_KEY, digest_size=_SALT_BYTES)
    return f"{cost.prefix}{_b64(salt.digest())}{DUMMY_HASH[DUMMY_HASH.rindex('$') :]}"


def token_digest(token: str) -> str:
    """How a random bearer token (refresh token, web session) is stored: its SHA-256. Such
    tokens carry 256 bits of randomness, so a fast hash suffices; a KDF is for passwords.

    Any text has a digest: a cookie header's stray bytes arrive as lone surrogates, and such
    a "token" must simply match nothing."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
