"""Direct federated logins at the token endpoint: a robot with federation rules logs in with a
workload's OIDC ID token as its password (GET with Basic, POST password grant), against a
fake issuer on loopback and real keys."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.conftest import MakeSettings
from tests.http.conftest import AiohttpClient, RobotCredentials, Server, basic, serving
from tests.oidc_issuer import FakeIssuer, forge, github_claims, kubernetes_claims
from tokenserver.domain.federation import Condition, Issuer
from tokenserver.domain.secrets import token_digest
from tokenserver.services.ports import NewIssuer, NewRule

TOKEN = "/service/token"
SCOPE = "repository:ci/app:pull,push"
GITHUB_RULE = (
    Condition("repository_owner_id", ("1234567",)),
    Condition("repository", ("acme/app",)),
    Condition("ref", ("refs/heads/main", "refs/tags/v*")),
)


@dataclass
class Federation:
    server: Server
    issuer: FakeIssuer
    trusted: Issuer
    robot: RobotCredentials

    async def rules(self, *rules: tuple[Condition, ...], robot_id: int | None = None) -> None:
        await self.server.runtime.store.replace_federation_rules(
            self.robot.id if robot_id is None else robot_id,
            [NewRule(self.trusted.id, conditions) for conditions in rules],
            int(time.time()),
        )

    def token(self, **claims: Any) -> str:
        return self.issuer.mint(github_claims(**claims))

    async def get(self, password: str, *, name: str | None = None, **params: str) -> Any:
        return await self.server.client.get(
            TOKEN,
            params={"scope": SCOPE, **params},
            headers=basic(name or self.robot.name, password),
        )

    async def post(self, password: str, **form: str) -> Any:
        return await self.server.client.post(
            TOKEN,
            data={
                "grant_type": "password",
                "username": self.robot.name,
                "password": password,
                "scope": SCOPE,
                "client_id": "test",
                **form,
            },
        )


async def federation_on(server: Server) -> AsyncIterator[Federation]:
    async with FakeIssuer(fresh_keys=False) as issuer:
        trusted = await server.runtime.store.add_issuer(
            NewIssuer(
                name="github",
                url=issuer.url,
                audiences=(issuer.audience,),
                jwks_file=None,
                ca_file=None,
                max_token_lifetime=3600,
                created_at=int(time.time()),
            )
        )
        robot = await server.robot("ci", "builder", "repository:pull", "repository:push")
        federation = Federation(server, issuer, trusted, robot)
        await federation.rules(GITHUB_RULE)
        yield federation


@pytest.fixture
async def fed(server: Server) -> AsyncIterator[Federation]:
    async for federation in federation_on(server):
        yield federation


def access(body: dict[str, Any]) -> list[dict[str, Any]]:
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    result: list[dict[str, Any]] = claims["access"]
    return result


async def test_a_robot_logs_in_with_an_id_token_its_rule_admits(fed: Federation) -> None:
    token = fed.token()
    response = await fed.get(token)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert access(body) == [{"type": "repository", "name": "ci/app", "actions": ["pull", "push"]}]
    assert jwt.decode(body["token"], options={"verify_signature": False})["sub"] == fed.robot.name
    # The OAuth2 password grant (containerd's first try) agrees.
    posted = await fed.post(token)
    assert posted.status == 200, await posted.text()
    assert (await posted.json())["scope"] == SCOPE


async def test_the_same_id_token_works_again_without_fetching_keys_again(fed: Federation) -> None:
    """Clients send the password with every token request: the same ID token keeps working
    until it expires, checked once."""
    token = fed.token(ref="refs/tags/v1.2.3")
    for _ in range(5):
        assert (await fed.get(token)).status == 200
    assert fed.issuer.jwks_fetches == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"repository": "acme/other"}, "claim 'repository' did not match"),
        ({"repository_owner_id": "666"}, "claim 'repository_owner_id' did not match"),
        ({"ref": "refs/heads/dev"}, "claim 'ref' did not match"),
        ({"event_name": "pull_request_target"}, "event_name"),
    ],
)
async def test_attack_a_token_no_rule_admits_is_refused_and_kept_for_the_managers(
    fed: Federation, claims: dict[str, str], reason: str
) -> None:
    response = await fed.get(fed.token(**claims))
    assert response.status == 401
    body = await response.json()
    message = body["errors"][0]["message"]
    assert fed.robot.name in message and "no federation rule" in message
    failures = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert len(failures) == 1
    assert reason in failures[0].reason
    assert failures[0].subject.startswith("repo:")


async def test_attack_a_refused_tokens_hostile_text_is_kept_escaped_once(fed: Federation) -> None:
    """The subject and the value a reason quotes are escaped (control characters, the
    backslash) once, on the token path; the store escaped them again, so the managers read
    `\\\\x1b` for an ESC and `\\'` for a quote. Markup is text, left as it is."""
    hostile = "<img src=x onerror=alert(1)> &amp; \"q\" 'q' \\x41 \x1b end"
    assert (await fed.get(fed.token(sub=hostile, repository=hostile))).status == 401
    [failure] = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert failure.subject == "<img src=x onerror=alert(1)> &amp; \"q\" 'q' \\\\x41 \\x1b end"
    assert failure.reason == (
        "rule 1: claim 'repository' did not match: it is "
        "'<img src=x onerror=alert(1)> &amp; \"q\" \\'q\\' \\\\x41 \\x1b end'"
    )


async def test_attack_wrong_audience_expired_and_forged_tokens_are_refused(
    fed: Federation,
) -> None:
    claims = github_claims()
    now = time.time()
    refused = [
        fed.issuer.mint(claims, audience="https://someone-else.example"),
        fed.issuer.mint(claims, issued_at=now - 4000, lifetime=600),  # expired
        fed.issuer.mint(claims, lifetime=7200),  # lives longer than the issuer allows
        fed.issuer.mint(claims)[:-4] + "AAAA",  # signature changed
        forge(
            {"alg": "none", "kid": fed.issuer.rsa.kid},
            fed.issuer.claims(claims),
        ),
    ]
    for token in refused:
        response = await fed.get(token)
        assert response.status == 401, token
    # Only a genuine token's refusal is kept and explained: anyone could write the last two.
    failures = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert [f.reason.split(" ")[2] for f in failures] == ["lives", "expired", "aud"], failures
    for token in refused[3:]:
        response = await fed.get(token)
        assert "invalid username or password" in await response.text()


async def test_a_jwt_of_an_issuer_nobody_trusts_is_checked_as_the_secret(
    fed: Federation,
) -> None:
    """No fetch ever goes to an address a caller chose: an `iss` that is not a trusted issuer
    makes the password a (wrong) secret, and the issuer is never asked for keys."""
    async with FakeIssuer(fresh_keys=False) as stranger:
        response = await fed.get(stranger.mint(github_claims()))
        assert response.status == 401
        assert "invalid username or password" in (await response.text())
        assert stranger.discovery_fetches == 0 and stranger.jwks_fetches == 0
    assert await fed.server.runtime.store.list_federation_failures(fed.robot.id) == []


async def test_a_robot_without_rules_never_takes_an_id_token(fed: Federation) -> None:
    other = await fed.server.robot("ci", "plain", "repository:pull")
    response = await fed.get(fed.token(), name=other.name)
    assert response.status == 401
    assert "invalid username or password" in (await response.text())
    assert fed.issuer.jwks_fetches == 0
    # ... and its secret still works.
    assert (await fed.get(other.secret, name=other.name)).status == 200


async def test_a_disabled_robot_is_refused_with_a_valid_token(fed: Federation) -> None:
    from tokenserver.services.ports import RobotChanges

    await fed.server.runtime.store.update_robot(
        fed.robot.id, int(time.time()), RobotChanges(disabled=True)
    )
    response = await fed.get(fed.token())
    assert response.status == 401
    assert "disabled" in (await response.text())


async def test_secret_login_off_refuses_the_secret_and_keeps_the_id_token(
    fed: Federation,
) -> None:
    assert (await fed.get(fed.robot.secret)).status == 200
    assert await fed.server.runtime.store.set_secret_login(fed.robot.id, False, int(time.time()))
    refused = await fed.get(fed.robot.secret)
    assert refused.status == 401
    assert "secret login is turned off" in (await refused.text())
    assert (await fed.get(fed.token())).status == 200


async def test_a_federated_refresh_token_ends_with_the_session_or_a_rule_change(
    fed: Federation,
) -> None:
    response = await fed.post(fed.token(), access_type="offline")
    assert response.status == 200
    refresh = (await response.json())["refresh_token"]
    stored = await fed.server.runtime.store.find_refresh_token(token_digest(refresh))
    assert stored is not None and stored.federated
    lifetime = fed.server.settings.federation.session_lifetime
    assert stored.expires_at is not None
    assert stored.created_at + lifetime == stored.expires_at

    async def refreshed() -> int:
        answer = await fed.server.client.post(
            TOKEN,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "scope": SCOPE,
                "client_id": "test",
            },
        )
        return answer.status

    assert await refreshed() == 200
    # A change of the robot's rules revokes it.
    await fed.rules(GITHUB_RULE[:2])
    assert await refreshed() == 401


async def test_a_secret_logins_refresh_token_ends_when_secret_login_is_turned_off(
    fed: Federation,
) -> None:
    response = await fed.post(fed.robot.secret, access_type="offline")
    refresh = (await response.json())["refresh_token"]
    assert await fed.server.runtime.store.set_secret_login(fed.robot.id, False, int(time.time()))
    answer = await fed.server.client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": refresh, "scope": SCOPE},
    )
    assert answer.status == 401


async def test_nested_kubernetes_claims_admit_a_pod(fed: Federation) -> None:
    await fed.rules(
        (
            Condition("kubernetes.io.namespace", ("ci",)),
            Condition("kubernetes.io.serviceaccount.name", ("builder",)),
        )
    )
    admitted = fed.issuer.mint(kubernetes_claims(namespace="ci", serviceaccount="builder"))
    assert (await fed.get(admitted)).status == 200
    other = fed.issuer.mint(kubernetes_claims(namespace="prod", serviceaccount="builder"))
    assert (await fed.get(other)).status == 401


async def test_the_log_names_the_workload_and_never_the_token(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tokenserver")
    good, bad = fed.token(), fed.token(repository="evil/app")
    assert (await fed.get(good)).status == 200
    assert (await fed.get(bad)).status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "tokenserver.token"]
    issued = next(line for line in lines if line.startswith("token issued"))
    denied = next(line for line in lines if line.startswith("token denied"))
    for field in (f"iss='{fed.issuer.url}'", "sub='repo:acme/app:", "repository='acme/app'"):
        assert field in issued, issued
    assert "rule='" in issued and "run_id='9876543210'" in issued and "sha='" in issued
    assert "sub='repo:evil/app:" in denied and f"aud='{fed.issuer.audience}'" in denied
    assert "repository" in denied
    for record in caplog.records:
        text = record.getMessage()
        for token in (good, bad):
            assert token not in text
            assert token.split(".")[2] not in text


async def test_attack_failed_id_tokens_count_in_the_lockout(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    settings = make_settings(security__lockout_threshold=3)
    async with serving(settings, aiohttp_client) as server:
        async for fed in federation_on(server):
            for n in range(3):
                assert (await fed.get(fed.token(repository=f"evil/{n}"))).status == 401
            locked = await fed.get(fed.token(repository="evil/3"))
            assert locked.status == 429
            # Unsigned ones too, and the secret (the robot and the client are locked out)...
            assert (await fed.get(fed.token()[:-8] + "AAAAAAAA")).status == 429
            assert (await fed.get(fed.robot.secret)).status == 429
            # ... but a genuine ID token is never refused by a lock-out (no one can guess one,
            # and a CI runner's address is often many runners').
            assert (await fed.get(fed.token())).status == 200


async def test_each_id_token_is_one_login_the_managers_see(fed: Federation) -> None:
    """Which workflow pushed this image: a login is recorded once per ID token and robot
    (clients send it again with every request), with the workload it was."""
    first = fed.token(run_id="111", sha="1" * 40)
    second = fed.token(run_id="222", sha="2" * 40, ref="refs/tags/v2")
    for token in (first, first, first, second, second):
        assert (await fed.get(token)).status == 200
    logins = await fed.server.runtime.store.list_federation_logins(fed.robot.id)
    assert [login.identity.run_id for login in logins] == ["222", "111"]
    newest = logins[0].identity
    assert (newest.issuer, newest.repository, newest.ref, newest.sha) == (
        "github",
        "acme/app",
        "refs/tags/v2",
        "2" * 40,
    )
    assert newest.sub.startswith("repo:acme/app:") and newest.jti and newest.rule_id > 0
    # The API shows them to whoever may read the robot, the CLI too.
    from tests.http.test_api import ADMIN_PASSWORD

    await fed.server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    answer = await fed.server.client.get(
        f"/api/v2.0/robots/{fed.robot.id}/federation/logins",
        headers=basic("admin", ADMIN_PASSWORD),
    )
    assert answer.status == 200
    shown = await answer.json()
    assert [entry["run_id"] for entry in shown] == ["222", "111"]
    assert shown[0]["repository"] == "acme/app" and shown[0]["issuer"] == "github"
    assert first not in await answer.text()
    anonymous = await fed.server.client.get(f"/api/v2.0/robots/{fed.robot.id}/federation/logins")
    assert anonymous.status == 401


async def test_requests_with_a_federated_refresh_token_name_the_workload(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    """docker and helm 3 push with the refresh token their login stored: those requests are
    logged as the workload the login was, not only as the robot."""
    caplog.set_level(logging.INFO, logger="tokenserver")
    response = await fed.post(fed.token(run_id="31337"), access_type="offline")
    refresh = (await response.json())["refresh_token"]
    caplog.clear()
    answer = await fed.server.client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh, "scope": SCOPE}
    )
    assert answer.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "tokenserver.token"]
    assert len(lines) == 1 and lines[0].startswith("token issued grant=refresh_token")
    assert "sub='repo:acme/app:" in lines[0] and "run_id='31337'" in lines[0]
