"""User and project member use cases."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from tokenserver.domain.delegation import role_excess
from tokenserver.domain.harbor_query import USER_KEYS
from tokenserver.domain.models import Member, Principal, PrincipalKind, Project, User
from tokenserver.domain.names import check_not_robot_name, check_username, reads_as_robot_name
from tokenserver.domain.query import EVERYTHING, Query
from tokenserver.domain.roles import Role
from tokenserver.domain.secrets import Secret, check_no_control_characters, generate_secret
from tokenserver.errors import BadRequest, ConfigError, Forbidden, MemberNotFound, UserNotFound
from tokenserver.services.access import AccessService, denied
from tokenserver.services.audit import AuditService
from tokenserver.services.ports import NewUser, Store, UserChange
from tokenserver.services.projects import ProjectService
from tokenserver.services.throttle import Throttle
from tokenserver.services.verifier import SecretVerifier

ADMIN = "admin"
# A message, not a password.
PASSWORD_RULE = (
    "the password must be 8-128 characters long with at least 1 uppercase letter, "  # noqa: S105
    "1 lowercase letter and 1 number"
)
MAX_FIELD_LENGTH = 255


def check_password(password: str) -> Secret:
    """The password rule (Harbor's, without control characters); raise BadRequest when it is
    broken."""
    check_no_control_characters(password, "password")
    if not (
        8 <= len(password) <= 128
        and re.search(r"[A-Z]", password)
        and re.search(r"[a-z]", password)
        and re.search(r"[0-9]", password)
    ):
        raise BadRequest(PASSWORD_RULE)
    return Secret(password)


def _check_field(name: str, value: str) -> str:
    if len(value) > MAX_FIELD_LENGTH:
        raise BadRequest(f"{name} longer than {MAX_FIELD_LENGTH} characters")
    if "\x00" in value:
        # NOTE: PostgreSQL cannot store one and SQLite can: refused on both alike.
        raise BadRequest(f"{name} must not contain a NUL character")
    return value


def _require_sysadmin_over(actor: Principal, user: User, what: str) -> None:
    """Raise Forbidden if `user` is a system admin and `actor` is not one.

    NOTE: stricter than Harbor on purpose. A robot holding system `user:update` (or
    `user:delete`) manages ordinary users, but a system admin's password, profile or account
    would be a way to become more than the robot holds: only a system admin (a user who is one,
    or the command line's local admin) acts on another."""
    if user.sysadmin and not actor.sysadmin:
        raise Forbidden(
            f"{actor.operator} is not a system admin and may not {what} the system admin "
            f"{user.username!r}"
        )


def check_admin_prefix(prefix: str) -> None:
    """Raise ConfigError if the system admin's name reads as a robot's under `prefix`: the
    admin could then never log in."""
    if reads_as_robot_name(prefix, ADMIN):
        raise ConfigError(
            "robots.name_prefix",
            f"the system admin's name {ADMIN!r} reads as a robot account's name under the "
            f"prefix {prefix!r}; choose another prefix",
        )


class UserService:
    def __init__(
        self,
        store: Store,
        access: AccessService,
        audit: AuditService,
        projects: ProjectService,
        verifier: SecretVerifier,
        *,
        name_prefix: str,
        throttle: Throttle | None = None,
    ) -> None:
        self._prefix = name_prefix
        self._store = store
        self._access = access
        self._audit = audit
        self._projects = projects
        self._verifier = verifier
        self._throttle = throttle

    async def create(
        self,
        actor: Principal,
        username: str,
        password: str,
        *,
        email: str = "",
        realname: str = "",
        comment: str = "",
        sysadmin: bool = False,
    ) -> User:
        """System admins only (a robot holding `user:create` too, but only a system admin
        creates one). Raises BadRequest (name, including one that reads as a robot's name under
        the prefix; password), Conflict (the name, or the email when given, taken),
        Forbidden."""
        async with self._audit.operation(actor, "create", "user", username):
            self._access.require_system(actor, "user", "create")
            if sysadmin and not actor.sysadmin:
                raise Forbidden(f"{actor.operator} is not a system admin and may not create one")
            check_username(username)
            check_not_robot_name(self._prefix, username)
            secret = check_password(password)
            for name, value in (("email", email), ("realname", realname), ("comment", comment)):
                _check_field(name, value)
            return await self._store.create_user(
                NewUser(
                    username=username,
                    email=email,
                    realname=realname,
                    comment=comment,
                    password_hash=await self._verifier.hash(secret),
                    sysadmin=sysadmin,
                ),
                self._projects.now(),
            )

    async def ensure_admin(self, password: str | None) -> Secret | None:
        """Create the system admin `admin` if missing, with `password` or a generated one,
        which is returned (to be shown once). None if admin already existed or was given.
        Raises ConfigError if `admin` reads as a robot's name under the configured prefix."""
        if await self._store.find_user(ADMIN) is not None:
            return None
        check_admin_prefix(self._prefix)
        secret = generate_secret() if password is None else check_password(password)
        await self._store.create_user(
            NewUser(ADMIN, "", "system admin", "", await self._verifier.hash(secret), True),
            self._projects.now(),
        )
        return secret if password is None else None

    async def admin_exists(self) -> bool:
        """Whether the system admin `admin` exists."""
        return await self._store.find_user(ADMIN) is not None

    async def named_like_robots(self) -> list[str]:
        """Users whose names read as robot names under the configured prefix, by id. Creation
        refuses such names, so these were created under another prefix."""
        # NOTE: a robot name under the prefix contains it, and a legacy `robot$` one cannot be
        # a username ('$' is refused), so the users containing the prefix are all candidates.
        candidates = await self._store.list_users(self._prefix)
        return [u.username for u in candidates if reads_as_robot_name(self._prefix, u.username)]

    async def search(self, actor: Principal, username_contains: str) -> list[User]:
        """Users whose name contains `username_contains`, by id, for any authenticated
        caller (Harbor's /users/search, which member pickers use). Raises Unauthorized."""
        if actor.kind is PrincipalKind.ANONYMOUS:
            raise denied(actor, "search users")
        return await self._store.list_users(username_contains)

    async def list(
        self, actor: Principal, username_contains: str = "", query: Query = EVERYTHING
    ) -> list[User]:
        """The users meeting `query` (USER_KEYS), in its order. Needs `user:list`."""
        self._access.require_system(actor, "user", "list")
        return USER_KEYS.select(query, await self._store.list_users(username_contains))

    async def get(self, actor: Principal, user_id: int) -> User:
        if actor.user is None or actor.user.id != user_id:
            self._access.require_system(actor, "user", "read")
        user = await self._store.find_user_by_id(user_id)
        if user is None:
            raise UserNotFound(f"user {user_id} not found")
        return user

    async def _find(self, ref: int | str) -> User:
        """A user by id, or by name (the command line's). Raises UserNotFound."""
        user = None
        if isinstance(ref, int):
            user = await self._store.find_user_by_id(ref)
        else:
            try:
                check_username(ref)
            except BadRequest:
                pass  # no user has this name, which could hold what a database cannot store
            else:
                user = await self._store.find_user(ref)
        if user is None:
            raise UserNotFound(f"user {ref!r} not found")
        return user

    async def update_profile(
        self, actor: Principal, user_id: int, email: str, realname: str, comment: str
    ) -> User:
        """Replace the user's email, realname and comment (an absent one becomes empty, as in
        Harbor). Users change their own; system admins (and robots holding `user:update`)
        anyone's, but only a system admin a system admin's. Raises Forbidden, BadRequest,
        UserNotFound, Conflict (another user has the email)."""
        async with self._audit.operation(actor, "update", "user", f"{user_id}/profile") as op:
            if actor.user is None or actor.user.id != user_id:
                self._access.require_system(actor, "user", "update")
            for name, value in (("email", email), ("realname", realname), ("comment", comment)):
                _check_field(name, value)
            user = await self._find(user_id)
            op.resource = f"{user.username}/profile"
            if actor.user is None or actor.user.id != user_id:
                _require_sysadmin_over(actor, user, "change the profile of")
            if not await self._store.update_user_profile(
                user.id, email, realname, comment, self._projects.now()
            ):
                raise UserNotFound(f"user {user_id} not found")
            return await self._find(user.id)

    async def set_sysadmin(self, actor: Principal, ref: int | str, sysadmin: bool) -> User:
        """Make a user (by id, or by name) a system admin or not; system admins only: a
        robot's `user:update` is not enough, as a robot must never make anyone more than it
        holds (stricter than Harbor). The last system admin stays one. Raises Forbidden,
        UserNotFound."""
        async with self._audit.operation(actor, "update", "user", f"{ref}/sysadmin") as op:
            self._access.require_system(actor, "user", "update")
            user = await self._find(ref)
            op.resource = f"{user.username}/sysadmin"
            if not actor.sysadmin:
                raise Forbidden(
                    f"{actor.operator} is not a system admin and may not change who is one"
                )
            change = await self._store.set_user_sysadmin(user.id, sysadmin, self._projects.now())
            self._check_change(change, user, "stop being a system admin")
            return await self._find(user.id)

    async def delete(self, actor: Principal, ref: int | str) -> User:
        """Delete a user (by id, or by name) with its memberships, refresh tokens and web
        sessions, which stop working at once; system admins only. As in Harbor, nobody
        deletes themselves or the system admin `admin`; nor the last system admin; and only a
        system admin deletes a system admin. Raises Forbidden, UserNotFound."""
        async with self._audit.operation(actor, "delete", "user", str(ref)) as op:
            self._access.require_system(actor, "user", "delete")
            user = await self._find(ref)
            op.resource = user.username
            if user.username == ADMIN or (actor.user is not None and actor.user.id == user.id):
                raise Forbidden(f"user {user.username!r} cannot be deleted")
            _require_sysadmin_over(actor, user, "delete")
            self._check_change(await self._store.delete_user(user.id), user, "be deleted")
            return user

    @staticmethod
    def _check_change(change: UserChange, user: User, what: str) -> None:
        if change is UserChange.MISSING:
            raise UserNotFound(f"user {user.username!r} not found")
        if change is UserChange.LAST_SYSADMIN:
            raise Forbidden(f"user {user.username!r} is the last system admin and cannot {what}")

    async def change_password(
        self, actor: Principal, user_id: int, old: str | None, new: str, address: str = ""
    ) -> None:
        """Users change their own password (the old one required); system admins (and robots
        holding `user:update`) anyone's, but only a system admin a system admin's. A wrong
        old password is a failed authentication of the user from `address` (the client),
        behind the same throttle as the token endpoint. Raises Forbidden, BadRequest,
        UserNotFound, TooManyRequests."""
        async with self._audit.operation(actor, "update", "user", f"{user_id}/password") as op:
            own = actor.user is not None and actor.user.id == user_id
            if not own:
                self._access.require_system(actor, "user", "update")
            user = await self._store.find_user_by_id(user_id)
            if user is None:
                raise UserNotFound(f"user {user_id} not found")
            op.resource = f"{user.username}/password"  # as `user set-password` records it
            if not own:
                _require_sysadmin_over(actor, user, "change the password of")
            if own and not actor.sysadmin:
                await self._check_old_password(user, old, address)
            await self._replace_password(user, check_password(new))

    async def set_password(self, actor: Principal, username: str, new: str) -> User:
        """System admins set a user's password by name, without the old one: how the command
        line recovers a lost password. As a change does, it ends the user's refresh tokens
        and web sessions. Raises Forbidden, UserNotFound, BadRequest (the password rule)."""
        async with self._audit.operation(actor, "update", "user", f"{username}/password"):
            self._access.require_system(actor, "user", "update")
            user = await self._find(username)
            _require_sysadmin_over(actor, user, "change the password of")
            await self._replace_password(user, check_password(new))
            return user

    async def _replace_password(self, user: User, secret: Secret) -> None:
        await self._store.update_user_password(
            user.id, await self._verifier.hash(secret), self._projects.now()
        )
        await self._store.delete_refresh_tokens(user_id=user.id)
        await self._store.delete_sessions(user_id=user.id)  # web logins end too

    async def _check_old_password(self, user: User, old: str | None, address: str) -> None:
        """Raise Forbidden unless `old` is the user's password.

        NOTE: whoever holds a user's session cookie (or a forgotten, unlocked browser) could
        otherwise guess the password here without limit; each guess counts against the same
        (account, address) score as a guess at the token endpoint. A missing old password is
        no guess and is not counted."""
        if not old:
            raise Forbidden("the old password is wrong")

        async def check(admit: Callable[[], Awaitable[None]] | None) -> None:
            if not await self._verifier.verify(Secret(old), user.password_hash, admit):
                raise Forbidden("the old password is wrong")

        if self._throttle is None:
            await check(None)
        else:
            await self._throttle.guard(user.username, address, old, check, Forbidden)


class MemberService:
    def __init__(
        self, store: Store, access: AccessService, audit: AuditService, projects: ProjectService
    ) -> None:
        self._store = store
        self._access = access
        self._audit = audit
        self._projects = projects

    @staticmethod
    def _require_role_within(actor: Principal, project: Project, role: Role) -> None:
        """A robot may make someone a member only with a role whose permissions in the
        project lie within its own there: else it could hand out, through a user it
        controls, what it may not hand out to a robot. Users are governed by their role."""
        if actor.robot is None:
            return
        found = role_excess(role, project.id, project.name, actor.robot.permissions)
        if found is not None:
            raise Forbidden(
                f"a robot may give only roles whose permissions are within its own: "
                f"the role {role.harbor_name} holds {found} beyond this robot"
            )

    async def list(
        self,
        actor: Principal,
        project_ref: str,
        name_contains: str = "",
        is_name: bool | None = None,
    ) -> list[Member]:
        project = await self._projects.resolve(project_ref, is_name)
        await self._access.require(actor, project, "member", "list")
        return await self._store.list_members(project.id, name_contains)

    async def get(
        self, actor: Principal, project_ref: str, member_id: int, is_name: bool | None = None
    ) -> Member:
        project = await self._projects.resolve(project_ref, is_name)
        await self._access.require(actor, project, "member", "read")
        member = await self._store.find_member_by_id(project.id, member_id)
        if member is None:
            raise MemberNotFound(f"member {member_id} not found")
        return member

    async def add(
        self,
        actor: Principal,
        project_ref: str,
        role: Role,
        *,
        username: str | None = None,
        user_id: int | None = None,
        is_name: bool | None = None,
    ) -> Member:
        """Raises BadRequest (no user given), UserNotFound, Conflict (already a member)."""
        who = username if username is not None else str(user_id)
        async with self._audit.operation(
            actor, "create", "member", f"{project_ref}/{who}"
        ) as entry:
            project = await self._projects.resolve(project_ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "member", "create")
            self._require_role_within(actor, project, role)
            if username is not None:
                user = await self._store.find_user(username)
            elif user_id is not None:
                user = await self._store.find_user_by_id(user_id)
            else:
                raise BadRequest("member_user needs username or user_id")
            if user is None:
                raise UserNotFound(f"user {who!r} not found")
            return await self._store.add_member(project.id, user.id, role, self._projects.now())

    async def update(
        self,
        actor: Principal,
        project_ref: str,
        member_id: int,
        role: Role,
        is_name: bool | None = None,
    ) -> None:
        async with self._audit.operation(
            actor, "update", "member", f"{project_ref}/{member_id}"
        ) as entry:
            project = await self._projects.resolve(project_ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "member", "update")
            self._require_role_within(actor, project, role)
            if not await self._store.update_member(
                project.id, member_id, role, self._projects.now()
            ):
                raise MemberNotFound(f"member {member_id} not found")

    async def delete(
        self, actor: Principal, project_ref: str, member_id: int, is_name: bool | None = None
    ) -> None:
        async with self._audit.operation(
            actor, "delete", "member", f"{project_ref}/{member_id}"
        ) as entry:
            project = await self._projects.resolve(project_ref, is_name)
            entry.project_id = project.id
            await self._access.require(actor, project, "member", "delete")
            if not await self._store.delete_member(project.id, member_id):
                raise MemberNotFound(f"member {member_id} not found")
