"""Attacks on the webhook policy API and on request bodies (an outside review): who may see
and change a project's policies (Harbor's roles), and a body whose Content-Encoding lies."""

from __future__ import annotations

import gzip

import pytest

from tests.http.test_api import TOKEN, Api, api, error
from tests.http.test_webhooks_api import HOOK, body, created

__all__ = ["api"]


async def test_attack_a_maintainer_reads_policies_and_changes_none(api: Api) -> None:
    """Harbor's maintainer holds notification-policy read and list only (Harbor's
    src/common/rbac/project/rbac_role.go, fixed in #22135); only projectAdmin creates,
    updates and deletes. Here a maintainer may create a policy pointing anywhere (an
    internal address), re-point, disable or delete the project admin's."""
    await api.project("p")
    path = await created(api)
    maintainer = await api.user("maint")
    await api.member("p", "maint", 4)
    assert (await api.call("GET", path, maintainer)).status == 200
    assert (await api.call("GET", HOOK, maintainer)).status == 200
    r = await api.call("POST", HOOK, maintainer, body("http://10.0.0.1/", name="mine"))
    await error(r, 403, "FORBIDDEN")
    shown = await (await api.call("GET", path, api.admin)).json()
    await error(
        await api.call("PUT", path, maintainer, shown | {"enabled": False}), 403, "FORBIDDEN"
    )
    await error(await api.call("DELETE", path, maintainer), 403, "FORBIDDEN")
    assert (await api.call("GET", path, api.admin)).status == 200


@pytest.mark.parametrize(("role", "name"), [(2, "developer"), (3, "guest")])
async def test_attack_developers_and_guests_see_no_policies(api: Api, role: int, name: str) -> None:
    """Harbor gives developer and guest no notification-policy permission at all: the
    policies' addresses (internal receivers) and the delivery history are not theirs."""
    await api.project("p")
    path = await created(api)
    who = await api.user(name)
    await api.member("p", name, role)
    for target in (HOOK, path, f"{path}/executions"):
        await error(await api.call("GET", target, who), 403, "FORBIDDEN")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
@pytest.mark.parametrize(
    ("path", "content_type", "data"),
    [
        (TOKEN, "application/x-www-form-urlencoded", b"grant_type=password&username=a"),
        ("/c/login", "application/json", b'{"principal": "admin", "password": "x"}'),
        ("/api/v2.0/projects", "application/json", b'{"project_name": "x"}'),
    ],
)
async def test_attack_a_body_that_is_not_in_its_content_encoding_is_a_400(
    api: Api, encoding: str, path: str, content_type: str, data: bytes
) -> None:
    """Anyone (no credentials needed for the token endpoint and the login) may send a body
    that says `Content-Encoding: gzip` and is not: aiohttp raises while the handler reads
    it, and the server answered 500 with a traceback in its log (deflate and br: a 400 in
    plain text, outside the JSON envelope)."""
    headers = {"Content-Type": content_type, "Content-Encoding": encoding}
    headers.update(api.admin if path.startswith("/api/") else {})
    r = await api.client.post(path, data=data, headers=headers)
    assert r.status in (400, 415), await r.text()
    assert r.headers["Content-Type"].startswith("application/json"), await r.text()
    (entry,) = (await r.json())["errors"]
    assert entry["code"] and entry["message"]


async def test_a_compressed_body_is_refused_whole(api: Api) -> None:
    """The other side of the test above: no registry or Harbor client compresses a request
    body, so the server reads bodies as sent and refuses a compressed one, even a good one,
    and a bodiless GET with the header is served as usual."""
    r = await api.client.post(
        "/api/v2.0/projects",
        data=gzip.compress(b'{"project_name": "zipped"}'),
        headers={**api.admin, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert "drop Content-Encoding" in await error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = await api.call("GET", "/projects/zipped", api.admin)
    assert r.status == 404
    r = await api.client.get(
        "/api/v2.0/projects", headers={**api.admin, "Content-Encoding": "gzip"}
    )
    assert r.status == 200, await r.text()
