"""Robot federation at the command line: `federation issuer add|list|remove`, `robot
federation add|list|remove|failures`, `robot update --secret-login`: what they print, how they
refuse (a one-line message naming what is at fault; exit 2 for usage, 1 for a refusal)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.federation_files import GITHUB, ec_jwk, rsa_jwk, write_ca, write_jwks
from tests.helpers import call_cli, initialised
from tokenserver.config import load_settings
from tokenserver.domain.federation import Identity
from tokenserver.runtime import open_runtime

ADD_GITHUB = ("federation", "issuer", "add", "github", "--issuer", GITHUB, "--audience", "reg")
OWNER = ("--claim", "repository_owner_id=1234567")


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None


def refused(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    create = ("robot", "create", "--project", "p", "--permission", "repository:pull", "--name")
    return initialised(
        tmp_path / "etc" / "tokenserver.toml",
        then=[("project", "create", "p"), (*create, "ci"), (*create, "other")],
    )


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return call_cli(config, *args)


def audit(config: Path) -> list[tuple[str, str, str, str]]:
    entries = ok(cli(config, "audit", "--json", "--page-size", "100"))
    return [(e["operation"], e["resource_type"], e["resource"], e["outcome"]) for e in entries]


# ---- issuers ---------------------------------------------------------------------------------


def test_issuers_are_added_listed_and_removed(config: Path, tmp_path: Path) -> None:
    added = ok(cli(config, *ADD_GITHUB, "--audience", "other"))
    assert added == {
        "name": "github",
        "url": GITHUB,
        "audiences": ["reg", "other"],
        "max_token_lifetime": 3600,
        "creation_time": added["creation_time"],
    }
    jwks = write_jwks(tmp_path / "k8s-jwks.json")
    ca = write_ca(tmp_path / "ca.pem")
    k8s = ok(
        cli(
            config, "federation", "issuer", "add", "k8s", "--issuer", "https://k8s.example",
            "--audience", "reg", "--jwks-file", str(jwks), "--ca-file", str(ca),
            "--max-token-lifetime", "7200",
        )
    )  # fmt: skip
    assert (k8s["jwks_file"], k8s["ca_file"], k8s["max_token_lifetime"]) == (
        str(jwks), str(ca), 7200
    )  # fmt: skip
    listing = cli(config, "federation", "issuer", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines() == [
        f"github\t{GITHUB}\treg,other\tmax 3600 s\tkeys from discovery",
        f"k8s\thttps://k8s.example\treg\tmax 7200 s\tjwks {jwks}",
    ]
    listed = ok(cli(config, "federation", "issuer", "list", "--json"))
    assert [i["name"] for i in listed] == ["github", "k8s"]
    result = cli(config, "federation", "issuer", "remove", "k8s")
    assert result.returncode == 0 and "removed issuer k8s" in result.stderr
    assert [i["name"] for i in ok(cli(config, "federation", "issuer", "list", "--json"))] == [
        "github"
    ]
    assert audit(config)[:3] == [
        ("delete", "federation-issuer", "k8s", "success"),
        ("create", "federation-issuer", "k8s", "success"),
        ("create", "federation-issuer", "github", "success"),
    ]


def test_a_relative_file_is_stored_as_the_absolute_path_the_server_reads(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_jwks(tmp_path / "jwks.json")
    monkeypatch.chdir(tmp_path)
    added = ok(cli(config, *ADD_GITHUB, "--jwks-file", "jwks.json"))
    assert added["jwks_file"] == str(tmp_path / "jwks.json")


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--jwks-file", "/nonexistent/jwks.json"), ["--jwks-file /nonexistent/jwks.json",
                                                     "No such file"]),
        (("--ca-file", "/nonexistent/ca.pem"), ["--ca-file /nonexistent/ca.pem", "No such file"]),
        (("--jwks-file", "/"), ["--jwks-file /", "Is a directory"]),
        (("--max-token-lifetime", "59"), ["--max-token-lifetime", "60 to 86400"]),
        (("--max-token-lifetime", "86401"), ["--max-token-lifetime", "60 to 86400"]),
        (("--max-token-lifetime", "1h"), ["--max-token-lifetime", "expected seconds"]),
    ],
)  # fmt: skip
def test_issuer_add_usage_errors_name_the_flag(
    config: Path, extra: tuple[str, ...], words: list[str]
) -> None:
    refused(cli(config, *ADD_GITHUB, *extra), 2, *words)
    assert ok(cli(config, "federation", "issuer", "list", "--json")) == []


def _jwks_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Files that are not an issuer's JWKS, each with what its refusal says."""
    files = {
        "not json": ("{", "not JSON"),
        "no keys": ("[]", "not a JSON Web Key Set"),
        "keys not a list": ('{"keys": {}}', "not a JSON Web Key Set"),
        "empty set": ('{"keys": []}', "no public key with a kid"),
        "no kid": (json.dumps({"keys": [ec_jwk(kid=None)]}), "no public key with a kid"),
        "P-384 only": (json.dumps({"keys": [ec_jwk(curve=ec.SECP384R1())]}), "RS256 or ES256"),
        "encryption key": (json.dumps({"keys": [{**ec_jwk(), "use": "enc"}]}), "RS256 or ES256"),
        "private key": (json.dumps({"keys": [rsa_jwk(private=True)]}), "private or secret key"),
        "HMAC secret": (
            json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}),
            "private or secret key",
        ),
        "garbage key": (json.dumps({"keys": [{"kty": "RSA", "n": "!", "e": "?", "kid": "x"}]}),
                        "RS256 or ES256"),
    }  # fmt: skip
    found = {}
    for i, (name, (text, words)) in enumerate(files.items()):
        path = tmp / f"jwks-{i}.json"
        path.write_text(text)
        found[name] = (path, words)
    big = tmp / "big.json"
    big.write_bytes(b" " * (1024 * 1024 + 1))
    found["larger than a JWKS is"] = (big, "larger than")
    return found


