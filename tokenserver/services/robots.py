"""Robot use cases, project and system level, with Harbor's rules for who may manage them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tokenserver.domain.delegation import excess
from tokenserver.domain.federation_rules import jwt_shaped
from tokenserver.domain.harbor_export import LEGACY_ACCESS
from tokenserver.domain.harbor_query import ROBOT_KEYS
from tokenserver.domain.lifetimes import FOLLOW_GLOBAL, TokenLifetimes
from tokenserver.domain.models import (
    MAX_KEEP_PREVIOUS,
    NEVER,
    Level,
    Principal,
    Project,
    Robot,
    check_duration,
    expires_at,
    period_start,
)
from tokenserver.domain.names import check_name
from tokenserver.domain.permissions import (
    ALL_PROJECTS,
    SYSTEM_NAMESPACE,
    Access,
    Effect,
    Permission,
    PermissionKind,
    RequestedPermission,
    check_access,
    keep_patterns,
)
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.repositories import check_patterns
from tokenserver.domain.secrets import Secret, check_manual_secret, generate_secret
from tokenserver.domain.webhooks import EventType
from tokenserver.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ProjectNotFound,
    RobotNotFound,
    TokenServerError,
)
from tokenserver.services.access import AccessService
from tokenserver.services.audit import AuditedOperation, AuditService
from tokenserver.services.ports import NewRobot, RobotChanges, Store
from tokenserver.services.projects import ProjectService
from tokenserver.services.usage import UsageTracker
from tokenserver.services.verifier import SecretVerifier
from tokenserver.services.webhooks import RobotEvents

MAX_DESCRIPTION_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class RobotSpec:
    """What a caller asks a robot to be (create and PUT). Permission namespaces are names;
    the service resolves them. `duration` None: a PUT keeps the robot's (create needs one)."""

    name: str
    level: Level
    permissions: tuple[RequestedPermission, ...]
    duration: int | None
    description: str = ""
    disable: bool = False
    secret: str | None = None
    # None: a PUT keeps the robot's; a new robot's secret logs it in (it has no rules yet).
    secret_login: bool | None = None
    # Seconds its tokens last. None: a PUT keeps the robot's, a new robot has none of its
    # own; FOLLOW_GLOBAL (0): none of its own, token.lifetime.
    token_lifetime: int | None = None


def _patterns(entry: RequestedPermission) -> tuple[str, ...]:
    return () if entry.repositories is None else check_patterns(entry.repositories)


def _check_distinct(entries: Sequence[Permission]) -> None:
    """A project robot's entries for its project: one per list of repository patterns
    (entries with the same patterns would be one entry written twice)."""
    seen: set[frozenset[str]] = set()
    for entry in entries:
        key = frozenset(entry.repositories)
        if key in seen:
            shown = ", ".join(sorted(key)) or "**"
            raise BadRequest(
                "bad request permission: a project robot's entries must differ in their "
                f"'repositories'; two name the same ({shown}): merge their access"
            )
        seen.add(key)


