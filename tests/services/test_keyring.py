"""The keyring's one publication rule: a retired key stays in the bundle and in the JWKS for one
token lifetime plus the registry's leeway after its retirement, then leaves both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography import x509

from tests.conftest import MakeSettings
from tests.helpers import FakeClock
from tokenserver.domain.models import LOCAL, KeyState
from tokenserver.keys import libtrust_kid
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.keyring import RETIRED_KEY_LEEWAY, KeyringService

LIFETIME = 300


@pytest.fixture
async def rt(make_settings: MakeSettings) -> AsyncIterator[Runtime]:
    async with open_runtime(make_settings(token__lifetime=LIFETIME), sign=False) as runtime:
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
    await service.retire(LOCAL, old.id)
    assert service.retention == LIFETIME + RETIRED_KEY_LEEWAY == LIFETIME + 60

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
