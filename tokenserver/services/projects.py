"""Project use cases."""

from __future__ import annotations

import time
from collections.abc import Callable

from tokenserver.domain.harbor_query import PROJECT_KEYS
from tokenserver.domain.models import Principal, PrincipalKind, Project
from tokenserver.domain.names import check_name
from tokenserver.domain.permissions import after_project_deleted
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.roles import Role
from tokenserver.errors import BadRequest, ProjectNotFound
from tokenserver.services.access import AccessService, denied
from tokenserver.services.audit import AuditService
from tokenserver.services.ports import Store


class ProjectService:
    def __init__(
        self,
        store: Store,
        access: AccessService,
        audit: AuditService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._access = access
        self._audit = audit
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    async def create(self, actor: Principal, name: str, public: bool = False) -> Project:
        """Any user may create a project (Harbor's default) and becomes its projectAdmin; a
        robot needs the system permission `project:create`. Raises BadRequest for an invalid
        name, Conflict if it exists."""
        async with self._audit.operation(actor, "create", "project", name) as entry:
            if actor.kind is PrincipalKind.ANONYMOUS or (
                actor.robot is not None
                and not self._access.system_grants(actor).can("project", "create")
            ):
                raise denied(actor, "create projects")
            check_name("project", name)
            owner = actor.user.id if actor.user is not None else None
            now = self.now()
            project = await self._store.create_project(name, public, owner, now)
            entry.project_id = project.id
            if actor.user is not None:
                await self._store.add_member(project.id, actor.user.id, Role.PROJECT_ADMIN, now)
            return project

    async def resolve(self, ref: str, is_name: bool | None = None) -> Project:
        """A project by name or id: digits are an id unless `is_name` (Harbor's
        `X-Is-Resource-Name`) says otherwise. Raises ProjectNotFound, BadRequest."""
        project: Project | None
        if is_name or (is_name is None and not (ref.isascii() and ref.isdigit())):
            project = await self._store.find_project(ref)
        elif ref.isascii() and ref.isdigit() and len(ref) < 19:
            project = await self._store.find_project_by_id(int(ref))
        else:
            raise BadRequest(f"invalid project id {ref!r}")
        if project is None:
            raise ProjectNotFound(f"project {ref!r} not found")
        return project

    async def get(self, actor: Principal, ref: str, is_name: bool | None = None) -> Project:
        project = await self.resolve(ref, is_name)
        await self._access.require(actor, project, "project", "read")
        return project

    async def role_of(self, actor: Principal, project: Project) -> Role | None:
        if actor.user is None:
            return None
        member = await self._store.find_member(project.id, actor.user.id)
        return member.role if member is not None else None

    async def list(
        self,
        actor: Principal,
        name_contains: str = "",
        public: bool | None = None,
        query: Query = EVERYTHING,
    ) -> list[Project]:
        """The projects `actor` may read that meet `query` (PROJECT_KEYS), in its order
        (none: by name)."""
        visible = []
        for project in await self._store.list_projects(name_contains):
            if public is not None and project.public != public:
                continue
            if project.public or (await self._access.project_grants(actor, project)).can(
                "project", "read"
            ):
                visible.append(project)
        return PROJECT_KEYS.select(query, visible)

    async def exists(self, name: str) -> bool:
        return await self._store.find_project(name) is not None

    async def set_public(
        self, actor: Principal, ref: str, public: bool, is_name: bool | None = None
    ) -> Project:
        async with self._audit.operation(actor, "update", "project", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "project", "update")
            await self._store.update_project(project.id, public, self.now())
            return await self.resolve(str(project.id), is_name=False)

    async def delete(self, actor: Principal, ref: str, is_name: bool | None = None) -> None:
        """Delete the project, its robots and its members. Raises ProjectNotFound."""
        async with self._audit.operation(actor, "delete", "project", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "project", "delete")
            if not await self._store.delete_project(project.id):
                raise ProjectNotFound(f"project {ref!r} not found")
            await self._forget_in_system_robots(project)

    async def _forget_in_system_robots(self, project: Project) -> None:
        """Drop the deleted project's allows from system robots and keep its denies (see
        `after_project_deleted`). Enforcement does not wait for this: allows are pinned to
        the project's id, denies apply by name."""
        for robot in await self._store.list_robots(None):
            if after_project_deleted(robot.permissions, project.id) != robot.permissions:
                await self.forget_deleted_projects(robot.id, {project.id})

    async def forget_deleted_projects(self, robot_id: int, deleted: set[int] | None = None) -> None:
        """Apply `after_project_deleted` to the robot for the `deleted` projects (None: every
        project it is pinned to that no longer exists). A compare and swap, retried, so a
        change made to the robot meanwhile is never overwritten."""
        for _ in range(100):
            robot = await self._store.find_robot_by_id(robot_id)
            if robot is None:
                return
            gone = deleted
            if gone is None:
                pinned = {p.project_id for p in robot.permissions if p.project_id is not None}
                gone = {i for i in pinned if await self._store.find_project_by_id(i) is None}
            kept = robot.permissions
            for project_id in sorted(gone):
                kept = after_project_deleted(kept, project_id)
            if kept == robot.permissions or await self._store.replace_robot_permissions(
                robot_id, self.now(), robot.permissions, kept
            ):
                return
