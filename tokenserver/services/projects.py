"""Project use cases."""

from __future__ import annotations

import time
from collections.abc import Callable

from tokenserver.domain.models import Project
from tokenserver.domain.names import check_name
from tokenserver.errors import ProjectNotFound
from tokenserver.services.ports import Store


class ProjectService:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def create(self, name: str, public: bool = False) -> Project:
        """Raises BadRequest for an invalid name, Conflict if it exists."""
        return await self._store.create_project(check_name("project", name), public, self.now())

    async def get(self, name: str) -> Project:
        """Raises ProjectNotFound."""
        project = await self._store.find_project(name)
        if project is None:
            raise ProjectNotFound(f"project {name!r} not found")
        return project

    async def list(self) -> list[Project]:
        return await self._store.list_projects()

    async def delete(self, name: str) -> None:
        """Delete the project and every robot of it. Raises ProjectNotFound."""
        project = await self.get(name)
        if not await self._store.delete_project(project.id):
            raise ProjectNotFound(f"project {name!r} not found")

    def now(self) -> int:
        return int(self._clock())
