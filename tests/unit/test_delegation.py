"""Effective permissions and delegation, at the domain level: tables of cases, and a property
that no project, existing or future, escapes the check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenserver.domain.delegation import excess, project_effective, system_effective
from tokenserver.domain.permissions import (
    PROJECT_PERMISSIONS,
    SYSTEM_PERMISSIONS,
    Access,
    Effect,
    Permission,
    PermissionKind,
    after_project_deleted,
)

PULL = Access("repository", "pull")
PUSH = Access("repository", "push")
DELETE = Access("repository", "delete")
NO_PULL = Access("repository", "pull", Effect.DENY)
NO_PUSH = Access("repository", "push", Effect.DENY)


def every(*access: Access) -> Permission:
    return Permission("*", access)


def pinned(name: str, project_id: int, *access: Access) -> Permission:
    return Permission(name, access, PermissionKind.PROJECT, project_id)


def named(name: str, *access: Access) -> Permission:
    return Permission(name, access, PermissionKind.PROJECT)


def in_system(*access: Access) -> Permission:
    return Permission("/", access, PermissionKind.SYSTEM)


# (entry, project id, project name) -> the access that applies there
ACCESS_ON = [
    (every(PULL, NO_PUSH), 7, "v", (PULL, NO_PUSH)),
    (every(PULL), None, None, (PULL,)),
    (pinned("v", 7, PULL, NO_PUSH), 7, "v", (PULL, NO_PUSH)),
    # re-created under the same name: the allow stays behind, the deny follows the name
    (pinned("v", 7, PULL, NO_PUSH), 8, "v", (NO_PUSH,)),
    (pinned("v", 7, PULL, NO_PUSH), None, "v", (NO_PUSH,)),
    (pinned("v", 7, PULL, NO_PUSH), 9, "w", ()),
    (named("v", NO_PULL), 8, "v", (NO_PULL,)),
    (named("v", NO_PULL), None, None, ()),
    (in_system(Access("catalog", "read")), 7, "v", ()),
]


@pytest.mark.parametrize(("entry", "project_id", "name", "expected"), ACCESS_ON)
def test_access_on(
    entry: Permission, project_id: int | None, name: str | None, expected: tuple[Access, ...]
) -> None:
    assert entry.access_on(project_id, name) == expected


def test_push_implies_pull_unless_pull_is_denied() -> None:
    assert project_effective([every(PUSH)], 1, "a") == {
        ("repository", "pull"),
        ("repository", "push"),
    }
    assert project_effective([every(PUSH, NO_PULL)], 1, "a") == {("repository", "push")}


# (child, parent, excess as text or None)
DELEGATION = [
    ([every(PULL)], [every(PULL, PUSH)], None),
    ([every(PULL, PUSH)], [every(PULL)], "repository:push in every project ('*')"),
    # the parent's deny reaches the child through '*'
    ([every(PULL)], [every(PULL), pinned("v", 7, NO_PULL)], "repository:pull in project 'v'"),
    ([every(PULL), pinned("v", 7, NO_PULL)], [every(PULL), pinned("v", 7, NO_PULL)], None),
    # the child's deny by name covers the parent's deny on the project of that name
    ([every(PULL), named("v", NO_PULL)], [every(PULL), pinned("v", 7, NO_PULL)], None),
    # a deny on a project that does not exist yet
    (
        [every(PULL)],
        [every(PULL), named("later", NO_PULL)],
        "repository:pull in any later project named 'later'",
    ),
    # effect, not entries: a child whose deny takes away the extra allow is within
    ([every(PULL, PUSH, NO_PUSH)], [every(PULL)], None),
    # a pinned allow is within '*'; '*' is not within a pinned allow
    ([pinned("v", 7, PULL)], [every(PULL)], None),
    ([every(PULL)], [pinned("v", 7, PULL)], "repository:pull in any later project named 'v'"),
    ([every(PULL)], [], "repository:pull in every project ('*')"),
    # the parent's allow pinned to a project that was deleted does not cover a new one
    ([pinned("v", 8, PULL)], [pinned("v", 7, PULL)], "repository:pull in project 'v'"),
    ([in_system(Access("catalog", "read"))], [every(PULL)], "catalog:read in the system"),
    ([in_system(Access("catalog", "read"))], [in_system(Access("catalog", "read"))], None),
]


@pytest.mark.parametrize(("child", "parent", "expected"), DELEGATION)
def test_excess(child: list[Permission], parent: list[Permission], expected: str | None) -> None:
    found = excess(child, parent)
    assert (None if found is None else str(found)) == expected


def test_after_project_deleted_keeps_denies_by_name_and_drops_allows() -> None:
    permissions = (every(PULL), pinned("v", 7, PUSH, NO_PULL), pinned("w", 8, PULL))
    assert after_project_deleted(permissions, 7) == (
        every(PULL),
        named("v", NO_PULL),
        pinned("w", 8, PULL),
    )
    assert after_project_deleted(permissions, 8) == (every(PULL), pinned("v", 7, PUSH, NO_PULL))


# ---- property: within means within on every concrete project --------------------------------

_EFFECTS = st.sampled_from(Effect)
_REPOSITORY = st.sampled_from(
    [PULL, PUSH, DELETE, NO_PULL, NO_PUSH, Access("repository", "delete", Effect.DENY)]
)
# Every permission a robot may hold, Harbor's "Select all" included; a handful of them so that
# a child and its parent often share some.
_PROJECT_PAIRS = st.sampled_from(
    [*sorted(PROJECT_PERMISSIONS)[:3], ("sbom", "read"), ("member", "create"), ("robot", "create")]
) | st.sampled_from(sorted(PROJECT_PERMISSIONS))
_SYSTEM_PAIRS = st.sampled_from(
    [("catalog", "read"), ("user", "update"), ("robot", "create")]
) | st.sampled_from(sorted(SYSTEM_PERMISSIONS))
_ACCESS = _REPOSITORY | st.builds(lambda p, e: Access(p[0], p[1], e), _PROJECT_PAIRS, _EFFECTS)
_SYSTEM_ACCESS = st.builds(lambda p, e: Access(p[0], p[1], e), _SYSTEM_PAIRS, _EFFECTS)
_PROJECTS = [("a", 1), ("b", 2), ("a", 3)]  # "a" deleted (1) and created again (3)


@st.composite
def _entry(draw: st.DrawFn) -> Permission:
    access = tuple(draw(st.lists(_ACCESS, min_size=1, max_size=4)))
    kind = draw(st.sampled_from(["all", "pinned", "named", "system"]))
    if kind == "all":
        return every(*access)
    if kind == "system":
        return in_system(*draw(st.lists(_SYSTEM_ACCESS, min_size=1, max_size=4)))
    name, project_id = draw(st.sampled_from(_PROJECTS))
    if kind == "named":
        return named(name, *[a for a in access if a.effect is Effect.DENY] or [NO_PULL])
    return pinned(name, project_id, *access)


_PERMISSIONS = st.lists(_entry(), max_size=4)
_CONCRETE = [*_PROJECTS, ("a", 4), ("b", 5), ("c", 6)]  # existing, re-created, unrelated


@given(_PERMISSIONS, _PERMISSIONS)
def test_within_means_within_on_every_project(
    child: list[Permission], parent: list[Permission]
) -> None:
    found = excess(child, parent)
    escapes = [
        (name, project_id)
        for name, project_id in _CONCRETE
        if not project_effective(child, project_id, name)
        <= project_effective(parent, project_id, name)
    ]
    system_escapes = not system_effective(child) <= system_effective(parent)
    assert (found is None) == (not escapes and not system_escapes)
