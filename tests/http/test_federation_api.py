"""Robot federation's management API: `/federation/issuers[/{name}]` (system admins),
`/robots/{id}/federation[/failures]` (whoever may update, or read, the robot) and the robot's
`secret_login`. Every answer is checked against the served document (tests/http/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeSettings
from tests.federation_files import GITHUB, ec_jwk, write_ca, write_jwks
from tests.http.conftest import AiohttpClient, serving
from tests.http.test_api import ADMIN_PASSWORD, Api, api, error, project_robot
from tests.http.test_robot_delegation import login, on, system, system_robot
from tests.postgres import PostgresServer
from tokenserver.domain.federation import KEEP_FAILURES

__all__ = ["api"]  # the fixture, imported for pytest

ISSUERS = "/federation/issuers"
GITHUB_ISSUER = {"name": "github", "url": GITHUB, "audiences": ["registry.example"]}
OWNER = {"repository_owner_id": "1234567"}


def rules(*claims: dict[str, Any], issuer: str = "github") -> dict[str, Any]:
    return {"rules": [{"issuer": issuer, "claims": c} for c in claims]}


async def with_github(api: Api) -> None:
    r = await api.call("POST", ISSUERS, api.admin, GITHUB_ISSUER)
    assert r.status == 201, await r.text()


async def put_rules(api: Api, robot_id: int, body: dict[str, Any], auth: Any = None) -> Any:
    return await api.call("PUT", f"/robots/{robot_id}/federation", auth or api.admin, body)


# ---- issuers ---------------------------------------------------------------------------------


async def test_issuers_are_added_read_listed_and_removed(api: Api, tmp_path: Path) -> None:
    r = await api.call("POST", ISSUERS, api.admin, GITHUB_ISSUER)
    assert r.status == 201, await r.text()
    assert r.headers["Location"] == "/api/v2.0/federation/issuers/github"
    created = await r.json()
    assert created == {**GITHUB_ISSUER, "max_token_lifetime": 3600,
                       "creation_time": created["creation_time"]}  # fmt: skip
    jwks, ca = write_jwks(tmp_path / "jwks.json"), write_ca(tmp_path / "ca.pem")
    k8s = {
        "name": "k8s.prod",
        "url": "http://127.0.0.1:6443/issuer",
        "audiences": ["a", "b"],
        "jwks_file": str(jwks),
        "ca_file": str(ca),
        "max_token_lifetime": 86400,
    }
    r = await api.call("POST", ISSUERS, api.admin, k8s)
    assert r.status == 201, await r.text()
    r = await api.call("GET", f"{ISSUERS}/k8s.prod", api.admin)
    assert r.status == 200
    shown = await r.json()
    assert {k: shown[k] for k in k8s} == k8s
    r = await api.call("GET", ISSUERS, api.admin)
    assert [i["name"] for i in await r.json()] == ["github", "k8s.prod"]
    r = await api.call("DELETE", f"{ISSUERS}/k8s.prod", api.admin)
    assert r.status == 200
    await error(await api.call("GET", f"{ISSUERS}/k8s.prod", api.admin), 404, "NOT_FOUND")
    await error(await api.call("DELETE", f"{ISSUERS}/k8s.prod", api.admin), 404, "NOT_FOUND")
    r = await api.call("GET", "/audit-logs?q=resource_type=federation-issuer", api.admin)
    assert [(e["operation"], e["resource"], e["outcome"]) for e in await r.json()] == [
        ("delete", "k8s.prod", "failure: NOT_FOUND"),
        ("delete", "k8s.prod", "success"),
        ("create", "k8s.prod", "success"),
        ("create", "github", "success"),
    ]


async def test_only_system_admins_manage_issuers(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    padmin = await api.user("alice")
    await api.member("p", "alice", 1)  # projectAdmin
    sysrobot = await api.robot(
        system_robot("sys", system("robot:create", "robot:update", "user:create"))
    )
    callers = [padmin, login(sysrobot)]
    for caller in callers:
        for method, path, body in (
            ("GET", ISSUERS, None),
            ("POST", ISSUERS, {**GITHUB_ISSUER, "name": "x", "url": "https://x.example"}),
            ("GET", f"{ISSUERS}/github", None),
            ("DELETE", f"{ISSUERS}/github", None),
        ):
            await error(await api.call(method, path, caller, body), 403, "FORBIDDEN")
            await error(await api.call(method, path, None, body), 401, "UNAUTHORIZED")
    r = await api.call("GET", ISSUERS, api.admin)
    assert [i["name"] for i in await r.json()] == ["github"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"name": "GitHub"}, "invalid issuer name"),
        ({"url": "http://issuer.example"}, "loopback"),
        ({"url": "https://issuer.example/?x=1"}, "query"),
        ({"url": "https://user@issuer.example"}, "user name"),
        ({"audiences": []}, "1 to 10 audiences"),
        ({"audiences": ["a"] * 11}, "1 to 10 audiences"),
        ({"audiences": [""]}, "audience ''"),
        ({"audiences": ["a\u0000"]}, "control characters"),
        ({"max_token_lifetime": 59}, "60 to 86400"),
        ({"max_token_lifetime": 86401}, "60 to 86400"),
        ({"jwks_file": "relative/jwks.json"}, "absolute path"),
        ({"jwks_file": "/nonexistent/jwks.json"}, "No such file"),
        ({"jwks_file": "/"}, "not a regular file"),
        ({"jwks_file": "/etc/\u0000passwd"}, "not a file name"),
        ({"ca_file": "/nonexistent"}, "No such file"),
        ({"ca_file": "/dev/null"}, "not a regular file"),
        ({"audiences": "registry"}, "'audiences' must be an array"),
        ({"url": None}, "missing field 'url'"),
        ({"extra": 1}, "unknown field 'extra'"),
    ],
)
async def test_bad_issuers_are_400s(api: Api, changes: dict[str, Any], words: str) -> None:
    body = {**GITHUB_ISSUER, **changes}
    message = await error(await api.call("POST", ISSUERS, api.admin, body), 400, "BAD_REQUEST")
    assert words in message
    assert await (await api.call("GET", ISSUERS, api.admin)).json() == []


async def test_a_jwks_file_without_a_usable_key_is_a_400(api: Api, tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": []}')
    r = await api.call("POST", ISSUERS, api.admin, {**GITHUB_ISSUER, "jwks_file": str(empty)})
    assert "no public key with a kid" in await error(r, 400, "BAD_REQUEST")
    ok = write_jwks(tmp_path / "ok.json", ec_jwk())
    r = await api.call("POST", ISSUERS, api.admin, {**GITHUB_ISSUER, "jwks_file": str(ok)})
    assert r.status == 201, await r.text()


async def test_a_taken_issuer_name_or_url_is_a_409(api: Api) -> None:
    await with_github(api)
    r = await api.call("POST", ISSUERS, api.admin, {**GITHUB_ISSUER, "url": "https://x.example"})
    await error(r, 409, "CONFLICT")
    r = await api.call("POST", ISSUERS, api.admin, {**GITHUB_ISSUER, "name": "gh"})
    await error(r, 409, "CONFLICT")


async def test_an_issuer_that_robots_use_is_a_409_naming_how_many(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    for name in ("a", "b", "c"):
        robot = await api.robot(project_robot("p", name, "repository:pull"))
        if name != "c":
            assert (await put_rules(api, robot["id"], rules(OWNER))).status == 200
    message = await error(await api.call("DELETE", f"{ISSUERS}/github", api.admin), 409, "CONFLICT")
    assert message == (
        "issuer 'github' is used by the federation rules of 2 robots; remove those rules first"
    )
    r = await api.call("GET", f"{ISSUERS}/github", api.admin)
    assert r.status == 200


# ---- rules -----------------------------------------------------------------------------------


async def test_rules_are_put_and_got_with_their_warnings(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    path = f"/robots/{robot['id']}/federation"
    r = await api.call("GET", path, api.admin)
    assert await r.json() == {"rules": [], "warnings": []}
    claims = {
        "repository_owner_id": "1234567",
        "repository": "acme/app",
        "ref": ["refs/heads/main", "refs/tags/v*"],
    }
    r = await put_rules(api, robot["id"], rules(claims, {"repository": "acme/other"}))
    assert r.status == 200, await r.text()
    put = await r.json()
    assert [(rule["issuer"], rule["claims"]) for rule in put["rules"]] == [
        ("github", claims),
        ("github", {"repository": "acme/other"}),
    ]
    second = put["rules"][1]["id"]
    assert put["warnings"] == [
        f"rule {second} (issuer github): pins no repository_owner_id or repository_id to exact "
        "values: it admits the tokens of any repository whose other claims match (on "
        "github.com, anyone's), and an owner or repository name can be registered again by "
        "someone else after a rename or deletion"
    ]
    assert await (await api.call("GET", path, api.admin)).json() == put
    # What GET shows may be sent back (ids, times and warnings ignored): nothing changes.
    r = await put_rules(api, robot["id"], put)
    assert await r.json() == put
    # Replaced by none.
    r = await put_rules(api, robot["id"], {"rules": []})
    assert await r.json() == {"rules": [], "warnings": []}
    r = await api.call("GET", "/audit-logs?q=operation=update-federation", api.admin)
    assert [(e["resource"], e["outcome"]) for e in await r.json()] == [
        ("robot$p+ci", "success")
    ] * 3


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (rules({"sub": "*"}), "rule 1: a rule must pin a claim beyond iss and aud"),
        (rules({"iss": GITHUB, "aud": "registry.example"}), "every repository in the world"),
        (rules({"ref": ["refs/heads/main", "**"]}), "beyond iss and aud"),
        (rules(OWNER, {"exp": "1", "sub": "x"}), "rule 2: claim 'exp'"),
        (rules({"jti": "x", "sub": "x"}), "exp, iat, nbf and jti"),
        (rules(OWNER, issuer="nope"), "rule 1: issuer 'nope' not found"),
        (rules(*[OWNER] * 21), "at most 20 federation rules"),
        (rules({f"c{i}": "x" for i in range(33)}), "at most 32 claim conditions"),
        (rules({"sub": ["x"] * 17}), "1 to 16 patterns"),
        (rules({"sub": "x" * 256}), "1 to 255 characters"),
        (rules({"s" * 256: "x"}), "1 to 255 characters"),
        (rules({}), "at least one claim condition"),
        (rules({"sub": 1}), "a pattern or a list of patterns"),
        (rules({"sub": [1]}), "each pattern must be a string"),
        (rules({"a\u0000b": "x"}), "dotted path"),
        (rules({"sub": "a\u0000b"}), "control characters"),
        (rules({"a..b": "x"}), "dotted path"),
        ({"rules": [{"issuer": "github"}]}, "missing field 'claims'"),
        ({"rules": [{"issuer": "github", "claims": [], "x": 1}]}, "unknown field 'x'"),
        ({"rules": {}}, "'rules' must be an array"),
        ({}, "missing field 'rules'"),
    ],
)
async def test_bad_rules_are_400s_and_change_nothing(
    api: Api, body: dict[str, Any], words: str
) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    assert (await put_rules(api, robot["id"], rules(OWNER))).status == 200
    before = await (await api.call("GET", f"/robots/{robot['id']}/federation", api.admin)).json()
    message = await error(await put_rules(api, robot["id"], body), 400, "BAD_REQUEST")
    assert words in message
    assert len(message) < 600
    after = await (await api.call("GET", f"/robots/{robot['id']}/federation", api.admin)).json()
    assert after == before


async def test_a_missing_robot_is_404_and_a_bad_id_400(api: Api) -> None:
    await error(await api.call("GET", "/robots/999/federation", api.admin), 404, "NOT_FOUND")
    await error(await put_rules(api, 999, rules(OWNER)), 404, "NOT_FOUND")
    r = await api.call("GET", "/robots/999/federation/failures", api.admin)
    await error(r, 404, "NOT_FOUND")
    r = await api.call("GET", "/robots/99999999999999999999/federation", api.admin)
    await error(r, 400, "BAD_REQUEST")


async def test_rule_changes_end_only_federated_refresh_tokens(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    store = api.server.runtime.store

    async def federated_token_survives(body: dict[str, Any]) -> bool:
        await store.delete_refresh_tokens(robot_id=robot["id"])
        await store.add_refresh_token("s", "docker", 1, robot_id=robot["id"], keep=9)
        await store.add_refresh_token(
            "f", "docker", 1, robot_id=robot["id"], keep=9, federated=True
        )
        assert (await put_rules(api, robot["id"], body)).status == 200
        assert await store.find_refresh_token("s") is not None  # a secret login's stays
        return await store.find_refresh_token("f") is not None

    assert not await federated_token_survives(rules(OWNER))
    assert await federated_token_survives(rules(OWNER))  # the same rules again
    assert not await federated_token_survives(rules({"repository_id": "42"}))
    assert not await federated_token_survives({"rules": []})


# ---- who may -------------------------------------------------------------------------------


@pytest.fixture
async def team(api: Api) -> dict[str, Any]:
    """Project p with a robot `ci` to federate, its admin, a maintainer, a developer, a guest,
    another project's admin, and robots with and without robot update in p."""
    await with_github(api)
    await api.project("p")
    await api.project("q")
    found: dict[str, Any] = {
        "ci": await api.robot(project_robot("p", "ci", "repository:pull")),
        "strong": await api.robot(
            project_robot("p", "strong", "repository:pull", "repository:push")
        ),
        "manager": await api.robot(
            project_robot("p", "manager", "repository:pull", "robot:read", "robot:update")
        ),
        "reader": await api.robot(project_robot("p", "reader", "repository:pull", "robot:read")),
        "short": await api.robot(
            project_robot("p", "short", "repository:pull", "robot:read", "robot:update", duration=1)
        ),
    }
    for name, project, role in (
        ("padmin", "p", 1),
        ("maintainer", "p", 4),
        ("developer", "p", 2),
        ("guest", "p", 3),
        ("qadmin", "q", 1),
    ):
        found[name] = await api.user(name)
        await api.member(project, name, role)
    return found