class RobotService:
    def __init__(
        self,
        store: Store,
        access: AccessService,
        audit: AuditService,
        projects: ProjectService,
        verifier: SecretVerifier,
        usage: UsageTracker,
        name_prefix: str,
        lifetimes: TokenLifetimes,
        events: RobotEvents | None = None,
    ) -> None:
        """`lifetimes`: token.lifetime and token.max_lifetime, which bound a robot's own
        token lifetime. `events`: where robot events go (webhooks), in the transaction of
        each change."""
        self._events = events
        self._usage = usage
        self._store = store
        self._access = access
        self._audit = audit
        self._projects = projects
        self._verifier = verifier
        self.prefix = name_prefix
        self.lifetimes = lifetimes

    def now(self) -> int:
        return self._projects.now()

    # ---- validation and authorization ------------------------------------------------------

    async def _resolve(
        self, level: Level, permissions: Sequence[RequestedPermission]
    ) -> tuple[tuple[Permission, ...], Project | None]:
        """Validate the permissions for `level`, pin project namespaces to project ids, and
        return them with the robot's project (None for a system robot)."""
        if level is Level.PROJECT:
            if (
                not permissions
                or any(
                    p.kind != PermissionKind.PROJECT or p.namespace == ALL_PROJECTS
                    for p in permissions
                )
                or len({p.namespace for p in permissions}) != 1
            ):
                raise BadRequest(
                    "bad request permission: a project robot's permission entries are of kind "
                    "project, for its own project (several only with different 'repositories')"
                )
            project = await self._projects.resolve(permissions[0].namespace, is_name=True)
            own = tuple(
                Permission(
                    project.name,
                    check_access(PermissionKind.PROJECT, entry.access),
                    PermissionKind.PROJECT,
                    project.id,
                    _patterns(entry),
                )
                for entry in permissions
            )
            _check_distinct(own)
            return own, project
        resolved: list[Permission] = []
        for entry in permissions:
            if entry.kind == PermissionKind.SYSTEM:
                if entry.namespace != SYSTEM_NAMESPACE:
                    raise BadRequest("bad request permission: system entries use namespace '/'")
                if entry.repositories is not None:
                    raise BadRequest(
                        "bad request permission: 'repositories' belongs to project entries; "
                        "a system entry has none"
                    )
                resolved.append(
                    Permission(
                        SYSTEM_NAMESPACE,
                        check_access(PermissionKind.SYSTEM, entry.access),
                        PermissionKind.SYSTEM,
                    )
                )
            elif entry.kind == PermissionKind.PROJECT:
                access = check_access(PermissionKind.PROJECT, entry.access)
                patterns = _patterns(entry)
                if entry.namespace == ALL_PROJECTS:
                    resolved.append(
                        Permission(ALL_PROJECTS, access, PermissionKind.PROJECT, None, patterns)
                    )
                    continue
                try:
                    project = await self._projects.resolve(entry.namespace, is_name=True)
                except ProjectNotFound:
                    if all(a.effect is Effect.DENY for a in access):
                        # A deny on a project that does not exist (or no longer does, as
                        # GET shows after a project is deleted) applies to any project of
                        # that name created later.
                        check_name("project", entry.namespace)
                        resolved.append(
                            Permission(
                                entry.namespace, access, PermissionKind.PROJECT, None, patterns
                            )
                        )
                        continue
                    raise BadRequest(
                        f"bad request permission: project {entry.namespace!r} not found"
                    ) from None
                resolved.append(
                    Permission(project.name, access, PermissionKind.PROJECT, project.id, patterns)
                )
            else:
                raise BadRequest(f"bad request permission: unknown kind {entry.kind!r}")
        if not resolved:
            raise BadRequest("bad request permission: a robot needs at least one permission")
        return tuple(resolved), None

    async def _require(
        self, actor: Principal, project_id: int | None, action: str, name: str
    ) -> Project | None:
        """Authorize `action` on robots of the project (or on system robots)."""
        if project_id is None:
            self._access.require_system(actor, "robot", action)
            return None
        project = await self._store.find_project_by_id(project_id)
        if project is None:
            raise RobotNotFound(f"robot {name!r} not found")
        await self._access.require(actor, project, "robot", action)
        return project

    @staticmethod
    def _held(robot: Robot) -> tuple[Permission, ...]:
        """What `robot` may do, as permissions. A legacy robot's grant comes from its JWT,
        which is not stored: it is at most the legacy set in its own project."""
        if not robot.legacy:
            return robot.permissions
        access = tuple(Access(r, a) for r, a in sorted(LEGACY_ACCESS))
        return (
            Permission(robot.project_name or "", access, PermissionKind.PROJECT, robot.project_id),
        )

    @staticmethod
    def _require_within(
        actor: Principal,
        what: str,
        permissions: Sequence[Permission],
        *,
        expires: int | None = None,
    ) -> None:
        """A robot acting on robots (to `what` one) may do so only when their effective
        permissions are within its own, on every project, existing or future, and in the
        system; when the act sets an expiry or hands out a secret (`expires`), the robot
        may not outlive the actor. Users are governed by their role alone."""
        own = actor.robot
        if own is None:
            return
        found = excess(permissions, own.permissions)
        if found is not None:
            raise Forbidden(
                f"a robot may {what} only robots whose permissions are within its own: "
                f"that robot would hold {found}"
            )
        if (
            expires is not None
            and own.expires_at != NEVER
            and (expires == NEVER or expires > own.expires_at)
        ):
            raise Forbidden(
                f"a robot may {what} only robots that expire no later than itself "
                f"(expires_at {own.expires_at}); use a shorter duration"
            )

    async def _settle_pins(self, robot: Robot) -> None:
        """A project named in the permissions may have been deleted between resolving its
        name and writing the robot, after the deletion swept the robots: drop its allows
        now, as the deletion does, so that what the robot shows is what is enforced."""
        if robot.level is Level.SYSTEM:
            await self._projects.forget_deleted_projects(robot.id)

    def _spec_full_name(self, spec: RobotSpec) -> str:
        """The full name a robot made from `spec` has, as the audit log names it (even when
        the robot is refused); the bare name when the spec does not say its project."""
        if spec.level is Level.SYSTEM:
            return f"{self.prefix}{spec.name}"
        if len({p.namespace for p in spec.permissions}) == 1:
            return f"{self.prefix}{spec.permissions[0].namespace}+{spec.name}"
        return spec.name

    async def _resolve_audited(self, entry: AuditedOperation, ref: str) -> Robot:
        """`resolve`, naming the robot in the audit entry by its full name, however the
        caller named it (id, short name, `<project>+<name>`)."""
        robot = await self.resolve(ref)
        entry.resource = robot.full_name(self.prefix)
        entry.project_id = robot.project_id
        return robot

    @staticmethod
    def _check_description(description: str) -> None:
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise BadRequest(f"description longer than {MAX_DESCRIPTION_LENGTH} characters")
        if "\x00" in description:
            # PostgreSQL cannot store it; refused on every database alike.
            raise BadRequest("description must not contain NUL characters")

    # ---- use cases -------------------------------------------------------------------------

    async def create(self, actor: Principal, spec: RobotSpec) -> tuple[Robot, Secret]:
        """Create a robot; return it with its secret, which is never shown again.

        Raises BadRequest (name, permissions, duration, description, secret, token
        lifetime), Forbidden, ProjectNotFound and Conflict (name taken).
        """
        async with self._audit.operation(
            actor, "create", "robot", self._spec_full_name(spec)
        ) as entry:
            check_name("robot", spec.name)
            if spec.secret_login is False:
                raise BadRequest(
                    "a new robot has no federation rules, so it logs in with its secret: "
                    "add rules, then turn its secret login off"
                )
            if spec.duration is None:
                raise BadRequest("robot: missing field 'duration'")
            duration = check_duration(spec.duration)
            self._check_description(spec.description)
            token_lifetime = (
                None if spec.token_lifetime is None else self.lifetimes.check(spec.token_lifetime)
            )
            permissions, project = await self._resolve(spec.level, spec.permissions)
            entry.project_id = project.id if project else None
            await self._require(actor, project.id if project else None, "create", spec.name)
            now = self._projects.now()
            self._require_within(actor, "create", permissions, expires=expires_at(now, duration))
            secret = generate_secret() if spec.secret is None else check_manual_secret(spec.secret)
            secret_hash = await self._verifier.hash(secret)
            async with self._store.transaction():
                robot = await self._store.create_robot(
                    NewRobot(
                        name=spec.name,
                        project_id=project.id if project else None,
                        level=spec.level,
                        description=spec.description,
                        secret_hash=secret_hash,
                        duration=duration,
                        expires_at=expires_at(now, duration),
                        creation_time=now,
                        permissions=permissions,
                        disabled=spec.disable,
                        token_lifetime=token_lifetime,
                    )
                )
                await self._emit(EventType.ROBOT_CREATED, robot, actor, fresh=False)
            entry.resource = robot.full_name(self.prefix)
            await self._settle_pins(robot)
            return robot, secret

    async def resolve(self, ref: str) -> Robot:
        """A robot by id, full name, `<project>+<name>` or system robot name, without
        authorization (the CLI's operator holds the database). Raises RobotNotFound."""
        robot: Robot | None = None
        if ref.isascii() and ref.isdigit() and len(ref) < 19:
            robot = await self._store.find_robot_by_id(int(ref))
        else:
            short = ref.removeprefix(self.prefix)
            project, plus, name = short.partition("+")
            robot = await self._store.find_robot(project if plus else None, name if plus else short)
        if robot is None:
            raise RobotNotFound(f"robot {ref!r} not found")
        return self._usage.merged(robot)

    async def get(self, actor: Principal, ref: str) -> Robot:
        robot = await self.resolve(ref)
        await self._require(actor, robot.project_id, "read", ref)
        return robot

    async def list(
        self,
        actor: Principal,
        project_ref: str | None,
        name_contains: str = "",
        query: Query = EVERYTHING,
    ) -> list[Robot]:
        """A project's robots, or the system robots when `project_ref` is None, that meet
        `query` (ROBOT_KEYS), in its order (none: by id)."""
        if project_ref is None:
            self._access.require_system(actor, "robot", "list")
            robots = await self._store.list_robots(None, name_contains)
        else:
            project = await self._projects.resolve(project_ref)
            await self._access.require(actor, project, "robot", "list")
            robots = await self._store.list_robots(project.id, name_contains)
        return ROBOT_KEYS.select(query, [self._usage.merged(r) for r in robots])

    @staticmethod
    def grantable_kinds(actor: Principal) -> tuple[PermissionKind, ...]:
        """The kinds whose grantable permissions `actor` is shown (`GET /permissions`): system
        and project for a system admin, project for anyone else.

        NOTE: Harbor shows a project admin the project list and refuses (403) whoever
        administers no project, robots too. The list is no secret, and the page's robot
        dialogs need it for every user who opens them: anyone authenticated sees it here.
        """
        if actor.sysadmin:
            return (PermissionKind.SYSTEM, PermissionKind.PROJECT)
        return (PermissionKind.PROJECT,)

    async def update(self, actor: Principal, ref: str, spec: RobotSpec) -> Robot:
        """Harbor's PUT: replace description, duration, disable and permissions. Name and
        level cannot change. No duration, or the same one, keeps the duration and the expiry;
        another one counts from the start of the current period (creation, or the last
        restart_expiry). No token lifetime, or the robot's own, keeps it (even above a
        lowered token.max_lifetime: a PUT of the robot as GET shows it must pass)."""
        async with self._audit.operation(actor, "update", "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "update", self._held(robot))
            if robot.legacy:
                # Harbor's page disables and enables a legacy robot with a PUT of the robot
                # as it is but for `disable`: allow exactly that.
                await self._legacy_put(actor, robot, spec)
                return await self.resolve(str(robot.id))
            if spec.name not in (robot.name, robot.full_name(self.prefix)):
                raise BadRequest("the name of a robot cannot be changed")
            if spec.level is not robot.level:
                raise BadRequest("the level of a robot cannot be changed")
            # Harbor keeps the robot's duration when a PUT has none.
            duration = robot.duration if spec.duration is None else spec.duration
            if duration == robot.duration:
                # NOTE: Harbor recomputes the expiry from creation on every PUT, and the page's
                # Edit, Disable and Enable all PUT the whole robot: that undid restart_expiry
                # and could expire a robot at once. A duration left as it is keeps the expiry
                # (and passes even if stored before durations were bounded).
                expiry = robot.expires_at
            else:
                expiry = expires_at(period_start(robot), check_duration(duration))
            self._check_description(spec.description)
            token_lifetime = self._token_lifetime_change(robot, spec.token_lifetime)
            sent = keep_patterns(spec.permissions, robot.permissions)
            permissions, project = await self._resolve(spec.level, sent)
            if project is not None and project.id != robot.project_id:
                raise BadRequest(
                    "bad request permission: a project robot's permission must name its project"
                )
            self._require_within(actor, "update", permissions, expires=expiry)
            changes = RobotChanges(
                description=spec.description,
                duration=duration,
                expires_at=expiry,
                disabled=spec.disable,
                permissions=permissions,
                token_lifetime=token_lifetime,
                # Its expiry ended the previous secret: a new expiry does not bring it back.
                drop_previous_secret=robot.is_expired(self.now()),
            )
            switching = spec.secret_login is not None and spec.secret_login != robot.secret_login
            if switching:
                self.refuse_self(actor, robot, "switch the secret login of")
            # All or nothing: a secret login that cannot be turned off (no rules) leaves the
            # robot as it was, and an event is queued with the change it reports.
            async with self._store.transaction():
                await self._change(robot, changes)
                if switching and spec.secret_login is not None:
                    await self._switch_secret_login(robot, spec.secret_login)
                await self._emit_switch(robot, spec.disable, actor)
            await self._settle_pins(robot)
            return await self.resolve(str(robot.id))

    def _token_lifetime_change(self, robot: Robot, asked: int | None) -> int | None:
        """The RobotChanges.token_lifetime for `asked` (RobotSpec.token_lifetime): None when
        it keeps the robot's, else the new one checked (FOLLOW_GLOBAL clears it)."""
        if asked is None or asked == (robot.token_lifetime or FOLLOW_GLOBAL):
            return None
        checked = self.lifetimes.check(asked)
        return FOLLOW_GLOBAL if checked is None else checked

    async def set_token_lifetime(self, actor: Principal, ref: str, seconds: int) -> Robot:
        """Set how long the robot's tokens last (FOLLOW_GLOBAL: token.lifetime), from its
        next token on; audited as an update. Needs robot update. Raises BadRequest (out of
        range), Forbidden (a legacy robot), RobotNotFound."""
        async with self._audit.operation(actor, "update", "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "update", self._held(robot))
            self._refuse_legacy(robot)
            change = self._token_lifetime_change(robot, seconds)
            if change is not None:
                await self._change(robot, RobotChanges(token_lifetime=change))
            return await self.resolve(str(robot.id))

    async def set_disabled(self, actor: Principal, ref: str, disabled: bool) -> Robot:
        operation = "disable" if disabled else "enable"
        async with self._audit.operation(actor, operation, "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "disable or enable", self._held(robot))
            async with self._store.transaction():
                await self._change(robot, RobotChanges(disabled=disabled))
                await self._emit_switch(robot, disabled, actor)
            return await self.resolve(str(robot.id))

    async def set_secret_login(self, actor: Principal, ref: str, enabled: bool) -> Robot:
        """Let the robot's secret log it in, or not (then only its federation rules do: a
        robot without rules is refused, Conflict). Off, its refresh tokens from secret logins
        end at once. Needs robot update."""
        operation = "enable-secret-login" if enabled else "disable-secret-login"
        async with self._audit.operation(actor, operation, "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "switch the secret login of", self._held(robot))
            self.refuse_self(actor, robot, "switch the secret login of")
            self._refuse_legacy(robot)
            await self._switch_secret_login(robot, enabled)
            return await self.resolve(str(robot.id))

    async def _switch_secret_login(self, robot: Robot, enabled: bool) -> None:
        try:
            changed = await self._store.set_secret_login(robot.id, enabled, self._projects.now())
        except Conflict:
            raise Conflict(
                f"robot {robot.full_name(self.prefix)} has no federation rules: without its "
                "secret it could not log in at all; add a rule first"
            ) from None
        if not changed:
            raise RobotNotFound(f"robot {robot.id} not found")

    async def authorize(
        self, actor: Principal, robot: Robot, action: str, handing_out: str | None = None
    ) -> None:
        """Raise unless `actor` may `action` ("read", "update") robots of `robot`'s project
        (system robots: in the system). With `handing_out` (what the act is, for the
        message), the act hands the robot's power to someone, as a new secret does: a robot
        actor may do it only to robots within its own permissions that expire no later than
        itself. Raises Unauthorized, Forbidden, RobotNotFound (its project is gone)."""
        await self._require(actor, robot.project_id, action, str(robot.id))
        if handing_out is not None:
            self._require_within(actor, handing_out, self._held(robot), expires=robot.expires_at)

    async def revoke_refresh_tokens(
        self, actor: Principal, ref: str, token_id: int | None = None
    ) -> int:
        """Revoke one of the robot's refresh tokens (`token_id`), or all of them; the number
        revoked. Needs robot update. Raises NotFound for a `token_id` the robot does not
        hold."""
        async with self._audit.operation(actor, "revoke-refresh-tokens", "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "revoke refresh tokens of", self._held(robot))
            revoked = await self._store.delete_refresh_tokens(robot_id=robot.id, token_id=token_id)
            if token_id is not None and revoked == 0:
                raise NotFound(f"refresh token {token_id} not found")
            return revoked

    async def delete(self, actor: Principal, ref: str) -> Robot:
        async with self._audit.operation(actor, "delete", "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "delete", ref)
            self._require_within(actor, "delete", self._held(robot))
            async with self._store.transaction():
                if not await self._store.delete_robot(robot.id):
                    raise RobotNotFound(f"robot {ref!r} not found")
                await self._emit(EventType.ROBOT_DELETED, robot, actor, fresh=False)
            return robot

    async def refresh_secret(
        self,
        actor: Principal,
        ref: str,
        manual: str | None = None,
        *,
        restart_expiry: bool = False,
        keep_previous: int = 0,
    ) -> Secret | None:
        """Replace the secret. With `manual`, set it (Harbor's rule) and return None;
        otherwise generate one and return it. `restart_expiry` also restarts the expiry
        period from now.

        Without `keep_previous` (Harbor's behaviour) the old secret stops working on the next
        request, with every refresh token and temporary secret of the robot. With it (seconds,
        at most MAX_KEEP_PREVIOUS), the old secret keeps working that long beside the new one
        (never past the robot's expiry), as do the refresh tokens it got; a previous secret
        kept before ends now (at most one). A robot that is disabled or has expired keeps no
        previous secret: its secret has ended already. Audited as `refresh`, or
        `refresh-keep-previous` when the old secret is kept."""
        if not 0 <= keep_previous <= MAX_KEEP_PREVIOUS:
            raise BadRequest(
                f"keep_previous_for {keep_previous} is out of range: 0 to {MAX_KEEP_PREVIOUS} "
                "seconds (30 days)"
            )
        operation = "refresh-keep-previous" if keep_previous else "refresh"
        async with self._audit.operation(actor, operation, "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._refuse_legacy(robot)
            secret = generate_secret() if manual is None else check_manual_secret(manual)
            if (
                manual is not None
                and jwt_shaped(manual)
                and await self._store.list_federation_rules(robot.id)
            ):
                # NOTE: such a robot takes a password shaped like a JWT for an ID token.
                raise BadRequest(
                    "a robot with federation rules takes a password shaped like a JWT (three "
                    "base64url parts joined by dots) for an ID token: choose a secret that is "
                    "not shaped so"
                )
            now = self._projects.now()
            expiry = None
            if restart_expiry and robot.duration != NEVER:
                expiry = expires_at(now, robot.duration)
            # The secret hands the robot's power to whoever asked: the same rule as create.
            self._require_within(
                actor,
                "refresh the secret of",
                self._held(robot),
                expires=robot.expires_at if expiry is None else expiry,
            )
            keep_until = None
            if keep_previous and not robot.disabled and not robot.is_expired(now):
                keep_until = now + keep_previous
                ends = robot.expires_at if expiry is None else expiry
                if ends != NEVER:
                    keep_until = min(keep_until, ends)
            secret_hash = await self._verifier.hash(secret)
            async with self._store.transaction():
                if not await self._store.replace_robot_secret(
                    robot.id,
                    now,
                    secret_hash,
                    keep_previous_until=keep_until,
                    expires_at=expiry,
                ):
                    raise RobotNotFound(f"robot {robot.id} not found")
                await self._emit(EventType.ROBOT_SECRET_REFRESHED, robot, actor)
            return secret if manual is None else None

    async def revoke_previous_secret(self, actor: Principal, ref: str) -> Robot:
        """End the previous secret a refresh with a grace period kept, and the refresh tokens
        that end with it, now. Needs robot update. Raises NotFound when the robot has no
        previous secret that still works."""
        async with self._audit.operation(actor, "revoke-previous-secret", "robot", ref) as entry:
            robot = await self._resolve_audited(entry, ref)
            await self._require(actor, robot.project_id, "update", ref)
            self._require_within(actor, "revoke the previous secret of", self._held(robot))
            now = self._projects.now()
            had = robot.previous_secret_until(now) is not None
            # Cleared even when its time is over: nothing of it is left behind.
            cleared = await self._store.revoke_previous_secret(robot.id, now)
            if not (had and cleared):
                raise NotFound(
                    f"robot {robot.full_name(self.prefix)} has no previous secret that works"
                )
            return await self.resolve(str(robot.id))

    async def expiry_counts(self, windows: Sequence[int]) -> tuple[int, dict[int, int]]:
        """Enabled robots expired now, and those expiring within each window (seconds), for
        the metrics: counts only, no names (the metrics answer anyone)."""
        return await self._store.count_robot_expiries(self.now(), windows)

    async def list_expiring(
        self, actor: Principal, within: int, project_ref: str | None = None
    ) -> Sequence[Robot]:
        """Enabled robots that have not expired and will within `within` seconds, soonest
        first: the project's, or every robot (system robots too) for a system admin when
        `project_ref` is None."""
        now = self.now()
        if project_ref is None:
            self._access.require_system(actor, "robot", "list")
            robots = await self._store.list_expiring_robots(now, now + within)
        else:
            project = await self._projects.resolve(project_ref)
            await self._access.require(actor, project, "robot", "list")
            robots = await self._store.list_expiring_robots(now, now + within, project.id)
        return [self._usage.merged(r) for r in robots]

    async def _legacy_put(self, actor: Principal, robot: Robot, spec: RobotSpec) -> None:
        try:
            permissions, _ = await self._resolve(spec.level, spec.permissions)
        except TokenServerError:
            permissions = ()
        if (
            spec.name not in (robot.name, robot.full_name(self.prefix))
            or spec.description != robot.description
            or spec.duration not in (None, robot.duration)
            or spec.secret_login not in (None, robot.secret_login)
            or spec.token_lifetime not in (None, robot.token_lifetime or FOLLOW_GLOBAL)
            or permissions != robot.permissions
        ):
            self._refuse_legacy(robot)
        async with self._store.transaction():
            await self._change(robot, RobotChanges(disabled=spec.disable))
            await self._emit_switch(robot, spec.disable, actor)

    @staticmethod
    def refuse_self(actor: Principal, robot: Robot, what: str) -> None:
        """A robot may not change how it logs in itself (its federation rules, its secret
        login): whoever held its secret for a moment could add a rule admitting their own
        workload, which refreshing the secret would not end."""
        if actor.robot is not None and actor.robot.id == robot.id:
            raise Forbidden(f"a robot cannot {what} itself: ask whoever manages it")

    @staticmethod
    def _refuse_legacy(robot: Robot) -> None:
        if robot.legacy:
            # Harbor's words: a legacy robot can only be disabled, enabled or deleted.
            raise Forbidden("editing of legacy robot is not allowed")

    async def _emit(
        self, event: EventType, robot: Robot, actor: Principal, *, fresh: bool = True
    ) -> None:
        """Queue `event` about `robot` (as it is now, read in the transaction, if `fresh`)
        for the webhook policies that take it. Call it in the change's transaction."""
        if self._events is None:
            return
        if fresh:
            robot = await self._store.find_robot_by_id(robot.id) or robot
        await self._events.robot_event(event, robot, actor.operator)

    async def _emit_switch(self, robot: Robot, disabled: bool, actor: Principal) -> None:
        """ROBOT_DISABLED or ROBOT_ENABLED when the change turned the robot off or on."""
        if disabled != robot.disabled:
            event = EventType.ROBOT_DISABLED if disabled else EventType.ROBOT_ENABLED
            await self._emit(event, robot, actor)

    async def _change(self, robot: Robot, changes: RobotChanges) -> None:
        if changes.disabled:
            # Disabling ends both secrets: enabling again brings back only the current one.
            changes = replace(changes, drop_previous_secret=True)
        if not await self._store.update_robot(robot.id, self._projects.now(), changes):
            raise RobotNotFound(f"robot {robot.id} not found")
        if changes.secret_hash is not None or changes.disabled:
            # A new secret or a disabled robot ends every refresh token and temporary secret
            # it was given.
            await self._store.delete_refresh_tokens(robot_id=robot.id)
            await self._store.delete_temporary_secrets(robot.id)
