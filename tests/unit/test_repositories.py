"""Repository patterns at the domain level: which patterns are valid, what each matches, how
they compare (within, meet), and how an entry's patterns narrow what tokens carry: tables of
cases, and properties against a model written without patterns."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenserver.domain.delegation import excess, project_effective
from tokenserver.domain.models import Level, Principal, PrincipalKind, Project, Robot
from tokenserver.domain.permissions import (
    REPOSITORY_RESOURCES,
    Access,
    Effect,
    Grants,
    Permission,
    PermissionKind,
    RequestedPermission,
    grant_actions,
    keep_patterns,
)
from tokenserver.domain.policy import project_grants, token_actions
from tokenserver.domain.repositories import (
    MAX_PATTERNS,
    Shape,
    check_patterns,
    compile_patterns,
    pattern_error,
)
from tokenserver.domain.scopes import Scope
from tokenserver.errors import BadRequest

DEMO = Project(id=1, name="demo", public=False, creation_time=0, update_time=0)
OTHER = Project(id=2, name="other", public=False, creation_time=0, update_time=0)

PULL = Access("repository", "pull")
PUSH = Access("repository", "push")
DELETE = Access("repository", "delete")
NO_PULL = Access("repository", "pull", Effect.DENY)
NO_PUSH = Access("repository", "push", Effect.DENY)
ROBOT_CREATE = Access("robot", "create")


# ---- which patterns are valid --------------------------------------------------------------

VALID = ["app", "team-a/*", "team-a/**", "**", "*", "*/app", "a/*/b/**", "a.b_c__d--e/f"]


@pytest.mark.parametrize("pattern", VALID)
def test_valid_patterns(pattern: str) -> None:
    assert pattern_error(pattern) is None


# (pattern, words the refusal holds)
INVALID = [
    ("", "must not be empty"),
    ("..", "'..'"),
    ("team-a/../secrets", "'..'"),
    ("./app", "'.'"),
    ("/app", "empty path segment"),
    ("app/", "empty path segment"),
    ("team-a//app", "empty path segment"),
    ("Team-A/*", "upper case"),
    ("team-a/APP", "upper case"),
    ("a/**/b", "'**' may only be the last segment"),
    ("app-*", "neither a repository name component"),
    ("a*b", "neither a repository name component"),
    ("***", "neither a repository name component"),
    ("a b", "neither a repository name component"),
    ("host:5000/app", "neither a repository name component"),
    ("app\x00", "neither a repository name component"),
    ("-app", "neither a repository name component"),
    ("app.", "neither a repository name component"),
    ("caf\u00e9", "neither a repository name component"),
    ("a" * 256, "longer than 255 characters"),
]


@pytest.mark.parametrize(("pattern", "words"), INVALID)
def test_invalid_patterns_are_refused_naming_the_pattern(pattern: str, words: str) -> None:
    with pytest.raises(BadRequest) as raised:
        check_patterns([pattern])
    message = str(raised.value)
    assert message.startswith("bad request permission: ")
    assert words in message
    if pattern:
        assert repr(pattern[:80]).rstrip("'") in message


def test_a_pattern_of_255_characters_is_taken() -> None:
    pattern = "/".join(["a" * 127, "b" * 127])
    assert len(pattern) == 255
    assert check_patterns([pattern]) == (pattern,)


def test_at_most_64_patterns_per_entry() -> None:
    patterns = [f"app{i}" for i in range(MAX_PATTERNS)]
    assert check_patterns(patterns) == tuple(patterns)
    with pytest.raises(BadRequest, match=r"at most 64 repository patterns per entry \(got 65\)"):
        check_patterns([*patterns, "one-more"])


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(BadRequest, match="'repositories' must not be empty"):
        check_patterns([])


def test_repeats_are_dropped_and_a_list_with_everything_is_everything() -> None:
    assert check_patterns(["b", "a", "b"]) == ("b", "a")
    assert check_patterns(["team-a/*", "**"]) == ()


# ---- what a pattern matches ----------------------------------------------------------------

# (pattern, repository relative to the project, matches)
MATCHES = [
    ("app", "app", True),
    ("app", "app2", False),
    ("app", "team-a/app", False),
    ("team-a/*", "team-a/app", True),
    ("team-a/*", "team-a", False),
    ("team-a/*", "team-a/x/app", False),
    ("team-a/*", "team-b/app", False),
    ("team-a/*", "team-ab/app", False),
    ("team-a/**", "team-a/app", True),
    ("team-a/**", "team-a/x/y/app", True),
    ("team-a/**", "team-a", False),
    ("team-a/**", "team-a-b/app", False),
    ("*", "app", True),
    ("*", "team-a/app", False),
    ("*/app", "team-a/app", True),
    ("*/app", "team-a/web", False),
    ("**", "app", True),
    ("**", "team-a/x/app", True),
    ("**", "", False),
    # a dot is a character of the name, not a wildcard
    ("a.b", "axb", False),
    ("a.b", "a.b", True),
]


@pytest.mark.parametrize(("pattern", "repository", "matches"), MATCHES)
def test_what_a_pattern_matches(pattern: str, repository: str, matches: bool) -> None:
    assert (compile_patterns((pattern,)).fullmatch(repository) is not None) is matches


# ---- within and meet, against every name of a small universe -------------------------------

_LITERALS = ["a", "b"]
# Names of up to five segments over a, b and c (c is a literal no pattern holds).
_UNIVERSE = [
    "/".join(parts)
    for depth in range(1, 6)
    for parts in itertools.product(["a", "b", "c"], repeat=depth)
]
_SHAPES = st.builds(
    Shape,
    st.lists(st.sampled_from([*_LITERALS, "*"]), max_size=3).map(tuple),
    st.booleans(),
).filter(lambda s: bool(s.segments) or s.tail)


def _matched(shape: Shape) -> frozenset[str]:
    regex = compile_patterns((str(shape),))
    return frozenset(n for n in _UNIVERSE if regex.fullmatch(n))


@given(_SHAPES, _SHAPES)
def test_within_is_exact(a: Shape, b: Shape) -> None:
    assert a.within(b) == (_matched(a) <= _matched(b))


@given(_SHAPES, _SHAPES)
def test_meet_matches_what_both_match(a: Shape, b: Shape) -> None:
    met = a.meet(b)
    both = _matched(a) & _matched(b)
    assert (frozenset() if met is None else _matched(met)) == both


# ---- tokens: table ---------------------------------------------------------------------------


def robot(*permissions: Permission) -> Principal:
    stored = Robot(
        id=7, name="ci", project_id=None, project_name=None, description="", secret_hash="",
        duration=-1, expires_at=-1, disabled=False, creation_time=0, update_time=0,
        permissions=permissions, level=Level.SYSTEM,
    )  # fmt: skip
    return Principal(PrincipalKind.ROBOT, "robot$ci", robot=stored)


def on(project: Project, *access: Access, repositories: tuple[str, ...] = ()) -> Permission:
    return Permission(project.name, access, PermissionKind.PROJECT, project.id, repositories)


def everywhere(*access: Access, repositories: tuple[str, ...] = ()) -> Permission:
    return Permission("*", access, PermissionKind.PROJECT, None, repositories)


def actions(principal: Principal, project: Project, scope: str) -> set[str]:
    kind, name, wanted = scope.split(":")
    permitted = token_actions(
        Scope(kind, name, ()), project_grants(principal, project, None), Grants(frozenset())
    )
    return set(grant_actions(wanted.split(","), permitted))


TEAM_A = robot(on(DEMO, PULL, PUSH, repositories=("team-a/*",)))
SECRETS_DENIED = robot(
    on(DEMO, PULL, PUSH), on(DEMO, NO_PUSH, NO_PULL, repositories=("secrets/**",))
)
SYSTEM_TEAM_A = robot(everywhere(PULL, PUSH, repositories=("team-a/**",)))

# (principal, project, scope, actions)
TOKENS = [
    (TEAM_A, DEMO, "repository:demo/team-a/app:pull,push", {"pull", "push"}),
    (TEAM_A, DEMO, "repository:demo/team-b/app:pull,push", set()),
    (TEAM_A, DEMO, "repository:demo/app:pull,push", set()),
    (TEAM_A, DEMO, "repository:demo/team-a/x/app:pull", set()),
    (TEAM_A, DEMO, "repository:demo:pull", set()),
    # the pattern is the entry's, in its own project only
    (TEAM_A, OTHER, "repository:other/team-a/app:pull", set()),
    # deny inside an allow: deny wins where it matches, the allow holds elsewhere
    (SECRETS_DENIED, DEMO, "repository:demo/app:pull,push", {"pull", "push"}),
    (SECRETS_DENIED, DEMO, "repository:demo/secrets/db:pull,push", set()),
    (SECRETS_DENIED, DEMO, "repository:demo/secrets:pull", {"pull"}),
    # `*` project: the patterns apply in every project
    (SYSTEM_TEAM_A, DEMO, "repository:demo/team-a/x/y:push,pull", {"pull", "push"}),
    (SYSTEM_TEAM_A, OTHER, "repository:other/team-a/app:pull", {"pull"}),
    (SYSTEM_TEAM_A, OTHER, "repository:other/team-b/app:pull", set()),
    # `*` asks for every action held, on this repository only
    (TEAM_A, DEMO, "repository:demo/team-a/app:*", {"pull", "push"}),
    (TEAM_A, DEMO, "repository:demo/team-b/app:*", set()),
    # other per-repository resources follow the patterns too
    (robot(on(DEMO, Access("tag", "create"), repositories=("app",))), DEMO, "tag:demo/app:create",
     {"create"}),
    (robot(on(DEMO, Access("tag", "create"), repositories=("app",))), DEMO, "tag:demo/web:create",
     set()),
    (robot(on(DEMO, Access("artifact", "delete"), repositories=("app",))), DEMO,
     "repository:demo/web:delete", set()),
    (robot(on(DEMO, Access("artifact", "delete"), repositories=("app",))), DEMO,
     "repository:demo/app:delete", {"delete"}),
    # project-wide resources do not: a label is the project's
    (robot(on(DEMO, Access("label", "read"), repositories=("app",))), DEMO, "label:demo/web:read",
     {"read"}),
]  # fmt: skip


@pytest.mark.parametrize(("principal", "project", "scope", "expected"), TOKENS)
def test_token_actions_with_patterns(
    principal: Principal, project: Project, scope: str, expected: set[str]
) -> None:
    assert actions(principal, project, scope) == expected


def test_patterns_leave_project_wide_permissions_whole() -> None:
    grants = project_grants(robot(on(DEMO, PULL, ROBOT_CREATE, repositories=("app",))), DEMO, None)
    assert grants.can("robot", "create")
    # pull is not held on every repository of the project
    assert not grants.can("repository", "pull")
    assert grants.at("app").can("repository", "pull")


def test_a_deny_on_some_repositories_is_not_held_on_the_whole_project() -> None:
    grants = project_grants(SECRETS_DENIED, DEMO, None)
    assert not grants.can("repository", "pull")
    assert grants.at("app").can("repository", "pull")


# ---- tokens: properties --------------------------------------------------------------------

_PATTERNS = st.lists(
    st.sampled_from(["app", "a/*", "a/**", "*", "*/b", "b", "a/b", "**"]), min_size=1, max_size=3
)
_ACCESS = st.sampled_from(
    [
        PULL,
        PUSH,
        DELETE,
        NO_PULL,
        NO_PUSH,
        Access("artifact", "delete"),
        Access("tag", "create"),
        Access("tag", "create", Effect.DENY),
        Access("label", "read"),
        Access("label", "read", Effect.DENY),
    ]
)
_REPOSITORIES = ["app", "b", "a/b", "a/c", "a/b/c", "c/b", "web"]
_SCOPES = [
    Scope(kind, f"demo/{r}", ("*",))
    for r in _REPOSITORIES
    for kind in ("repository", "tag", "label")
]


@st.composite
def _entry(draw: st.DrawFn) -> Permission:
    access = tuple(draw(st.lists(_ACCESS, min_size=1, max_size=4)))
    patterns = check_patterns(draw(_PATTERNS)) if draw(st.booleans()) else ()
    if draw(st.booleans()):
        return everywhere(*access, repositories=patterns)
    return on(DEMO, *access, repositories=patterns)


_ENTRIES = st.lists(_entry(), min_size=1, max_size=4)


def _without_patterns(permissions: list[Permission]) -> tuple[Permission, ...]:
    return tuple(Permission(p.namespace, p.access, p.kind, p.project_id) for p in permissions)


def _granted(permissions: tuple[Permission, ...], scope: Scope) -> frozenset[str]:
    return token_actions(
        scope, project_grants(robot(*permissions), DEMO, None), Grants(frozenset())
    )


def _applying(permissions: list[Permission], repository: str) -> tuple[Permission, ...]:
    """The model: on one repository, an entry whose patterns miss it keeps only its
    project-wide access, and then nothing is patterned any more."""
    kept = []
    for p in permissions:
        access = p.access
        if p.repositories and not compile_patterns(p.repositories).fullmatch(repository):
            access = tuple(a for a in access if a.resource not in REPOSITORY_RESOURCES)
        kept.append(Permission(p.namespace, access, p.kind, p.project_id))
    return tuple(kept)


@given(_ENTRIES)
def test_a_grant_is_todays_grant_of_the_entries_that_reach_the_repository(
    permissions: list[Permission],
) -> None:
    for scope in _SCOPES:
        repository = scope.name.partition("/")[2]
        assert _granted(tuple(permissions), scope) == _granted(
            _applying(permissions, repository), scope
        )


@given(_ENTRIES)
def test_patterns_on_allows_only_narrow_the_grant(permissions: list[Permission]) -> None:
    # Patterns on entries that only allow: the grant is within the grant without them.
    allows = [
        p if all(a.effect is Effect.ALLOW for a in p.access) else _without_patterns([p])[0]
        for p in permissions
    ]
    for scope in _SCOPES:
        assert _granted(tuple(allows), scope) <= _granted(_without_patterns(allows), scope)


@given(_ENTRIES)
def test_everything_pattern_is_todays_grant(permissions: list[Permission]) -> None:
    explicit = tuple(
        Permission(p.namespace, p.access, p.kind, p.project_id, check_patterns(["**"]))
        for p in permissions
    )
    for scope in _SCOPES:
        assert _granted(explicit, scope) == _granted(_without_patterns(permissions), scope)


# ---- delegation with patterns ----------------------------------------------------------------

# (child, parent, excess as text or None)
DELEGATION = [
    ([on(DEMO, PULL, repositories=("team-a/*",))], [on(DEMO, PULL)], None),
    ([on(DEMO, PULL, repositories=("team-a/app",))], [on(DEMO, PULL, repositories=("team-a/*",))],
     None),
    ([on(DEMO, PULL, repositories=("team-a/x/y",))], [on(DEMO, PULL, repositories=("team-a/**",))],
     None),
    ([on(DEMO, PULL)], [on(DEMO, PULL, repositories=("team-a/*",))],
     "repository:pull in project 'demo'"),
    ([on(DEMO, PULL, repositories=("team-b/*",))], [on(DEMO, PULL, repositories=("team-a/*",))],
     "repository:pull on repositories 'team-b/*' in project 'demo'"),
    # the parent's deny inside its allow reaches the child, on what they share
    ([on(DEMO, PULL)], [on(DEMO, PULL), on(DEMO, NO_PULL, repositories=("secrets/**",))],
     "repository:pull on repositories 'secrets/**' in project 'demo'"),
    ([on(DEMO, PULL, repositories=("app",))],
     [on(DEMO, PULL), on(DEMO, NO_PULL, repositories=("secrets/**",))], None),
    ([on(DEMO, PULL), on(DEMO, NO_PULL, repositories=("secrets/**",))],
     [on(DEMO, PULL), on(DEMO, NO_PULL, repositories=("secrets/**",))], None),
    # push implies pull on the same repositories
    ([on(DEMO, PUSH, repositories=("app",))], [on(DEMO, PULL, PUSH, repositories=("app",))], None),
    ([on(DEMO, PUSH, repositories=("app",))], [on(DEMO, PUSH, repositories=("web",))],
     "repository:pull on repositories 'app', repository:push on repositories 'app' in project "
     "'demo'"),
    # project-wide permissions ignore patterns on either side
    ([on(DEMO, ROBOT_CREATE)], [on(DEMO, ROBOT_CREATE, repositories=("app",))], None),
    ([everywhere(PULL, repositories=("a/*",))], [everywhere(PULL, repositories=("a/**",))], None),
    ([everywhere(PULL, repositories=("a/**",))], [everywhere(PULL, repositories=("a/*",))],
     "repository:pull on repositories 'a/**' in every project ('*')"),
]  # fmt: skip


@pytest.mark.parametrize(("child", "parent", "expected"), DELEGATION)
def test_excess_with_patterns(
    child: list[Permission], parent: list[Permission], expected: str | None
) -> None:
    found = excess(child, parent)
    assert (None if found is None else str(found)) == expected


@given(_ENTRIES, _ENTRIES)
def test_within_means_within_on_every_repository(
    child: list[Permission], parent: list[Permission]
) -> None:
    if excess(child, parent) is not None:
        return  # refusing is always safe; accepting must be right
    for name in ("demo", "later"):
        for repository in [*_REPOSITORIES, "a/x", "x/b"]:
            project_id = DEMO.id if name == "demo" else None
            assert project_effective(child, project_id, name, repository) <= project_effective(
                parent, project_id, name, repository
            )


def _sent_back(permissions: list[Permission]) -> tuple[RequestedPermission, ...]:
    """The entries as a Harbor client PUTs them back after a GET: no `repositories`."""
    return tuple(RequestedPermission(p.namespace, p.access, p.kind) for p in permissions)


@given(_ENTRIES)
def test_a_harbor_clients_round_trip_keeps_every_entrys_patterns(
    permissions: list[Permission],
) -> None:
    kept = keep_patterns(_sent_back(permissions), permissions)
    assert [k.repositories or () for k in kept] == [p.repositories for p in permissions]


@given(_ENTRIES, st.lists(_ACCESS, min_size=1, max_size=4))
def test_an_entry_sent_without_patterns_never_reaches_more_than_the_stored_ones(
    permissions: list[Permission], access: list[Access]
) -> None:
    """A changed entry without `repositories` takes some stored entry's patterns, or is
    refused: it is never widened to every repository while its namespace had patterns."""
    sent = (RequestedPermission("demo", tuple(access)),)
    stored = [p for p in permissions if p.namespace == "demo"]
    try:
        (kept,) = keep_patterns(sent, permissions)
    except BadRequest:
        assert len(stored) > 1
        return
    if any(p.repositories for p in stored):
        assert (kept.repositories or ()) in {p.repositories for p in stored}
    else:
        assert kept.repositories is None


def test_patterns_sent_are_taken_as_sent() -> None:
    stored = [on(DEMO, PULL, repositories=("team-a/*",))]
    sent = (RequestedPermission("demo", (PULL,), repositories=("**",)),)
    assert keep_patterns(sent, stored) == sent
