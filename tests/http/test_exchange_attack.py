"""An outside review of the token exchange (RFC 8693) and temporary robot secrets on a live
server (issue 17 item 4): what an anonymous caller learns from the exchange's refusals, what a
lock-out does to a workload's temporary secret, and what outlives what it was issued for."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, Server, serving
from tests.http.test_federated_login import GITHUB_RULE, Federation, federation_on
from tests.http.test_token_exchange import exchange, temporary_secret
from tests.oidc_issuer import forge
from tokenserver.domain.exchange import GRANT_TYPE, KEEP_TEMPORARY_SECRETS
from tokenserver.services.ports import NewIssuer, NewRule


@pytest.fixture
async def fed(server: Server) -> AsyncIterator[Federation]:
    async for federation in federation_on(server):
        yield federation


async def _answer(fed: Federation, token: str, resource: str) -> tuple[int, str]:
    """The status and body of an exchange of `token` for `resource`, the robot's name in the
    body made a placeholder (the refusal names the robot it was asked for)."""
    response = await exchange(fed, token, resource=resource)
    return response.status, (await response.text()).replace(resource, "ROBOT")


async def test_attack_an_exchange_does_not_tell_anonymous_callers_which_robots_exist(
    fed: Federation,
) -> None:
    """ "Anonymous callers learn nothing of what exists", and `takes_no_id_tokens` gives "the
    same words for both, so that an exchange does not tell which robots exist". But a
    subject_token that is no JWT (a robot secret pasted by mistake, or any string), or a JWT
    naming an issuer nobody trusts, is answered "not a JWT" / "not one this server trusts"
    for a robot that exists (with rules or without), and "ROBOT is not a robot that takes ID
    tokens" for one that does not: anyone lists robot names with one request each, no ID
    token and no account needed."""
    plain = await fed.server.robot("ci", "plain", "repository:pull")
    untrusted = forge(
        {"alg": "RS256", "kid": "k", "typ": "JWT"},
        {"iss": "https://untrusted.example", "sub": "x", "aud": "tokenserver", "jti": "j"},
        b"\x00" * 256,
    )
    robots = (fed.robot.name, plain.name, "robot$ci+nosuch", "robot$nosuchproject+x")
    for token in ("not-a-jwt", "a.b.c", "a." + "b" * 9000 + ".c", untrusted):
        answers = {name: await _answer(fed, token, name) for name in robots}
        assert len(set(answers.values())) == 1, (token[:20], answers)


async def test_attack_a_lockout_does_not_refuse_a_valid_temporary_secret(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    """A temporary secret is 256 random bits handed to a CI job, as a refresh token is; the
    README never lets a lock-out refuse a refresh token or a genuine ID token ("no one can
    guess [it], and a CI runner's address is often many runners'"). A temporary secret is
    refused with 429: whoever shares the runner's address (another job on the same runner
    pool, the same NAT) sends a few wrong passwords for the robot, and every job's `docker
    push` with its temporary secret fails for up to `security.lockout_max_seconds`, long
    after its ID token (which cannot be exchanged again) expired."""
    settings = make_settings(security__lockout_threshold=3)
    async with serving(settings, aiohttp_client) as server:
        async for fed in federation_on(server):
            secret = (await temporary_secret(fed))["access_token"]
            assert (await fed.get(secret)).status == 200
            for n in range(3):
                assert (await fed.get(f"Wrong-guess-{n}")).status == 401
            assert (await fed.get("Wrong-guess-again")).status == 429  # the lock-out is on
            response = await fed.get(secret)
            assert response.status == 200, await response.text()
            posted = await fed.post(secret)
            assert posted.status == 200, await posted.text()


async def test_attack_a_refresh_token_ends_with_its_evicted_temporary_secret(
    fed: Federation,
) -> None:
    """A robot keeps only its newest KEEP_TEMPORARY_SECRETS; when an older one is dropped it
    stops working. A refresh token `docker login` got with it kept working until the secret's
    original expiry; now such a login gets none: the secret is the session's credential, and
    everything that logged in with it ends with it."""
    secret = (await temporary_secret(fed))["access_token"]
    response = await fed.get(secret, offline_token="true", client_id="docker")
    assert response.status == 200
    assert "refresh_token" not in await response.json()
    for _ in range(KEEP_TEMPORARY_SECRETS):
        await temporary_secret(fed)
    assert (await fed.get(secret)).status == 401  # the secret has ended
    assert await fed.server.runtime.store.list_refresh_tokens(robot_id=fed.robot.id) == []


async def test_attack_a_jti_stays_used_when_its_issuer_is_removed_and_added_again(
    fed: Federation,
) -> None:
    """Each ID token is exchanged once. The used `jti`s are kept under the issuer's row id
    and removed with the issuer; there is no `issuer update`, so changing an issuer (its
    audiences, its CA) is remove and add again, and every ID token exchanged before (within
    its lifetime) can then be exchanged a second time."""
    store = fed.server.runtime.store
    token = fed.token()
    assert (await exchange(fed, token)).status == 200
    await store.replace_federation_rules(fed.robot.id, [], int(time.time()))
    assert (await store.delete_issuer("github")).removed
    again = await store.add_issuer(
        NewIssuer(
            name="github",
            url=fed.issuer.url,
            audiences=(fed.issuer.audience,),
            jwks_file=None,
            ca_file=None,
            max_token_lifetime=3600,
            created_at=int(time.time()),
        )
    )
    await store.replace_federation_rules(
        fed.robot.id, [NewRule(again.id, GITHUB_RULE)], int(time.time())
    )
    response = await exchange(fed, token)
    assert response.status == 401, await response.text()
    assert "replay" in await response.text()


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": [GRANT_TYPE, "password"]},
        {"service": ["registry", "other"]},
        {"access_type": ["online", "offline"]},
    ],
)
async def test_attack_a_repeated_field_of_an_exchange_is_a_400(
    fed: Federation, form: dict[str, Any]
) -> None:
    """README (the exchange): "400 for a malformed request (a missing or repeated field,
    ...)". grant_type, service and access_type given twice are taken as their first value:
    a proxy or audit that reads the last one sees another request than the server runs."""
    response = await exchange(fed, fed.token(), **form)
    assert response.status == 400, await response.text()
    assert fed.issuer.jwks_fetches == 0
