"""Verifying a workload's ID token: every refusal, in order, and the issuer's key cache
(discovery, JWKS, JWKS files, refetch limits, outages), against the fake issuer on loopback.

Time is the tests' FakeClock (the verifier's and the issuer's), moved instead of slept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import FakeClock
from tests.http.conftest import AiohttpClient
from tests.oidc_issuer import (
    OMIT,
    FakeIssuer,
    IssuerKey,
    forge,
    github_claims,
    gitlab_claims,
    hmac_token,
    kubernetes_claims,
    shared_keys,
    sign,
)
from tokenserver.domain.claims import MAX_REASON, MAX_TOKEN_BYTES
from tokenserver.domain.federation import Issuer
from tokenserver.errors import FederationRefused, Unauthorized
from tokenserver.http.appkeys import REALM
from tokenserver.http.errors import error_middleware
from tokenserver.keys import PrivateKey, generate_private_key, public_jwk
from tokenserver.services.oidc import (
    KEYS_MAX_AGE,
    LEEWAY,
    MAX_DOCUMENT_BYTES,
    REFETCH_INTERVAL,
    IdTokenVerifier,
    KeyFetchError,
    fetchable,
    jwk_key,
    jwks_keys,
)


@pytest.fixture
async def verifier(oidc_clock: FakeClock) -> AsyncIterator[IdTokenVerifier]:
    verifier = IdTokenVerifier(clock=oidc_clock, http_timeout=5)
    yield verifier
    await verifier.close()


async def refused(verifier: IdTokenVerifier, token: str, issuer: Issuer) -> str:
    """The reason `verifier` refuses `token`: safe to log, so never the token."""
    with pytest.raises(FederationRefused) as info:
        await verifier.verify(token, issuer)
    reason = info.value.reason
    if len(token) >= 8:  # a shorter string may be a word of any sentence
        assert token not in reason and token not in info.value.message
    assert reason.isprintable() and len(reason) <= MAX_REASON
    return reason


def fetches(issuer: FakeIssuer) -> tuple[int, int]:
    return issuer.discovery_fetches, issuer.jwks_fetches


# What is accepted.


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_verify_answers_the_claims_of_a_valid_token(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, alg: str
) -> None:
    token = oidc_issuer.mint(github_claims(repository="acme/app"), alg=alg)
    claims = await verifier.verify(token, oidc_issuer.issuer())
    assert claims["repository"] == "acme/app"
    assert claims["iss"] == oidc_issuer.url
    assert fetches(oidc_issuer) == (1, 1)


async def test_gitlab_and_kubernetes_shaped_tokens_verify(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    issuer = oidc_issuer.issuer()
    gitlab = await verifier.verify(oidc_issuer.mint(gitlab_claims(project_id="42")), issuer)
    assert gitlab["project_id"] == "42"
    # Kubernetes sends `aud` as a list: one element is one audience.
    k8s = oidc_issuer.mint(kubernetes_claims(namespace="ci"), audience=["tokenserver"])
    claims = await verifier.verify(k8s, issuer)
    assert claims["kubernetes.io"]["namespace"] == "ci"  # type: ignore[index]
    assert fetches(oidc_issuer) == (1, 1)  # the keys were cached


# Shape, algorithm, kid and iss: refused before any key work.


async def test_attack_an_oversized_token_is_refused_before_anything_else(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    token = oidc_issuer.mint(github_claims(padding="x" * MAX_TOKEN_BYTES))
    assert len(token) > MAX_TOKEN_BYTES
    assert "larger than 8192 bytes" in await refused(verifier, token, oidc_issuer.issuer())
    assert fetches(oidc_issuer) == (0, 0)


@pytest.mark.parametrize("token", ["", "Abcdefgh1", "a.b", "a.b.c", "e30.e30.!!!", "x" * 9000])
async def test_what_is_not_a_jwt_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, token: str
) -> None:
    reason = await refused(verifier, token, oidc_issuer.issuer())
    assert reason in ("the token is not a JWT", "the token is larger than 8192 bytes")
    assert fetches(oidc_issuer) == (0, 0)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", "HS256", "HS512", "RS384", "PS256"])
async def test_attack_algorithms_outside_the_allowlist_are_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, alg: str
) -> None:
    claims = oidc_issuer.claims(github_claims())
    token = forge({"alg": alg, "kid": oidc_issuer.rsa.kid}, claims, b"sig")
    reason = await refused(verifier, token, oidc_issuer.issuer())
    assert reason == f"the token's algorithm is '{alg}': only RS256, ES256 are allowed"
    assert fetches(oidc_issuer) == (0, 0)


async def test_attack_alg_none_with_no_signature_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    token = forge({"alg": "none", "kid": oidc_issuer.rsa.kid}, oidc_issuer.claims(github_claims()))
    assert token.endswith(".")
    assert "'none'" in await refused(verifier, token, oidc_issuer.issuer())


@pytest.mark.parametrize("secret", ["pem", "jwk"])
async def test_attack_hs256_signed_with_the_issuers_public_key_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, secret: str
) -> None:
    """The key confusion attack: the public key is public, so a verifier that took it as an
    HMAC secret would accept anyone's token."""
    key = oidc_issuer.rsa
    mac_key = key.public_pem() if secret == "pem" else json.dumps(key.jwk()).encode()
    token = hmac_token(mac_key, {"alg": "HS256", "kid": key.kid}, oidc_issuer.claims())
    assert "'HS256'" in await refused(verifier, token, oidc_issuer.issuer())
    # And even once the keys are cached, it is not checked against them.
    await verifier.verify(oidc_issuer.mint(), oidc_issuer.issuer())
    assert "'HS256'" in await refused(verifier, token, oidc_issuer.issuer())


