"""Tokens as distribution 3.x verifies them: x5c chain against the rootcertbundle first, then
the kid as an RFC 7638 thumbprint of a bundle certificate or a kid in a JWKS file.

No distribution 3.x binary can be installed on this machine (Debian ships 2.8.2), so this
verifier follows 3.x's rules (registry/auth/token) in Python; 2.8's acceptance of x5c is
tested end to end against the real registry.
"""

from __future__ import annotations

import asyncio
import json
from base64 import b64decode
from typing import Any

import jwt
import pytest
from cryptography import x509

from tests.conftest import MakeSettings, with_migrated_database
from tests.helpers import call_cli
from tests.http.conftest import AiohttpClient, Server
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.keys import jwk_thumbprint


class Untrusted(Exception):
    pass


def verify_like_distribution3(
    token: str, bundle: list[x509.Certificate], jwks: dict[str, Any] | None, settings: Any
) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    key: Any = None
    if "x5c" in header:
        leaf = x509.load_der_x509_certificate(b64decode(header["x5c"][0]))
        # A self-signed leaf verifies against the roots pool only if it is one of the roots.
        if leaf not in bundle:
            raise Untrusted("x5c certificate not in the rootcertbundle")
        leaf.verify_directly_issued_by(leaf)
        key = leaf.public_key()
    else:
        kid = header.get("kid")
        for certificate in bundle:
            if jwk_thumbprint(certificate.public_key()) == kid:  # type: ignore[arg-type]
                key = certificate.public_key()
        for jwk in (jwks or {}).get("keys", []):
            if jwk.get("kid") == kid:
                key = jwt.PyJWK(jwk).key
        if key is None:
            raise Untrusted(f"token signed by untrusted key with ID: {kid!r}")
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=settings.token.service,
        issuer=settings.token.issuer,
        leeway=60,
    )
    return claims


async def issue(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, algorithm: str, **overrides: Any
) -> tuple[str, Any]:
    settings = with_migrated_database(make_settings(token__algorithm=algorithm, **overrides))
    app = create_app(settings)
    server = Server(await aiohttp_client(app), app[RUNTIME], settings)
    await server.runtime.projects.create(LOCAL, "p", public=True)
    r = await server.client.get("/service/token", params={"scope": "repository:p/app:pull"})
    assert r.status == 200
    return (await r.json())["token"], settings


def bundle_of(settings: Any) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(settings.token.certificate.read_bytes())


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_thumbprint_kid_is_trusted_by_the_bundle(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, algorithm: str
) -> None:
    token, settings = await issue(
        make_settings, aiohttp_client, algorithm, token__kid_format="thumbprint"
    )
    assert "x5c" not in jwt.get_unverified_header(token)
    claims = verify_like_distribution3(token, bundle_of(settings), None, settings)
    assert claims["access"][0]["actions"] == ["pull"]


async def test_libtrust_kid_alone_is_not_trusted_by_distribution3(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    token, settings = await issue(make_settings, aiohttp_client, "ES256")
    with pytest.raises(Untrusted):
        verify_like_distribution3(token, bundle_of(settings), None, settings)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_x5c_is_tried_first(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, algorithm: str
) -> None:
    token, settings = await issue(make_settings, aiohttp_client, algorithm, token__x5c=True)
    header = jwt.get_unverified_header(token)
    assert len(header["x5c"]) == 1
    assert ":" in header["kid"]  # libtrust kid kept for 2.x
    verify_like_distribution3(token, bundle_of(settings), None, settings)
    other_settings = make_settings(token__algorithm=algorithm, own_key=True)
    with pytest.raises(Untrusted):
        verify_like_distribution3(token, bundle_of(other_settings), None, settings)


@pytest.mark.parametrize("kid_format", ["thumbprint", "libtrust"])
async def test_jwks_file_from_the_cli(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, kid_format: str
) -> None:
    token, settings = await issue(
        make_settings, aiohttp_client, "ES256", token__kid_format=kid_format
    )
    output = settings.config_path.parent / "jwks.json"
    # In-process, as the CLI tests run it; on a thread of its own, as it runs an event loop.
    result = await asyncio.to_thread(
        call_cli, settings.config_path, "keys", "jwks", "--output", str(output)
    )
    assert result.returncode == 0, result.stderr
    jwks = json.loads(output.read_text())
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == jwt.get_unverified_header(token)["kid"]
    assert jwk["alg"] == "ES256"
    assert "d" not in jwk  # never the private key
    verify_like_distribution3(token, [], jwks, settings)
