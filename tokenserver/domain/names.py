"""Name rules for projects, robots and repositories (Harbor's, and distribution's grammar)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from tokenserver.domain.models import LEGACY_PREFIX
from tokenserver.errors import BadRequest

# Harbor's rule for project and robot names.
NAME_PATTERN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
NAME_MAX_LENGTH = 255

# distribution's reference grammar, lower case only. NOTE: distribution writes the separator as
# `[-]*`, which lets two alphanumeric runs touch; that is the same language as below, but the
# form below cannot backtrack exponentially on Python's regex engine.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?"
REPOSITORY_PATTERN = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
REPOSITORY_MAX_LENGTH = 255


def check_name(kind: str, name: str) -> str:
    """Return `name` if it is a valid project or robot name; raise BadRequest otherwise."""
    if not name:
        raise BadRequest(f"{kind} name must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise BadRequest(f"{kind} name must be at most {NAME_MAX_LENGTH} characters")
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequest(
            f"invalid {kind} name {name!r}: use lower-case letters and digits, "
            "optionally separated by single '.', '_' or '-'"
        )
    return name


def is_repository_name(name: str) -> bool:
    """True if `name` is a valid repository name (an optional `host[:port]/` prefix allowed)."""
    return len(name) <= REPOSITORY_MAX_LENGTH and REPOSITORY_PATTERN.fullmatch(name) is not None


def project_of(repository: str) -> str:
    """The project a repository belongs to: its first path component."""
    return repository.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class RobotName:
    """A robot's name split into its parts: `project` is None for a system robot. The prefix
    is never stored."""

    project: str | None
    name: str

    def full(self, prefix: str) -> str:
        if self.project is None:
            return f"{prefix}{self.name}"
        return f"{prefix}{self.project}+{self.name}"


def parse_robot_name(prefix: str, username: str) -> RobotName | None:
    """Split `<prefix><project>+<name>` (project robot) or `<prefix><name>` (system robot);
    None if `username` is not a robot's name."""
    if len(username) > _CACHED_LENGTH:
        return _parse_robot_name(prefix, username)
    return _parse_robot_name_cached(prefix, username)


def _parse_robot_name(prefix: str, username: str) -> RobotName | None:
    if not username.startswith(prefix):
        return None
    project, plus, name = username[len(prefix) :].partition("+")
    if not plus:
        return RobotName(None, project) if NAME_PATTERN.fullmatch(project) else None
    if not NAME_PATTERN.fullmatch(project) or not NAME_PATTERN.fullmatch(name):
        return None
    return RobotName(project, name)


# Every token request parses its robot's name: remember the recent ones. Only names of usual
# length, so that the entries bound the bytes too (a longer one is parsed each time).
_CACHED_LENGTH = 128
_parse_robot_name_cached = functools.lru_cache(maxsize=4096)(_parse_robot_name)


# Harbor refuses these in usernames; ':' would break Basic credentials.
_USERNAME_FORBIDDEN = set(',"~#%$:+/\\')


def check_username(username: str) -> str:
    """Return `username` if valid (1-255 printable characters, none of `,"~#%$:+/\\`)."""
    if not 1 <= len(username) <= NAME_MAX_LENGTH:
        raise BadRequest(f"username must be 1 to {NAME_MAX_LENGTH} characters")
    if not username.isprintable() or any(c.isspace() or c in _USERNAME_FORBIDDEN for c in username):
        raise BadRequest('username must not contain spaces or any of , " ~ # % $ : + / \\')
    return username


def reads_as_robot_name(prefix: str, username: str) -> bool:
    """True if `username` is a robot's full name under `prefix`, or a legacy `robot$` one
    (those are robot names whatever the prefix): the token endpoint looks such a name up as a
    robot, and the web page refuses it."""
    return username.startswith(LEGACY_PREFIX) or parse_robot_name(prefix, username) is not None


def check_not_robot_name(prefix: str, username: str) -> str:
    """Return `username` unless it reads as a robot's name under `prefix`; raise BadRequest
    otherwise. NOTE: such a user could never log in to the web page, and a robot of that name
    would take its place at the token endpoint."""
    if reads_as_robot_name(prefix, username):
        raise BadRequest(
            f"username {username!r} reads as a robot account's name under the robot name "
            f"prefix {prefix!r} (robots.name_prefix); choose a name that does not"
        )
    return username


def shell_expanded(prefix: str, ref: str) -> bool:
    """True if `ref`, a robot name that was not found, reads as a robot name typed unquoted
    in a shell: `robot$demo+ci` arrives as `robot+ci` (or `robot-x+ci` for `robot$demo-x+ci`,
    `robot` for `robot$fleet`) once the shell has replaced the unset `$demo` with nothing.
    Only for a prefix holding `$`; the part before it must open `ref`, the rest of the prefix
    must be gone, and what follows must be where a variable's name would end."""
    head, dollar, _ = prefix.partition("$")
    if not dollar or ref.startswith(prefix) or not ref.startswith(head):
        return False
    rest = ref[len(head) :]
    return rest == "" or rest[0] in "+.-"
