"""The token exchange (RFC 8693) at POST /service/token: a workload's OIDC ID token, taken
once, for an access token of the robot it names or for a temporary robot secret; against a
fake issuer on loopback and real keys."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import ClientResponse

from tests.conftest import MakeSettings
from tests.helpers import FakeClock
from tests.http.conftest import AiohttpClient, Server, basic, serving
from tests.http.test_federated_login import (
    GITHUB_RULE,
    SCOPE,
    TOKEN,
    Federation,
    federation_on,
)
from tests.http.test_observability import metric
from tests.oidc_issuer import OMIT, FakeIssuer, github_claims
from tests.postgres import PostgresServer
from tokenserver.domain.exchange import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    ID_TOKEN_TYPE,
    JWT_TYPE,
    KEEP_TEMPORARY_SECRETS,
    ROBOT_SECRET_TYPE,
)
from tokenserver.domain.federation import Condition
from tokenserver.domain.models import LOCAL
from tokenserver.domain.secrets import token_digest
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.services.federated_login import takes_no_id_tokens
from tokenserver.services.ports import RobotChanges

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


async def exchange(fed: Federation, token: str, /, **form: Any) -> ClientResponse:
    """POST a token exchange of `token` for `fed`'s robot; `form` adds, replaces or (None)
    drops fields."""
    fields: dict[str, Any] = {
        "grant_type": GRANT_TYPE,
        "subject_token": token,
        "subject_token_type": JWT_TYPE,
        "resource": fed.robot.name,
        "scope": SCOPE,
        "service": "registry",
        **form,
    }
    data = [
        (name, value)
        for name, given in fields.items()
        if given is not None
        for value in (given if isinstance(given, list) else [given])
    ]
    return await fed.server.client.post(TOKEN, data=data)


async def temporary_secret(fed: Federation, subject_token: str | None = None) -> dict[str, Any]:
    """A temporary secret from an exchange of `subject_token` (a new ID token by default)."""
    response = await exchange(
        fed,
        subject_token or fed.token(),
        requested_token_type=ROBOT_SECRET_TYPE,
        scope=None,
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def refused(response: ClientResponse, status: int) -> str:
    """The message of an error answer with `status`, in the JSON envelope."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert [e["code"] for e in body["errors"]] == [
        {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 429: "TOO_MANY_REQUESTS"}[status]
    ]
    message: str = body["errors"][0]["message"]
    return message


def granted(token: str) -> list[dict[str, Any]]:
    claims = jwt.decode(token, options={"verify_signature": False})
    result: list[dict[str, Any]] = claims["access"]
    return result


@pytest.fixture
async def fed(server: Server) -> AsyncIterator[Federation]:
    async for federation in federation_on(server):
        yield federation


# ---- the access token -----------------------------------------------------------------------


async def test_an_id_token_is_exchanged_for_an_access_token_of_the_robot(fed: Federation) -> None:
    response = await exchange(fed, fed.token())
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer"
    assert body["scope"] == SCOPE
    assert body["expires_in"] == fed.server.settings.token.lifetime and body["issued_at"]
    assert "refresh_token" not in body
    assert granted(body["access_token"]) == [
        {"type": "repository", "name": "ci/app", "actions": ["pull", "push"]}
    ]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == fed.robot.name


