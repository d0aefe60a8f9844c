"""Delegation: whether one set of robot permissions lies within another, on every project
that exists or may exist later, and in the system. A robot may create, change or act on
another robot only when the other's effective permissions are within its own.

Effective means allows minus denies, `*` meaning every project, future ones too, with the
rules of `Permission.access_on`: allows are pinned to the project they were granted on,
denies also apply to any later project of the same name. Public projects' grants are left
out on both sides: they belong to everyone and can be withdrawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenserver.domain.permissions import (
    ALL_PROJECTS,
    Access,
    Grants,
    Permission,
    PermissionKind,
)
from tokenserver.domain.roles import ROLE_GRANTS, Role

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Excess:
    """What `child` holds beyond `parent`: the (resource, action) pairs and where."""

    pairs: tuple[Pair, ...]
    where: str

    def __str__(self) -> str:
        held = ", ".join(f"{r}:{a}" for r, a in self.pairs)
        return f"{held} {self.where}"


def _effective(grants: Grants) -> frozenset[Pair]:
    return grants.allowed - grants.denied


def project_effective(
    permissions: Iterable[Permission], project_id: int | None, project_name: str | None
) -> frozenset[Pair]:
    """The pairs `permissions` grant in one project (None: an id or name no entry names)."""
    return _effective(
        Grants.of(a for p in permissions for a in p.access_on(project_id, project_name))
    )


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
        extra = project_effective(child, project_id, name) - project_effective(
            parent, project_id, name
        )
        if extra:
            return Excess(tuple(sorted(extra)), where)
    extra = system_effective(child) - system_effective(parent)
    if extra:
        return Excess(tuple(sorted(extra)), "in the system")
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
