"""Permissions (Harbor's RBAC vocabulary) and how they become token actions.

A permission entry is `{"kind", "namespace", "access": [{"resource", "action", "effect"}]}`.
Project-kind entries name a project (or `*`, every project, including ones created later);
system-kind entries use namespace `/`. A deny wins over any allow.

A project-kind entry may also hold `repositories`, patterns relative to the project
(domain/repositories.py): its actions on per-repository resources (REPOSITORY_RESOURCES:
pull, push, delete, tags, artifacts, ...) then reach only the repositories they match; its
other actions (robots, members, ...) are the project's and reach it whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from tokenserver.domain.repositories import compile_patterns
from tokenserver.errors import BadRequest


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class PermissionKind(StrEnum):
    """A project-kind entry names a project (or `*`); a system-kind entry uses namespace `/`."""

    PROJECT = "project"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Access:
    """One `{"resource", "action", "effect"}` entry of a Harbor permission."""

    resource: str
    action: str
    effect: Effect = Effect.ALLOW

    def __str__(self) -> str:
        return f"{self.resource}:{self.action}"


ALL_PROJECTS = "*"
SYSTEM_NAMESPACE = "/"


@dataclass(frozen=True, slots=True)
class Permission:
    """`{"kind": "project"|"system", "namespace": <project>|"*"|"/", "access": [...]}`.

    `project_id` pins a project-kind entry to the project it was granted on. It is None for
    `*`, for system entries, and for an entry that only denies on a project that does not
    exist (any more). `repositories`: the entry's repository patterns, checked and
    normalised (domain/repositories.py); () is every repository.
    """

    namespace: str
    access: tuple[Access, ...]
    kind: PermissionKind = PermissionKind.PROJECT
    project_id: int | None = None
    repositories: tuple[str, ...] = ()

    def access_on(self, project_id: int | None, project_name: str | None) -> tuple[Access, ...]:
        """The entries of `access` that apply in the project `project_id` named
        `project_name` (None for either: a project this entry cannot know, created later).

        Fail closed in both directions when a project is deleted and created again under the
        same name: an allow stays pinned to the project it was granted on, so the new project
        does not inherit it; a deny keeps applying to every project of that name.
        """
        if self.kind != PermissionKind.PROJECT:
            return ()
        if self.namespace == ALL_PROJECTS or (
            self.project_id is not None and self.project_id == project_id
        ):
            return self.access
        if self.namespace == project_name:
            return tuple(a for a in self.access if a.effect is Effect.DENY)
        return ()

    def grants_on(self, project_id: int | None, project_name: str | None) -> Grants:
        """What this entry grants in the project (see `access_on`), its patterns applied."""
        access = self.access_on(project_id, project_name)
        return Grants.of(access, self.repositories) if access else NO_GRANTS


@dataclass(frozen=True, slots=True)
class RequestedPermission:
    """A permission entry as a caller wrote it: `kind` not checked yet (an unknown kind is
    refused where the rest of the robot is checked), the namespace a project name. The robot
    service resolves it into a Permission."""

    namespace: str
    access: tuple[Access, ...]
    kind: str = PermissionKind.PROJECT
    # None: the caller sent none (every repository); checked where the robot is.
    repositories: tuple[str, ...] | None = None


def keep_patterns(
    sent: Sequence[RequestedPermission], stored: Sequence[Permission]
) -> tuple[RequestedPermission, ...]:
    """A PUT's entries, where an entry came without `repositories`, given the repository
    patterns of the stored entry it stands for.

    Harbor clients know nothing of `repositories`: one that reads a robot and PUTs it back
    (to disable it, or to add an action) sends its entries without them, and taking that as
    "every repository" would widen the robot without anyone asking. So a project entry sent
    without `repositories`, for a namespace whose stored entries have patterns, keeps the
    patterns of the stored entry with the same access (or of the namespace's only entry, or,
    when the entries come back as many and in the order they were, of the one in its place).
    Widening is asked for in words: `"repositories": ["**"]`. Raises BadRequest when it
    cannot be told which stored entry an entry stands for.
    """
    result = list(sent)
    unsent = {
        e.namespace for e in sent if e.kind == PermissionKind.PROJECT and e.repositories is None
    }
    for namespace in sorted(unsent):
        had = [s for s in stored if s.kind == PermissionKind.PROJECT and s.namespace == namespace]
        if not any(s.repositories for s in had):
            continue
        places = [
            i
            for i, e in enumerate(sent)
            if e.kind == PermissionKind.PROJECT and e.namespace == namespace
        ]
        pairs: list[tuple[int, Permission]]
        if len(places) == len(had) and all(
            set(sent[i].access) == set(s.access) for i, s in zip(places, had, strict=True)
        ):
            pairs = list(zip(places, had, strict=True))
        else:
            pairs = []
            for i in places:
                if sent[i].repositories is not None:
                    continue
                same = [s for s in had if set(s.access) == set(sent[i].access)]
                if len(same) == 1 or len(had) == 1:
                    pairs.append((i, (same or had)[0]))
                    continue
                raise BadRequest(
                    f"bad request permission: the entries for {namespace!r} have repository "
                    "patterns, and an entry without 'repositories' matches none of them: send "
                    "'repositories' on each entry (GET shows them; [\"**\"] for every repository)"
                )
        for i, s in pairs:
            if result[i].repositories is None and s.repositories:
                result[i] = replace(result[i], repositories=s.repositories)
    return tuple(result)


def after_project_deleted(
    permissions: tuple[Permission, ...], project_id: int
) -> tuple[Permission, ...]:
    """`permissions` once project `project_id` is gone: entries granted on it lose their
    allows, which no later project inherits, and keep their denies, which go on applying to
    any project of that name; an entry left with nothing is dropped. What the robot shows is
    then what is enforced."""
    kept: list[Permission] = []
    for p in permissions:
        if p.kind != PermissionKind.PROJECT or p.project_id != project_id:
            kept.append(p)
            continue
        denies = tuple(a for a in p.access if a.effect is Effect.DENY)
        if denies:
            kept.append(
                Permission(p.namespace, denies, PermissionKind.PROJECT, None, p.repositories)
            )
    return tuple(kept)


def _pairs(*spec: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((r, a) for r, actions in spec for a in actions.split())


# Harbor's robot permission provider (`rbac.GetPermissionProvider()`, src/common/rbac/const.go),
# in its order, the same in Harbor 2.13 to 2.15: what its API accepts in a robot, what its
# `GET /permissions` lists and what its page's "Select all" sends.
HARBOR_SYSTEM_PERMISSIONS = _pairs(
    ("audit-log", "list"),
    ("preheat-instance", "read create delete list update"),
    ("project", "list create"),
    ("replication-policy", "read create delete list update"),
    ("replication", "read create list"),
    ("replication-adapter", "list"),
    ("registry", "read create delete list update"),
    ("scan-all", "read update stop create"),
    ("system-volumes", "read"),
    ("garbage-collection", "read create list update stop"),
    ("purge-audit", "read create list update stop"),
    ("jobservice-monitor", "list stop"),
    ("scanner", "read create delete list update"),
    ("label", "read create delete update"),
    ("security-hub", "read list"),
    ("catalog", "read"),
    ("quota", "read list"),
    ("robot", "create read list delete"),
    ("user", "create read update list delete"),
    ("ldap-user", "create list"),
    ("quota", "update"),
    ("user-group", "create read update list delete"),
)
HARBOR_PROJECT_PERMISSIONS = _pairs(
    ("log", "list"),
    ("project", "read delete update"),
    ("metadata", "read create delete list update"),
    ("repository", "read update delete list pull push"),
    ("artifact", "read create list delete"),
    ("scan", "create read stop"),
    ("sbom", "create stop read"),
    ("tag", "create list delete"),
    ("accessory", "list"),
    ("artifact-addition", "read"),
    ("artifact-label", "create delete"),
    ("scanner", "create read"),
    ("preheat-policy", "read create delete list update"),
    ("immutable-tag", "create delete list update"),
    ("notification-policy", "read create delete list update"),
    ("tag-retention", "read create delete list update"),
    ("label", "read create delete list update"),
    ("quota", "read"),
    ("robot", "create read list delete"),
    ("export-cve", "create read"),
    ("member", "create read update list delete"),
)

# What robots may hold: Harbor's current lists, and what was accepted before, so that robots,
# exports and scripts keep working: the helm permissions of Harbor before 2.8 (its documented
# project robot set), `robot:update` (what a robot needs to PUT or PATCH robots, which
# Harbor's lists leave out) and Harbor 2.12's system `export-cve` (a project one since 2.13).
PROJECT_PERMISSIONS = frozenset(HARBOR_PROJECT_PERMISSIONS) | frozenset(
    _pairs(
        ("helm-chart", "read"), ("helm-chart-version", "create read delete"), ("robot", "update")
    )
)
SYSTEM_PERMISSIONS = frozenset(HARBOR_SYSTEM_PERMISSIONS) | frozenset(
    _pairs(("robot", "update"), ("export-cve", "create read"))
)

# Harbor's documented project robot permissions (the CLI's help lists these first).
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


def _described(table: frozenset[tuple[str, str]]) -> str:
    by_resource: dict[str, list[str]] = {}
    for resource, action in sorted(table):
        by_resource.setdefault(resource, []).append(action)
    return ", ".join(f"{r}:{'|'.join(a)}" for r, a in by_resource.items())


def parse_access(text: str) -> Access:
    """Parse `resource:action` as given on the command line for a project robot; refuse
    what a project robot cannot hold with a message that lists what it can."""
    resource, _, action = text.strip().partition(":")
    if (resource, action) not in PROJECT_PERMISSIONS:
        raise BadRequest(
            f"unknown permission {text!r}; a project robot may hold: "
            f"{_described(PROJECT_PERMISSIONS)}"
        )
    return Access(resource, action)


def check_access(kind: PermissionKind, access: Iterable[Access]) -> tuple[Access, ...]:
    """Validate one entry's access list for `kind` and return it without repeats."""
    table = PROJECT_PERMISSIONS if kind == PermissionKind.PROJECT else SYSTEM_PERMISSIONS
    seen: dict[tuple[str, str, Effect], Access] = {}
    for entry in access:
        if (entry.resource, entry.action) not in table:
            raise BadRequest(
                f"bad request permission: {entry.resource}:{entry.action} is not a "
                f"{kind} permission"
            )
        seen.setdefault((entry.resource, entry.action, entry.effect), entry)
    if not seen:
        raise BadRequest("bad request permission: a permission entry needs at least one access")
    return tuple(seen.values())


