"""Key rotation from the command line, as the README tells it: `keys add`, `keys bundle`,
`keys activate`, `keys retire`, and one token lifetime later `keys bundle` again; then the
server restarts (`init`, `serve`, `keys list`) and its tokens verify against the bundle.

`keys bundle` and `keys jwks` publish a retired key for the same window, the one `keys retire`
announces. Commands run in this process (`call_cli`); "one token lifetime later" is the
retirement moved into the past in the database, not waited for.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.helpers import FAST_KDF_COST, call_cli, initialised
from tests.http.conftest import basic
from tokenserver.config import Settings, load_settings
from tokenserver.errors import ConfigError
from tokenserver.http.app import create_app
from tokenserver.keys import (
    PublicKey,
    generate_private_key,
    jwk_thumbprint,
    libtrust_kid,
    make_certificate,
    write_certificate,
)

LIFETIME = 60  # the shortest token lifetime the config accepts
WINDOW = LIFETIME + 60  # what `keys retire` must announce: the lifetime and the leeway


def run(config: Path, *args: str) -> tuple[str, str]:
    """A command that must succeed: its stdout and stderr."""
    result = call_cli(config, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def keys(config: Path, *args: str) -> str:
    return "".join(run(config, "keys", *args))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = initialised(tmp_path / "tokenserver.toml")
    text = path.read_text()
    path.write_text(re.sub(r"(?m)^lifetime = \d+$", f"lifetime = {LIFETIME}", text, count=1))
    assert load_settings(path, environ={}).token.lifetime == LIFETIME
    return path


def settings_of(config: Path) -> Settings:
    return load_settings(config, environ={}).replace(kdf_cost=FAST_KDF_COST)


def bundle_keys(path: Path) -> list[PublicKey]:
    """The public keys of the certificates in a bundle, in order."""
    keys = [c.public_key() for c in x509.load_pem_x509_certificates(path.read_bytes())]
    assert all(isinstance(k, ec.EllipticCurvePublicKey | rsa.RSAPublicKey) for k in keys)
    return keys  # type: ignore[return-value]


def bundle_kids(path: Path) -> list[str]:
    return [libtrust_kid(k) for k in bundle_keys(path)]


def jwks_kids(config: Path) -> list[str]:
    return [k["kid"] for k in json.loads(run(config, "keys", "jwks")[0])["keys"]]


def published(config: Path) -> tuple[list[str], list[str]]:
    """The kids the bundle and the JWKS hold now."""
    bundle = config.parent / "bundle.crt"
    keys(config, "bundle", "--output", str(bundle))
    return bundle_kids(bundle), jwks_kids(config)


def retired_ago(config: Path, seconds: int) -> None:
    """Move the retirement into the past, as if `seconds` had passed since."""
    with sqlite3.connect(config.parent / "tokenserver.db") as db:
        db.execute(
            "UPDATE signing_key SET retired_at = ? WHERE state = 'retired'",
            (int(time.time()) - seconds,),
        )


def rotate(config: Path) -> tuple[str, str]:
    """The README's rotation, up to `keys retire 1`: the old and the new key's kids."""
    (old,) = json.loads(run(config, "keys", "list")[0])
    added = json.loads(run(config, "keys", "add")[0])
    assert added["id"] == 2
    keys(config, "bundle")
    keys(config, "activate", "2")
    keys(config, "retire", "1")
    return old["kid"], added["kid"]


def verify_with_bundle(token: str, bundle: Path, settings: Settings) -> dict[str, Any]:
    """As distribution 2.x does: the JWT's kid names a certificate of the rootcertbundle."""
    header = jwt.get_unverified_header(token)
    key = next(k for k in bundle_keys(bundle) if libtrust_kid(k) == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=settings.token.service,
        issuer=settings.token.issuer,
    )
    return claims


