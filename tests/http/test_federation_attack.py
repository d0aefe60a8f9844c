"""An outside review of robot federation on a live server: what a caller without any valid
ID token can learn or leave behind with a token it made itself (no key, no signature)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.http.conftest import Server, basic
from tests.http.test_federated_login import GITHUB_RULE, Federation, federation_on
from tests.oidc_issuer import FakeIssuer, forge, github_claims
from tokenserver.services.ports import NewIssuer, NewRule

TOKEN = "/service/token"


@pytest.fixture
async def fed(server: Server) -> AsyncIterator[Federation]:
    async for federation in federation_on(server):
        yield federation


def made_up(fed: Federation, alg: str, **claims: Any) -> str:
    """A token anyone can write: the trusted issuer's `iss` and audience, no valid signature."""
    header: dict[str, object] = {"alg": alg, "kid": fed.issuer.rsa.kid, "typ": "JWT"}
    return forge(header, fed.issuer.claims(github_claims(**claims)), b"\x00" * 256)


async def answer(fed: Federation, name: str, password: str) -> tuple[int, Any]:
    response = await fed.server.client.get(
        TOKEN, params={"service": fed.server.settings.token.service}, headers=basic(name, password)
    )
    return response.status, await response.json()


@pytest.mark.parametrize("alg", ["none", "RS256"])
async def test_attack_a_made_up_token_does_not_tell_which_robots_have_rules(
    fed: Federation, alg: str
) -> None:
    """Without any genuine ID token, a caller must not learn that a robot exists, that it has
    federation rules, nor which issuers they name ("Anonymous callers learn nothing of what
    exists"; "Whether a robot is disabled or expired is told only to a caller who knows its
    secret"). Today a self-made JWT naming a trusted issuer gets "invalid username or password"
    for an unknown robot or one without rules, but "ID token refused: the robot has no rule for
    issuer github" or "ID token refused: the token's algorithm is 'none'..." for robots with
    rules: a free oracle over robot names, and over the issuers each robot trusts."""
    store = fed.server.runtime.store
    plain = await fed.server.robot("ci", "plain", "repository:pull")
    async with FakeIssuer(fresh_keys=False) as other_platform:
        other = await store.add_issuer(
            NewIssuer(
                name="gitlab",
                url=other_platform.url,
                audiences=(other_platform.audience,),
                jwks_file=None,
                ca_file=None,
                max_token_lifetime=3600,
                created_at=int(time.time()),
            )
        )
        elsewhere = await fed.server.robot("ci", "elsewhere", "repository:pull")
        await store.replace_federation_rules(
            elsewhere.id, [NewRule(other.id, GITHUB_RULE)], int(time.time())
        )
        token = made_up(fed, alg)
        answers = {
            "no such robot": await answer(fed, "robot$ci+nosuch", token),
            "robot without rules": await answer(fed, plain.name, token),
            "robot with rules of another issuer": await answer(fed, elsewhere.name, token),
            "robot with rules of this issuer": await answer(fed, fed.robot.name, token),
        }
    assert len({repr(a) for a in answers.values()}) == 1, answers
    assert other_platform.discovery_fetches == 0


async def test_attack_a_made_up_token_leaves_no_failure_under_a_subject_of_its_choice(
    fed: Federation,
) -> None:
    """The managers' "recent refused logins" name the subject that tried. A token whose
    signature was never checked names whatever its writer chose: anyone may fill a robot's 50
    newest failures with `repo:victim/...` subjects, pushing genuine refusals out and pointing
    the managers at an innocent repository. Only a verified subject belongs there."""
    forged_subject = "repo:innocent/bystander:ref:refs/heads/main"
    status, _ = await answer(
        fed, fed.robot.name, made_up(fed, "RS256", repository="innocent/bystander")
    )
    assert status == 401
    failures = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert [f for f in failures if f.subject == forged_subject] == [], failures