@pytest.mark.parametrize("alg", [None, 256, ["RS256"]])
async def test_a_missing_or_odd_alg_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, alg: object
) -> None:
    header = {"kid": oidc_issuer.rsa.kid} | ({} if alg is None else {"alg": alg})
    token = forge(header, oidc_issuer.claims(), b"sig")
    assert "no algorithm" in await refused(verifier, token, oidc_issuer.issuer())


@pytest.mark.parametrize("kid", [OMIT, "", 123, None, ["k"]])
async def test_a_token_without_a_kid_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, kid: object
) -> None:
    token = oidc_issuer.mint(header={"kid": kid})
    reason = await refused(verifier, token, oidc_issuer.issuer())
    assert reason == "the token's header names no key (kid)"
    assert fetches(oidc_issuer) == (0, 0)


async def test_attack_critical_header_extensions_are_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    token = oidc_issuer.mint(header={"crit": ["exp"], "exp": 1})
    assert "crit" in await refused(verifier, token, oidc_issuer.issuer())


@pytest.mark.parametrize(
    "iss", ["https://token.actions.githubusercontent.com", "{url}/", "{url}x", OMIT, ["{url}"]]
)
async def test_attack_another_iss_is_refused_before_any_fetch(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, iss: object
) -> None:
    """No fetch ever goes to an address the token chose, nor for an issuer it is not."""
    if isinstance(iss, str):
        iss = iss.format(url=oidc_issuer.url)
    elif isinstance(iss, list):
        iss = [oidc_issuer.url]
    token = oidc_issuer.mint({"iss": iss})
    assert "not the issuer's URL" in await refused(verifier, token, oidc_issuer.issuer())
    assert fetches(oidc_issuer) == (0, 0)


# Keys: by kid, cached, refetched at most once a minute.