async def test_who_may_read_and_set_a_robots_rules(api: Api, team: dict[str, Any]) -> None:
    ci = team["ci"]["id"]
    path = f"/robots/{ci}/federation"
    allowed = {"admin": api.admin, "padmin": team["padmin"], "manager": login(team["manager"])}
    refused = {
        "maintainer": team["maintainer"],
        "developer": team["developer"],
        "guest": team["guest"],
        "another project's admin": team["qadmin"],
        "a robot without robot update": login(team["reader"]),
        "the robot itself": login(team["ci"]),
    }
    for who, auth in allowed.items():
        r = await api.call("GET", path, auth)
        assert r.status == 200, who
        r = await put_rules(api, ci, rules({"repository_id": who}), auth)
        assert r.status == 200, (who, await r.text())
    for who, auth in refused.items():
        message = await error(await api.call("GET", path, auth), 403, "FORBIDDEN")
        assert "not allowed to update robot" in message, who
        await error(await put_rules(api, ci, rules(OWNER), auth), 403, "FORBIDDEN")
    await error(await api.call("GET", path), 401, "UNAUTHORIZED")
    await error(await api.call("PUT", path, None, rules(OWNER)), 401, "UNAUTHORIZED")
    shown = await (await api.call("GET", path, api.admin)).json()
    assert [r["claims"] for r in shown["rules"]] == [{"repository_id": "manager"}]


