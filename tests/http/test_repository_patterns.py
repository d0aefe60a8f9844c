"""Repository patterns through the API and the token endpoint: what POST/PUT take and GET
shows, the 400s for bad patterns, and tokens on every path (GET, POST, refresh tokens,
cross-repository mounts, `*`, the grant memo) honouring them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import basic
from tests.http.test_api import TOKEN, Api, api, error
from tests.http.test_robot_delegation import access, system, system_robot

__all__ = ["api"]  # the fixture, imported for pytest


def entry(
    namespace: str,
    *allow: str,
    deny: tuple[str, ...] = (),
    repositories: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "project",
        "namespace": namespace,
        "access": access(*allow) + access(*deny, effect="deny"),
    }
    if repositories is not None:
        body["repositories"] = repositories
    return body


def project_robot(name: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "level": "project", "duration": -1, "permissions": list(entries)}


def login(robot: dict[str, Any]) -> dict[str, str]:
    return basic(robot["name"], robot["secret"])


async def granted(api: Api, auth: dict[str, str], *scopes: str) -> dict[str, list[str]]:
    """The actions each scope's repository was granted (GET)."""
    return {e["name"]: e["actions"] for e in await api.token_access(auth, *scopes)}


async def shown(api: Api, robot_id: int) -> list[dict[str, Any]]:
    r = await api.call("GET", f"/robots/{robot_id}", api.admin)
    assert r.status == 200, await r.text()
    permissions: list[dict[str, Any]] = (await r.json())["permissions"]
    return permissions


TEAM_A = ["team-a/*"]
PUSH_PULL = ("repository:pull", "repository:push")


@pytest.fixture
async def team_a(api: Api) -> dict[str, Any]:
    await api.project("demo")
    return await api.robot(project_robot("ci", entry("demo", *PUSH_PULL, repositories=TEAM_A)))


async def test_get_shows_the_patterns_and_leaves_them_out_for_every_repository(
    api: Api, team_a: dict[str, Any]
) -> None:
    (permission,) = await shown(api, team_a["id"])
    assert permission["repositories"] == ["team-a/*"]
    plain = await api.robot(project_robot("plain", entry("demo", "repository:pull")))
    (permission,) = await shown(api, plain["id"])
    assert "repositories" not in permission  # what Harbor clients have always seen
    everything = await api.robot(
        project_robot("all", entry("demo", "repository:pull", repositories=["app", "**"]))
    )
    (permission,) = await shown(api, everything["id"])
    assert "repositories" not in permission


async def test_tokens_reach_only_matching_repositories(api: Api, team_a: dict[str, Any]) -> None:
    auth = login(team_a)
    assert await granted(
        api,
        auth,
        "repository:demo/team-a/app:pull,push",
        "repository:demo/team-b/app:pull,push",
        "repository:demo/app:pull,push",
        "repository:demo/team-a/x/app:pull,push",
    ) == {
        "demo/team-a/app": ["pull", "push"],
        "demo/team-b/app": [],
        "demo/app": [],
        "demo/team-a/x/app": [],
    }


async def test_the_post_password_grant_honours_the_patterns(
    api: Api, team_a: dict[str, Any]
) -> None:
    r = await api.client.post(
        TOKEN,
        data={
            "grant_type": "password",
            "service": api.server.settings.token.service,
            "client_id": "containerd-client",
            "username": team_a["name"],
            "password": team_a["secret"],
            "scope": "repository:demo/team-a/app:pull,push repository:demo/team-b/app:pull,push",
        },
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["scope"] == "repository:demo/team-a/app:pull,push"


async def test_star_asks_for_what_is_held_on_that_repository_only(
    api: Api, team_a: dict[str, Any]
) -> None:
    assert await granted(
        api, login(team_a), "repository:demo/team-a/app:*", "repository:demo/team-b/app:*"
    ) == {"demo/team-a/app": ["pull", "push"], "demo/team-b/app": []}


async def test_a_cross_repository_mount_needs_pull_on_its_source_under_the_patterns(
    api: Api, team_a: dict[str, Any]
) -> None:
    # What a client asks for a mount: push on the target, pull on the `from` repository.
    assert await granted(
        api,
        login(team_a),
        "repository:demo/team-a/app:push,pull",
        "repository:demo/team-b/base:pull",
        "repository:demo/team-a/base:pull",
    ) == {
        "demo/team-a/app": ["push", "pull"],
        "demo/team-b/base": [],
        "demo/team-a/base": ["pull"],
    }


async def test_a_pattern_change_takes_effect_on_the_next_token_on_every_path(
    api: Api, team_a: dict[str, Any]
) -> None:
    auth = login(team_a)
    r = await api.client.get(
        TOKEN, params={"offline_token": "true", "client_id": "docker"}, headers=auth
    )
    refresh = (await r.json())["refresh_token"]
    scopes = ("repository:demo/team-a/app:pull", "repository:demo/team-b/app:pull")
    for _ in range(2):  # remembered in the grant memo
        assert await granted(api, auth, *scopes) == {
            "demo/team-a/app": ["pull"],
            "demo/team-b/app": [],
        }
    (permission,) = await shown(api, team_a["id"])
    permission["repositories"] = ["team-b/*"]
    r = await api.call(
        "PUT",
        f"/robots/{team_a['id']}",
        api.admin,
        {"name": team_a["name"], "level": "project", "permissions": [permission]},
    )
    assert r.status == 200, await r.text()
    changed = {"demo/team-a/app": [], "demo/team-b/app": ["pull"]}
    assert await granted(api, auth, *scopes) == changed
    r = await api.client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "service": api.server.settings.token.service,
            "client_id": "docker",
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        },
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["scope"] == "repository:demo/team-b/app:pull"