async def test_attack_unknown_kids_refetch_at_most_once_a_minute(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    await verifier.verify(oidc_issuer.mint(), issuer)
    assert fetches(oidc_issuer) == (1, 1)
    for n in range(20):  # made-up kids, however many, cost one fetch a minute
        reason = await refused(verifier, oidc_issuer.mint(kid=f"made-up-{n}"), issuer)
        assert reason == f"the issuer has no key 'made-up-{n}'"
    assert fetches(oidc_issuer) == (1, 1)
    oidc_clock.now += REFETCH_INTERVAL - 1
    await refused(verifier, oidc_issuer.mint(kid="made-up"), issuer)
    assert fetches(oidc_issuer) == (1, 1)
    oidc_clock.now += 1
    await refused(verifier, oidc_issuer.mint(kid="made-up"), issuer)
    assert fetches(oidc_issuer) == (2, 2)
    await refused(verifier, oidc_issuer.mint(kid="made-up"), issuer)
    assert fetches(oidc_issuer) == (2, 2)
    # The known keys kept working all along, without fetching.
    await verifier.verify(oidc_issuer.mint(), issuer)
    assert fetches(oidc_issuer) == (2, 2)


async def test_a_rotated_key_is_fetched_when_its_kid_first_appears(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    await verifier.verify(oidc_issuer.mint(), issuer)
    oidc_clock.now += REFETCH_INTERVAL
    new = oidc_issuer.rotate("RS256", keep_old=False)
    claims = await verifier.verify(oidc_issuer.mint(kid=new.kid), issuer)
    assert claims["iss"] == oidc_issuer.url
    assert fetches(oidc_issuer) == (2, 2)


async def test_a_key_rotated_in_just_after_a_fetch_waits_for_the_next_minute(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    await verifier.verify(oidc_issuer.mint(), issuer)
    new = oidc_issuer.rotate("ES256")
    await refused(verifier, oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    oidc_clock.now += REFETCH_INTERVAL
    await verifier.verify(oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)


async def test_a_key_the_issuer_dropped_stops_working_once_the_keys_are_refreshed(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    """Known keys are refreshed in the background once KEYS_MAX_AGE old: a key the issuer
    withdrew (compromised) is not trusted forever."""
    issuer = oidc_issuer.issuer()
    old = oidc_issuer.ec
    await verifier.verify(oidc_issuer.mint(alg="ES256"), issuer)
    new = oidc_issuer.rotate("ES256", keep_old=False)
    oidc_clock.now += KEYS_MAX_AGE
    # The old key still serves while the refresh runs...
    await verifier.verify(oidc_issuer.mint(alg="ES256", kid=old.kid), issuer)
    # ...and a token with the new kid waits for that same refresh.
    await verifier.verify(oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    assert fetches(oidc_issuer) == (2, 2)
    reason = await refused(verifier, oidc_issuer.mint(alg="ES256", kid=old.kid), issuer)
    assert reason == f"the issuer has no key '{old.kid}'"


@pytest.mark.parametrize("outage", ["503", "500", "refused", "not a JWKS", "wrong issuer"])
async def test_on_fetch_failure_the_cached_keys_keep_working(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock, outage: str
) -> None:
    issuer = oidc_issuer.issuer()
    await verifier.verify(oidc_issuer.mint(), issuer)
    if outage == "refused":
        await oidc_issuer.refuse_connections()
    elif outage == "not a JWKS":
        oidc_issuer.jwks_uri = oidc_issuer.url + "/.well-known/openid-configuration"
    elif outage == "wrong issuer":
        oidc_issuer.discovery_issuer = "https://elsewhere.example"
    else:
        oidc_issuer.outage = int(outage)
    oidc_clock.now += KEYS_MAX_AGE  # stale: refreshing, and failing, in the background
    await verifier.verify(oidc_issuer.mint(), issuer)
    oidc_clock.now += REFETCH_INTERVAL
    await refused(verifier, oidc_issuer.mint(kid="unknown"), issuer)  # a failed refetch
    await verifier.verify(oidc_issuer.mint(), issuer)
    await verifier.verify(oidc_issuer.mint(alg="ES256"), issuer)


async def test_an_outage_before_any_key_is_known_refuses_then_recovers(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    oidc_issuer.outage = 503
    reason = await refused(verifier, oidc_issuer.mint(), issuer)
    assert reason == "the issuer's keys are unavailable"
    assert fetches(oidc_issuer) == (1, 0)
    oidc_issuer.outage = None
    await refused(verifier, oidc_issuer.mint(), issuer)  # within the minute: no fetch
    assert fetches(oidc_issuer) == (1, 0)
    oidc_clock.now += REFETCH_INTERVAL
    await verifier.verify(oidc_issuer.mint(), issuer)


async def test_an_empty_key_set_is_never_cached(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    oidc_issuer.empty_keys = True
    assert await refused(verifier, oidc_issuer.mint(), issuer) == (
        "the issuer's keys are unavailable"
    )
    oidc_issuer.empty_keys = False
    oidc_clock.now += REFETCH_INTERVAL
    await verifier.verify(oidc_issuer.mint(), issuer)
    # Known keys, then an empty set answered: it replaces nothing.
    oidc_issuer.empty_keys = True
    oidc_clock.now += REFETCH_INTERVAL
    await refused(verifier, oidc_issuer.mint(kid="unknown"), issuer)
    assert fetches(oidc_issuer) == (3, 3)
    await verifier.verify(oidc_issuer.mint(), issuer)


async def test_attack_a_discovery_document_naming_another_issuer_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    oidc_issuer.discovery_issuer = oidc_issuer.url + "/"
    assert await refused(verifier, oidc_issuer.mint(), oidc_issuer.issuer()) == (
        "the issuer's keys are unavailable"
    )
    assert fetches(oidc_issuer) == (1, 0)  # its jwks_uri was not followed


@pytest.mark.parametrize(
    "jwks_uri",
    ["http://keys.example/jwks", "file:///etc/passwd", "ftp://keys.example/jwks", "", 5],
)
async def test_attack_a_jwks_uri_that_is_not_https_is_not_fetched(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, jwks_uri: Any
) -> None:
    oidc_issuer.jwks_uri = jwks_uri
    await refused(verifier, oidc_issuer.mint(), oidc_issuer.issuer())
    assert fetches(oidc_issuer) == (1, 0)


async def test_attack_an_oversized_jwks_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    oidc_issuer.extra_jwks = [{"kid": "junk", "kty": "oct", "k": "A" * MAX_DOCUMENT_BYTES}]
    await refused(verifier, oidc_issuer.mint(), oidc_issuer.issuer())
    assert fetches(oidc_issuer) == (1, 1)


async def test_concurrent_verifications_share_one_fetch(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    issuer = oidc_issuer.issuer()
    oidc_issuer.hold()
    tokens = [oidc_issuer.mint(alg="RS256" if n % 2 else "ES256") for n in range(8)]
    tasks = [asyncio.create_task(verifier.verify(token, issuer)) for token in tokens]
    waiting = tasks.pop(0)  # the one that started the fetch
    while oidc_issuer.held == 0:
        await asyncio.sleep(0.01)
    waiting.cancel()  # one caller giving up does not cancel the others' fetch
    oidc_issuer.release()
    results = await asyncio.gather(*tasks)
    assert all(claims["iss"] == oidc_issuer.url for claims in results)
    assert fetches(oidc_issuer) == (1, 1)
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_slow_issuer_times_out_and_refuses(
    oidc_issuer: FakeIssuer, oidc_clock: FakeClock
) -> None:
    verifier = IdTokenVerifier(clock=oidc_clock, http_timeout=0.2)
    oidc_issuer.hold()
    try:
        reason = await refused(verifier, oidc_issuer.mint(), oidc_issuer.issuer())
        assert reason == "the issuer's keys are unavailable"
    finally:
        oidc_issuer.release()
        await verifier.close()


async def test_tls_is_verified_against_the_issuers_ca_file(oidc_clock: FakeClock) -> None:
    async with FakeIssuer(tls=True, clock=oidc_clock) as issuer:
        assert issuer.url.startswith("https://127.0.0.1:")
        verifier = IdTokenVerifier(clock=oidc_clock)
        try:
            # Without its CA the self-signed certificate is not trusted.
            await refused(verifier, issuer.mint(), issuer.issuer(ca_file=None))
            assert fetches(issuer) == (0, 0)  # no answer got through
            claims = await verifier.verify(issuer.mint(), issuer.issuer())
            assert claims["iss"] == issuer.url
        finally:
            await verifier.close()


async def test_a_clock_set_back_does_not_stop_refetches(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock
) -> None:
    issuer = oidc_issuer.issuer()
    await verifier.verify(oidc_issuer.mint(), issuer)
    oidc_clock.now -= 3600
    new = oidc_issuer.rotate("ES256")
    await verifier.verify(oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    assert fetches(oidc_issuer) == (2, 2)


async def test_an_issuer_configured_anew_does_not_reuse_the_old_keys(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, tmp_path: Path
) -> None:
    """Same URL, another JWKS file: the keys read for the old settings are dropped."""
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": []}')
    await verifier.verify(oidc_issuer.mint(), oidc_issuer.issuer())
    reason = await refused(verifier, oidc_issuer.mint(), oidc_issuer.issuer(jwks_file=str(empty)))
    assert reason == "the issuer's keys are unavailable"


# Keys from a JWKS file.


async def test_a_jwks_file_serves_the_keys_without_any_fetch(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, oidc_clock: FakeClock, tmp_path: Path
) -> None:
    path = oidc_issuer.write_jwks(tmp_path / "jwks.json")
    issuer = oidc_issuer.issuer(jwks_file=str(path))
    await verifier.verify(oidc_issuer.mint(kubernetes_claims()), issuer)
    assert fetches(oidc_issuer) == (0, 0)
    # A rotated key: the file is re-read for an unknown kid, at most once a minute.
    new = oidc_issuer.rotate("ES256")
    await refused(verifier, oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    oidc_issuer.write_jwks(path)
    await refused(verifier, oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    oidc_clock.now += REFETCH_INTERVAL
    await verifier.verify(oidc_issuer.mint(alg="ES256", kid=new.kid), issuer)
    assert fetches(oidc_issuer) == (0, 0)


@pytest.mark.parametrize(
    "content", [None, b"", b"not json", b'{"keys": 1}', b"[]", b" " * (MAX_DOCUMENT_BYTES + 1)]
)
async def test_an_unreadable_jwks_file_refuses(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_bytes(content)
    issuer = oidc_issuer.issuer(jwks_file=str(path))
    assert await refused(verifier, oidc_issuer.mint(), issuer) == (
        "the issuer's keys are unavailable"
    )


# The key's type, the signature.


async def test_attack_a_key_of_another_type_than_alg_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    """An ES256 token naming the issuer's RSA key (and the reverse) is refused before the
    signature is checked: a key verifies with the one algorithm of its type."""
    issuer = oidc_issuer.issuer()
    es_on_rsa = oidc_issuer.mint(alg="ES256", header={"kid": oidc_issuer.rsa.kid})
    reason = await refused(verifier, es_on_rsa, issuer)
    assert reason == f"the key '{oidc_issuer.rsa.kid}' is for RS256, the token says ES256"
    rs_on_ec = oidc_issuer.mint(alg="RS256", header={"kid": oidc_issuer.ec.kid})
    assert "is for ES256, the token says RS256" in await refused(verifier, rs_on_ec, issuer)


async def test_attack_a_wrong_signature_is_refused(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    issuer = oidc_issuer.issuer()
    token = oidc_issuer.mint(github_claims(repository="acme/app"))
    head, body, signature = token.split(".")
    tampered_claims = json.loads(jwt.utils.base64url_decode(body))
    tampered_claims["repository"] = "evil/app"
    tampered = forge(json.loads(jwt.utils.base64url_decode(head)), tampered_claims)
    tampered = tampered + signature
    assert await refused(verifier, tampered, issuer) == "the token's signature is invalid"
    impostor = IssuerKey(oidc_issuer.ec.kid, "ES256", generate_private_key("ES256"))
    signed_elsewhere = jwt.encode(
        oidc_issuer.claims(), impostor.private_key, "ES256", headers={"kid": impostor.kid}
    )
    assert await refused(verifier, signed_elsewhere, issuer) == "the token's signature is invalid"
    stripped = token.rsplit(".", 1)[0] + "."
    assert await refused(verifier, stripped, issuer) == "the token's signature is invalid"


# Audience.


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        ("tokenserver", True),
        ("registry.example", True),
        (["registry.example"], True),
        ("TokenServer", False),
        ("other", False),
        (["tokenserver", "other"], False),
        (["tokenserver", "tokenserver"], False),
        ([], False),
        ([5], False),
        (5, False),
        (None, False),
        (OMIT, False),
    ],
)
async def test_aud_must_be_exactly_one_of_the_issuers_audiences(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier, aud: Any, accepted: bool
) -> None:
    issuer = oidc_issuer.issuer(audiences=("tokenserver", "registry.example"))
    token = oidc_issuer.mint({"aud": aud})
    if accepted:
        assert (await verifier.verify(token, issuer))["aud"] == aud
    else:
        assert "aud" in await refused(verifier, token, issuer)


# Times.

NOW = "now"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": OMIT}, "the token has no exp (a number)"),
        ({"exp": "9999999999"}, "the token has no exp (a number)"),
        ({"exp": True}, "the token has no exp (a number)"),
        ({"exp": None}, "the token has no exp (a number)"),
        ({"iat": OMIT}, "the token has no iat (a number)"),
        ({"iat": [1]}, "the token has no iat (a number)"),
        ({"exp": -LEEWAY}, "the token expired"),
        ({"exp": -LEEWAY - 1, "iat": -300}, "the token expired"),
        ({"iat": LEEWAY + 1, "exp": 300}, "the token's iat is in the future"),
        ({"nbf": LEEWAY + 1}, "the token is not valid yet (nbf)"),
        ({"nbf": "0"}, "the token's nbf is not a number"),
        ({"nbf": None}, "the token's nbf is not a number"),
        ({"iat": 0, "exp": 0}, "the token's exp is not after its iat"),
        ({"iat": 10, "exp": 5}, "the token's exp is not after its iat"),
        (
            {"iat": 0, "exp": 601},
            "the token lives longer (exp - iat) than the issuer's maximum of 600 seconds",
        ),
    ],
)
async def test_times_are_required_and_checked_with_60_seconds_of_leeway(
    oidc_issuer: FakeIssuer,
    verifier: IdTokenVerifier,
    oidc_clock: FakeClock,
    claims: dict[str, Any],
    reason: str,
) -> None:
    """Numbers are seconds relative to now (the test's clock)."""
    now = int(oidc_clock.now)
    oidc_clock.now = now
    relative = {
        k: now + v if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in claims.items()
    }
    issuer = oidc_issuer.issuer(max_token_lifetime=600)
    assert await refused(verifier, oidc_issuer.mint(relative), issuer) == reason


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": -LEEWAY + 1, "iat": -300, "nbf": -300},  # expired, within the leeway
        {"iat": LEEWAY, "nbf": LEEWAY, "exp": 300},  # issued ahead, within the leeway
        {"nbf": OMIT},  # nbf is optional
        {"iat": 0, "exp": 600},  # exactly the maximum lifetime
        {"iat": 0.5, "exp": 300.5, "nbf": 0.5},  # NumericDate may have fractions
    ],
)
async def test_times_within_the_leeway_and_the_lifetime_are_accepted(
    oidc_issuer: FakeIssuer,
    verifier: IdTokenVerifier,
    oidc_clock: FakeClock,
    claims: dict[str, Any],
) -> None:
    now = int(oidc_clock.now)
    oidc_clock.now = now
    relative = {k: now + v if isinstance(v, int | float) else v for k, v in claims.items()}
    issuer = oidc_issuer.issuer(max_token_lifetime=600)
    await verifier.verify(oidc_issuer.mint(relative), issuer)


async def test_the_lifetime_limit_is_the_issuers(
    oidc_issuer: FakeIssuer, verifier: IdTokenVerifier
) -> None:
    token = oidc_issuer.mint(lifetime=3601)
    await refused(verifier, token, oidc_issuer.issuer())  # DEFAULT_MAX_TOKEN_LIFETIME
    await verifier.verify(token, oidc_issuer.issuer(max_token_lifetime=7200))


# JWKS parsing and URLs.


def rsa_jwk(bits: int = 2048, **more: object) -> dict[str, object]:
    if bits == 2048:
        key: PrivateKey = shared_keys()[0]
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return {**public_jwk(key.public_key()), "kid": "r", **more}


def ec_jwk(**more: object) -> dict[str, object]:
    return {**public_jwk(generate_private_key("ES256").public_key()), "kid": "e", **more}


def test_jwk_key_takes_rsa_and_p256_signature_keys() -> None:
    assert jwk_key(rsa_jwk()).algorithm == "RS256"
    assert jwk_key(rsa_jwk(alg="RS256", use="sig", key_ops=["verify"])).algorithm == "RS256"
    assert jwk_key(ec_jwk()).algorithm == "ES256"
    assert jwk_key(ec_jwk(alg="ES256")).algorithm == "ES256"


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(lambda: rsa_jwk(1024), id="RSA 1024"),
        pytest.param(lambda: rsa_jwk(alg="RS512"), id="RSA for RS512"),
        pytest.param(lambda: rsa_jwk(alg="ES256"), id="RSA claiming ES256"),
        pytest.param(lambda: rsa_jwk(use="enc"), id="RSA for encryption"),
        pytest.param(lambda: rsa_jwk(key_ops=["encrypt"]), id="RSA key_ops without verify"),
        pytest.param(lambda: rsa_jwk(key_ops="verify"), id="key_ops not a list"),
        pytest.param(lambda: rsa_jwk(n=""), id="RSA without n"),
        pytest.param(lambda: rsa_jwk(e="AA"), id="RSA with e 0"),
        pytest.param(lambda: rsa_jwk(n=5), id="RSA n not text"),
        pytest.param(lambda: ec_jwk(crv="P-384"), id="EC P-384"),
        pytest.param(lambda: ec_jwk(alg="RS256"), id="EC claiming RS256"),
        pytest.param(lambda: ec_jwk(x="AAAA"), id="EC short x"),
        pytest.param(lambda: ec_jwk(y=ec_jwk()["x"]), id="EC point off the curve"),
        pytest.param(lambda: {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}, id="symmetric"),
        pytest.param(lambda: {"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "o"}, id="OKP"),
    ],
)
def test_jwk_key_refuses_keys_we_do_not_accept(jwk: Any) -> None:
    with pytest.raises(ValueError):
        jwk_key(jwk())


def test_jwks_keys_leaves_out_unusable_keys_and_kids_named_twice() -> None:
    good, twin_a, twin_b = rsa_jwk(kid="good"), ec_jwk(kid="twin"), rsa_jwk(kid="twin")
    document = {
        "keys": [good, twin_a, twin_b, {"kty": "RSA"}, "junk", ec_jwk(kid=""), ec_jwk(kid=5)]
    }
    assert set(jwks_keys(document)) == {"good"}
    assert jwks_keys({"keys": []}) == {}
    not_jwks: object
    for not_jwks in ({}, {"keys": {}}, [], "x", None):
        with pytest.raises(KeyFetchError):
            jwks_keys(not_jwks)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://token.actions.githubusercontent.com", True),
        ("https://gitlab.example/oauth/discovery/keys", True),
        ("http://127.0.0.1:8080", True),
        ("http://127.9.9.9/x", True),
        ("http://[::1]:9000", True),
        ("http://localhost:9000", True),
        ("http://gitlab.example", False),
        ("http://10.0.0.1", False),
        ("http://[::ffff:127.0.0.1]", False),
        ("ftp://127.0.0.1", False),
        ("file:///etc/passwd", False),
        ("https://", False),
        ("https://[::1", False),
        ("", False),
        ("//127.0.0.1", False),
    ],
)
def test_fetchable_urls_are_https_or_loopback_http(url: str, ok: bool) -> None:
    assert fetchable(url) is ok


# The refusal on the wire, and closing.


async def test_a_refusal_is_a_401_with_the_reason_and_a_challenge(
    aiohttp_client: AiohttpClient,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise FederationRefused("the token expired")

    app = web.Application(middlewares=[error_middleware])
    app[REALM] = "http://test/service/token"
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    response = await client.get("/", headers={"Authorization": "Basic eDp5"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="http://test/service/token"'
    assert await response.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": "ID token refused: the token expired"}]
    }
    assert isinstance(FederationRefused("x"), Unauthorized)
    quiet = FederationRefused("claim 'ref' did not match", message="no rule matched")
    assert (quiet.reason, quiet.message) == ("claim 'ref' did not match", "no rule matched")


async def test_close_is_idempotent_and_the_verifier_still_works_after(
    oidc_issuer: FakeIssuer, oidc_clock: FakeClock
) -> None:
    verifier = IdTokenVerifier(clock=oidc_clock)
    await verifier.close()  # never used
    await verifier.verify(oidc_issuer.mint(), oidc_issuer.issuer())
    await verifier.close()
    await verifier.close()


# Garbage of every kind.

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@pytest.fixture(scope="module")
def garbage_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeIssuer, Issuer]:
    issuer = FakeIssuer(fresh_keys=False)
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    issuer.write_jwks(path)
    url = "https://issuer.example"
    return issuer, Issuer(id=1, name="garbage", url=url, audiences=("tokenserver",),
                          jwks_file=str(path))  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_attack_garbage_of_every_kind_is_only_ever_refused(
    garbage_setup: tuple[FakeIssuer, Issuer], data: st.DataObject
) -> None:
    """Whatever the header and claims hold, signed with the issuer's real key or not, the
    verifier answers claims or FederationRefused with a safe reason; nothing else escapes."""
    fake, issuer = garbage_setup
    now = 1_700_000_000
    valid: dict[str, object] = {
        "iss": issuer.url,
        "aud": "tokenserver",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "sub": "x",
    }
    claims = {
        name: data.draw(st.one_of(st.just(value), _VALUES), label=name)
        for name, value in valid.items()
    }
    for name in data.draw(st.sets(st.sampled_from(sorted(valid))), label="left out"):
        del claims[name]
    key = data.draw(st.sampled_from([fake.rsa, fake.ec]), label="key")
    header: dict[str, object] = {
        "alg": data.draw(st.one_of(st.just(key.alg), _VALUES), label="alg"),
        "kid": data.draw(st.one_of(st.just(key.kid), _VALUES), label="kid"),
    }
    how = data.draw(st.sampled_from(["signed", "forged", "text"]), label="how")
    if how == "signed":
        # The issuer's real signature: the checks after the signature see the garbage too.
        token = sign(header, claims, key.private_key, key.alg)
    elif how == "forged":
        token = forge(header, claims, data.draw(st.binary(max_size=300), label="signature"))
    else:
        token = data.draw(st.text(max_size=300), label="token")
    verifier = IdTokenVerifier(clock=lambda: now)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(verifier.verify(token, issuer))
    except FederationRefused as e:
        assert e.reason.isprintable() and len(e.reason) <= MAX_REASON
        assert len(token) < 8 or token not in e.reason
    finally:
        loop.run_until_complete(verifier.close())
        loop.close()
