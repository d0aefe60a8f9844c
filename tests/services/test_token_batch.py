"""Tokens asked for in one turn of the event loop are signed together at its end
(`TokenSigner.sign_soon`): each request still gets its own token, whatever the others asked,
and one that fails or goes away does not hold up the rest."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from tokenserver.domain.scopes import Scope
from tokenserver.keys import SigningKey, generate_private_key, libtrust_kid
from tokenserver.services.tokens import IssuedToken, TokenSigner


def _signer() -> tuple[TokenSigner, object]:
    private = generate_private_key("ES256")
    key = SigningKey("ES256", private, libtrust_kid(private.public_key()))
    return TokenSigner(key, issuer="iss", service="reg", lifetime=600), private.public_key()


def _claims(issued: IssuedToken, public: object) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        issued.token, public, algorithms=["ES256"], audience="reg",  # type: ignore[arg-type]
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )  # fmt: skip
    return claims


async def test_concurrent_requests_each_get_the_token_they_asked_for() -> None:
    signer, public = _signer()
    asks = [
        (f"robot$p{i % 7}+ci{i}", (Scope("repository", f"p{i % 7}/app{i}", ("pull",) * (i % 2)),),
         1_000_000 + i, 60 + i)
        for i in range(60)
    ]  # fmt: skip
    tokens = await asyncio.gather(
        *(
            signer.sign_soon(subject, access, now, None, lifetime)
            for subject, access, now, lifetime in asks
        )
    )
    ids = set()
    for (subject, access, now, lifetime), issued in zip(asks, tokens, strict=True):
        claims = _claims(issued, public)
        ids.add(claims.pop("jti"))
        assert claims == {
            "iss": "iss", "aud": "reg", "sub": subject,
            "iat": now, "nbf": now, "exp": now + lifetime,
            "access": [{"type": "repository", "name": access[0].name,
                        "actions": list(access[0].actions)}],
        }  # fmt: skip
        assert issued.access == access and issued.expires_in == lifetime
    assert len(ids) == len(asks)


async def test_a_request_gone_before_its_turn_ends_leaves_the_others_signed() -> None:
    signer, public = _signer()
    gone = signer.sign_soon("robot$p+gone", (), 1_000_000)
    kept = signer.sign_soon("robot$p+kept", (), 1_000_000)
    gone.cancel()
    issued = await kept
    assert _claims(issued, public)["sub"] == "robot$p+kept"
    assert gone.cancelled()


async def test_a_signature_that_fails_fails_only_its_own_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer, public = _signer()
    sign = signer.sign

    def failing(subject: str, *args: object) -> IssuedToken:
        if subject == "robot$p+broken":
            raise RuntimeError("the key went away")
        return sign(subject, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(signer, "sign", failing)
    results = await asyncio.gather(
        signer.sign_soon("robot$p+a", (), 1_000_000),
        signer.sign_soon("robot$p+broken", (), 1_000_000),
        signer.sign_soon("robot$p+b", (), 1_000_000),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    assert [_claims(r, public)["sub"] for r in (results[0], results[2])] == [  # type: ignore[arg-type]
        "robot$p+a",
        "robot$p+b",
    ]


async def test_a_new_key_signs_what_is_asked_after_it_is_set() -> None:
    signer, _ = _signer()
    private = generate_private_key("ES256")
    first = signer.sign_soon("robot$p+a", (), 1_000_000)
    await first
    signer.set_key(SigningKey("ES256", private, libtrust_kid(private.public_key())))
    issued = await signer.sign_soon("robot$p+a", (), 1_000_000)
    assert _claims(issued, private.public_key())["sub"] == "robot$p+a"
