"""Property test of the token endpoint: whatever the input, never a 5xx, errors are JSON."""

from __future__ import annotations

import asyncio
from base64 import b64encode
from urllib.parse import quote

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeSettings
from tokenserver.http.app import create_app

_scope_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="abp/:,.-_*()$%+", max_size=60),
    st.sampled_from(["repository:p/app:pull", "registry:catalog:*", "repository:p/app:*"]),
)
_printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
_header = st.one_of(
    st.none(),
    _printable,
    _printable.map(lambda t: "Basic " + t),
    st.binary(max_size=40).map(lambda b: "Basic " + b64encode(b).decode()),
)


def test_token_endpoint_never_fails_with_5xx(make_settings: MakeSettings) -> None:
    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(create_app(make_settings())), loop=loop)
    loop.run_until_complete(client.start_server())

    async def probe(scopes: list[str], service: str | None, header: str | None) -> None:
        query = "&".join(f"scope={quote(s, safe='')}" for s in scopes)
        if service is not None:
            query += f"&service={quote(service, safe='')}"
        headers = {"Authorization": header} if header is not None else {}
        response = await client.get("/service/token?" + query, headers=headers)
        assert response.status in (200, 400, 401, 429), response.status
        body = await response.json()
        if response.status == 200:
            assert body["token"] == body["access_token"]
        else:
            (entry,) = body["errors"]
            assert entry["code"] in ("BAD_REQUEST", "UNAUTHORIZED", "TOO_MANY_REQUESTS")
            assert isinstance(entry["message"], str)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(_scope_text, max_size=4),
        st.one_of(st.none(), st.sampled_from(["registry", "other", ""])),
        _header,
    )
    def check(scopes: list[str], service: str | None, header: str | None) -> None:
        loop.run_until_complete(probe(scopes, service, header))

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.close()
