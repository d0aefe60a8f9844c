"""The token path's memos stay bounded in bytes whatever callers send: unique requests with
many long scopes kept tens of kilobytes each (the memos were bounded in entries only)."""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import pytest

from tests.conftest import with_migrated_database
from tests.helpers import make_robot
from tokenserver.config import Settings
from tokenserver.domain import names, scopes
from tokenserver.domain.credentials import Credentials
from tokenserver.domain.models import LOCAL, AuditEntry, Robot
from tokenserver.domain.permissions import Access, Effect, Permission, PermissionKind
from tokenserver.domain.scopes import Scope
from tokenserver.domain.secrets import Secret
from tokenserver.errors import Unauthorized
from tokenserver.runtime import Runtime, open_runtime
from tokenserver.services.ports import RobotChanges
from tokenserver.services.tokens import Grant, TokenRequest, TokenService
from tokenserver.storage.sqlite import SqliteStore


@dataclass
class Setup:
    runtime: Runtime
    tokens: TokenService
    credentials: Credentials


@pytest.fixture
async def setup(settings: Settings) -> AsyncIterator[Setup]:
    scopes._PARSED.clear()
    async with open_runtime(with_migrated_database(settings), sign=True) as runtime:
        assert runtime.tokens is not None
        await runtime.projects.create(LOCAL, "pub", public=True)
        await runtime.projects.create(LOCAL, "p")
        robot, secret = await make_robot(runtime, "p", "ci", "repository:pull", "repository:push")
        yield Setup(runtime, runtime.tokens, Credentials(robot.full_name("robot$"), secret))


def large(i: int, project: str) -> list[str]:
    """About 8 kB of scopes, what fits in a request line: 100 scopes of 80 characters."""
    return [" ".join(f"repository:{project}/{'x' * 60}{i:06d}{j:03d}:pull" for j in range(100))]


def medium(i: int) -> list[str]:
    """16 scopes, under a kilobyte: short enough for every memo, each about 7 kB kept."""
    return [f"repository:p/a{i:05d}{j:02d}:pull,push" for j in range(16)]


async def ask(setup: Setup, values: list[str], *, robot: bool) -> None:
    await setup.tokens.request(
        TokenRequest(
            grant=Grant.BASIC if robot else Grant.ANONYMOUS,
            scopes=values,
            service="registry",
            address="127.0.0.1",
            credentials=setup.credentials if robot else None,
        )
    )


def _characters(scope_tuples: Iterable[tuple[Scope, ...]]) -> int:
    return sum(len(s.type) + len(s.name) for t in scope_tuples for s in t)


def held(setup: Setup) -> int:
    """Characters of scopes (and JSON) the token path's memos hold."""
    grants = setup.tokens._grant_memo
    access = setup.tokens._signer._access_json
    return (
        _characters(key[1] for key in grants)
        + _characters(grants.get(key)[1] for key in grants)  # type: ignore[index]
        + _characters(access)
        + sum(len(access.get(key) or "") for key in access)
        + sum(len(v) for key in scopes._PARSED for v in key)
    )


async def test_attack_unique_large_scopes_do_not_grow_memos(setup: Setup) -> None:
    await ask(setup, ["repository:p/app:pull"], robot=True)
    await ask(setup, ["repository:pub/app:pull"], robot=False)
    before = held(setup)
    for i in range(150):
        await ask(setup, large(i, "pub"), robot=False)  # anonymous pulls of a public project
        await ask(setup, large(i, "p"), robot=True)
    # Before, each request kept its 8 kB of scopes two or three times over (300 requests:
    # about 5 MB of characters); such requests are computed each time now.
    assert held(setup) == before
    assert setup.tokens._grant_memo.bytes <= setup.tokens._grant_memo.max_bytes


