"""The `q=` keys and `sort=` keys of each Harbor list tokenserver serves, as Harbor's models
declare them (each column name and Go field name; a key Harbor defines but tokenserver has no
data for is not accepted), and the order of each list when `sort` names no key it knows.

Besides Harbor's spellings, a key is also accepted under the name the list's JSON shows when
Harbor's column differs (`expires_at` for `expiresat`): a client reading the answer should
not have to know Harbor's tables."""

from __future__ import annotations

from tokenserver.domain.models import Level, Project, Robot, User
from tokenserver.domain.query import Key, Keys, Kind, Op, Query
from tokenserver.errors import BadRequest

_EXACT_ONLY = frozenset({Op.EQ})

USER_KEYS: Keys[User] = Keys(
    "users",
    (
        Key("user_id", Kind.INT, ("UserID",)),
        Key("username", Kind.TEXT, ("Username",)),
        Key("email", Kind.TEXT, ("Email",)),
        Key("realname", Kind.TEXT, ("Realname",)),
        Key("comment", Kind.TEXT, ("Comment",)),
        Key("sysadmin_flag", Kind.BOOL, ("SysAdminFlag",)),
        Key("deleted", Kind.BOOL, ("Deleted",)),
        Key("creation_time", Kind.TIME, ("CreationTime",)),
        Key("update_time", Kind.TIME, ("UpdateTime",)),
        Key("username_or_email", Kind.TEXT, ("UsernameOrEmail",), _EXACT_ONLY, sortable=False),
    ),
    {
        "user_id": lambda u: u.id,
        "username": lambda u: u.username,
        "email": lambda u: u.email,
        "realname": lambda u: u.realname,
        "comment": lambda u: u.comment,
        "sysadmin_flag": lambda u: u.sysadmin,
        "deleted": lambda u: False,  # a deleted user is gone
        "creation_time": lambda u: u.creation_time,
        "update_time": lambda u: u.update_time,
        "username_or_email": lambda u: (u.username, u.email),
    },
    default_order=[("username", False)],
)

PROJECT_KEYS: Keys[Project] = Keys(
    "projects",
    (
        Key("project_id", Kind.INT, ("ProjectID",)),
        Key("name", Kind.TEXT, ("Name",)),
        Key("owner_id", Kind.INT, ("OwnerID",)),
        Key("owner", Kind.TEXT, ("Owner",), _EXACT_ONLY, sortable=False),
        Key("public", Kind.BOOL, ("Public",), _EXACT_ONLY, sortable=False),
        Key("registry_id", Kind.INT, ("RegistryID",)),
        Key("deleted", Kind.BOOL, ("Deleted",)),
        Key("creation_time", Kind.TIME, ("CreationTime",)),
        Key("update_time", Kind.TIME, ("UpdateTime",)),
    ),
    {
        "project_id": lambda p: p.id,
        "name": lambda p: p.name,
        "owner_id": lambda p: p.owner_id,
        "owner": lambda p: p.owner_name or None,
        "public": lambda p: p.public,
        "registry_id": lambda p: 0,  # Harbor's 0: not a proxy cache
        "deleted": lambda p: False,
        "creation_time": lambda p: p.creation_time,
        "update_time": lambda p: p.update_time,
    },
    default_order=[("name", False)],
)


def _robot_names(robot: Robot) -> tuple[str, ...]:
    """A robot's name as Harbor stores it (`<project>+<name>` for a project robot), then its
    short name: `name=~x` finds what Harbor finds, `name=ci` the robot `ci` as before."""
    if robot.project_name is None or robot.legacy:
        return (robot.name,)
    return (f"{robot.project_name}+{robot.name}", robot.name)


ROBOT_KEYS: Keys[Robot] = Keys(
    "robots",
    (
        Key("Level", Kind.TEXT, (), _EXACT_ONLY, sortable=False),
        Key("project_id", Kind.INT, ("ProjectID",)),
        Key("id", Kind.INT, ("ID",)),
        Key("name", Kind.TEXT, ("Name",)),
        Key("description", Kind.TEXT, ("Description",)),
        Key("duration", Kind.INT, ("Duration",)),
        Key("expiresat", Kind.INT, ("ExpiresAt", "expires_at")),
        Key("disabled", Kind.BOOL, ("Disabled", "disable")),
        Key("visible", Kind.BOOL, ("Visible",)),
        Key("creation_time", Kind.TIME, ("CreationTime",)),
        Key("update_time", Kind.TIME, ("UpdateTime",)),
    ),
    {
        "Level": lambda r: r.level.value,
        "project_id": lambda r: r.project_id or 0,  # Harbor's 0: a system robot
        "id": lambda r: r.id,
        "name": _robot_names,
        "description": lambda r: r.description,
        "duration": lambda r: r.duration,
        "expiresat": lambda r: r.expires_at,
        "disabled": lambda r: r.disabled,
        "visible": lambda r: True,  # Harbor hides robots it makes for itself; none here
        "creation_time": lambda r: r.creation_time,
        "update_time": lambda r: r.update_time,
    },
    default_order=[("name", False)],
)


def robot_scope(query: Query) -> tuple[int | None, Query]:
    """Harbor's robot list: `Level=project,ProjectID=N` lists project N's robots; no Level,
    or `Level=system`, the system robots (a ProjectID is then ignored, as Harbor overrides
    it). The project id (None: system robots) and the query left to apply. Raises BadRequest
    with Harbor's messages."""
    level = query.condition("Level")
    rest = query.without("Level")
    if level is None or level.values[0] == Level.SYSTEM:
        return None, rest.without("project_id")
    if level.values[0] != Level.PROJECT:
        raise BadRequest("bad request error level input")
    project = query.condition("project_id")
    if project is None:
        raise BadRequest("must with project ID when to query project robots")
    project_id = project.values[0]
    if project.op is not Op.EQ or not isinstance(project_id, int) or project_id <= 0:
        raise BadRequest("ProjectID must be a positive integer")
    return project_id, rest


_AUDIT = (
    Key("id", Kind.INT, ("ID",)),
    Key("project_id", Kind.INT, ("ProjectID",)),
    Key("operation", Kind.TEXT, ("Operation",)),
    Key("resource_type", Kind.TEXT, ("ResourceType",)),
    Key("resource", Kind.TEXT, ("Resource",)),
    Key("username", Kind.TEXT, ("Username",)),
    Key("op_time", Kind.TIME, ("OpTime",)),
)
# The audit log is filtered in the database: no values to read here.
AUDIT_KEYS: Keys[object] = Keys("audit log", _AUDIT, default_order=[("op_time", True)])
AUDIT_EXT_KEYS: Keys[object] = Keys(
    "audit log",
    (
        *_AUDIT,
        Key("op_desc", Kind.TEXT, ("OperationDescription", "operation_description")),
        Key("op_result", Kind.BOOL, ("IsSuccessful", "operation_result")),
    ),
    default_order=[("op_time", True)],
)