async def test_a_system_robots_rules_are_the_system_admins(api: Api, team: dict[str, Any]) -> None:
    sysrobot = await api.robot(system_robot("sys", on("p", "repository:pull")))
    assert (await put_rules(api, sysrobot["id"], rules(OWNER))).status == 200
    for auth in (team["padmin"], login(team["manager"])):
        await error(await put_rules(api, sysrobot["id"], {"rules": []}, auth), 403, "FORBIDDEN")
    shown = await (await api.call("GET", f"/robots/{sysrobot['id']}/federation", api.admin)).json()
    assert [r["claims"] for r in shown["rules"]] == [OWNER]


async def test_attack_a_robot_may_not_federate_a_robot_stronger_or_longer_lived(
    api: Api, team: dict[str, Any]
) -> None:
    # Rules hand the robot's power to the workloads they admit, as a secret does.
    manager = login(team["manager"])
    message = await error(
        await put_rules(api, team["strong"]["id"], rules(OWNER), manager), 403, "FORBIDDEN"
    )
    assert "repository:push" in message
    short = login(team["short"])
    message = await error(
        await put_rules(api, team["ci"]["id"], rules(OWNER), short), 403, "FORBIDDEN"
    )
    assert "expire no later than itself" in message
    r = await api.call("GET", f"/robots/{team['strong']['id']}/federation", api.admin)
    assert (await r.json())["rules"] == []


