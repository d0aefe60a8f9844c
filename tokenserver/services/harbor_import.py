"""Importing projects and robots from Harbor (`tokenserver import-harbor`)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenserver.domain.harbor_export import ImportPlan, PlannedEntry
from tokenserver.domain.lifetimes import TokenLifetimes
from tokenserver.domain.models import Principal, Project
from tokenserver.domain.permissions import (
    ALL_PROJECTS,
    SYSTEM_NAMESPACE,
    Permission,
    PermissionKind,
)
from tokenserver.errors import BadRequest
from tokenserver.services.access import AccessService
from tokenserver.services.audit import AuditService
from tokenserver.services.ports import NewRobot, Store


@dataclass(frozen=True, slots=True)
class ImportReport:
    projects_created: int
    projects_existing: int
    robots_created: int
    robots_existing: int


class HarborImportService:
    def __init__(
        self,
        store: Store,
        access: AccessService,
        audit: AuditService,
        lifetimes: TokenLifetimes,
    ) -> None:
        """`lifetimes`: token.max_lifetime bounds a robot's token_lifetime."""
        self._store = store
        self._access = access
        self._audit = audit
        self._lifetimes = lifetimes

    async def run(self, actor: Principal, plan: ImportPlan, now: int) -> ImportReport:
        """Create what the plan holds and does not exist yet, in one transaction: running it
        twice changes nothing, and a failure writes nothing. Needs system `project:create`
        and `robot:create`. Raises BadRequest for a token_lifetime over token.max_lifetime."""
        async with self._audit.operation(actor, "import", "harbor", f"{len(plan.robots)} robots"):
            self._access.require_system(actor, "project", "create")
            self._access.require_system(actor, "robot", "create")
            for robot in plan.robots:
                if robot.token_lifetime is not None:
                    try:
                        self._lifetimes.check(robot.token_lifetime)
                    except BadRequest as e:
                        raise BadRequest(
                            f"robot {robot.name!r} (id {robot.harbor_id}): {e.message}"
                        ) from None
            async with self._store.transaction():
                return await self._run(plan, now)

    async def _run(self, plan: ImportPlan, now: int) -> ImportReport:
        ours: dict[int, Project] = {}
        created_projects = 0
        for row in plan.projects:
            project = await self._store.find_project(row.name)
            if project is None:
                project = await self._store.create_project(row.name, row.public, None, now)
                created_projects += 1
            ours[row.harbor_id] = project

        def permission(entry: PlannedEntry) -> Permission:
            if entry.kind == PermissionKind.SYSTEM:
                return Permission(SYSTEM_NAMESPACE, entry.access, PermissionKind.SYSTEM)
            if entry.harbor_project_id is None:
                return Permission(ALL_PROJECTS, entry.access, PermissionKind.PROJECT)
            project = ours[entry.harbor_project_id]
            return Permission(project.name, entry.access, PermissionKind.PROJECT, project.id)

        created_robots = 0
        for robot in plan.robots:
            project = ours[robot.harbor_project_id] if robot.harbor_project_id else None
            if robot.legacy:
                existing = await self._store.find_legacy_robot(robot.name)
            else:
                existing = await self._store.find_robot(
                    project.name if project else None, robot.name
                )
            if existing is not None:
                continue
            await self._store.create_robot(
                NewRobot(
                    name=robot.name,
                    project_id=project.id if project else None,
                    level=robot.level,
                    description=robot.description,
                    secret_hash=robot.secret_hash,
                    duration=robot.duration,
                    expires_at=robot.expires_at,
                    creation_time=robot.creation_time,
                    permissions=tuple(permission(e) for e in robot.entries),
                    disabled=robot.disabled,
                    legacy_id=robot.harbor_id if robot.legacy else None,
                    legacy_project_id=robot.harbor_project_id if robot.legacy else None,
                    token_lifetime=robot.token_lifetime,
                )
            )
            created_robots += 1
        return ImportReport(
            projects_created=created_projects,
            projects_existing=len(plan.projects) - created_projects,
            robots_created=created_robots,
            robots_existing=len(plan.robots) - created_robots,
        )
