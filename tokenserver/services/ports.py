"""Storage contracts the services depend on. Adapters live in `tokenserver.storage`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tokenserver.domain.models import Project, Robot
from tokenserver.domain.permissions import Permission


@dataclass(frozen=True, slots=True)
class NewRobot:
    name: str
    project_id: int
    description: str
    secret_hash: str
    duration: int
    expires_at: int
    creation_time: int
    permissions: tuple[Permission, ...]


class Store(Protocol):
    async def create_project(self, name: str, public: bool, now: int) -> Project:
        """Insert a project. Raises Conflict if the name is taken."""
        ...

    async def find_project(self, name: str) -> Project | None: ...

    async def find_project_by_id(self, project_id: int) -> Project | None: ...

    async def list_projects(self) -> list[Project]:
        """Every project, by name."""
        ...

    async def delete_project(self, project_id: int) -> bool:
        """Delete a project and its robots in one transaction. False if it did not exist."""
        ...

    async def create_robot(self, robot: NewRobot) -> Robot:
        """Insert a robot. Raises Conflict if its project already has a robot of that name."""
        ...

    async def find_robot(self, project_name: str, name: str) -> Robot | None:
        """The robot `name` of project `project_name` (the token path: one query)."""
        ...

    async def find_robot_by_id(self, robot_id: int) -> Robot | None: ...

    async def list_robots(self, project_id: int, name_contains: str = "") -> list[Robot]:
        """The project's robots whose short name contains `name_contains`, by id."""
        ...

    async def update_robot(
        self,
        robot_id: int,
        now: int,
        *,
        disabled: bool | None = None,
        secret_hash: str | None = None,
    ) -> bool:
        """Change the given fields. False if the robot does not exist."""
        ...

    async def delete_robot(self, robot_id: int) -> bool:
        """False if the robot did not exist."""
        ...

    async def close(self) -> None: ...