def test_issuer_add_refuses_a_file_that_is_not_a_jwks(config: Path, tmp_path: Path) -> None:
    for name, (path, words) in _jwks_files(tmp_path).items():
        result = cli(config, *ADD_GITHUB, "--jwks-file", str(path))
        refused(result, 1, f"JWKS file '{path}'", words)
        assert len(result.stderr.splitlines()) == 1, name
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    refused(cli(config, *ADD_GITHUB, "--ca-file", str(not_pem)), 1, "CA file", "no PEM")
    assert ok(cli(config, "federation", "issuer", "list", "--json")) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("GitHub", "--issuer", GITHUB), ["invalid issuer name 'GitHub'"]),
        (("gh", "--issuer", "http://issuer.example"), ["loopback"]),
        (("gh", "--issuer", "https://u:p@issuer.example"), ["user name or password"]),
        (("gh", "--issuer", GITHUB + "?x=1"), ["query or a fragment"]),
        (("gh", "--issuer", "https://issuer.example", "--audience", "a\x1b[2J"),
         ["control characters"]),
    ],
)  # fmt: skip
def test_issuer_add_refusals(config: Path, args: tuple[str, ...], words: list[str]) -> None:
    argv = ("federation", "issuer", "add", *args)
    if "--audience" not in args:
        argv = (*argv, "--audience", "reg")
    err = refused(cli(config, *argv), 1, *words)
    assert "\x1b" not in err  # shown escaped, never sent to the terminal


def test_a_taken_name_or_url_is_refused(config: Path) -> None:
    ok(cli(config, *ADD_GITHUB))
    refused(cli(config, *ADD_GITHUB), 1, "exists already")
    argv = ("federation", "issuer", "add", "gh2", "--issuer", GITHUB, "--audience", "x")
    refused(cli(config, *argv), 1, "exists already")


def test_an_issuer_rules_use_is_not_removed(config: Path) -> None:
    ok(cli(config, *ADD_GITHUB))
    for robot in ("p+ci", "p+other", "p+other"):
        ok(cli(config, "robot", "federation", "add", robot, "--issuer", "github", *OWNER))
    refused(
        cli(config, "federation", "issuer", "remove", "github"),
        1,
        "issuer 'github' is used by the federation rules of 2 robots; remove those rules first",
    )
    refused(cli(config, "federation", "issuer", "remove", "nope"), 1, "issuer 'nope' not found")
    assert [i["name"] for i in ok(cli(config, "federation", "issuer", "list", "--json"))] == [
        "github"
    ]


