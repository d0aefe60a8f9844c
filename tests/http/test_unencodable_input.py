"""Input no database can hold: lone surrogates (JSON's `"\\ud800"`, a form decoded with a
charset the caller picked, stray bytes in a cookie) and integers past 64 bits. Wherever they
arrive, the answer is a 4xx with the JSON envelope, never a 500."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeSettings, with_migrated_database
from tests.hostile import holds_unstorable, with_hostile_value
from tests.http.conftest import AiohttpClient, basic
from tests.http.openapi_check import check_request
from tests.postgres import PostgresServer
from tokenserver.config import Settings
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.http.openapi import document

API = "/api/v2.0"
TOKEN = "/service/token"
PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", PASSWORD)
HUGE = 2**70
FORM = "application/x-www-form-urlencoded"

Client = TestClient[web.Request, web.Application]


def robot_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "ci",
        "level": "project",
        "duration": -1,
        "description": "",
        "permissions": [
            {"kind": "project", "namespace": "p",
             "access": [{"resource": "repository", "action": "pull"}]}
        ],
    }  # fmt: skip
    body.update(changes)
    return body


async def serve(settings: Settings, aiohttp_client: AiohttpClient) -> Client:
    app = create_app(with_migrated_database(settings))
    client = await aiohttp_client(app)
    await app[RUNTIME].users.ensure_admin(PASSWORD)
    r = await client.post(f"{API}/projects", json={"project_name": "p"}, headers=ADMIN)
    assert r.status == 201, await r.text()
    return client


@pytest.fixture
async def client(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> Client:
    return await serve(make_settings(), aiohttp_client)


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_client(
    request: pytest.FixtureRequest, make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> Client:
    """The same on SQLite and on PostgreSQL, whose limits differ (SQLite keeps a NUL, a
    PostgreSQL INTEGER column is 32 bits)."""
    if request.param == "sqlite":
        return await serve(make_settings(), aiohttp_client)
    server: PostgresServer = request.getfixturevalue("postgres")
    return await serve(make_settings(database__url=server.emptied_database()), aiohttp_client)


async def bad_request(response: Any) -> str:
    assert response.status == 400, await response.text()
    (entry,) = (await response.json())["errors"]
    assert entry["code"] == "BAD_REQUEST"
    message: str = entry["message"]
    return message


LONE_SURROGATES: list[tuple[str, str, Any, str]] = [
    ("POST", "/projects", {"project_name": "p\ud800"}, "project_name"),
    ("POST", "/projects",
     {"project_name": "q", "metadata": {"public": "\udc00"}}, "metadata.public"),
    ("POST", "/users", {"username": "u\ud800", "password": "Passw0rdPassw0rd"}, "username"),
    ("POST", "/users", {"username": "uu", "password": "Passw0rd\ud800"}, "password"),
    ("POST", "/users", {"username": "uu", "password": "Passw0rd1", "email": "\udfff"}, "email"),
    ("PUT", "/users/1/password", {"new_password": "N3wPassword\ud800"}, "new_password"),
    ("POST", "/projects/p/members",
     {"role_id": 1, "member_user": {"username": "\ud800"}}, "member_user.username"),
    ("POST", "/robots", robot_body(name="ci\ud800"), "name"),
    ("POST", "/robots", robot_body(description="\ud83d"), "description"),
    ("POST", "/robots", robot_body(permissions=[{"kind": "project", "namespace": "p\ud800",
     "access": []}]), "permissions[0].namespace"),
    ("POST", "/robots", {"\ud800": 1}, "a field name"),
    ("PATCH", "/robots/1", {"secret": "S3cretSecret\ud800"}, "secret"),
    ("PUT", "/projects/p", {"metadata": {"public": "\ud800"}}, "metadata.public"),
]  # fmt: skip

HUGE_INTEGERS: list[tuple[str, str, Any, str]] = [
    ("POST", "/projects/p/members",
     {"role_id": 1, "member_user": {"user_id": HUGE}}, "member_user.user_id"),
    ("POST", "/projects/p/members",
     {"role_id": 1, "member_user": {"user_id": -HUGE}}, "member_user.user_id"),
    ("POST", "/projects/p/members", {"role_id": HUGE, "member_user": {"user_id": 1}}, "role_id"),
    ("PUT", "/projects/p/members/1", {"role_id": HUGE}, "role_id"),
    ("POST", "/robots", robot_body(duration=HUGE), "duration"),
    ("PUT", "/projects/p", {"public": True, "owner_id": HUGE}, "owner_id"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "where"), LONE_SURROGATES)
async def test_attack_lone_surrogate_in_any_json_string(
    any_db_client: Client, method: str, path: str, body: Any, where: str
) -> None:
    r = await any_db_client.request(method, API + path, data=json.dumps(body), headers=ADMIN)
    message = await bad_request(r)
    assert where in message
    assert "not valid Unicode" in message


@pytest.mark.parametrize(("method", "path", "body", "where"), HUGE_INTEGERS)
async def test_attack_integer_past_64_bits_in_any_id_field(
    any_db_client: Client, method: str, path: str, body: Any, where: str
) -> None:
    r = await any_db_client.request(method, API + path, data=json.dumps(body), headers=ADMIN)
    assert await bad_request(r) == f"{where}: integers must fit in 64 bits"


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63)])
async def test_integers_at_the_64_bit_edges_pass_the_input_check(
    any_db_client: Client, value: int
) -> None:
    r = await any_db_client.post(
        f"{API}/projects/p/members",
        json={"role_id": 1, "member_user": {"user_id": value}},
        headers=ADMIN,
    )
    assert r.status == 404, await r.text()  # no such user: the lookup ran


@pytest.mark.parametrize(
    ("principal", "password"), [("admin\ud800", "x"), ("admin", "Adm1nPassword\udc00")]
)
async def test_attack_lone_surrogate_in_the_web_login(
    client: Client, principal: str, password: str
) -> None:
    r = await client.post(
        "/c/login",
        data=json.dumps({"principal": principal, "password": password}),
        headers={"Content-Type": "application/json"},
    )
    assert "not valid Unicode" in await bad_request(r)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"project_name": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes
        b'{"project_name": "p", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}",
        b'{"project_name": NaN}',
    ],
    ids=["utf8-surrogate", "deep-nesting", "nan"],
)
async def test_attack_bodies_the_json_decoder_chokes_on(client: Client, raw: bytes) -> None:
    r = await client.post(
        f"{API}/projects", data=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    await bad_request(r)


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        (f"{FORM}; charset=unicode_escape", b"grant_type=password&username=\\ud800&password=x"),
        (f"{FORM}; charset=no-such-charset", b"grant_type=password&username=a&password=x"),
        (FORM, b"grant_type=password&username=\xed\xa0\x80&password=x"),
        (FORM, b"grant_type=password&username=a&password=\xff"),
    ],
    ids=["unicode-escape", "unknown-charset", "utf8-surrogate", "not-utf8"],
)
async def test_attack_token_form_decoded_into_lone_surrogates(
    client: Client, content_type: str, raw: bytes
) -> None:
    r = await client.post(TOKEN, data=raw, headers={"Content-Type": content_type})
    await bad_request(r)


async def test_a_utf8_form_still_works(client: Client) -> None:
    r = await client.post(
        TOKEN,
        data=b"grant_type=password&username=admin&password=Adm1nPassword&client_id=caf%C3%A9",
        headers={"Content-Type": f"{FORM}; charset=UTF-8"},
    )
    assert r.status == 200, await r.text()


@pytest.mark.parametrize(
    "query",
    ["/robots?name=%ED%A0%80", "/robots?q=name%3D~%ED%A0%80", "/projects?name=%ED%A0%80",
     "/users?username=%ED%A0%80"],
)  # fmt: skip
async def test_percent_encoded_surrogates_in_a_query_are_plain_text(
    client: Client, query: str
) -> None:
    """yarl decodes a query's invalid UTF-8 to U+FFFD: a query cannot carry a lone
    surrogate. It is text that matches nothing."""
    r = await client.get(API + query, headers=ADMIN)
    assert r.status == 200, await r.text()
    assert await r.json() == []


async def test_attack_integer_past_64_bits_in_a_query(client: Client) -> None:
    r = await client.get(f"{API}/robots?q=Level%3Dproject,ProjectID%3D{HUGE}", headers=ADMIN)
    await bad_request(r)


async def raw_request(client: Client, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    assert status is not None, answer[:200]
    return int(status.group(1)), body


@pytest.mark.parametrize("cookie", [b"\xff", b"\xed\xa0\x80", b"ok\x80"])
@pytest.mark.parametrize("path", [b"/api/v2.0/projects", b"/c/session"])
async def test_attack_stray_bytes_in_the_session_cookie(
    client: Client, cookie: bytes, path: bytes
) -> None:
    """aiohttp hands a header's non-UTF-8 bytes over as lone surrogates: such a cookie is
    simply no session."""
    status, body = await raw_request(
        client,
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nCookie: sid=" + cookie
        + b"\r\nConnection: close\r\n\r\n",
    )  # fmt: skip
    if path == b"/c/session":
        assert status == 401, body
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    else:  # the public listing, as for any caller without a session
        assert status in (200, 401), body


# ---- every endpoint, generated input ---------------------------------------------------------

# A valid body for each documented operation that reads one; the property test below puts a
# hostile value in each of their places in turn.
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/projects"): {"project_name": "q1", "public": False, "metadata": {"public": "false"}},
    ("PUT", "/projects/{project_name_or_id}"): {"public": True, "metadata": {"public": "true"}},
    ("POST", "/projects/{project_name_or_id}/metadatas"): {"auto_scan": "true"},
    ("POST", "/projects/{project_name_or_id}/metadatas/"): {"severity": "low"},
    ("PUT", "/projects/{project_name_or_id}/metadatas/{meta_name}"): {"auto_scan": "false"},
    ("POST", "/projects/{project_name_or_id}/members"):
        {"role_id": 2, "member_user": {"username": "fuzz", "user_id": 2}},
    ("PUT", "/projects/{project_name_or_id}/members/{mid}"): {"role_id": 3},
    ("POST", "/users"): {"username": "u1", "password": "Passw0rdPassw0rd", "email": "u@x.org",
                         "realname": "U", "comment": "c"},
    ("PUT", "/users/{user_id}/password"):
        {"old_password": "Fuzz3dPassword", "new_password": "Fuzz3dPassword"},
    ("PUT", "/users/{user_id}"): {"email": "u@x.org", "realname": "U", "comment": "c"},
    ("PUT", "/users/{user_id}/sysadmin"): {"sysadmin_flag": False},
    ("POST", "/robots"): robot_body(name="r1", description="d"),
    ("PUT", "/robots/{robot_id}"): robot_body(description="d2"),
    ("PATCH", "/robots/{robot_id}"): {"secret": "S3cretSecret1", "restart_expiry": False},
    ("PUT", "/robots/{robot_id}/federation"):
        {"rules": [{"issuer": "github", "claims": {"repository_owner_id": "1234567",
                                                   "ref": ["refs/heads/main", "refs/tags/v*"]}}]},
    ("POST", "/federation/issuers"):
        {"name": "fuzz", "url": "https://fuzz.example", "audiences": ["registry"],
         "max_token_lifetime": 600},
    **{
        (method, f"{base}/webhook/policies{one}"):
            {"name": "fuzz-hook", "description": "d", "enabled": True,
             "event_types": ["ROBOT_CREATED"],
             "targets": [{"type": "http", "address": "http://127.0.0.1:9/h",
                          "auth_header": "Bearer x", "skip_cert_verify": False,
                          "payload_format": "Default"}]}
        for base in ("/projects/{project_name_or_id}", "/system")
        for method, one in (("POST", ""), ("PUT", "/{webhook_policy_id}"))
    },
}  # fmt: skip


def test_every_operation_with_a_body_has_a_valid_one_here() -> None:
    documented = {
        (method.upper(), template)
        for template, item in document()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    assert documented == set(VALID_BODIES)


@pytest.mark.parametrize(("method", "template"), list(VALID_BODIES))
def test_every_valid_body_here_matches_the_document(method: str, template: str) -> None:
    check_request(method, API + template, VALID_BODIES[method, template])


def test_attack_generated_bodies_with_lone_surrogates_and_huge_integers_never_500(
    make_settings: MakeSettings,
) -> None:
    """Every endpoint with a JSON body, fed its valid body with one value (at any depth) or
    key made a lone surrogate or an integer past 64 bits: a 400 with the envelope."""
    loop = asyncio.new_event_loop()
    app = create_app(make_settings())
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())

    async def prepare() -> dict[str, str]:
        runtime = app[RUNTIME]
        await runtime.users.ensure_admin(PASSWORD)
        await runtime.projects.create(LOCAL, "p")
        r = await client.post(f"{API}/robots", json=robot_body(), headers=ADMIN)
        assert r.status == 201, await r.text()
        robot_id = (await r.json())["id"]
        issuer = {"name": "github", "url": "https://token.actions.githubusercontent.com",
                  "audiences": ["registry"]}  # fmt: skip
        r = await client.post(f"{API}/federation/issuers", json=issuer, headers=ADMIN)
        assert r.status == 201, await r.text()
        # Not the admin's id: a body may hold a valid new password for that user.
        r = await client.post(
            f"{API}/users", json={"username": "fuzz", "password": "Fuzz3dPassword"}, headers=ADMIN
        )
        assert r.status == 201, await r.text()
        user_id = r.headers["Location"].rsplit("/", 1)[1]
        r = await client.post(
            f"{API}/projects/p/members",
            json={"role_id": 2, "member_user": {"username": "fuzz"}},
            headers=ADMIN,
        )
        assert r.status == 201, await r.text()
        member_id = r.headers["Location"].rsplit("/", 1)[1]
        hook = VALID_BODIES["POST", "/system/webhook/policies"] | {"name": "fuzzed"}
        r = await client.post(f"{API}/projects/p/webhook/policies", json=hook, headers=ADMIN)
        assert r.status == 201, await r.text()
        return {
            "webhook_policy_id": r.headers["Location"].rsplit("/", 1)[1],
            "project_name_or_id": "p",
            "robot_id": str(robot_id),
            "user_id": user_id,
            "mid": member_id,
            "meta_name": "auto_scan",
        }

    ids = loop.run_until_complete(prepare())

    async def probe(method: str, template: str, body: Any) -> None:
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
        r = await client.request(method, API + path, data=json.dumps(body), headers=ADMIN)
        if not holds_unstorable(body):  # a hostile integer made a key of a free-form map
            assert r.status < 500, (method, path, body, r.status, await r.text())
            return
        assert r.status == 400, (method, path, body, r.status, await r.text())
        assert (await r.json())["errors"][0]["code"] == "BAD_REQUEST"

    cases = st.sampled_from(sorted(VALID_BODIES)).flatmap(
        lambda op: st.tuples(st.just(op), with_hostile_value(VALID_BODIES[op]))
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cases)
    def check(case: tuple[tuple[str, str], Any]) -> None:
        (method, template), body = case
        loop.run_until_complete(probe(method, template, body))

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.close()