# The resources that live in a repository (Harbor's artifact, tag, scan... are under
# /projects/{p}/repositories/{r}; a chart is an OCI repository): an entry's repository
# patterns limit its actions on these. Every other resource is the project's.
REPOSITORY_RESOURCES = frozenset(
    {
        "repository",
        "artifact",
        "artifact-addition",
        "artifact-label",
        "accessory",
        "tag",
        "scan",
        "sbom",
        "helm-chart",
        "helm-chart-version",
    }
)

Pair = tuple[str, str]


def _split(access: Iterable[Access]) -> tuple[frozenset[Pair], frozenset[Pair]]:
    """(allowed, denied) pairs of `access`."""
    allowed: set[Pair] = set()
    denied: set[Pair] = set()
    for entry in access:
        pair = (entry.resource, entry.action)
        if entry.effect is Effect.DENY:
            denied.add(pair)
        else:
            allowed.add(pair)
            if pair == ("repository", "push"):
                # NOTE: the registry needs pull for every push request, so push implies
                # pull (Harbor's UI always grants both); a deny of pull still wins.
                allowed.add(("repository", "pull"))
    return frozenset(allowed), frozenset(denied)


@dataclass(frozen=True, slots=True)
class ScopedGrants:
    """Per-repository pairs an entry with repository patterns allows and denies, and the
    repositories (relative to the project) they reach: those `matcher` matches whole."""

    patterns: tuple[str, ...]
    matcher: re.Pattern[str]
    allowed: frozenset[Pair]
    denied: frozenset[Pair]