def serve_and_verify(config: Path) -> str:
    """What `serve` runs (`create_app`), on this config: a token for a robot, verified
    against the bundle the registry reads (`token.certificate`). Returns the token's kid."""
    run(config, "project", "create", "rot")
    export = json.loads(
        run(config, "robot", "create", "--project", "rot", "--name", "ci",
            "--permission", "repository:push")[0]
    )  # fmt: skip
    settings = settings_of(config)

    async def request() -> str:
        async with TestClient(TestServer(create_app(settings))) as client:
            response = await client.get(
                "/service/token",
                params={"service": settings.token.service, "scope": "repository:rot/app:pull,push"},
                headers=basic(export["name"], export["secret"]),
            )
            assert response.status == 200, await response.text()
            token: str = (await response.json())["token"]
            return token

    token = asyncio.run(request())
    claims = verify_with_bundle(token, settings.token.certificate, settings)
    assert claims["access"] == [
        {"type": "repository", "name": "rot/app", "actions": ["pull", "push"]}
    ]
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def test_a_finished_rotation_leaves_a_server_that_restarts(config: Path) -> None:
    """The bundle written one lifetime after `keys retire 1` no longer holds the first key's
    certificate; it used to be `token.certificate`, which `serve`, `init` and `keys list`
    checked against `token.signing_key`: all three exited 2."""
    old, new = rotate(config)
    certificate = settings_of(config).token.certificate
    assert bundle_kids(certificate) == [old, new]
    retired_ago(config, WINDOW + 1)
    keys(config, "bundle")
    assert bundle_kids(certificate) == [new]

    listed = json.loads(run(config, "keys", "list")[0])
    assert [(k["id"], k["state"], k["kid"]) for k in listed] == [
        (1, "retired", old),
        (2, "active", new),
    ]
    assert [k["published"] for k in listed] == [False, True]
    run(config, "init")  # what scripts/run does before serving
    assert serve_and_verify(config) == new


def test_rotation_on_a_keyring_started_by_an_older_version(config: Path) -> None:
    """Older versions recorded the configured key with `token.certificate` as its
    certificate: the file `keys bundle` overwrites. Once that key is retired and out of the
    bundle, nothing needs its certificate any more."""
    old, new = rotate(config)
    certificate = settings_of(config).token.certificate
    with sqlite3.connect(config.parent / "tokenserver.db") as db:
        db.execute("UPDATE signing_key SET cert_path = ? WHERE id = 1", (str(certificate),))
    assert published(config) == ([old, new], [old, new])  # still in the old bundle
    retired_ago(config, WINDOW + 1)
    keys(config, "bundle")
    assert bundle_kids(certificate) == [new]
    assert [k["kid"] for k in json.loads(run(config, "keys", "list")[0])] == [old, new]
    run(config, "init")
    assert serve_and_verify(config) == new


def test_the_keyring_rebuilds_the_bundle_without_the_file_it_overwrites(config: Path) -> None:
    """The configured key keeps a certificate of its own once it is in the keyring: the
    bundle at `token.certificate` is an output, and a lost one is written again whole."""
    old, new = rotate(config)
    certificate = settings_of(config).token.certificate
    certificate.unlink()
    keys(config, "bundle")
    assert bundle_kids(certificate) == [old, new]


def test_a_retired_key_whose_file_was_destroyed_is_still_listed(config: Path) -> None:
    """Destroying a retired private key is good practice; `keys list` shows the key without
    a kid instead of failing, and the server still starts."""
    _, new = rotate(config)
    retired_ago(config, WINDOW + 1)
    settings_of(config).token.signing_key.unlink()
    listed = json.loads(run(config, "keys", "list")[0])
    assert [(k["id"], k["kid"]) for k in listed] == [(1, None), (2, new)]
    keys(config, "bundle")
    run(config, "init")  # does not generate a new configured key in its place
    assert not settings_of(config).token.signing_key.exists()
    assert serve_and_verify(config) == new


def test_a_key_in_use_whose_file_is_missing_fails_keys_list(config: Path) -> None:
    rotate(config)
    Path(json.loads(run(config, "keys", "list")[0])[1]["key"]).unlink()
    result = call_cli(config, "keys", "list")
    assert result.returncode == 2
    assert "token-" in result.stderr and "not found" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_retire_announces_the_window_bundle_and_jwks_follow(config: Path) -> None:
    """`keys retire` states the one rule (the token lifetime plus distribution's 60 s
    leeway) with the numbers the keyring uses: the bundle and the JWKS keep the key exactly
    that long, then both leave it out."""
    (old,) = json.loads(run(config, "keys", "list")[0])
    added = json.loads(run(config, "keys", "add")[0])
    keys(config, "bundle")
    keys(config, "activate", str(added["id"]))
    before = int(time.time())
    message = keys(config, "retire", "1")
    after = int(time.time())
    match = re.search(
        r"key 1 retired; 'keys bundle' and 'keys jwks' leave it out once (\d+) s have passed "
        r"\(token\.lifetime (\d+) s \+ (\d+) s leeway\), at (\S+)Z; ",
        message,
    )
    assert match, message
    assert (int(match[1]), int(match[2]), int(match[3])) == (WINDOW, LIFETIME, 60)
    at = datetime.datetime.fromisoformat(match[4]).replace(tzinfo=datetime.UTC).timestamp()
    assert before + WINDOW <= at <= after + WINDOW
    both = [old["kid"], added["kid"]]
    assert published(config) == (both, both)
    retired_ago(config, WINDOW - 30)  # retired less than a lifetime plus the leeway ago
    assert published(config) == (both, both)
    retired_ago(config, WINDOW + 1)
    assert published(config) == ([added["kid"]], [added["kid"]])


