"""The keyring's one publication rule: a retired key stays in the bundle and in the JWKS for one
token lifetime plus the registry's leeway after its retirement, then leaves both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import MakeSettings, with_migrated_database
from tests.helpers import FakeClock, make_robot
from tokenserver.domain.models import LOCAL, KeyState
from tokenserver.errors import ConfigError
from tokenserver.keys import generate_private_key, libtrust_kid, make_certificate, write_certificate
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.keyring import RETIRED_KEY_LEEWAY, KeyringService, Retention
from tokenserver.services.ports import RobotChanges

LIFETIME = 300


@pytest.fixture
async def rt(make_settings: MakeSettings) -> AsyncIterator[Runtime]:
    settings = with_migrated_database(make_settings(token__lifetime=LIFETIME))
    async with open_runtime(settings, sign=False) as runtime:
        yield runtime


def keyring(rt: Runtime, clock: FakeClock) -> KeyringService:
    return KeyringService(rt.store, rt.settings, rt.access, rt.audit, clock=clock)


async def published_kids(service: KeyringService) -> tuple[list[str], list[str]]:
    """The kids the bundle and the JWKS publish, in order."""
    bundle = x509.load_pem_x509_certificates(await service.bundle())
    jwks = await service.jwks()
    return [libtrust_kid(c.public_key()) for c in bundle], [k["kid"] for k in jwks["keys"]]  # type: ignore[arg-type]


async def test_a_retired_key_is_published_for_one_lifetime_plus_the_leeway(rt: Runtime) -> None:
    clock = FakeClock(1_000_000)
    service = keyring(rt, clock)
    configured = service.load(None).kid
    added = await service.add(LOCAL)
    await service.activate(LOCAL, added.id)
    old = next(r for r in await service.keys() if r.state is KeyState.PUBLISHED)
    new_kid = service.load(added).kid
    until = await service.retire(LOCAL, old.id)
    assert (await service.retention()).seconds == LIFETIME + RETIRED_KEY_LEEWAY == LIFETIME + 60
    assert until == 1_000_000 + LIFETIME + 60

    for elapsed in (0, 1, LIFETIME, LIFETIME + RETIRED_KEY_LEEWAY - 1):
        clock.now = 1_000_000 + elapsed
        assert await published_kids(service) == ([configured, new_kid], [configured, new_kid])
    for elapsed in (LIFETIME + RETIRED_KEY_LEEWAY, 10 * LIFETIME):
        clock.now = 1_000_000 + elapsed
        assert await published_kids(service) == ([new_kid], [new_kid])


async def test_attack_jwks_drops_a_retired_key_while_its_tokens_are_valid(rt: Runtime) -> None:
    """A token signed by the previous key just before the switch is valid for a lifetime; a
    distribution 3.x reading a JWKS without that key refuses it at once."""
    clock = FakeClock(2_000_000)
    service = keyring(rt, clock)
    previous = service.load(None)
    added = await service.add(LOCAL)
    await service.activate(LOCAL, added.id)
    await service.retire(LOCAL, 1)
    clock.now += LIFETIME
    kids = [k["kid"] for k in (await service.jwks())["keys"]]
    assert previous.kid in kids


async def test_attack_a_robots_longer_tokens_keep_the_retired_key_published(
    make_settings: MakeSettings,
) -> None:
    """A robot whose tokens last two hours (a slow multi-gigabyte push) may present a token the
    old key signed just before the switch for two hours: the key stays published that long,
    not token.lifetime. A lifetime past token.max_lifetime counts only as far as the cap."""
    settings = make_settings(token__lifetime=LIFETIME, token__max_lifetime=10800)
    async with open_runtime(settings, sign=False) as rt:
        await rt.projects.create(LOCAL, "p")
        short, _ = await make_robot(rt, "p", "short", "repository:pull")
        await rt.robots.set_token_lifetime(LOCAL, str(short.id), 60)  # shorter: no effect
        assert await keyring(rt, FakeClock()).retention() == Retention(LIFETIME)
        slow, _ = await make_robot(rt, "p", "slow", "repository:push")
        await rt.robots.set_token_lifetime(LOCAL, str(slow.id), 7200)

        clock = FakeClock(5_000_000)
        service = keyring(rt, clock)
        previous = service.load(None).kid
        added = await service.add(LOCAL)
        await service.activate(LOCAL, added.id)
        until = await service.retire(LOCAL, 1)
        assert until == 5_000_000 + 7200 + RETIRED_KEY_LEEWAY
        clock.now += 7200 + RETIRED_KEY_LEEWAY - 1
        assert previous in (await published_kids(service))[0]
        clock.now += 1
        assert previous not in (await published_kids(service))[0]

        # Stored past the maximum (set before it was lowered): the cap is what tokens last.
        await rt.store.update_robot(slow.id, 1, RobotChanges(token_lifetime=86400))
        assert await service.retention() == Retention(10800, source="a robot's token_lifetime")


async def test_an_empty_keyring_publishes_the_configured_key(rt: Runtime) -> None:
    service = keyring(rt, FakeClock())
    key = service.load(None)
    assert await published_kids(service) == ([key.kid], [key.kid])


async def test_jwks_kids_follow_the_kid_format(make_settings: MakeSettings) -> None:
    settings = make_settings(token__kid_format="thumbprint")
    async with open_runtime(settings, sign=False) as rt:
        service = keyring(rt, FakeClock())
        (jwk,) = (await service.jwks())["keys"]
        assert jwk["kid"] == service.load(None).thumbprint


async def test_the_configured_key_enters_the_keyring_with_a_certificate_of_its_own(
    rt: Runtime,
) -> None:
    """`token.certificate` is where `keys bundle` writes: an entry pointing at it would lose
    its certificate once the bundle leaves the key out."""
    service = keyring(rt, FakeClock(3_000_000))
    configured = service.load(None)
    await service.add(LOCAL)
    first = (await service.keys())[0]
    assert first.key_path == "keys/token.key"  # relative to the config file
    assert service.path(first.key_path) == rt.settings.token.signing_key
    assert service.path(first.cert_path) != rt.settings.token.certificate
    assert service.path(first.cert_path).parent == rt.settings.token.signing_key.parent
    assert service.load(first).certificate_der == configured.certificate_der


async def test_the_keyring_decides_which_key_signs_once_it_has_entries(rt: Runtime) -> None:
    clock = FakeClock(4_000_000)
    service = keyring(rt, clock)
    added = await service.add(LOCAL)
    await service.activate(LOCAL, added.id)
    await service.retire(LOCAL, 1)
    clock.now += (await service.retention()).seconds
    rt.settings.token.certificate.write_bytes(await service.bundle())  # `keys bundle`
    assert (await service.signing_key()).kid == service.load(added).kid
    with pytest.raises(ConfigError, match="does not match the signing key"):
        service.load(None)  # what start-up used to insist on


async def test_an_unusable_configured_key_is_refused_while_the_keyring_is_empty(
    rt: Runtime, tmp_path: Path
) -> None:
    service = keyring(rt, FakeClock())
    other = generate_private_key("ES256")
    write_certificate(tmp_path / "other.crt", make_certificate(other, "x"))
    rt.settings.token.certificate.write_bytes((tmp_path / "other.crt").read_bytes())
    with pytest.raises(ConfigError, match="does not match the signing key"):
        await service.signing_key()
    with pytest.raises(ConfigError, match="does not match the signing key"):
        await service.add(LOCAL)
    assert await service.keys() == []