# ---- rules -----------------------------------------------------------------------------------


def test_rules_are_added_listed_and_removed(config: Path) -> None:
    ok(cli(config, *ADD_GITHUB))
    result = cli(
        config, "robot", "federation", "add", "robot$p+ci", "--issuer", "github",
        "--claim", "repository=acme/app", "--claim", "ref=refs/heads/main",
        "--claim", "ref=refs/tags/v*",
    )  # fmt: skip
    rule = ok(result)
    assert rule == {
        "id": rule["id"],
        "issuer": "github",
        "claims": {"repository": "acme/app", "ref": ["refs/heads/main", "refs/tags/v*"]},
        "creation_time": rule["creation_time"],
    }
    # No immutable id: taken, with a warning that says why.
    assert f"warning: rule {rule['id']} (issuer github): pins no repository_owner_id" in (
        result.stderr
    )
    second = cli(config, "robot", "federation", "add", "p+ci", "--issuer", "github", *OWNER)
    assert "warning" not in second.stderr
    pinned = ok(second)
    listing = cli(config, "robot", "federation", "list", "p+ci")
    assert listing.returncode == 0
    assert [line.split("\t")[:3] for line in listing.stdout.splitlines()] == [
        [str(rule["id"]), "github", "repository=acme/app ref=refs/heads/main|refs/tags/v*"],
        [str(pinned["id"]), "github", "repository_owner_id=1234567"],
    ]
    assert listing.stderr.count("warning:") == 1
    as_json = ok(cli(config, "robot", "federation", "list", "p+ci", "--json"))
    assert [r["id"] for r in as_json["rules"]] == [rule["id"], pinned["id"]]
    assert len(as_json["warnings"]) == 1
    removed = cli(config, "robot", "federation", "remove", "p+ci", str(rule["id"]))
    assert removed.returncode == 0 and f"removed rule {rule['id']}" in removed.stderr
    refused(
        cli(config, "robot", "federation", "remove", "p+ci", str(rule["id"])),
        1,
        f"robot robot$p+ci has no federation rule {rule['id']}",
    )
    # Another robot's rule is not this robot's to remove.
    refused(
        cli(config, "robot", "federation", "remove", "p+other", str(pinned["id"])),
        1,
        "has no federation rule",
    )
    ok(cli(config, "robot", "federation", "list", "p+ci", "--json"))
    assert [e[:3] for e in audit(config)[:4] if e[1] == "robot"] == [
        ("delete-federation-rule", "robot", "robot$p+other"),
        ("delete-federation-rule", "robot", "robot$p+ci"),
        ("delete-federation-rule", "robot", "robot$p+ci"),
        ("add-federation-rule", "robot", "robot$p+ci"),
    ]


@pytest.mark.parametrize(
    ("claims", "status", "words"),
    [
        (("sub=*",), 1, ["pin a claim beyond iss and aud", "every repository in the world"]),
        (("iss=" + GITHUB, "aud=reg"), 1, ["pin a claim beyond iss and aud"]),
        (("exp=1",), 1, ["exp, iat, nbf and jti"]),
        (("repository",), 2, ["--claim", "KEY=PATTERN"]),
        (("sub=",), 1, ["pattern ''", "1 to 255"]),
        (("a..b=x",), 1, ["dotted path"]),
    ],
)
def test_rules_that_are_refused(
    config: Path, claims: tuple[str, ...], status: int, words: list[str]
) -> None:
    ok(cli(config, *ADD_GITHUB))
    argv = ["robot", "federation", "add", "p+ci", "--issuer", "github"]
    for claim in claims:
        argv += ["--claim", claim]
    refused(cli(config, *argv), status, *words)
    assert ok(cli(config, "robot", "federation", "list", "p+ci", "--json"))["rules"] == []


