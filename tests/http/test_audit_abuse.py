"""The audit log cannot be filled or forged by callers: anonymous attempts are not recorded,
and what a caller names is stored escaped and bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Server, basic
from tokenserver.domain.models import LOCAL, MAX_AUDIT_FIELD
from tokenserver.domain.text import TRUNCATED
from tokenserver.errors import ProjectNotFound

API = "/api/v2.0"
ADMIN_PASSWORD = "Adm1nPassword"
ADMIN = basic("admin", ADMIN_PASSWORD)
BIG = "x" * 60000

# What the review sent: each anonymous request wrote a row holding up to 64 KiB.
ANONYMOUS_ATTEMPTS: list[tuple[str, str, Any]] = [
    ("POST", "/projects", {"project_name": BIG}),
    ("PUT", "/projects/" + "y" * 4000, {"public": True}),
    ("DELETE", "/projects/" + "y" * 4000, None),
    ("POST", "/projects/p/members", {"role_id": 1, "member_user": {"username": BIG}}),
    ("POST", "/robots", {"name": BIG, "level": "project", "duration": -1, "permissions": []}),
    ("POST", "/users", {"username": BIG, "password": "Passw0rdPassw0rd"}),
    ("DELETE", "/robots/1", None),
]


@pytest.fixture
async def api(server: Server) -> Server:
    await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
    await server.runtime.projects.create(LOCAL, "p")
    return server


async def audit_entries(server: Server) -> list[dict[str, Any]]:
    r = await server.client.get(f"{API}/audit-logs?page_size=100", headers=ADMIN)
    assert r.status == 200, await r.text()
    entries: list[dict[str, Any]] = await r.json()
    return entries


async def test_attack_anonymous_requests_write_no_audit_rows(api: Server) -> None:
    before = await audit_entries(api)
    for method, path, body in ANONYMOUS_ATTEMPTS:
        r = await api.client.request(method, API + path, json=body)
        assert 400 <= r.status < 500, (method, path, await r.text())
        assert "errors" in await r.json()
    assert await audit_entries(api) == before
    _, total = await api.runtime.store.list_audit(0, 1)
    assert total == len(before)


async def test_attack_audit_rows_filled_with_huge_names_are_bounded(api: Server) -> None:
    """An authenticated caller's failures are still audited (they are attributable), but a
    row holds at most MAX_AUDIT_FIELD characters of what the caller named."""
    r = await api.client.post(
        f"{API}/users", json={"username": "mallory", "password": "Us3rPassword"}, headers=ADMIN
    )
    assert r.status == 201, await r.text()
    mallory = basic("mallory", "Us3rPassword")
    r = await api.client.delete(f"{API}/projects/{'z' * 4000}", headers=mallory)
    assert r.status in (403, 404), await r.text()
    r = await api.client.post(f"{API}/projects", json={"project_name": BIG}, headers=mallory)
    assert r.status == 400, await r.text()
    latest, previous = (await audit_entries(api))[:2]
    assert (latest["username"], latest["operation"], latest["outcome"]) == (
        "mallory",
        "create",
        "failure: BAD_REQUEST",
    )
    assert latest["resource"] == "x" * (MAX_AUDIT_FIELD - len(TRUNCATED)) + TRUNCATED
    assert previous["username"] == "mallory"
    assert len(previous["resource"]) == MAX_AUDIT_FIELD
    assert previous["resource"].endswith(TRUNCATED)
    stored, _ = await api.runtime.store.list_audit(0, 2)
    assert [len(e.resource) for e in stored] == [MAX_AUDIT_FIELD, MAX_AUDIT_FIELD]


async def test_attack_audit_line_forged_by_a_newline_in_a_resource(api: Server) -> None:
    """A resource name that would print as a second, forged line in `tokenserver audit`
    (and a terminal escape that would recolour it) is stored escaped."""
    forged = "ghost\n2026-11-29T10:00:00.000Z\tadmin\tdelete\trobot\t5\tsuccess\x1b[2K"
    r = await api.client.delete(
        f"{API}/projects/{forged.replace(chr(10), '%0A').replace(chr(9), '%09')}",
        headers=ADMIN,
    )
    assert r.status == 404, await r.text()
    (entry,) = (await audit_entries(api))[:1]
    assert entry["resource"] == (
        "ghost\\n2026-11-29T10:00:00.000Z\\tadmin\\tdelete\\trobot\\t5\\tsuccess\\x1b[2K"
    )
    assert entry["resource"].isprintable()


@pytest.mark.parametrize(
    ("text", "stored"),
    [("nul\x00byte", "nul\\x00byte"), ("lone\udc80surrogate", "lone\\udc80surrogate")],
)
async def test_an_unstorable_resource_is_stored_escaped(
    api: Server, text: str, stored: str
) -> None:
    """NUL (PostgreSQL refuses it) and a lone surrogate (no database can encode it) in a
    resource name must not make the audit write, and with it the answer, fail."""
    with pytest.raises(ProjectNotFound):
        async with api.runtime.audit.operation(LOCAL, "delete", "project", text):
            raise ProjectNotFound(f"project {text!r} not found")
    (entry,) = (await audit_entries(api))[:1]
    assert (entry["resource"], entry["outcome"]) == (stored, "failure: NOT_FOUND")
