"""Project use cases."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from tokenserver.domain.harbor_query import PROJECT_KEYS
from tokenserver.domain.models import Level, Principal, PrincipalKind, Project, User
from tokenserver.domain.names import check_name
from tokenserver.domain.permissions import after_project_deleted
from tokenserver.domain.project_metadata import (
    KEPT_METADATA_KEYS,
    check_metadata_key,
    metadata_entry,
    metadata_to_keep,
)
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.roles import Role
from tokenserver.errors import BadRequest, Conflict, Forbidden, ProjectNotFound
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
        *,
        only_admins_create: bool = False,
    ) -> None:
        """`only_admins_create`: Harbor's project_creation_restriction `adminonly` (else
        `everyone`)."""
        self._store = store
        self._access = access
        self._audit = audit
        self._clock = clock
        self._only_admins_create = only_admins_create

    def now(self) -> int:
        return int(self._clock())

    async def create(
        self,
        actor: Principal,
        name: str,
        public: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> Project:
        """Create a project with Harbor's `metadata` keys (`public` aside). Who may, as in
        Harbor: any user and any system robot, or with `only_admins_create` only those holding
        the system permission `project:create` (system admins, and system robots granted it);
        never a project robot. The owner becomes its projectAdmin: a user creating it, or for a
        robot (which gets no membership) the first system admin. Raises Unauthorized,
        Forbidden, BadRequest (name, metadata), Conflict (it exists), UserNotFound (the owner
        was deleted meanwhile: no project is left)."""
        async with self._audit.operation(actor, "create", "project", name) as entry:
            self._check_creator(actor)
            check_name("project", name)
            kept = metadata_to_keep(metadata or {}, creating=True)
            owner = await self._owner(actor)
            now = self.now()
            project = await self._store.create_project(
                name, public, owner.id if owner else None, now, kept
            )
            entry.project_id = project.id
            return project

    def _check_creator(self, actor: Principal) -> None:
        if actor.kind is PrincipalKind.ANONYMOUS:
            raise denied(actor, "create projects")
        if actor.robot is not None and actor.robot.level is not Level.SYSTEM:
            raise Forbidden("only system level robots can create projects")
        if self._only_admins_create and not self._access.system_grants(actor).can(
            "project", "create"
        ):
            raise Forbidden("only system admins can create projects")

    async def _owner(self, actor: Principal) -> User | None:
        """Who owns a project `actor` creates: the user; for a robot, the first system admin
        (Harbor's choice); nobody for the command line."""
        if actor.user is not None:
            return actor.user
        if actor.robot is None:
            return None
        return next((u for u in await self._store.list_users() if u.sysadmin), None)

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

    async def metadata(self, projects: Sequence[Project]) -> dict[int, dict[str, str]]:
        """The metadata kept for each of `projects` (Harbor's keys other than `public`)."""
        return await self._store.project_metadata([p.id for p in projects])

    async def update(
        self,
        actor: Principal,
        ref: str,
        *,
        public: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        is_name: bool | None = None,
    ) -> Project:
        """Set `public` (None: keep it) and the given metadata keys, keeping the others (as
        Harbor's PUT does). Raises ProjectNotFound, Forbidden, BadRequest (metadata)."""
        async with self._audit.operation(actor, "update", "project", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "project", "update")
            kept = metadata_to_keep(metadata or {}, creating=False)
            if public is None and not kept:
                return project  # nothing to change
            if not await self._store.update_project(project.id, public, self.now(), kept):
                raise ProjectNotFound(f"project {ref!r} not found")
            return await self.resolve(str(project.id), is_name=False)

    # ---- Harbor's /projects/{p}/metadatas: one key at a time. `public` is the project's own
    # flag here (Harbor keeps it as a key): it always exists, and deleting it makes the
    # project private, as a project without the key is in Harbor.

    async def metadata_of(
        self, actor: Principal, ref: str, is_name: bool | None = None, *, one: bool = False
    ) -> tuple[Project, dict[str, str]]:
        """The project and the metadata it keeps (`public` aside), for a caller who may list
        its metadata, or read it (`one` key). Raises ProjectNotFound, Unauthorized, Forbidden."""
        project = await self.resolve(ref, is_name)
        await self._access.require(actor, project, "metadata", "read" if one else "list")
        return project, (await self.metadata([project])).get(project.id, {})

    async def add_metadata(
        self, actor: Principal, ref: str, metadata: Mapping[str, str], is_name: bool | None = None
    ) -> None:
        """Set the one key of `metadata`, which the project must not hold yet (Harbor's POST).
        Raises ProjectNotFound, Unauthorized, Forbidden, BadRequest (see `metadata_entry`),
        Conflict (held already)."""
        async with self._audit.operation(actor, "create", "project-metadata", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "metadata", "create")
            key, value = metadata_entry(metadata)
            entry.resource = f"{project.name}/{key}"
            if key == "public" or not await self._store.add_project_metadata(
                project.id, key, value, self.now()
            ):
                await self.resolve(str(project.id), is_name=False)  # deleted meanwhile: 404
                raise Conflict(f"metadata {key} already exists for project {project.id}")

    async def update_metadata(
        self,
        actor: Principal,
        ref: str,
        key: str,
        metadata: Mapping[str, str],
        is_name: bool | None = None,
    ) -> None:
        """Set `key` to its value in `metadata`, which holds that key alone (Harbor's PUT),
        held before or not. Raises ProjectNotFound, Unauthorized, Forbidden, BadRequest."""
        async with self._audit.operation(actor, "update", "project-metadata", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            entry.resource = f"{project.name}/{key}"
            await self._access.require(actor, project, "metadata", "update")
            check_metadata_key(key)
            if set(metadata) != {key}:
                raise BadRequest(f"the request's body must hold the key {key!r} alone")
            key, value = metadata_entry(metadata)
            public, kept = (value == "true", {}) if key == "public" else (None, {key: value})
            if not await self._store.update_project(project.id, public, self.now(), kept):
                raise ProjectNotFound(f"project {ref!r} not found")

    async def delete_metadata(
        self, actor: Principal, ref: str, key: str, is_name: bool | None = None
    ) -> None:
        """Remove `key`; one the project does not hold is no error (as in Harbor). Raises
        ProjectNotFound, Unauthorized, Forbidden."""
        async with self._audit.operation(actor, "delete", "project-metadata", ref) as entry:
            project = await self.resolve(ref, is_name)
            entry.project_id = project.id
            entry.resource = f"{project.name}/{key}"
            await self._access.require(actor, project, "metadata", "delete")
            if key == "public":
                done = await self._store.update_project(project.id, False, self.now())
            elif key in KEPT_METADATA_KEYS:
                done = await self._store.delete_project_metadata(project.id, key, self.now())
            else:
                return  # never held
            if not done:
                raise ProjectNotFound(f"project {ref!r} not found")

    async def summary(
        self, actor: Principal, ref: str, is_name: bool | None = None
    ) -> Counter[Role] | None:
        """The project's members counted by role, or None for a caller who may read the
        project but not list its members (Harbor then leaves the counts out). Raises
        ProjectNotFound, Unauthorized, Forbidden."""
        project = await self.resolve(ref, is_name)
        grants = await self._access.project_grants(actor, project)
        if not grants.can("project", "read"):
            raise denied(actor, f"read project in project {project.name!r}")
        if not grants.can("member", "list"):
            return None
        return Counter(m.role for m in await self._store.list_members(project.id))

    async def deletable(self, actor: Principal, ref: str, is_name: bool | None = None) -> str:
        """Why the project cannot be deleted, "" if it can, for a caller who may delete it.
        Harbor refuses to delete a project holding repositories; tokenserver does not see
        the registry's, so nothing stops a deletion. Raises ProjectNotFound, Forbidden."""
        project = await self.resolve(ref, is_name)
        await self._access.require(actor, project, "project", "delete")
        return ""

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