def test_a_rule_of_an_unknown_issuer_or_robot_is_refused(config: Path) -> None:
    refused(
        cli(config, "robot", "federation", "add", "p+ci", "--issuer", "nope", *OWNER),
        1,
        "issuer 'nope' not found",
        "tokenserver federation issuer add",
    )
    ok(cli(config, *ADD_GITHUB))
    refused(
        cli(config, "robot", "federation", "add", "p+nope", "--issuer", "github", *OWNER),
        1,
        "robot 'p+nope' not found",
    )
    # The shell's `$p` expanded away: the hint says so.
    refused(
        cli(config, "robot", "federation", "list", "robot+ci"),
        1,
        "not found",
        "quote",
    )


def test_a_robot_takes_at_most_twenty_rules(config: Path) -> None:
    ok(cli(config, *ADD_GITHUB))
    add = ("robot", "federation", "add", "p+ci", "--issuer", "github")
    for i in range(20):
        ok(cli(config, *add, "--claim", f"repository_id={i}"))
    refused(cli(config, *add, *OWNER), 1, "has 20 federation rules", "remove one first")


def test_failures_are_listed_newest_first_escaped(config: Path) -> None:
    settings = load_settings(config, environ={})

    async def record() -> None:
        async with open_runtime(settings, sign=False, create_database=False) as rt:
            robot = await rt.robots.resolve("p+ci")
            await rt.store.add_federation_failure(robot.id, 100, "github", "repo:a", "ref")
            await rt.store.add_federation_failure(
                robot.id, 200, "github", "repo:\x1b[2J\ttab", "claim 'ref' did not match"
            )

    asyncio.run(record())
    result = cli(config, "robot", "federation", "failures", "p+ci")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[1:] == [
        "github",
        "repo:\\x1b[2J\\ttab",
        "claim 'ref' did not match",
    ]
    assert lines[1].split("\t")[1:] == ["github", "repo:a", "ref"]
    as_json = ok(cli(config, "robot", "federation", "failures", "p+ci", "--json"))
    assert [f["subject"] for f in as_json] == ["repo:\\x1b[2J\\ttab", "repo:a"]
    assert ok(cli(config, "robot", "federation", "failures", "p+other", "--json")) == []


def test_live_temporary_secrets_are_listed_with_the_rules_never_the_secret(
    config: Path,
) -> None:
    ok(cli(config, *ADD_GITHUB))
    rule = ok(cli(config, "robot", "federation", "add", "p+ci", "--issuer", "github", *OWNER))
    settings = load_settings(config, environ={})

    async def hand_out() -> None:
        async with open_runtime(settings, sign=False, create_database=False) as rt:
            robot = await rt.robots.resolve("p+ci")
            for n, expires_at in ((1, 2**40), (2, 2**40), (3, 100)):  # the third has expired
                who = Identity("github", GITHUB, f"repo:acme/app:{n}", "reg", rule["id"], 1,
                               repository="acme/app", run_id=str(n))  # fmt: skip
                await rt.store.add_temporary_secret(
                    f"hash-{n}", robot.id, who, 50, expires_at, keep=20
                )

    asyncio.run(hand_out())
    lines = cli(config, "robot", "federation", "list", "p+ci").stdout.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        [str(rule["id"]), "github", "repository_owner_id=1234567"],
        ["secret 2", "github", "sub=repo:acme/app:2"],
        ["secret 1", "github", "sub=repo:acme/app:1"],
    ]
    as_json = ok(cli(config, "robot", "federation", "list", "p+ci", "--json"))
    listed = as_json["temporary_secrets"]
    assert [(s["id"], s["subject"], s["run_id"]) for s in listed] == [
        (2, "repo:acme/app:2", "2"),
        (1, "repo:acme/app:1", "1"),
    ]
    assert "hash-" not in json.dumps(as_json)
    # A robot without any has none listed.
    assert "temporary_secrets" not in ok(cli(config, "robot", "federation", "list", "p+other",
                                             "--json"))  # fmt: skip


# ---- the secret login ------------------------------------------------------------------------


