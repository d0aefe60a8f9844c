"""Delegation: whether one set of robot permissions lies within another, on every project
that exists or may exist later, and in the system. A robot may create, change or act on
another robot only when the other's effective permissions are within its own.

Effective means allows minus denies, `*` meaning every project, future ones too, with the
rules of `Permission.access_on`: allows are pinned to the project they were granted on,
denies also apply to any later project of the same name. Public projects' grants are left
out on both sides: they belong to everyone and can be withdrawn.

Repository patterns make a grant per repository. The check stays exact without patterns and
is safe with them: a child's allow on a pattern must lie within one pattern of the parent's
allows, and where it meets a parent's deny, within one of the child's own denies. A child
that only a union of the parent's patterns covers is refused (never one that escapes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenserver.domain.permissions import (
    ALL_PROJECTS,
    NO_GRANTS,
    REPOSITORY_RESOURCES,
    Access,
    Grants,
    Permission,
    PermissionKind,
)
from tokenserver.domain.repositories import EVERYTHING, Shape, shapes
from tokenserver.domain.roles import ROLE_GRANTS, Role

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Excess:
    """What `child` holds beyond `parent`: the (resource, action) pairs, each with the
    repositories it is held on (`**`: all of them), and where."""

    pairs: tuple[tuple[Pair, Shape], ...]
    where: str

    def __str__(self) -> str:
        held = ", ".join(
            f"{r}:{a}" + ("" if on == EVERYTHING else f" on repositories {str(on)!r}")
            for (r, a), on in self.pairs
        )
        return f"{held} {self.where}"


def _effective(grants: Grants) -> frozenset[Pair]:
    return grants.allowed - grants.denied


def project_effective(
    permissions: Iterable[Permission],
    project_id: int | None,
    project_name: str | None,
    repository: str | None = None,
) -> frozenset[Pair]:
    """The pairs `permissions` grant in one project (None: an id or name no entry names), on
    the repository `repository` (relative to the project) if given; otherwise what reaches
    the whole project, patterned entries left out."""
    grants = NO_GRANTS
    for p in permissions:
        grants = grants | p.grants_on(project_id, project_name)
    return _effective(grants if repository is None else grants.at(repository))


Rule = tuple[Pair, Shape]


def _rules(
    permissions: Iterable[Permission], project_id: int | None, project_name: str | None
) -> tuple[list[Rule], list[Rule]]:
    """The (pair, repositories) allows and denies that apply in one project."""
    allows: list[Rule] = []
    denies: list[Rule] = []
    for p in permissions:
        access = p.access_on(project_id, project_name)
        if not access:
            continue
        grants = Grants.of(access)  # push implies pull
        on = shapes(p.repositories)
        for pairs, rules in ((grants.allowed, allows), (grants.denied, denies)):
            for pair in sorted(pairs):
                rules.extend(
                    (pair, shape)
                    for shape in (on if pair[0] in REPOSITORY_RESOURCES else (EVERYTHING,))
                )
    return allows, denies


def _project_excess(
    child: Sequence[Permission],
    parent: Sequence[Permission],
    project_id: int | None,
    project_name: str | None,
) -> tuple[Rule, ...]:
    child_allows, child_denies = _rules(child, project_id, project_name)
    parent_allows, parent_denies = _rules(parent, project_id, project_name)
    extra: list[Rule] = []
    for pair, shape in child_allows:
        own_denies = [d for q, d in child_denies if q == pair]
        if any(shape.within(d) for d in own_denies):
            continue  # the child denies itself all of it
        if not any(q == pair and shape.within(a) for q, a in parent_allows):
            extra.append((pair, shape))
            continue
        for q, d in parent_denies:
            met = shape.meet(d) if q == pair else None
            if met is not None and not any(met.within(o) for o in own_denies):
                extra.append((pair, met))
                break
    return tuple(dict.fromkeys(extra))


def system_effective(permissions: Iterable[Permission]) -> frozenset[Pair]:
    return _effective(
        Grants.of(a for p in permissions if p.kind == PermissionKind.SYSTEM for a in p.access)
    )


def _project_cases(
    permissions: Sequence[Permission],
) -> list[tuple[int | None, str | None, str]]:
    """Every kind of project the entries can tell apart, with words for a message.

    A project is either one some entry is pinned to (by id), or one whose name some entry
    names but whose id none is pinned to (created later, or re-created), or any other. The
    effective grant is the same for every project of a kind, so checking one of each checks
    them all, existing or future.
    """
    pinned: dict[int, str] = {}
    names: set[str] = set()
    for p in permissions:
        if p.kind != PermissionKind.PROJECT or p.namespace == ALL_PROJECTS:
            continue
        names.add(p.namespace)
        if p.project_id is not None:
            pinned[p.project_id] = p.namespace
    cases: list[tuple[int | None, str | None, str]] = [
        (pid, name, f"in project {name!r}") for pid, name in sorted(pinned.items())
    ]
    cases += [(None, n, f"in any later project named {n!r}") for n in sorted(names)]
    cases.append((None, None, "in every project ('*')"))
    return cases


def excess(child: Sequence[Permission], parent: Sequence[Permission]) -> Excess | None:
    """What `child` grants, on some project (existing or future) or in the system, that
    `parent` does not; None when `child` is within `parent`."""
    for project_id, name, where in _project_cases([*child, *parent]):
        found = _project_excess(child, parent, project_id, name)
        if found:
            return Excess(tuple(sorted(found, key=lambda r: (r[0], str(r[1])))), where)
    extra = system_effective(child) - system_effective(parent)
    if extra:
        return Excess(tuple((pair, EVERYTHING) for pair in sorted(extra)), "in the system")
    return None


def role_excess(
    role: Role, project_id: int, project_name: str, parent: Sequence[Permission]
) -> Excess | None:
    """What a member with `role` in the project holds that `parent` does not grant there;
    None when the role is within `parent` (a robot may hand out only what it holds)."""
    held = Permission(
        project_name,
        tuple(Access(r, a) for r, a in sorted(ROLE_GRANTS[role].allowed)),
        PermissionKind.PROJECT,
        project_id,
    )
    return excess([held], parent)