async def test_attack_unique_medium_requests_stay_within_the_byte_budget(setup: Setup) -> None:
    grants = setup.tokens._grant_memo
    access = setup.tokens._signer._access_json
    count = 1200  # each small enough to keep; together far over the budget
    for i in range(count):
        await ask(setup, medium(i), robot=True)
    for memo in (grants, access, scopes._PARSED):
        assert 0 < memo.bytes <= memo.max_bytes
        assert len(memo) < count
    assert held(setup) <= grants.max_bytes + access.max_bytes + scopes._PARSED.max_bytes
    # The newest are kept: the last request is answered from the memos.
    assert tuple(scopes.parse_scopes(medium(count - 1))) in access


async def test_the_usual_requests_are_still_remembered(setup: Setup) -> None:
    values = ["repository:p/app:pull,push"]
    await ask(setup, values, robot=True)
    assert tuple(values) in scopes._PARSED
    [(robot_id, requested)] = list(setup.tokens._grant_memo)
    assert requested == tuple(scopes.parse_scopes(values))
    grant = setup.tokens._grant_memo.get((robot_id, requested))
    assert grant is not None and grant[1] in setup.tokens._signer._access_json
    await ask(setup, values, robot=True)
    assert len(setup.tokens._grant_memo) == 1 and len(setup.tokens._signer._access_json) == 1


def test_attack_long_robot_names_are_not_kept_by_the_name_parser() -> None:
    cache = names._parse_robot_name_cached
    cache.cache_clear()
    for i in range(200):
        assert names.parse_robot_name("robot$", f"robot$p+{i:04d}" + "a" * 400) is not None
        assert names.parse_robot_name("robot$", f"robot$p+{i:04d}" + "!" * 3000) is None
    assert cache.cache_info().currsize == 0
    assert names.parse_robot_name("robot$", "robot$p+ci") is not None
    assert cache.cache_info().currsize == 1


async def test_attack_long_unknown_accounts_do_not_grow_any_structure(setup: Setup) -> None:
    """Failed logins with 3 kB user names: the throttle keeps digests, the read cache and
    the name parser keep nothing of them."""
    names._parse_robot_name_cached.cache_clear()
    for i in range(5):
        for username in (f"robot$p+{i}" + "a" * 3000, f"user{i}" + "u" * 3000):
            with pytest.raises(Unauthorized):
                await setup.runtime.authenticator.authenticate(
                    Credentials(username, Secret("Wrong1Secret")), "192.0.2.1"
                )
    assert max(len(key) for key in setup.runtime.throttle._scores) <= 32
    store = setup.runtime.store
    assert isinstance(store, SqliteStore) and store._cache is not None
    longest = max(
        (len(p) for key in store._cache._entries for p in key if isinstance(p, str)), default=0
    )
    assert longest <= 255
    assert names._parse_robot_name_cached.cache_info().currsize == 0


async def test_attack_writes_leave_copies_of_a_large_robot_in_the_grant_memo(
    setup: Setup,
) -> None:
    """Each database write makes the store hand out a fresh Robot object; a memo holding
    them strongly kept one more copy per write and token request (a robot of 600 entries is
    a quarter of a megabyte). Only the current copy may stay alive."""
    runtime = setup.runtime
    entries = tuple(
        Permission(f"z{i}", (Access("repository", "pull", Effect.DENY),), PermissionKind.PROJECT)
        for i in range(600)
    )
    robot = await runtime.store.find_robot("p", "ci")
    assert robot is not None
    robot_id = robot.id
    marker = secrets.token_hex(16)  # this test's copies, not another test's leftovers
    await runtime.store.update_robot(
        robot_id,
        1,
        RobotChanges(description=marker, permissions=(*robot.permissions, *entries)),
    )
    del robot
    for i in range(40):
        await runtime.store.add_audit(AuditEntry(i, "someone", "create", "project", "x", "fail"))
        await ask(setup, ["repository:p/app:pull"], robot=True)
    gc.collect()
    copies = [o for o in gc.get_objects() if isinstance(o, Robot) and o.description == marker]
    assert len(copies) <= 2  # the read cache's, and the one a request may still hold