@dataclass(frozen=True, slots=True)
class Grants:
    """The (resource, action) pairs a principal holds in one scope (a project or the system).
    A deny wins over any allow.

    `allowed` and `denied` reach the whole scope; `scoped` holds what entries with repository
    patterns grant on per-repository resources, which `at(repository)` resolves."""

    allowed: frozenset[Pair]
    denied: frozenset[Pair] = frozenset()
    scoped: tuple[ScopedGrants, ...] = ()

    def can(self, resource: str, action: str) -> bool:
        """Whether the pair is held in the whole scope: on every repository for a
        per-repository resource (a deny on some of them counts)."""
        pair = (resource, action)
        return (
            pair in self.allowed
            and pair not in self.denied
            and not any(pair in s.denied for s in self.scoped)
        )

    @classmethod
    def of(cls, access: Iterable[Access], repositories: tuple[str, ...] = ()) -> Grants:
        """The grants of one entry's `access`; with `repositories` (patterns), its
        per-repository pairs reach only the repositories those match."""
        if not repositories:
            return cls(*_split(access))
        access = tuple(access)
        scoped = _split(a for a in access if a.resource in REPOSITORY_RESOURCES)
        whole = _split(a for a in access if a.resource not in REPOSITORY_RESOURCES)
        if not scoped[0] and not scoped[1]:
            return cls(*whole)
        return cls(
            *whole,
            scoped=(ScopedGrants(repositories, compile_patterns(repositories), *scoped),),
        )

    def __or__(self, other: Grants) -> Grants:
        if not other.allowed and not other.denied and not other.scoped:
            return self
        if not self.allowed and not self.denied and not self.scoped:
            return other
        return Grants(
            self.allowed | other.allowed, self.denied | other.denied, self.scoped + other.scoped
        )

    def at(self, repository: str) -> Grants:
        """The grants on one repository, named relative to the project (`team-a/app`)."""
        if not self.scoped:
            return self
        allowed, denied = self.allowed, self.denied
        for s in self.scoped:
            if s.matcher.fullmatch(repository) is not None:
                allowed, denied = allowed | s.allowed, denied | s.denied
        return Grants(allowed, denied)

    def registry_actions(self) -> frozenset[str]:
        """Registry actions on a repository of the project (of `at(repository)`'s grants)."""
        actions: set[str] = set()
        if self.can("repository", "pull"):
            actions.add("pull")
        if self.can("repository", "push") and "pull" in actions:
            actions.add("push")  # without pull a push cannot succeed
        if self.can("repository", "delete") or self.can("artifact", "delete"):
            actions.add("delete")
        return frozenset(actions)

    def actions_on(self, resource: str) -> frozenset[str]:
        """Actions held on a non-repository resource type (tag, scan, helm-chart, ...)."""
        return frozenset(a for r, a in self.allowed if r == resource and self.can(r, a))


NO_GRANTS = Grants(frozenset())


def repository_actions(access: Iterable[Access]) -> frozenset[str]:
    """Registry actions on a repository that `access` grants. A deny wins over any allow."""
    return Grants.of(access).registry_actions()


def grant_actions(requested: Iterable[str], permitted: frozenset[str]) -> tuple[str, ...]:
    """Requested ∩ permitted, in the caller's order; `*` stands for every permitted action."""
    granted: list[str] = []
    for action in requested:
        if action == "*":
            candidates = [a for a in REGISTRY_ACTIONS if a in permitted] + sorted(
                a for a in permitted if a not in REGISTRY_ACTIONS
            )
        else:
            candidates = [action]
        granted.extend(a for a in candidates if a in permitted and a not in granted)
    return tuple(granted)
