"""The fake OIDC issuer itself: what it serves, its knobs, and its use from synchronous tests
(a background thread) as the end-to-end tests use it."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

from tests.helpers import FakeClock
from tests.oidc_issuer import FakeIssuer, ThreadedIssuer, github_claims, kubernetes_claims
from tokenserver.domain.claims import claim_value, match_rule, unverified
from tokenserver.domain.federation import Condition
from tokenserver.errors import FederationRefused
from tokenserver.services.oidc import IdTokenVerifier, jwks_keys


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback http
        return json.loads(response.read())


def test_a_threaded_issuer_serves_and_mints_for_synchronous_tests(
    threaded_oidc_issuer: FakeIssuer, tmp_path: Path
) -> None:
    issuer = threaded_oidc_issuer
    discovery = get_json(issuer.url + "/.well-known/openid-configuration")
    assert isinstance(discovery, dict)
    assert discovery["issuer"] == issuer.url
    jwks = get_json(discovery["jwks_uri"])
    assert set(jwks_keys(jwks)) == {issuer.rsa.kid, issuer.ec.kid}
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)
    # Its tokens verify with pyjwt alone, at the wall clock's time.
    token = issuer.mint(github_claims(repository="acme/app"), audience="registry")
    public = issuer.rsa.private_key.public_key()
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="registry")
    assert claims["repository"] == "acme/app" and claims["iss"] == issuer.url
    assert claims["exp"] - claims["iat"] == 300
    # The JWKS file holds what it serves.
    path = issuer.write_jwks(tmp_path / "jwks.json")
    assert json.loads(path.read_text()) == jwks


def test_a_threaded_issuers_knobs_work_from_the_test_thread() -> None:
    threaded = ThreadedIssuer()
    with threaded as issuer:
        issuer.outage = 503
        with pytest.raises(urllib.error.HTTPError) as info:
            get_json(issuer.url + "/jwks")
        assert info.value.code == 503
        issuer.outage = None
        threaded.run(issuer.refuse_connections())
        with pytest.raises(urllib.error.URLError):
            get_json(issuer.url + "/jwks")
        threaded.run(issuer.accept_connections())
        issuer.delay = 0.01
        assert get_json(issuer.url + "/jwks") == issuer.jwks()
        issuer.delay = 0
        # A verifier on another loop (a server's) checks its tokens.
        issuer_config = issuer.issuer()
        verifier = IdTokenVerifier()

        async def verify() -> dict[str, object]:
            try:
                return await verifier.verify(issuer.mint(alg="ES256"), issuer_config)
            finally:
                await verifier.close()

        assert asyncio.run(verify())["iss"] == issuer.url


async def test_an_issuer_url_with_a_path_is_discovered_below_it(oidc_clock: FakeClock) -> None:
    """GitHub Enterprise Server's issuer is `https://HOST/_services/token`: discovery is at
    `{issuer}/.well-known/openid-configuration`, below the path."""
    async with FakeIssuer(clock=oidc_clock, path="/_services/token", fresh_keys=False) as fake:
        assert fake.url.endswith("/_services/token")
        verifier = IdTokenVerifier(clock=oidc_clock)
        try:
            await verifier.verify(fake.mint(), fake.issuer())
        finally:
            await verifier.close()
        assert (fake.discovery_fetches, fake.jwks_fetches) == (1, 1)


async def test_the_presets_are_shaped_like_the_platforms_tokens(oidc_issuer: FakeIssuer) -> None:
    github = unverified(oidc_issuer.mint(github_claims(repository="acme/app", ref="refs/tags/v1")))
    assert github is not None
    assert github.claims["sub"] == "repo:acme/app:ref:refs/tags/v1"
    assert github.claims["ref_type"] == "tag"
    assert github.header["kid"] == oidc_issuer.rsa.kid and github.header["alg"] == "RS256"
    env = github_claims(environment="prod")
    assert env["sub"] == "repo:acme/app:environment:prod"
    k8s = kubernetes_claims(namespace="ci", serviceaccount="builder")
    assert k8s["sub"] == "system:serviceaccount:ci:builder"
    assert claim_value(k8s, "kubernetes.io.serviceaccount.name") == "builder"
    rule = (
        Condition("kubernetes.io.namespace", ("ci",)),
        Condition("kubernetes.io.serviceaccount.name", ("builder",)),
    )
    assert match_rule(rule, k8s) is None


async def test_a_fetch_failure_is_logged_with_the_issuer_and_why(
    oidc_issuer: FakeIssuer, oidc_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    oidc_issuer.outage = 502
    verifier = IdTokenVerifier(clock=oidc_clock)
    token = oidc_issuer.mint()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="tokenserver.oidc"),
            pytest.raises(FederationRefused),
        ):
            await verifier.verify(token, oidc_issuer.issuer(name="github"))
    finally:
        await verifier.close()
    (record,) = [r for r in caplog.records if r.name == "tokenserver.oidc"]
    message = record.getMessage()
    assert "could not fetch the keys of issuer github" in message
    assert "answered HTTP 502" in message and "0 cached keys stay" in message
    assert token not in caplog.text
