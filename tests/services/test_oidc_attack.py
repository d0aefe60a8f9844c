"""An outside review of the issuer key fetch: where a discovery document may send it."""

from __future__ import annotations

import pytest

from tests.helpers import FakeClock
from tests.oidc_issuer import FakeIssuer
from tokenserver.errors import FederationRefused
from tokenserver.services.oidc import IdTokenVerifier, keys_url_allowed


async def test_attack_an_https_issuers_discovery_cannot_send_the_key_fetch_to_plain_http(
    oidc_clock: FakeClock,
) -> None:
    """An issuer served over https (TLS verified) names its `jwks_uri` in its discovery
    document. Today any `http://` URL on a loopback host is followed, whatever the issuer: an
    https issuer (a compromised one, or a proxy in front of it) downgrades the key fetch to
    plain http and aims it at any port and path of the server's own loopback (the fetch is
    a blind GET: the operator's log says what answered). Keys must come over https from an
    https issuer; http is for an issuer that is itself on http loopback."""
    async with (
        FakeIssuer(tls=True, clock=oidc_clock) as issuer,
        FakeIssuer(clock=oidc_clock) as plain,
    ):
        # The plain-http listener publishes keys too: a token signed by them is accepted
        # exactly when its JWKS was fetched.
        issuer.jwks_uri = plain.url + "/jwks"
        issuer.keys[plain.rsa.kid] = plain.rsa
        token = issuer.mint(alg="RS256", kid=plain.rsa.kid)
        verifier = IdTokenVerifier(clock=oidc_clock)
        try:
            try:
                await verifier.verify(token, issuer.issuer())
                accepted = True
            except FederationRefused:
                accepted = False
        finally:
            await verifier.close()
        assert (plain.jwks_fetches, accepted) == (0, False), "keys were taken over plain http"


@pytest.mark.parametrize(
    ("issuer_url", "jwks_uri", "allowed"),
    [
        ("https://token.actions.githubusercontent.com", "https://x.example/keys", True),
        ("https://token.actions.githubusercontent.com", "http://127.0.0.1:8080/keys", False),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/jwks", True),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9001/internal", False),
        ("http://127.0.0.1:9000", "http://[::1]:9000/jwks", False),
        ("http://127.0.0.1:9000", "https://127.0.0.1:9443/jwks", True),
        ("https://gitlab.example", "file:///etc/passwd", False),
        ("https://gitlab.example", "https://bad:port/", False),
    ],
)
def test_attack_a_discovery_document_cannot_downgrade_or_redirect_the_key_fetch(
    issuer_url: str, jwks_uri: str, allowed: bool
) -> None:
    assert keys_url_allowed(issuer_url, jwks_uri) is allowed