async def test_audience_id_token_type_and_scopes_as_the_form_takes_them(fed: Federation) -> None:
    # The robot in `audience`, the id_token type, scopes repeated and space-separated.
    response = await exchange(
        fed,
        fed.token(),
        resource=None,
        audience=fed.robot.name,
        subject_token_type=ID_TOKEN_TYPE,
        scope=["repository:ci/app:pull", "repository:ci/other:pull repository:ci/app:push"],
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert granted(body["access_token"]) == [
        {"type": "repository", "name": "ci/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "ci/other", "actions": ["pull"]},
    ]
    # The same robot in both is one robot.
    both = await exchange(fed, fed.token(), audience=fed.robot.name)
    assert both.status == 200, await both.text()


async def test_the_robots_permissions_bound_what_an_exchange_grants(fed: Federation) -> None:
    puller = await fed.server.robot("ci", "puller", "repository:pull")
    await fed.rules(GITHUB_RULE, robot_id=puller.id)
    response = await exchange(fed, fed.token(), resource=puller.name)
    assert response.status == 200, await response.text()
    assert granted((await response.json())["access_token"]) == [
        {"type": "repository", "name": "ci/app", "actions": ["pull"]}
    ]


async def test_an_exchange_with_offline_access_gets_a_federated_refresh_token(
    fed: Federation,
) -> None:
    response = await exchange(fed, fed.token(), access_type="offline", client_id="job")
    assert response.status == 200, await response.text()
    stored = await fed.server.runtime.store.find_refresh_token(
        token_digest((await response.json())["refresh_token"])
    )
    assert stored is not None and stored.federated and stored.client_id == "job"
    assert stored.expires_at == stored.created_at + fed.server.settings.federation.session_lifetime


async def test_attack_a_nul_in_the_client_id_is_refused_before_the_id_token_is_used(
    fed: Federation,
) -> None:
    """The client_id is stored with the refresh token (PostgreSQL cannot hold a NUL): a 400
    naming it, before the ID token is checked, so it is not spent and works once fixed."""
    token = fed.token()
    response = await exchange(fed, token, access_type="offline", client_id="j\u0000b")
    assert "client_id" in await refused(response, 400)
    response = await exchange(fed, token, access_type="offline", client_id="job")
    assert response.status == 200, await response.text()


# ---- single use -----------------------------------------------------------------------------


async def test_attack_a_replayed_exchange_is_refused_naming_replay(fed: Federation) -> None:
    token = fed.token()
    assert (await exchange(fed, token)).status == 200
    message = await refused(await exchange(fed, token), 401)
    assert "replay" in message
    # Asking for a secret instead does not make it new.
    again = await exchange(fed, token, requested_token_type=ROBOT_SECRET_TYPE, scope=None)
    assert "replay" in await refused(again, 401)
    failures = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert len(failures) == 2 and all("replay" in f.reason for f in failures)


async def test_the_direct_flow_still_takes_an_id_token_again(fed: Federation) -> None:
    """Clients resend the password with every token request: a direct login does not use up
    a token, before or after it was exchanged."""
    token = fed.token()
    assert (await fed.get(token)).status == 200
    assert (await exchange(fed, token)).status == 200
    for _ in range(3):
        assert (await fed.get(token)).status == 200
        assert (await fed.post(token)).status == 200


async def test_attack_a_token_without_jti_is_refused_for_the_exchange(fed: Federation) -> None:
    token = fed.issuer.mint({**github_claims(), "jti": OMIT})
    assert "no jti" in await refused(await exchange(fed, token), 401)
    empty = fed.issuer.mint({**github_claims(), "jti": ""})
    assert "no jti" in await refused(await exchange(fed, empty), 401)
    # The direct flow takes it (it never uses a jti).
    assert (await fed.get(token)).status == 200
    failures = await fed.server.runtime.store.list_federation_failures(fed.robot.id)
    assert [("no jti" in f.reason) for f in failures] == [True, True]


async def test_attack_a_jti_is_single_use_whatever_the_token_around_it(fed: Federation) -> None:
    # Another token (a new signature, other claims) with a used jti is a replay too.
    assert (await exchange(fed, fed.token(jti="job-42"))).status == 200
    other = fed.token(jti="job-42", ref="refs/tags/v1.0.0")
    assert "replay" in await refused(await exchange(fed, other), 401)


async def test_attack_the_same_token_exchanged_at_once_succeeds_once(fed: Federation) -> None:
    token = fed.token()
    responses = await asyncio.gather(*(exchange(fed, token) for _ in range(6)))
    assert sorted(r.status for r in responses) == [200] + [401] * 5


# ---- refusals -------------------------------------------------------------------------------


async def test_wrong_resource_is_refused(fed: Federation) -> None:
    # A robot that does not exist, and one without rules: the same words, and no key work.
    missing = await refused(await exchange(fed, fed.token(), resource="robot$ci+nobody"), 401)
    assert missing == takes_no_id_tokens("robot$ci+nobody")
    plain = await fed.server.robot("ci", "plain", "repository:pull")
    message = await refused(await exchange(fed, fed.token(), resource=plain.name), 401)
    assert message == takes_no_id_tokens(plain.name)
    assert fed.issuer.jwks_fetches == 0
    # A robot whose rules admit other repositories.
    other = await fed.server.robot("ci", "other", "repository:pull")
    await fed.rules((Condition("repository", ("acme/other",)),), robot_id=other.id)
    message = await refused(await exchange(fed, fed.token(), resource=other.name), 401)
    assert other.name in message and "no federation rule" in message
    (failure,) = await fed.server.runtime.store.list_federation_failures(other.id)
    assert "claim 'repository' did not match" in failure.reason
    # Not a robot's name at all.
    for name in ("ci", "robot$", "robot$ci+a+b", "robot$CI+x", "x" * 5000):
        message = await refused(await exchange(fed, fed.token(), resource=name), 400)
        assert "resource (or audience) must be a robot's full name" in message


async def test_attack_an_issuer_nobody_trusts_is_refused_without_a_fetch(fed: Federation) -> None:
    async with FakeIssuer(fresh_keys=False) as stranger:
        token = stranger.mint(github_claims())
        message = await refused(await exchange(fed, token), 401)
        # The words of a robot that does not exist: an exchange tells no one which issuers
        # are trusted (nor which robots exist).
        assert "not an ID token of an issuer this server trusts" in message
        assert stranger.discovery_fetches == 0 and stranger.jwks_fetches == 0
    # A secret is not an ID token: refused, never checked as the robot's secret.
    assert await refused(await exchange(fed, fed.robot.secret), 401) == message
    assert await fed.server.runtime.store.list_federation_failures(fed.robot.id) == []


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"subject_token_type": ACCESS_TOKEN_TYPE}, "subject_token_type must be"),
        ({"subject_token_type": None}, "subject_token_type must be"),
        ({"subject_token_type": [JWT_TYPE, JWT_TYPE]}, "subject_token_type is given 2 times"),
        ({"subject_token": None}, "subject_token is required"),
        ({"subject_token": ""}, "subject_token is empty"),
        ({"scope": None}, "scope is required"),
        ({"scope": " "}, "scope is required"),
        ({"resource": None}, "resource (or audience) is required"),
        ({"resource": ""}, "resource (or audience) is required"),
        ({"audience": "robot$ci+other"}, "name one robot"),
        ({"resource": ["robot$ci+a", "robot$ci+b"]}, "name one robot"),
        ({"actor_token": "x", "actor_token_type": JWT_TYPE}, "actor_token is not supported"),
        ({"requested_token_type": REFRESH_TOKEN_TYPE}, "requested_token_type must be"),
        ({"requested_token_type": ROBOT_SECRET_TYPE}, "scope is not taken with a robot secret"),
        ({"service": "other"}, "unknown service"),
        ({"scope": "repository:ci/App:pull"}, "scope"),
    ],
)  # fmt: skip
async def test_a_malformed_exchange_is_a_400_naming_the_field(
    fed: Federation, form: dict[str, Any], words: str
) -> None:
    message = await refused(await exchange(fed, fed.token(), **form), 400)
    assert words in message
    assert fed.issuer.jwks_fetches == 0  # refused before any key work


