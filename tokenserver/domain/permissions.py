"""Robot permissions and how they become registry actions (REFERENCE.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tokenserver.errors import BadRequest


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Access:
    """One `{"resource", "action", "effect"}` entry of a Harbor permission."""

    resource: str
    action: str
    effect: Effect = Effect.ALLOW

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


@dataclass(frozen=True, slots=True)
class Permission:
    """`{"kind": "project", "namespace": <project>, "access": [...]}`."""

    namespace: str
    access: tuple[Access, ...]
    kind: str = "project"


# Harbor's project robot permissions, in the order its documentation lists them.
PROJECT_ROBOT_ACCESS: tuple[tuple[str, str], ...] = (
    ("repository", "push"),
    ("repository", "pull"),
    ("artifact", "delete"),
    ("helm-chart", "read"),
    ("helm-chart-version", "create"),
    ("helm-chart-version", "delete"),
    ("tag", "create"),
    ("tag", "delete"),
    ("artifact-label", "create"),
    ("scan", "create"),
)

# Registry actions in the order tokens list them.
REGISTRY_ACTIONS: tuple[str, ...] = ("pull", "push", "delete")

# Which registry actions on `repository:<project>/...` each permission grants.
_REPOSITORY_ACTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("repository", "pull"): frozenset({"pull"}),
    # NOTE: the registry needs pull for every push request, so push implies pull.
    ("repository", "push"): frozenset({"push", "pull"}),
    ("repository", "delete"): frozenset({"delete"}),
    ("artifact", "delete"): frozenset({"delete"}),
}


def parse_access(text: str) -> Access:
    """Parse `resource:action` as given on the command line; refuse what a project robot
    cannot hold with a message that lists what it can."""
    resource, _, action = text.strip().partition(":")
    if (resource, action) not in PROJECT_ROBOT_ACCESS:
        allowed = ", ".join(f"{r}:{a}" for r, a in PROJECT_ROBOT_ACCESS)
        raise BadRequest(f"unknown permission {text!r}; a project robot may hold: {allowed}")
    return Access(resource, action)


def check_project_access(access: Iterable[Access]) -> tuple[Access, ...]:
    """Validate the access list of a project robot and return it without repeats."""
    seen: dict[tuple[str, str, Effect], Access] = {}
    for entry in access:
        if (entry.resource, entry.action) not in PROJECT_ROBOT_ACCESS:
            parse_access(f"{entry.resource}:{entry.action}")  # raises with the full message
        seen.setdefault((entry.resource, entry.action, entry.effect), entry)
    if not seen:
        raise BadRequest("a robot needs at least one permission")
    return tuple(seen.values())


def repository_actions(access: Iterable[Access]) -> frozenset[str]:
    """Registry actions on a repository that `access` grants. A deny wins over any allow."""
    allowed: set[str] = set()
    denied: set[str] = set()
    for entry in access:
        actions = _REPOSITORY_ACTIONS.get((entry.resource, entry.action), frozenset())
        if entry.effect is Effect.DENY:
            # Denying push leaves pull alone: only the implication runs the other way.
            denied.update(actions - {"pull"} if entry.action == "push" else actions)
        else:
            allowed.update(actions)
    if "pull" in denied:
        denied.add("push")  # a push cannot succeed without pull
    return frozenset(allowed - denied)


def grant_actions(requested: Iterable[str], permitted: frozenset[str]) -> tuple[str, ...]:
    """Requested ∩ permitted, in the caller's order; `*` stands for every permitted action."""
    granted: list[str] = []
    for action in requested:
        candidates = [a for a in REGISTRY_ACTIONS if a in permitted] if action == "*" else [action]
        granted.extend(a for a in candidates if a in permitted and a not in granted)
    return tuple(granted)