async def test_who_may_read_a_robots_failures(api: Api, team: dict[str, Any]) -> None:
    ci = team["ci"]["id"]
    store = api.server.runtime.store
    for i in range(KEEP_FAILURES + 2):
        await store.add_federation_failure(ci, 1000 + i, "github", f"repo:acme/app:{i}", "ref")
    path = f"/robots/{ci}/federation/failures"
    for auth in (api.admin, team["guest"], team["developer"], login(team["reader"])):
        r = await api.call("GET", path, auth)
        assert r.status == 200
        found = await r.json()
        assert len(found) == KEEP_FAILURES
        assert found[0]["subject"] == f"repo:acme/app:{KEEP_FAILURES + 1}"
        assert set(found[0]) == {"id", "time", "issuer", "subject", "reason"}
    await error(await api.call("GET", path, team["qadmin"]), 403, "FORBIDDEN")
    await error(await api.call("GET", path), 401, "UNAUTHORIZED")


# ---- the secret login ----------------------------------------------------------------------


def robot_put(robot: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = dict(robot)
    body.update(changes)
    return body


async def test_secret_login_on_the_robot_json(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    path = f"/robots/{robot['id']}"
    shown = await (await api.call("GET", path, api.admin)).json()
    assert shown["secret_login"] is True
    # No rules: it could not log in at all.
    message = await error(
        await api.call("PUT", path, api.admin, robot_put(shown, secret_login=False)),
        409,
        "CONFLICT",
    )
    assert "has no federation rules" in message
    assert (await (await api.call("GET", path, api.admin)).json())["secret_login"] is True
    assert (await put_rules(api, robot["id"], rules(OWNER))).status == 200
    store = api.server.runtime.store
    await store.add_refresh_token("s", "docker", 1, robot_id=robot["id"], keep=9)
    await store.add_refresh_token("f", "docker", 1, robot_id=robot["id"], keep=9, federated=True)
    r = await api.call("PUT", path, api.admin, robot_put(shown, secret_login=False))
    assert r.status == 200, await r.text()
    off = await (await api.call("GET", path, api.admin)).json()
    assert off["secret_login"] is False
    assert await store.find_refresh_token("s") is None
    assert await store.find_refresh_token("f") is not None
    # A PUT without it, or with the robot's own value (what GET showed), keeps it.
    for body in (
        robot_put(off, description="d"),
        {k: v for k, v in off.items() if k != "secret_login"},
    ):
        assert (await api.call("PUT", path, api.admin, body)).status == 200
        assert (await (await api.call("GET", path, api.admin)).json())["secret_login"] is False
    # Its last rule stays while the secret login is off.
    r = await put_rules(api, robot["id"], {"rules": []})
    assert "its secret login is off" in await error(r, 409, "CONFLICT")
    r = await api.call("PUT", path, api.admin, robot_put(off, secret_login=True))
    assert r.status == 200
    assert (await put_rules(api, robot["id"], {"rules": []})).status == 200


async def test_a_refused_secret_login_change_leaves_the_whole_put_undone(api: Api) -> None:
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    path = f"/robots/{robot['id']}"
    shown = await (await api.call("GET", path, api.admin)).json()
    body = robot_put(shown, description="changed", disable=True, secret_login=False)
    await error(await api.call("PUT", path, api.admin, body), 409, "CONFLICT")
    after = await (await api.call("GET", path, api.admin)).json()
    assert (after["description"], after["disable"]) == (shown["description"], False)


async def test_a_new_robot_keeps_its_secret_login(api: Api) -> None:
    await api.project("p")
    body = project_robot("p", "ci", "repository:pull")
    message = await error(
        await api.call("POST", "/robots", api.admin, {**body, "secret_login": False}),
        400,
        "BAD_REQUEST",
    )
    assert "a new robot has no federation rules" in message
    created = await api.robot({**body, "secret_login": True})
    r = await api.call("GET", f"/robots/{created['id']}", api.admin)
    assert (await r.json())["secret_login"] is True


async def test_a_jwt_shaped_secret_is_refused_for_a_robot_with_rules(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    path = f"/robots/{robot['id']}"
    shaped = {"secret": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.Sig1"}
    assert (await api.call("PATCH", path, api.admin, shaped)).status == 200  # no rules yet
    assert (await put_rules(api, robot["id"], rules(OWNER))).status == 200
    message = await error(await api.call("PATCH", path, api.admin, shaped), 400, "BAD_REQUEST")
    assert "shaped like a JWT" in message
    assert (await api.call("PATCH", path, api.admin, {"secret": "NotAJwt2Secret"})).status == 200


async def test_a_robot_manager_switches_secret_login_within_its_rights(
    api: Api, team: dict[str, Any]
) -> None:
    ci = team["ci"]["id"]
    assert (await put_rules(api, ci, rules(OWNER))).status == 200
    shown = await (await api.call("GET", f"/robots/{ci}", api.admin)).json()
    body = robot_put(shown, secret_login=False)
    r = await api.call("PUT", f"/robots/{ci}", login(team["reader"]), body)
    await error(r, 403, "FORBIDDEN")
    r = await api.call("PUT", f"/robots/{ci}", login(team["manager"]), body)
    assert r.status == 200, await r.text()


async def test_attack_a_robot_cannot_change_how_it_logs_in_itself(
    api: Api, team: dict[str, Any]
) -> None:
    """A robot holding robot update may federate other robots of its project, never itself:
    whoever held its secret for a moment could add a rule for their own workload, which a
    refreshed secret would not end (an outside review)."""
    manager = team["manager"]
    own = f"/robots/{manager['id']}/federation"
    message = await error(
        await put_rules(api, manager["id"], rules(OWNER), login(manager)), 403, "FORBIDDEN"
    )
    assert "itself" in message
    assert (await api.call("GET", own, api.admin)).status == 200
    assert (await (await api.call("GET", own, api.admin)).json())["rules"] == []
    # The same rules set by an admin: the robot still cannot switch its own secret login.
    assert (await put_rules(api, manager["id"], rules(OWNER))).status == 200
    shown = await (await api.call("GET", f"/robots/{manager['id']}", api.admin)).json()
    r = await api.call(
        "PUT", f"/robots/{manager['id']}", login(manager), robot_put(shown, secret_login=False)
    )
    assert "itself" in await error(r, 403, "FORBIDDEN")
    still = await (await api.call("GET", f"/robots/{manager['id']}", api.admin)).json()
    assert still["secret_login"] is True
    # ... while it federates another robot of its project as before.
    assert (await put_rules(api, team["ci"]["id"], rules(OWNER), login(manager))).status == 200


# ---- hostile input, on api_db databases --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def api_db(
    request: pytest.FixtureRequest, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> AsyncIterator[Api]:
    if request.param == "sqlite":
        settings = make_settings()
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        settings = make_settings(database__url=postgres.emptied_database())
    async with serving(settings, aiohttp_client) as server:
        await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
        yield Api(server)


async def test_attack_parallel_puts_leave_one_whole_rule_set(api_db: Api) -> None:
    await with_github(api_db)
    await api_db.project("p")
    robot = await api_db.robot(project_robot("p", "ci", "repository:pull"))
    sets = [rules(*({"repository_id": f"{i}-{j}"} for j in range(1 + i % 4))) for i in range(12)]
    answers = await asyncio.gather(*(put_rules(api_db, robot["id"], body) for body in sets))
    assert all(r.status == 200 for r in answers)
    final = await (
        await api_db.call("GET", f"/robots/{robot['id']}/federation", api_db.admin)
    ).json()
    assert [r["claims"] for r in final["rules"]] in [
        [rule["claims"] for rule in body["rules"]] for body in sets
    ]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/robots/{id}/federation", rules({"sub\u0000": "x"})),
        ("PUT", "/robots/{id}/federation", rules({"sub": "x\u0000"})),
        ("PUT", "/robots/{id}/federation", {"rules": [{"issuer": "git\u0000hub",
                                                       "claims": OWNER}]}),
        ("POST", ISSUERS, {**GITHUB_ISSUER, "name": "n\u0000"}),
        ("POST", ISSUERS, {**GITHUB_ISSUER, "url": "https://x.example/\u0000"}),
        ("POST", ISSUERS, {**GITHUB_ISSUER, "audiences": ["\u0000"]}),
        ("POST", ISSUERS, {**GITHUB_ISSUER, "jwks_file": "/tmp/\u0000"}),
        ("POST", ISSUERS, {**GITHUB_ISSUER, "max_token_lifetime": 2**63}),
        ("GET", f"{ISSUERS}/a%00b", None),
        ("DELETE", f"{ISSUERS}/a%00b", None),
        ("GET", f"{ISSUERS}/%ED%A0%80", None),
    ],
)  # fmt: skip
async def test_attack_bytes_no_database_holds_are_4xx(
    api_db: Api, method: str, path: str, body: Any
) -> None:
    await with_github(api_db)
    await api_db.project("p")
    robot = await api_db.robot(project_robot("p", "ci", "repository:pull"))
    r = await api_db.call(method, path.replace("{id}", str(robot["id"])), api_db.admin, body)
    assert 400 <= r.status < 500, await r.text()
    assert "errors" in await r.json()
    r = await api_db.call("GET", f"/robots/{robot['id']}/federation", api_db.admin)
    assert (await r.json())["rules"] == []


async def test_attack_a_huge_body_is_413(api: Api) -> None:
    await with_github(api)
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    # 100 kB: past the 64 KiB a body may have, within what the rules would allow.
    body = rules(*({f"c{i}": ["x" * 200] * 2 for i in range(32)} for _ in range(8)))
    r = await put_rules(api, robot["id"], body)
    await error(r, 413, "REQUEST_ENTITY_TOO_LARGE")