def test_secret_login_is_turned_off_only_for_a_robot_with_rules(config: Path) -> None:
    refused(
        cli(config, "robot", "update", "p+ci", "--secret-login", "off"),
        1,
        "robot$p+ci has no federation rules",
        "add a rule first",
    )
    assert ok(cli(config, "robot", "show", "p+ci"))["secret_login"] is True
    ok(cli(config, *ADD_GITHUB))
    rule = ok(cli(config, "robot", "federation", "add", "p+ci", "--issuer", "github", *OWNER))
    off = cli(config, "robot", "update", "p+ci", "--secret-login", "off")
    assert off.returncode == 0 and "no longer logs it in" in off.stderr
    assert ok(cli(config, "robot", "show", "p+ci"))["secret_login"] is False
    refused(
        cli(config, "robot", "federation", "remove", "p+ci", str(rule["id"])),
        1,
        "its secret login is off",
        "turn its secret login on first",
    )
    on = cli(config, "robot", "update", "p+ci", "--secret-login", "on")
    assert on.returncode == 0 and "logs it in again" in on.stderr
    assert ok(cli(config, "robot", "show", "p+ci"))["secret_login"] is True
    refused(cli(config, "robot", "update", "p+ci", "--secret-login", "maybe"), 2, "on", "off")
    assert [e for e in audit(config) if e[0].endswith("secret-login")] == [
        ("enable-secret-login", "robot", "robot$p+ci", "success"),
        ("disable-secret-login", "robot", "robot$p+ci", "success"),
        ("disable-secret-login", "robot", "robot$p+ci", "failure: CONFLICT"),
    ]


def test_a_jwt_shaped_secret_is_refused_for_a_robot_with_rules(config: Path) -> None:
    shaped = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.Sig1"
    ok(cli(config, "robot", "refresh-secret", "p+other", "--secret", shaped))  # no rules
    ok(cli(config, *ADD_GITHUB))
    ok(cli(config, "robot", "federation", "add", "p+ci", "--issuer", "github", *OWNER))
    refused(
        cli(config, "robot", "refresh-secret", "p+ci", "--secret", shaped),
        1,
        "shaped like a JWT",
    )
    ok(cli(config, "robot", "refresh-secret", "p+ci", "--secret", "NotAJwt2Secret"))


@pytest.mark.parametrize(
    "argv",
    [
        ("robot", "federation", "remove", "p+ci", "99999999999999999999"),
        ("robot", "revoke-refresh-tokens", "p+ci", "--id", "99999999999999999999"),
        ("keys", "retire", "9223372036854775808"),
    ],
)
def test_an_id_past_64_bits_is_a_usage_error(config: Path, argv: tuple[str, ...]) -> None:
    # SQLite raised OverflowError on it: a traceback.
    refused(cli(config, *argv), 2, "larger than any id")


def test_logins_are_listed_newest_first_with_the_workload(config: Path) -> None:
    settings = load_settings(config, environ={})
    who = Identity(
        issuer="github", iss=GITHUB, sub="repo:acme/app:ref:refs/heads/main", aud="reg",
        rule_id=7, expires_at=2_000_000_000, jti="jti-1", repository="acme/app",
        ref="refs/heads/main", sha="c" * 40, run_id="99",
    )  # fmt: skip

    async def record() -> None:
        async with open_runtime(settings, sign=False, create_database=False) as rt:
            robot = await rt.robots.resolve("p+ci")
            await rt.store.add_federation_login(robot.id, 100, who)
            await rt.store.add_federation_login(robot.id, 200, replace(who, run_id="100"))

    asyncio.run(record())
    result = cli(config, "robot", "federation", "logins", "p+ci")
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[1:] == [
        "github", who.sub, "rule 7", "acme/app", "refs/heads/main", "c" * 40, "100", "jti-1",
    ]  # fmt: skip
    as_json = ok(cli(config, "robot", "federation", "logins", "p+ci", "--json"))
    assert [entry["run_id"] for entry in as_json] == ["100", "99"]
    assert as_json[0]["token_expires"].startswith("2033-")
    assert ok(cli(config, "robot", "federation", "logins", "p+other", "--json")) == []
