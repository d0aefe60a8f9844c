from __future__ import annotations

import pytest

from tokenserver.domain.permissions import (
    HARBOR_PROJECT_PERMISSIONS,
    HARBOR_SYSTEM_PERMISSIONS,
    PROJECT_PERMISSIONS,
    PROJECT_ROBOT_ACCESS,
    SYSTEM_PERMISSIONS,
    Access,
    Effect,
    PermissionKind,
    check_access,
    grant_actions,
    parse_access,
    repository_actions,
)
from tokenserver.errors import BadRequest


@pytest.mark.parametrize(("resource", "action"), PROJECT_ROBOT_ACCESS)
def test_every_harbor_project_permission_parses(resource: str, action: str) -> None:
    assert parse_access(f"{resource}:{action}") == Access(resource, action)


@pytest.mark.parametrize("text", ["repository:foo", "repository", "catalog:read", "", "push"])
def test_unknown_permissions_are_refused_with_the_list(text: str) -> None:
    with pytest.raises(BadRequest, match=r"a project robot may hold: .*repository:\S*push"):
        parse_access(text)


@pytest.mark.parametrize(
    ("access", "actions"),
    [
        ([Access("repository", "pull")], {"pull"}),
        ([Access("repository", "push")], {"pull", "push"}),
        ([Access("artifact", "delete")], {"delete"}),
        ([Access("repository", "pull"), Access("artifact", "delete")], {"pull", "delete"}),
        ([Access("helm-chart", "read"), Access("tag", "create")], set()),
        (
            [Access("repository", "push"), Access("repository", "push", Effect.DENY)],
            {"pull"},
        ),
        (
            [Access("repository", "push"), Access("repository", "pull", Effect.DENY)],
            set(),
        ),
    ],
)
def test_permission_to_registry_actions(access: list[Access], actions: set[str]) -> None:
    assert repository_actions(access) == frozenset(actions)


@pytest.mark.parametrize(
    ("requested", "permitted", "granted"),
    [
        (["pull", "push"], {"pull"}, ("pull",)),
        (["push", "pull"], {"pull", "push"}, ("push", "pull")),
        (["*"], {"pull", "push", "delete"}, ("pull", "push", "delete")),
        (["*"], {"pull"}, ("pull",)),
        (["delete", "*"], {"pull", "delete"}, ("delete", "pull")),
        (["pull"], set(), ()),
        (["frobnicate"], {"pull"}, ()),
    ],
)
def test_grant_is_requested_intersect_permitted(
    requested: list[str], permitted: set[str], granted: tuple[str, ...]
) -> None:
    assert grant_actions(requested, frozenset(permitted)) == granted


def test_check_access_needs_one_and_drops_repeats() -> None:
    with pytest.raises(BadRequest, match="at least one"):
        check_access(PermissionKind.PROJECT, [])
    pull = Access("repository", "pull")
    assert check_access(PermissionKind.PROJECT, [pull, pull]) == (pull,)


@pytest.mark.parametrize(
    ("kind", "access"),
    [
        (PermissionKind.PROJECT, Access("catalog", "read")),
        (PermissionKind.PROJECT, Access("repository", "admin")),
        (PermissionKind.SYSTEM, Access("repository", "pull")),
        (PermissionKind.SYSTEM, Access("nonsense", "read")),
    ],
)
def test_check_access_refuses_what_the_kind_cannot_hold(
    kind: PermissionKind, access: Access
) -> None:
    with pytest.raises(BadRequest, match="bad request permission"):
        check_access(kind, [access])


def test_check_access_accepts_harbor_pairs() -> None:
    assert check_access(PermissionKind.SYSTEM, [Access("catalog", "read")])
    assert check_access(
        PermissionKind.PROJECT, [Access("robot", "create"), Access("tag", "delete")]
    )


def test_harbors_lists_are_its_70_and_70_each_once_and_all_accepted() -> None:
    for harbor, accepted in (
        (HARBOR_PROJECT_PERMISSIONS, PROJECT_PERMISSIONS),
        (HARBOR_SYSTEM_PERMISSIONS, SYSTEM_PERMISSIONS),
    ):
        assert len(harbor) == len(set(harbor)) == 70
        assert set(harbor) <= accepted
    # What earlier Harbor accepted, and Harbor 2.13 no longer lists, is accepted still.
    assert PROJECT_PERMISSIONS - set(HARBOR_PROJECT_PERMISSIONS) == {
        ("helm-chart", "read"),
        ("helm-chart-version", "create"),
        ("helm-chart-version", "read"),
        ("helm-chart-version", "delete"),
        ("robot", "update"),
    }
    assert SYSTEM_PERMISSIONS - set(HARBOR_SYSTEM_PERMISSIONS) == {
        ("robot", "update"),
        ("export-cve", "create"),
        ("export-cve", "read"),
    }


@pytest.mark.parametrize(
    "table", [PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS], ids=["project", "system"]
)
def test_only_repository_and_artifact_permissions_mean_registry_actions(
    table: frozenset[tuple[str, str]],
) -> None:
    meaningful = {("repository", "pull"), ("repository", "push"), ("repository", "delete"),
                  ("artifact", "delete")}  # fmt: skip
    rest = [Access(r, a) for r, a in sorted(table - meaningful)]
    assert repository_actions(rest) == frozenset()
