from __future__ import annotations

import sqlite3
from base64 import b64encode
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import with_migrated_database
from tests.helpers import make_robot
from tests.http.harbor_models import check_harbor_models
from tests.http.openapi_check import check_served
from tokenserver.config import Settings
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME
from tokenserver.runtime import Runtime


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class RobotCredentials:
    id: int
    name: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return basic(self.name, self.secret)


@dataclass
class Server:
    client: TestClient[web.Request, web.Application]
    runtime: Runtime
    settings: Settings
    # What the checks of `serving` refused so far.
    refused: Callable[[], list[str]] = field(default=list)

    async def robot(
        self, project: str, name: str, *permissions: str, duration: int = -1
    ) -> RobotCredentials:
        if await self.runtime.store.find_project(project) is None:
            await self.runtime.projects.create(LOCAL, project)
        robot, secret = await make_robot(
            self.runtime, project, name, *permissions, duration=duration
        )
        return RobotCredentials(robot.id, robot.full_name("robot$"), secret.reveal())

    def expire(self, robot_id: int) -> None:
        """Move a robot's expiry into the past, as another process (the CLI) would see it."""
        with sqlite3.connect(self.settings.database.path) as db:
            db.execute("UPDATE robot SET expires_at = 1 WHERE id = ?", (robot_id,))


AiohttpClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@asynccontextmanager
async def serving(
    settings: Settings, aiohttp_client: AiohttpClient | None = None
) -> AsyncIterator[Server]:
    """A server on `settings` (on a database at the current schema: see
    `with_migrated_database`) whose every answer on the management API, and every request
    body it accepts there, must match the OpenAPI document, and whose every answer Harbor's
    own models must read (checked when it ends). Its client comes from `aiohttp_client`
    (pytest-aiohttp's fixture, for a test's own server), else it is started and closed here,
    for a server a module's tests share (see `refusing_nothing`)."""
    app = create_app(with_migrated_database(settings))
    failures = check_served(app)
    # NOTE: harbor_client's own deserializer runs in tests/http/test_harbor_models.py; here
    # its types and harborapi's models check every answer, at a fraction of the cost.
    harbor = check_harbor_models(app, deserialize=False)
    if aiohttp_client is None:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
    else:
        client = await aiohttp_client(app)
    try:
        yield Server(client, app[RUNTIME], settings, lambda: failures + harbor.failures)
    finally:
        if aiohttp_client is None:
            await client.close()
    assert not failures, "the OpenAPI document refuses what was served:\n" + "\n".join(failures)
    assert not harbor.failures, "Harbor's models refuse what was served:\n" + "\n".join(
        harbor.failures
    )


@contextmanager
def refusing_nothing(server: Server) -> Iterator[None]:
    """Fail the block if the checks of `serving` refuse what `server` serves in it: on a server
    that a module's tests share, the test that made it serve that fails, not the last one."""
    before = len(server.refused())
    yield
    refused = server.refused()[before:]
    assert not refused, "the checks of `serving` refused what was served:\n" + "\n".join(refused)


@pytest.fixture
async def server(settings: Settings, aiohttp_client: AiohttpClient) -> AsyncIterator[Server]:
    async with serving(settings, aiohttp_client) as server:
        yield server