async def test_a_deny_pattern_inside_an_allow_wins_where_it_matches(api: Api) -> None:
    await api.project("demo")
    robot = await api.robot(
        project_robot(
            "ci",
            entry("demo", *PUSH_PULL),
            entry("demo", deny=PUSH_PULL, repositories=["secrets/**"]),
        )
    )
    assert await granted(
        api,
        login(robot),
        "repository:demo/app:pull,push",
        "repository:demo/secrets/db:pull,push",
        "repository:demo/secrets:pull,push",
    ) == {
        "demo/app": ["pull", "push"],
        "demo/secrets/db": [],
        "demo/secrets": ["pull", "push"],
    }
    shown_entries = await shown(api, robot["id"])
    assert [e.get("repositories") for e in shown_entries] == [None, ["secrets/**"]]


async def test_a_system_robot_takes_patterns_per_project_entry_including_every_project(
    api: Api,
) -> None:
    await api.project("demo")
    await api.project("other")
    robot = await api.robot(
        system_robot(
            "fleet",
            entry("*", "repository:pull", repositories=["base/*"]),
            entry("demo", *PUSH_PULL, repositories=["team-a/**"]),
        )
    )
    assert await granted(
        api,
        login(robot),
        "repository:other/base/alpine:pull,push",
        "repository:other/app:pull",
        "repository:demo/team-a/x/app:pull,push",
        "repository:demo/base/alpine:pull,push",
        "repository:demo/app:pull",
    ) == {
        "other/base/alpine": ["pull"],
        "other/app": [],
        "demo/team-a/x/app": ["pull", "push"],
        "demo/base/alpine": ["pull"],
        "demo/app": [],
    }


# (patterns, words the 400 holds)
BAD = [
    (["Team-A/*"], "'Team-A/*' holds upper case"),
    (["team-a/../secrets"], "'team-a/../secrets' holds '..'"),
    (["team-a//app"], "'team-a//app' has an empty path segment"),
    (["/app"], "'/app' has an empty path segment"),
    ([""], "must not be empty"),
    ([], "'repositories' must not be empty"),
    (["a" * 256], "longer than 255 characters"),
    ([f"app{i}" for i in range(65)], "at most 64 repository patterns"),
    (["app-*"], "'app-*': segment 'app-*' is neither"),
    (["a/**/b"], "'**' may only be the last segment"),
    (["app\x00"], "is neither a repository name component"),
    (["host:5000/app"], "is neither a repository name component"),
]


@pytest.mark.parametrize(("patterns", "words"), BAD)
async def test_bad_patterns_are_a_400_naming_the_pattern(
    api: Api, patterns: list[str], words: str
) -> None:
    await api.project("demo")
    body = project_robot("ci", entry("demo", "repository:pull", repositories=patterns))
    message = await error(await api.call("POST", "/robots", api.admin, body), 400, "BAD_REQUEST")
    assert words in message
    r = await api.call("GET", "/robots", api.admin, params={"q": "Level=project,ProjectID=1"})
    assert await r.json() == []


async def test_patterns_belong_to_project_entries(api: Api) -> None:
    body = system_robot("fleet", {**system("catalog:read"), "repositories": ["app"]})
    message = await error(await api.call("POST", "/robots", api.admin, body), 400, "BAD_REQUEST")
    assert "'repositories' belongs to project entries" in message