def test_jwks_kids_follow_the_kid_format_for_the_same_keys(config: Path) -> None:
    """With thumbprint kids the JWKS names the keys differently, never holds other ones."""
    config.write_text(
        config.read_text().replace('kid_format = "libtrust"', 'kid_format = "thumbprint"')
    )
    rotate(config)
    retired_ago(config, WINDOW - 30)
    bundle = config.parent / "bundle.crt"
    keys(config, "bundle", "--output", str(bundle))
    public_keys = bundle_keys(bundle)
    assert len(public_keys) == 2
    assert jwks_kids(config) == [jwk_thumbprint(k) for k in public_keys]


@pytest.mark.parametrize("command", [("init",), ("keys", "list"), ("keys", "add")])
def test_an_empty_keyring_still_checks_the_configured_pair(config: Path, command: str) -> None:
    """Before the first `keys add` the configured key signs: a certificate of another key
    is refused at once, naming the file, and nothing is added to the keyring."""
    other = generate_private_key("ES256")
    certificate = settings_of(config).token.certificate
    certificate.unlink()
    write_certificate(certificate, make_certificate(other, "other"))
    result = call_cli(config, *command)
    assert result.returncode == 2
    assert result.stderr == (
        f"tokenserver: token.certificate: {certificate} does not match the signing key\n"
    )

    async def serve() -> None:
        async with TestServer(create_app(settings_of(config))):
            pass

    with pytest.raises(ConfigError, match="does not match the signing key"):
        asyncio.run(serve())


def test_an_empty_keyring_checks_the_configured_algorithm(config: Path) -> None:
    config.write_text(config.read_text().replace('algorithm = "ES256"', 'algorithm = "RS256"'))
    result = call_cli(config, "init")
    assert result.returncode == 2
    assert result.stderr == (
        "tokenserver: token.signing_key: RS256 needs an RSA key of at least 2048 bits\n"
    )


def test_attack_activating_a_key_the_registry_does_not_trust_yet(config: Path) -> None:
    """`keys add` then `keys activate` without `keys bundle` (and a registry restart) between
    them: every token the new key signed would be refused by the registry."""
    added = json.loads(run(config, "keys", "add")[0])
    result = call_cli(config, "keys", "activate", str(added["id"]))
    assert result.returncode == 2, result.stderr
    assert f"key {added['id']} is not in the bundle" in result.stderr
    assert "tokenserver keys bundle" in result.stderr and "--force" in result.stderr
    assert [k["state"] for k in json.loads(run(config, "keys", "list")[0])] == [
        "active",
        "published",
    ]
    run(config, "keys", "activate", str(added["id"]), "--force")  # the operator knows better
    assert json.loads(run(config, "keys", "list")[0])[1]["state"] == "active"


def test_a_rotated_server_moved_elsewhere_finds_its_keys(
    config: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The keyring records its files relative to the config file: a server copied or restored
    elsewhere (config, keys/ and database together) signs with its own files."""
    rotate(config)
    moved = tmp_path_factory.mktemp("moved")
    shutil.copytree(config.parent, moved, dirs_exist_ok=True)
    shutil.rmtree(config.parent / "keys")  # the old place is gone
    listed = json.loads(run(moved / config.name, "keys", "list")[0])
    assert all(str(moved) in k["key"] for k in listed), listed
    run(moved / config.name, "keys", "bundle")
    run(moved / config.name, "init")  # what a restart does first: the active key loads


def test_a_missing_keyring_file_is_named_as_the_keyrings(config: Path) -> None:
    rotate(config)
    (active,) = [k for k in json.loads(run(config, "keys", "list")[0]) if k["state"] == "active"]
    Path(active["key"]).unlink()
    result = call_cli(config, "init")
    assert result.returncode == 2
    assert f"keyring key {active['id']}: {active['key']} not found" in result.stderr
