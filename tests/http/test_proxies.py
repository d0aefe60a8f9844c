"""The client behind a reverse proxy: address resolution as a table, then over HTTP with
forged headers from trusted and untrusted peers (lockouts, logs, the session cookie).
(tests/e2e/test_proxy.py puts a real nginx in front.)"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.conftest import MakeSettings, with_migrated_database
from tests.http.conftest import AiohttpClient, Server, basic
from tokenserver.config import load_settings
from tokenserver.errors import ConfigError
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.http.observability import AccessLogger
from tokenserver.http.proxies import FORWARDED, X_FORWARDED_FOR, parse_node, resolve

TOKEN = "/service/token"
TRUSTED = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8")
)
CLIENT = "198.51.100.7"
FORGED = "6.6.6.6"
PROXY = "127.0.0.1"
OUTSIDER = "203.0.113.9"
PASSWORD = "Adm1nPassword"

# (peer, headers, header mode, expected address, expected https)
CASES: list[tuple[str, str | None, list[tuple[str, str]], str, str, bool]] = [
    # -- X-Forwarded-For ----------------------------------------------------------------
    ("untrusted peer: headers ignored", OUTSIDER, [("X-Forwarded-For", CLIENT)],
     X_FORWARDED_FOR, OUTSIDER, False),
    ("untrusted peer: proto ignored", OUTSIDER,
     [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "https")],
     X_FORWARDED_FOR, OUTSIDER, False),
    ("trusted peer, one hop", PROXY, [("X-Forwarded-For", CLIENT)],
     X_FORWARDED_FOR, CLIENT, False),
    ("trusted peer, no header", PROXY, [], X_FORWARDED_FOR, PROXY, False),
    ("chain of trusted proxies", PROXY, [("X-Forwarded-For", f"{CLIENT}, 10.1.2.3, 10.0.0.5")],
     X_FORWARDED_FOR, CLIENT, False),
    ("spoofed left-most entry", PROXY, [("X-Forwarded-For", f"{FORGED}, {CLIENT}")],
     X_FORWARDED_FOR, CLIENT, False),
    ("spoofed left-most entries, a chain", PROXY,
     [("X-Forwarded-For", f"{FORGED}, 10.9.9.9, {FORGED}, {CLIENT}, 10.0.0.5")],
     X_FORWARDED_FOR, CLIENT, False),
    ("spoofed line, then the proxy's line", PROXY,
     [("X-Forwarded-For", FORGED), ("X-Forwarded-For", CLIENT)], X_FORWARDED_FOR, CLIENT, False),
    ("garbage left of the client", PROXY, [("X-Forwarded-For", f"<script>, ;;, {CLIENT}")],
     X_FORWARDED_FOR, CLIENT, False),
    ("garbage where the client should be", PROXY, [("X-Forwarded-For", f"{CLIENT}, garbage")],
     X_FORWARDED_FOR, PROXY, False),
    ("empty entry", PROXY, [("X-Forwarded-For", f"{CLIENT},")], X_FORWARDED_FOR, PROXY, False),
    ("empty header", PROXY, [("X-Forwarded-For", "")], X_FORWARDED_FOR, PROXY, False),
    ("unknown", PROXY, [("X-Forwarded-For", "unknown")], X_FORWARDED_FOR, PROXY, False),
    ("host name", PROXY, [("X-Forwarded-For", "evil.example")], X_FORWARDED_FOR, PROXY, False),
    ("out-of-range port", PROXY, [("X-Forwarded-For", f"{CLIENT}:99999x")],
     X_FORWARDED_FOR, PROXY, False),
    ("zone id", PROXY, [("X-Forwarded-For", "fe80::1%eth0")], X_FORWARDED_FOR, PROXY, False),
    ("overlong entry", PROXY, [("X-Forwarded-For", "1" * 5000)], X_FORWARDED_FOR, PROXY, False),
    ("leading zeros are not an address", PROXY, [("X-Forwarded-For", "010.001.002.003")],
     X_FORWARDED_FOR, PROXY, False),
    ("every hop trusted: the farthest", PROXY, [("X-Forwarded-For", "10.0.0.7, 10.0.0.5")],
     X_FORWARDED_FOR, "10.0.0.7", False),
    ("IPv4 with a port", PROXY, [("X-Forwarded-For", f"{CLIENT}:5555")],
     X_FORWARDED_FOR, CLIENT, False),
    ("IPv6", PROXY, [("X-Forwarded-For", "2001:DB8::1")], X_FORWARDED_FOR, "2001:db8::1", False),
    ("bracketed IPv6 with a port", PROXY, [("X-Forwarded-For", "[2001:db8::1]:4711")],
     X_FORWARDED_FOR, "2001:db8::1", False),
    ("IPv4-mapped IPv6 client", PROXY, [("X-Forwarded-For", f"::ffff:{CLIENT}")],
     X_FORWARDED_FOR, CLIENT, False),
    ("IPv6 proxy peer", "::1", [("X-Forwarded-For", f"{CLIENT}, fd00::5")],
     X_FORWARDED_FOR, CLIENT, False),
    ("IPv4-mapped trusted peer (dual-stack listener)", f"::ffff:{PROXY}",
     [("X-Forwarded-For", CLIENT)], X_FORWARDED_FOR, CLIENT, False),
    ("no peer (not a socket)", None, [("X-Forwarded-For", CLIENT)], X_FORWARDED_FOR, "", False),
    ("https from the proxy", PROXY, [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "HTTPS")],
     X_FORWARDED_FOR, CLIENT, True),
    ("http from the proxy", PROXY, [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "http")],
     X_FORWARDED_FOR, CLIENT, False),
    ("the nearest proxy's proto counts", PROXY,
     [("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "http, https")],
     X_FORWARDED_FOR, CLIENT, True),
    ("Forwarded ignored when X-Forwarded-For is configured", PROXY,
     [("Forwarded", f"for={FORGED};proto=https")], X_FORWARDED_FOR, PROXY, False),
    ("Forwarded beside X-Forwarded-For: only X-Forwarded-For", PROXY,
     [("Forwarded", f"for={FORGED}"), ("X-Forwarded-For", CLIENT)], X_FORWARDED_FOR, CLIENT, False),
    # -- Forwarded (RFC 7239) -----------------------------------------------------------
    ("Forwarded, untrusted peer", OUTSIDER, [("Forwarded", f"for={CLIENT}")],
     FORWARDED, OUTSIDER, False),
    ("Forwarded, one hop", PROXY, [("Forwarded", f"for={CLIENT}")], FORWARDED, CLIENT, False),
    ("Forwarded, quoted IPv6 with a port", PROXY, [("Forwarded", 'for="[2001:db8::1]:1234"')],
     FORWARDED, "2001:db8::1", False),
    ("Forwarded, a trusted IPv6 hop skipped", PROXY,
     [("Forwarded", f'for={CLIENT};proto=https, for="[::1]:1234";proto=http')],
     FORWARDED, CLIENT, True),
    ("Forwarded, spoofed left-most element", PROXY,
     [("Forwarded", f"for={FORGED};proto=https, for={CLIENT};proto=http")],
     FORWARDED, CLIENT, False),
    ("Forwarded, spoofed line then the proxy's", PROXY,
     [("Forwarded", f"for={FORGED}"), ("Forwarded", f"for={CLIENT};proto=https")],
     FORWARDED, CLIENT, True),
    ("Forwarded, case of keys and values", PROXY, [("Forwarded", f"For={CLIENT};PROTO=HTTPS")],
     FORWARDED, CLIENT, True),
    ("Forwarded, other parameters", PROXY,
     [("Forwarded", f'by=10.0.0.1;for={CLIENT};host="a.example";proto=https')],
     FORWARDED, CLIENT, True),
    ("Forwarded, a client's unterminated quote on the left", PROXY,
     [("Forwarded", f'for="{FORGED}, for={CLIENT}')], FORWARDED, CLIENT, False),
    ("Forwarded, escaped quoted-string", PROXY,
     [("Forwarded", f'for="{CLIENT[:3]}\\{CLIENT[3:]}"')], FORWARDED, CLIENT, False),
    ("Forwarded, unknown", PROXY, [("Forwarded", "for=unknown")], FORWARDED, PROXY, False),
    ("Forwarded, obfuscated", PROXY, [("Forwarded", "for=_hidden")], FORWARDED, PROXY, False),
    ("Forwarded, element without for", PROXY, [("Forwarded", "proto=https")],
     FORWARDED, PROXY, False),
    ("Forwarded, duplicate for", PROXY, [("Forwarded", f"for={CLIENT};for={FORGED}")],
     FORWARDED, PROXY, False),
    ("Forwarded, no value", PROXY, [("Forwarded", "for")], FORWARDED, PROXY, False),
    ("Forwarded, garbage", PROXY, [("Forwarded", '";;==,,"')], FORWARDED, PROXY, False),
    ("Forwarded, a malformed hop we need", PROXY,
     [("Forwarded", f"for={CLIENT}, for=10.0.0.5;;")], FORWARDED, PROXY, False),
    ("X-Forwarded-For ignored when Forwarded is configured", PROXY,
     [("X-Forwarded-For", FORGED), ("X-Forwarded-Proto", "https")], FORWARDED, PROXY, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("peer", "headers", "mode", "address", "https"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_client_address_resolution(
    peer: str | None, headers: list[tuple[str, str]], mode: str, address: str, https: bool
) -> None:
    client = resolve(peer, CIMultiDict(headers), TRUSTED, mode)
    assert (client.address, client.https) == (address, https)


def test_without_trusted_proxies_every_header_is_ignored() -> None:
    headers = CIMultiDict([("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "https")])
    assert resolve(PROXY, headers, ()).address == PROXY
    assert resolve(PROXY, headers, ()).https is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:80", "192.0.2.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[192.0.2.1]", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]443", None),
        ("192.0.2.1:", "192.0.2.1"),
        ("192.0.2.1:８０", None),  # noqa: RUF001 (full-width digits are not a port)
        ("192.0.2.1:123456", None),
        ("", None),
        ("unknown", None),
        ("_hidden", None),
    ],
)
def test_parse_node(text: str, expected: str | None) -> None:
    parsed = parse_node(text)
    assert (None if parsed is None else str(parsed)) == expected


# ---- configuration ----------------------------------------------------------------------


def test_trusted_proxies_are_validated_naming_the_key(make_settings: MakeSettings) -> None:
    settings = make_settings(server__trusted_proxies=["127.0.0.1", "10.0.0.0/8", "::1"])
    assert [str(n) for n in settings.server.trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    path = settings.config_path
    text = path.read_text()
    assert 'trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]' in text
    for bad, reason in [
        ('["10.0.0.1/8"]', "has host bits set"),
        ('["nonsense"]', "is not a CIDR"),
        ('["0.0.0.0/0"]', "trusts every client"),
        ('["::/0"]', "trusts every client"),
        ("[1]", "expected CIDR strings"),
        ("7", "expected a list of CIDRs"),
    ]:
        path.write_text(re.sub(r"(?m)^trusted_proxies = .*$", f"trusted_proxies = {bad}", text))
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={})
        assert "server.trusted_proxies" in str(caught.value) and reason in str(caught.value)


def test_trusted_proxies_from_the_environment(make_settings: MakeSettings) -> None:
    path = make_settings().config_path
    settings = load_settings(
        path,
        environ={
            "TOKENSERVER_SERVER_TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8 fd00::/8",
            "TOKENSERVER_SERVER_FORWARDED_HEADER": "forwarded",
        },
    )
    assert [str(n) for n in settings.server.trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "fd00::/8",
    ]
    assert settings.server.forwarded_header == "forwarded"
    with pytest.raises(ConfigError, match=r"TOKENSERVER_SERVER_TRUSTED_PROXIES.*not a CIDR"):
        load_settings(path, environ={"TOKENSERVER_SERVER_TRUSTED_PROXIES": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match=r"server\.forwarded_header"):
        load_settings(path, environ={"TOKENSERVER_SERVER_FORWARDED_HEADER": "x-real-ip"})
    assert load_settings(path, environ={}).server.trusted_proxies == ()


# ---- over HTTP (the test client connects from 127.0.0.1) --------------------------------


async def _server(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, **overrides: Any
) -> Server:
    settings = with_migrated_database(make_settings(security__lockout_threshold=3, **overrides))
    app = create_app(settings)
    test_server = TestServer(app)
    # The access log as `tokenserver serve` writes it.
    await test_server.start_server(
        access_log_class=AccessLogger, access_log=logging.getLogger("tokenserver.access")
    )
    return Server(await aiohttp_client(test_server), app[RUNTIME], settings)


def _xff(value: str) -> dict[str, str]:
    return {"X-Forwarded-For": value}


async def _fail(server: Server, account: str, headers: dict[str, str], n: int = 3) -> None:
    for i in range(n):
        r = await server.client.get(TOKEN, headers={**basic(account, f"Wrong{i}Pass"), **headers})
        assert r.status == 401, await r.text()


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]], ids=["no proxies", "other proxies"])
async def test_attack_forged_x_forwarded_for_from_untrusted_peer_is_ignored(
    make_settings: MakeSettings,
    aiohttp_client: AiohttpClient,
    caplog: pytest.LogCaptureFixture,
    trusted: list[str],
) -> None:
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=trusted)
    robot = await server.robot("p", "ci", "repository:pull")
    caplog.set_level(logging.INFO)
    # Each failure claims another client: all of them are still this peer's failures.
    for i in range(3):
        r = await server.client.get(
            TOKEN,
            headers={
                **basic(robot.name, f"Wrong{i}Pass"),
                "X-Forwarded-For": f"192.0.2.{i + 1}",
                "Forwarded": f"for=192.0.2.{i + 1}",
            },
        )
        assert r.status == 401
    r = await server.client.get(TOKEN, headers={**robot.headers, **_xff("192.0.2.99")})
    assert r.status == 429
    assert (await r.json())["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    token_lines = [m for m in caplog.messages if m.startswith("token denied")]
    assert token_lines and all("client=127.0.0.1" in m for m in token_lines)
    assert "192.0.2." not in caplog.text


async def test_attack_one_client_behind_a_trusted_proxy_cannot_lock_out_the_others(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, every client of the proxy shared its address: one client's failures locked
    # the account out for all of them.
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=["127.0.0.1/32"])
    robot = await server.robot("p", "ci", "repository:pull")
    caplog.set_level(logging.INFO)
    await _fail(server, robot.name, _xff(FORGED))
    locked = await server.client.get(TOKEN, headers={**robot.headers, **_xff(FORGED)})
    assert locked.status == 429
    other = await server.client.get(TOKEN, headers={**robot.headers, **_xff(CLIENT)})
    assert other.status == 200
    assert f"client={FORGED}" in caplog.text and f"client={CLIENT}" in caplog.text
    # One line per token request, the token log's, with the client behind the proxy.
    access = [r.getMessage() for r in caplog.records if r.name == "tokenserver.access"]
    assert not any(TOKEN in line for line in access), access
    token = [r.getMessage() for r in caplog.records if r.name == "tokenserver.token"]
    issued = f"token issued grant=basic account='{robot.name}' client={CLIENT} "
    assert any(line.startswith(issued) and " status=200 " in line for line in token), token
    denied = f"token denied grant=basic account='{robot.name}' client={FORGED} "
    assert any(line.startswith(denied) and " status=429 " in line for line in token), token


async def test_api_and_web_login_lockouts_follow_the_client_behind_a_trusted_proxy(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=["127.0.0.1/32"])
    await server.runtime.users.ensure_admin(PASSWORD)
    for i in range(3):
        r = await server.client.get(
            "/api/v2.0/users/current", headers={**basic("admin", f"Wrong{i}"), **_xff(FORGED)}
        )
        assert r.status == 401
    login = {"principal": "admin", "password": PASSWORD}
    r = await server.client.post("/c/login", json=login, headers=_xff(FORGED))
    assert r.status == 429
    r = await server.client.post("/c/login", json=login, headers=_xff(CLIENT))
    assert r.status == 200
    r = await server.client.get(
        "/api/v2.0/users/current", headers={**basic("admin", PASSWORD), **_xff(CLIENT)}
    )
    assert r.status == 200


async def test_attack_forged_left_most_x_forwarded_for_does_not_change_the_lockout_key(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=["127.0.0.1/32"])
    robot = await server.robot("p", "ci", "repository:pull")
    # The attacker's real address is CLIENT (appended by the proxy); it rotates what it
    # writes on the left.
    for i in range(3):
        r = await server.client.get(
            TOKEN,
            headers={**basic(robot.name, f"Wrong{i}Pass"), **_xff(f"192.0.2.{i + 1}, {CLIENT}")},
        )
        assert r.status == 401
    r = await server.client.get(
        TOKEN, headers={**robot.headers, **_xff(f"192.0.2.99, 10.0.0.1, {CLIENT}")}
    )
    assert r.status == 429


async def test_attack_forged_forwarded_header_behind_an_x_forwarded_for_proxy_is_ignored(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    # nginx sets X-Forwarded-For and passes the client's own Forwarded header on unchanged.
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=["127.0.0.1/32"])
    robot = await server.robot("p", "ci", "repository:pull")
    for i in range(3):
        r = await server.client.get(
            TOKEN,
            headers={
                **basic(robot.name, f"Wrong{i}Pass"),
                "Forwarded": f"for=192.0.2.{i + 1}",
                **_xff(CLIENT),
            },
        )
        assert r.status == 401
    r = await server.client.get(
        TOKEN, headers={**robot.headers, "Forwarded": "for=192.0.2.99", **_xff(CLIENT)}
    )
    assert r.status == 429


async def test_forwarded_header_when_configured(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient
) -> None:
    server = await _server(
        make_settings,
        aiohttp_client,
        server__trusted_proxies=["127.0.0.1/32"],
        server__forwarded_header="forwarded",
    )
    robot = await server.robot("p", "ci", "repository:pull")
    await _fail(server, robot.name, {"Forwarded": 'for="[2001:db8::7]:4711"'})
    r = await server.client.get(TOKEN, headers={**robot.headers, "Forwarded": "for=2001:db8::7"})
    assert r.status == 429
    r = await server.client.get(TOKEN, headers={**robot.headers, "Forwarded": f"for={CLIENT}"})
    assert r.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        _xff("garbage"),
        _xff("[[[::1]]]:99"),
        _xff("," * 4000),
        _xff("1.2.3.4%" + "a" * 100),
        {"Forwarded": '"for="\\'},
        {"Forwarded": "for=" + "[" * 3000},
        {"X-Forwarded-Proto": "\u00e9"},
    ],
)
@pytest.mark.parametrize("mode", [X_FORWARDED_FOR, FORWARDED])
async def test_attack_malformed_forwarding_headers_fall_back_to_the_peer(
    make_settings: MakeSettings,
    aiohttp_client: AiohttpClient,
    headers: dict[str, str],
    mode: str,
) -> None:
    server = await _server(
        make_settings,
        aiohttp_client,
        server__trusted_proxies=["127.0.0.1/32"],
        server__forwarded_header=mode,
    )
    robot = await server.robot("p", "ci", "repository:pull")
    await _fail(server, robot.name, headers)
    # The failures were counted under the peer's own address: a clean request is locked.
    r = await server.client.get(TOKEN, headers=robot.headers)
    assert r.status == 429
    r = await server.client.get("/api/v2.0/projects", headers=headers)
    assert r.status == 200


@pytest.mark.parametrize(
    ("trusted", "headers", "secure"),
    [
        (["127.0.0.1/32"], {**_xff(CLIENT), "X-Forwarded-Proto": "https"}, True),
        (["127.0.0.1/32"], {**_xff(CLIENT), "X-Forwarded-Proto": "http"}, False),
        (["127.0.0.1/32"], _xff(CLIENT), False),
        ([], {**_xff(CLIENT), "X-Forwarded-Proto": "https"}, False),
        (["10.0.0.0/8"], {**_xff(CLIENT), "X-Forwarded-Proto": "https"}, False),
    ],
    ids=["trusted https", "trusted http", "trusted no proto", "no proxies", "other proxies"],
)
async def test_the_session_cookie_is_secure_when_a_trusted_proxy_says_https(
    make_settings: MakeSettings,
    aiohttp_client: AiohttpClient,
    trusted: list[str],
    headers: dict[str, str],
    secure: bool,
) -> None:
    server = await _server(make_settings, aiohttp_client, server__trusted_proxies=trusted)
    await server.runtime.users.ensure_admin(PASSWORD)
    r = await server.client.post(
        "/c/login", json={"principal": "admin", "password": PASSWORD}, headers=headers
    )
    assert r.status == 200
    attributes = [a.strip().lower() for a in r.headers["Set-Cookie"].split(";")]
    assert ("secure" in attributes) is secure