async def test_a_project_robots_entries_must_differ_in_their_patterns(api: Api) -> None:
    await api.project("demo")
    body = project_robot(
        "ci",
        entry("demo", "repository:pull", repositories=["app", "web"]),
        entry("demo", "repository:push", repositories=["web", "app"]),
    )
    message = await error(await api.call("POST", "/robots", api.admin, body), 400, "BAD_REQUEST")
    assert "must differ in their 'repositories'" in message
    await api.project("other")
    body = project_robot(
        "ci",
        entry("demo", "repository:pull", repositories=["app"]),
        entry("other", "repository:pull", repositories=["web"]),
    )
    message = await error(await api.call("POST", "/robots", api.admin, body), 400, "BAD_REQUEST")
    assert "for its own project" in message


async def test_a_robot_hands_out_only_repositories_it_holds(api: Api) -> None:
    await api.project("demo")
    parent = await api.robot(
        project_robot(
            "parent",
            entry("demo", *PUSH_PULL, "robot:create", "robot:read", repositories=["team-a/*"]),
        )
    )
    narrower = project_robot("child", entry("demo", "repository:pull", repositories=["team-a/app"]))
    r = await api.call("POST", "/robots", login(parent), narrower)
    assert r.status == 201, await r.text()
    wider = project_robot("child2", entry("demo", "repository:pull", repositories=["team-a/**"]))
    message = await error(await api.call("POST", "/robots", login(parent), wider), 403, "FORBIDDEN")
    assert "repository:pull on repositories 'team-a/**' in project 'demo'" in message
    everything = project_robot("child3", entry("demo", "repository:pull"))
    message = await error(
        await api.call("POST", "/robots", login(parent), everything), 403, "FORBIDDEN"
    )
    assert "repository:pull in project 'demo'" in message


def without_patterns(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries as a Harbor client sends them back: it knows no `repositories`."""
    return [{k: v for k, v in e.items() if k != "repositories"} for e in entries]


async def put(api: Api, robot: dict[str, Any], **body: Any) -> dict[str, Any]:
    r = await api.call(
        "PUT",
        f"/robots/{robot['id']}",
        api.admin,
        {"name": robot["name"], "level": "project", **body},
    )
    assert r.status == 200, await r.text()
    shown_robot: dict[str, Any] = await (
        await api.call("GET", f"/robots/{robot['id']}", api.admin)
    ).json()
    return shown_robot


async def test_a_harbor_client_putting_a_robot_back_does_not_widen_it(
    api: Api, team_a: dict[str, Any]
) -> None:
    entries = without_patterns(await shown(api, team_a["id"]))
    robot = await put(api, team_a, permissions=entries, disable=True)
    assert robot["disable"] is True
    assert robot["permissions"][0]["repositories"] == TEAM_A
    # Adding an action the way a Harbor client does keeps the entry's patterns too.
    entries[0]["access"] += access("artifact:read")
    robot = await put(api, team_a, permissions=entries, disable=False)
    assert robot["permissions"][0]["repositories"] == TEAM_A
    assert await granted(
        api, login(team_a), "repository:demo/team-a/app:pull", "repository:demo/app:pull"
    ) == {"demo/team-a/app": ["pull"], "demo/app": []}


async def test_an_allow_and_a_deny_put_back_keep_their_own_patterns(api: Api) -> None:
    await api.project("demo")
    robot = await api.robot(
        project_robot(
            "ci",
            entry("demo", *PUSH_PULL, repositories=["team-a/**"]),
            entry("demo", deny=PUSH_PULL, repositories=["team-a/secrets/**"]),
        )
    )
    before = await shown(api, robot["id"])
    # In the order they were, and swapped: each keeps its own patterns.
    after = await put(api, robot, permissions=without_patterns(before))
    assert after["permissions"] == before
    after = await put(api, robot, permissions=without_patterns(before[::-1]))
    assert after["permissions"] == before[::-1]


async def test_an_entry_that_matches_none_of_several_patterned_ones_is_a_400(api: Api) -> None:
    await api.project("demo")
    robot = await api.robot(
        project_robot(
            "ci",
            entry("demo", *PUSH_PULL, repositories=["team-a/**"]),
            entry("demo", "repository:pull", repositories=["base/*"]),
        )
    )
    before = await shown(api, robot["id"])
    r = await api.call(
        "PUT",
        f"/robots/{robot['id']}",
        api.admin,
        {
            "name": robot["name"],
            "level": "project",
            "permissions": [entry("demo", "repository:pull", "repository:delete")],
        },
    )
    assert "send 'repositories' on each entry" in await error(r, 400, "BAD_REQUEST")
    assert await shown(api, robot["id"]) == before


async def test_every_repository_is_asked_for_in_words(api: Api, team_a: dict[str, Any]) -> None:
    robot = await put(api, team_a, permissions=[entry("demo", *PUSH_PULL, repositories=["**"])])
    assert "repositories" not in robot["permissions"][0]
    assert await granted(api, login(team_a), "repository:demo/app:pull") == {"demo/app": ["pull"]}