async def test_an_unknown_grant_type_names_the_exchange(fed: Federation) -> None:
    response = await fed.server.client.post(TOKEN, data={"grant_type": "urn:x"})
    assert GRANT_TYPE in await refused(response, 400)


async def test_a_disabled_or_expired_robot_is_refused(fed: Federation) -> None:
    store = fed.server.runtime.store
    await store.update_robot(fed.robot.id, int(time.time()), RobotChanges(disabled=True))
    assert "disabled" in await refused(await exchange(fed, fed.token()), 401)
    await store.update_robot(fed.robot.id, int(time.time()), RobotChanges(disabled=False))
    fed.server.expire(fed.robot.id)
    assert "expired" in await refused(await exchange(fed, fed.token()), 401)


async def test_attack_refused_exchanges_count_in_the_lockout(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    settings = make_settings(security__lockout_threshold=3)
    async with serving(settings, aiohttp_client) as server:
        async for fed in federation_on(server):
            for n in range(3):
                response = await exchange(fed, fed.token(repository=f"evil/{n}"))
                assert response.status == 401
            assert (await exchange(fed, fed.token(repository="evil/3"))).status == 429
            # ... and so does the direct flow for the same robot and client.
            assert (await fed.get(fed.token(repository="evil/4"))).status == 429
            # A genuine token is never refused by the lock-out: no one can guess one.
            assert (await exchange(fed, fed.token())).status == 200
            assert (await fed.get(fed.token())).status == 200


async def test_the_log_names_the_workload_never_the_token(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tokenserver")
    good, bad = fed.token(), fed.token(repository="evil/app")
    assert (await exchange(fed, good)).status == 200
    assert (await exchange(fed, bad)).status == 401
    secret = (await temporary_secret(fed))["access_token"]
    lines = [r.getMessage() for r in caplog.records if r.name == "tokenserver.token"]
    issued = next(line for line in lines if line.startswith("token issued"))
    assert "grant=token_exchange" in issued and f"account='{fed.robot.name}'" in issued
    assert f"iss='{fed.issuer.url}'" in issued and "repository='acme/app'" in issued
    denied = next(line for line in lines if line.startswith("token denied"))
    assert "grant=token_exchange" in denied and "sub='repo:evil/app:" in denied
    handed = next(line for line in lines if line.startswith("robot secret issued"))
    assert f"account='{fed.robot.name}'" in handed and "sub='repo:acme/app:" in handed
    for record in caplog.records:
        text = record.getMessage()
        assert secret not in text and secret[4:] not in text
        for token in (good, bad):
            assert token.split(".")[2] not in text


async def test_token_exchange_metrics_have_their_own_grant(fed: Federation) -> None:
    assert (await exchange(fed, fed.token())).status == 200
    assert (await exchange(fed, fed.token(), scope=None)).status == 400
    text = await (await fed.server.client.get("/metrics")).text()
    for outcome in ("issued", "bad_request"):
        assert (
            metric(
                text, "tokenserver_token_requests_total", grant="token_exchange", outcome=outcome
            )
            == 1
        )


# ---- the temporary secret -------------------------------------------------------------------


async def test_a_temporary_secret_is_the_robots_password_on_get_and_post(
    fed: Federation,
) -> None:
    body = await temporary_secret(fed)
    secret = body["access_token"]
    assert body["issued_token_type"] == ROBOT_SECRET_TYPE and body["token_type"] == "N_A"
    assert body["username"] == fed.robot.name
    assert body["expires_in"] == fed.server.settings.federation.session_lifetime
    assert secret.startswith("tst_") and len(secret) == 47
    assert (await fed.get(secret)).status == 200
    posted = await fed.post(secret)
    assert posted.status == 200, await posted.text()
    assert (await posted.json())["scope"] == SCOPE
    # The robot's own secret login being off does not matter: it is a federated credential.
    assert await fed.server.runtime.store.set_secret_login(fed.robot.id, False, int(time.time()))
    assert (await fed.get(fed.robot.secret)).status == 401
    assert (await fed.get(secret)).status == 200


async def test_a_temporary_secret_is_stored_only_hashed_and_listed_without_it(
    fed: Federation,
) -> None:
    secret = (await temporary_secret(fed))["access_token"]
    store = fed.server.runtime.store
    stored = await store.find_temporary_secret(token_digest(secret))
    assert stored is not None and stored.robot_id == fed.robot.id
    assert stored.identity.repository == "acme/app" and stored.identity.jti
    await fed.server.runtime.usage.flush()
    database = fed.server.settings.database.path
    for path in (database, database.with_name(database.name + "-wal")):
        if path.exists():
            assert secret.encode() not in path.read_bytes()
            assert secret[4:].encode() not in path.read_bytes()
    await fed.server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    response = await fed.server.client.get(
        f"{API}/robots/{fed.robot.id}/federation", headers=basic("admin", ADMIN_PASSWORD)
    )
    text = await response.text()
    assert response.status == 200 and secret not in text and secret[4:] not in text
    (listed,) = (await response.json())["temporary_secrets"]
    assert listed["id"] == stored.id and listed["issuer"] == "github"
    assert listed["subject"].startswith("repo:acme/app:") and listed["repository"] == "acme/app"


async def test_a_temporary_secret_never_outlives_its_robot(fed: Federation) -> None:
    ends = int(time.time()) + 100
    await fed.server.runtime.store.update_robot(
        fed.robot.id, int(time.time()), RobotChanges(expires_at=ends)
    )
    body = await temporary_secret(fed)
    assert 0 < body["expires_in"] <= 100
    stored = await fed.server.runtime.store.find_temporary_secret(
        token_digest(body["access_token"])
    )
    assert stored is not None and stored.expires_at == ends


async def test_a_temporary_secret_expires(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    settings = make_settings(federation__session_lifetime=600)
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    server = Server(await aiohttp_client(app), app[RUNTIME], settings)
    async for fed in federation_on(server):
        secret = (await temporary_secret(fed))["access_token"]
        # Long after the ID token it came from has expired (5 minutes).
        clock.now += 599
        assert (await fed.get(secret)).status == 200
        clock.now += 1
        assert "has expired" in await refused(await fed.get(secret), 401)
        assert (await fed.post(secret)).status == 401
        # Gone from the listing too.
        assert await server.runtime.store.list_temporary_secrets(fed.robot.id, int(clock.now)) == []


@pytest.mark.parametrize("change", ["rules", "disable", "refresh secret", "delete"])
async def test_a_temporary_secret_is_revoked_by_a_change_of_the_robot(
    fed: Federation, change: str
) -> None:
    secret = (await temporary_secret(fed))["access_token"]
    bystander = await fed.server.robot("ci", "bystander", "repository:pull")
    await fed.rules(GITHUB_RULE, robot_id=bystander.id)
    other = await exchange(
        fed,
        fed.token(),
        resource=bystander.name,
        requested_token_type=ROBOT_SECRET_TYPE,
        scope=None,
    )
    assert other.status == 200, await other.text()
    other_secret = (await other.json())["access_token"]
    robots = fed.server.runtime.robots
    if change == "rules":
        await fed.rules(GITHUB_RULE[:2])
    elif change == "disable":
        await robots.set_disabled(LOCAL, str(fed.robot.id), True)
        # Enabled again, it stays revoked.
        await robots.set_disabled(LOCAL, str(fed.robot.id), False)
    elif change == "refresh secret":
        await robots.refresh_secret(LOCAL, str(fed.robot.id))
    else:
        await robots.delete(LOCAL, str(fed.robot.id))
    assert (await fed.get(secret)).status == 401
    assert (await fed.post(secret)).status == 401
    # Another robot's secrets are not touched.
    assert (await fed.get(other_secret, name=bystander.name)).status == 200


async def test_the_same_rules_again_keep_the_temporary_secrets(fed: Federation) -> None:
    secret = (await temporary_secret(fed))["access_token"]
    await fed.rules(GITHUB_RULE)  # unchanged
    assert (await fed.get(secret)).status == 200


async def test_attack_a_temporary_secret_is_only_its_own_robots_password(
    fed: Federation,
) -> None:
    secret = (await temporary_secret(fed))["access_token"]
    other = await fed.server.robot("ci", "other", "repository:pull")
    assert "invalid username or password" in await refused(
        await fed.get(secret, name=other.name), 401
    )
    # Made up, or altered by one character: no such secret.
    for wrong in ("tst_" + "A" * 43, secret[:-1] + ("A" if secret[-1] != "A" else "B")):
        assert "invalid username or password" in await refused(await fed.get(wrong), 401)


async def test_a_chosen_secret_shaped_like_a_temporary_one_still_logs_in(
    fed: Federation,
) -> None:
    chosen = "tst_" + "Ab1" * 14 + "x"
    assert len(chosen) == 47
    await fed.server.runtime.robots.refresh_secret(LOCAL, str(fed.robot.id), chosen)
    assert (await fed.get(chosen)).status == 200


async def test_a_robot_keeps_its_newest_temporary_secrets(fed: Federation) -> None:
    secrets = [
        (await temporary_secret(fed))["access_token"] for _ in range(KEEP_TEMPORARY_SECRETS + 2)
    ]
    assert (await fed.get(secrets[0])).status == 401
    assert (await fed.get(secrets[1])).status == 401
    for secret in secrets[2:]:
        assert (await fed.get(secret)).status == 200
    listed = await fed.server.runtime.store.list_temporary_secrets(fed.robot.id, int(time.time()))
    assert len(listed) == KEEP_TEMPORARY_SECRETS


async def test_a_temporary_secret_login_gets_no_refresh_token(fed: Federation) -> None:
    """The temporary secret is the session's credential: `docker login` with it gets no
    refresh token (which would outlive the secret when a newer exchange drops it), so docker
    keeps sending the secret, and the login ends with it."""
    secret = (await temporary_secret(fed))["access_token"]
    response = await fed.get(secret, offline_token="true", client_id="docker")
    assert response.status == 200
    assert "refresh_token" not in await response.json()
    posted = await fed.server.client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "username": fed.robot.name,
            "password": secret,
            "scope": SCOPE,
            "access_type": "offline",
        },
    )
    assert posted.status == 200 and "refresh_token" not in await posted.json()
    assert await fed.server.runtime.store.list_refresh_tokens(robot_id=fed.robot.id) == []
    # A change of the rules ends the secret.
    await fed.rules(GITHUB_RULE[:2])
    assert (await fed.get(secret)).status == 401


async def test_the_stored_row_holds_the_hash_and_not_the_secret(fed: Federation) -> None:
    secret = (await temporary_secret(fed))["access_token"]
    with sqlite3.connect(fed.server.settings.database.path) as db:
        rows = db.execute("SELECT token_hash, identity FROM temporary_secret").fetchall()
    assert rows == [(token_digest(secret), rows[0][1])]
    assert secret not in rows[0][1]


# ---- across replicas (two applications on one PostgreSQL database) --------------------------


@pytest.fixture
async def replicas(
    postgres: PostgresServer, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> AsyncIterator[tuple[Federation, Federation]]:
    """Replica A's and replica B's view of one robot with a rule, on one database."""
    settings = make_settings(database__url=postgres.emptied_database())
    apps = [create_app(settings), create_app(settings)]
    servers = [Server(await aiohttp_client(app), app[RUNTIME], settings) for app in apps]
    async for a in federation_on(servers[0]):
        yield a, Federation(servers[1], a.issuer, a.trusted, a.robot)


async def test_attack_a_token_exchanged_on_one_replica_is_a_replay_on_the_other(
    replicas: tuple[Federation, Federation],
) -> None:
    a, b = replicas
    token = a.token()
    assert (await exchange(a, token)).status == 200
    assert "replay" in await refused(await exchange(b, token), 401)
    assert "replay" in await refused(await exchange(a, token), 401)
    # Each replica verified it on its own; the jti was the database's.
    other = b.token()
    assert (await exchange(b, other)).status == 200
    assert "replay" in await refused(await exchange(a, other), 401)


async def test_attack_two_replicas_exchanging_one_token_at_once_succeed_once(
    replicas: tuple[Federation, Federation],
) -> None:
    a, b = replicas
    for _ in range(5):
        token = a.token()
        responses = await asyncio.gather(
            exchange(a, token), exchange(b, token), exchange(a, token), exchange(b, token)
        )
        assert sorted(r.status for r in responses) == [200, 401, 401, 401]
        for response in responses:
            if response.status == 401:
                assert "replay" in await refused(response, 401)


async def test_a_temporary_secret_from_one_replica_works_and_ends_on_the_other(
    replicas: tuple[Federation, Federation],
) -> None:
    a, b = replicas
    secret = (await temporary_secret(a))["access_token"]
    assert (await b.get(secret)).status == 200
    assert (await b.post(secret)).status == 200
    await b.rules(GITHUB_RULE[:2])  # through B's store
    assert (await a.get(secret)).status == 401
    assert (await b.get(secret)).status == 401
