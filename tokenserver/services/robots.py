"""Project robot use cases: create, find, list, enable/disable, delete, refresh the secret."""

from __future__ import annotations

from collections.abc import Iterable

from tokenserver.domain.models import Robot, check_duration, expires_at
from tokenserver.domain.names import check_name
from tokenserver.domain.permissions import Access, Permission, check_project_access
from tokenserver.domain.secrets import Secret, check_manual_secret, generate_secret
from tokenserver.errors import BadRequest, RobotNotFound
from tokenserver.services.ports import NewRobot, Store
from tokenserver.services.projects import ProjectService
from tokenserver.services.verifier import SecretVerifier

MAX_DESCRIPTION_LENGTH = 1024


class RobotService:
    def __init__(
        self,
        store: Store,
        projects: ProjectService,
        verifier: SecretVerifier,
        name_prefix: str,
    ) -> None:
        self._store = store
        self._projects = projects
        self._verifier = verifier
        self.prefix = name_prefix

    async def create(
        self,
        project_name: str,
        name: str,
        access: Iterable[Access],
        *,
        duration: int,
        description: str = "",
    ) -> tuple[Robot, Secret]:
        """Create a project robot; return it with its secret, which is never shown again.

        Raises ProjectNotFound, BadRequest (name, permissions, duration, description) and
        Conflict (name taken in the project).
        """
        project = await self._projects.get(project_name)
        check_name("robot", name)
        checked = check_project_access(access)
        check_duration(duration)
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise BadRequest(f"description longer than {MAX_DESCRIPTION_LENGTH} characters")
        secret = generate_secret()
        secret_hash = await self._verifier.hash(secret)
        now = self._projects.now()
        robot = await self._store.create_robot(
            NewRobot(
                name=name,
                project_id=project.id,
                description=description,
                secret_hash=secret_hash,
                duration=duration,
                expires_at=expires_at(now, duration),
                creation_time=now,
                permissions=(Permission(project.name, checked),),
            )
        )
        return robot, secret

    async def get(self, ref: str) -> Robot:
        """A robot by id, by full name, or by `<project>+<name>`. Raises RobotNotFound."""
        robot: Robot | None = None
        if ref.isascii() and ref.isdigit():
            robot = await self._store.find_robot_by_id(int(ref))
        else:
            short = ref.removeprefix(self.prefix)
            project, plus, name = short.partition("+")
            if plus:
                robot = await self._store.find_robot(project, name)
        if robot is None:
            raise RobotNotFound(f"robot {ref!r} not found")
        return robot

    async def list(self, project_name: str, name_contains: str = "") -> list[Robot]:
        project = await self._projects.get(project_name)
        return await self._store.list_robots(project.id, name_contains)

    async def set_disabled(self, ref: str, disabled: bool) -> Robot:
        robot = await self.get(ref)
        await self._update(robot, disabled=disabled)
        return await self.get(str(robot.id))

    async def delete(self, ref: str) -> Robot:
        robot = await self.get(ref)
        if not await self._store.delete_robot(robot.id):
            raise RobotNotFound(f"robot {ref!r} not found")
        return robot

    async def refresh_secret(self, ref: str, manual: str | None = None) -> Secret | None:
        """Replace the secret. With `manual`, set it (Harbor's rule) and return None; otherwise
        generate one and return it. The old secret stops working on the next request."""
        robot = await self.get(ref)
        secret = generate_secret() if manual is None else check_manual_secret(manual)
        await self._update(robot, secret_hash=await self._verifier.hash(secret))
        return secret if manual is None else None

    async def _update(
        self, robot: Robot, *, disabled: bool | None = None, secret_hash: str | None = None
    ) -> None:
        now = self._projects.now()
        if not await self._store.update_robot(
            robot.id, now, disabled=disabled, secret_hash=secret_hash
        ):
            raise RobotNotFound(f"robot {robot.id} not found")
