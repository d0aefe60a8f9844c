"""Harbor's list query language (domain/query.py) and the keys of each list
(domain/harbor_query.py): Harbor's parser, its messages and quirks, typed values, matching."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenserver.domain.harbor_query import (
    AUDIT_EXT_KEYS,
    AUDIT_KEYS,
    PROJECT_KEYS,
    ROBOT_KEYS,
    USER_KEYS,
    robot_scope,
)
from tokenserver.domain.models import Level, Project, Robot, User
from tokenserver.domain.query import (
    EVERYTHING,
    Key,
    Keys,
    Kind,
    Op,
    Query,
    Term,
    fold,
    parse_q,
    parse_sort,
    query_unescape,
    snake_case,
)
from tokenserver.errors import BadRequest

# ---- Harbor's parser ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ("", {}),
        ("k=v", {"k": (Op.EQ, ("v",))}),
        ("k=~v", {"k": (Op.CONTAINS, ("v",))}),
        ("k=[1~2]", {"k": (Op.RANGE, ("1", "2"))}),
        ("k=[ 1 ~ ]", {"k": (Op.RANGE, ("1", None))}),
        ("k=[~2]", {"k": (Op.RANGE, (None, "2"))}),
        ("k=['a'~\"b\"]", {"k": (Op.RANGE, ("a", "b"))}),
        ("k={a b  c}", {"k": (Op.ANY, ("a", "b", "c"))}),
        ("k={}", {"k": (Op.ANY, ())}),
        ("k={'' \"x\"}", {"k": (Op.ANY, ("x",))}),
        ("k=(a b)", {"k": (Op.ALL, ("a", "b"))}),
        ("k=\\~v", {"k": (Op.EQ, ("~v",))}),
        ("k=\\[v", {"k": (Op.EQ, ("[v",))}),
        ("k=a=b", {"k": (Op.EQ, ("a=b",))}),
        ("a=1,b=~2", {"a": (Op.EQ, ("1",)), "b": (Op.CONTAINS, ("2",))}),
        # A key given twice keeps its last term, as Harbor's map does.
        ("k=1,k=2", {"k": (Op.EQ, ("2",))}),
        # Harbor unescapes q once more: a client that quotes q works.
        (quote("a=1,b=~x y"), {"a": (Op.EQ, ("1",)), "b": (Op.CONTAINS, ("x y",))}),
        ("k=a+b", {"k": (Op.EQ, ("a b",))}),
        ("k=a%2Bb", {"k": (Op.EQ, ("a+b",))}),
        # ... and keeps it as it is when that is not a valid escape.
        ("k=~50%", {"k": (Op.CONTAINS, ("50%",))}),
        ("k=~50%zz+", {"k": (Op.CONTAINS, ("50%zz+",))}),
    ],
)
def test_harbor_parses_q(q: str, terms: dict[str, tuple[Op, tuple[str | None, ...]]]) -> None:
    assert {k: (t.op, t.values) for k, t in parse_q(q).items()} == terms


EQUALS = 'the query string must contain "=" and the key/value cannot be empty'


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("k", EQUALS),
        ("=v", EQUALS),
        ("k=", EQUALS),
        ("a=1,", EQUALS),
        ("a=1,,b=2", EQUALS),
        ("k=~", 'invalid query string value: ~: fuzzy match value must start with "~" and '
         "contain at least 1 other characters"),
        ("k=[1~2", 'invalid query string value: [1~2: range must start with "[", end with "]" '
         'and contains only one "~"'),
        ("k=[1~2~3]", 'invalid query string value: [1~2~3]: range must start with "[", end '
         'with "]" and contains only one "~"'),
        ("k=[12]", 'invalid query string value: [12]: range must start with "[", end with "]" '
         'and contains only one "~"'),
        ("k=[ ~ ]", "invalid query string value: [ ~ ]: min and max at least one should be set "
         "in range"),
        ("k={a", 'invalid query string value: {a: or list must start with "{" and end with "}"'),
        ("k={a,b}", 'invalid query string value: {a: or list must start with "{" and end with '
         '"}"'),
        ("k=(a", 'invalid query string value: (a: and list must start with "(" and end with ")"'),
    ],
)  # fmt: skip
def test_malformed_terms_get_harbors_messages(q: str, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_q(q)
    assert e.value.message == message


def test_query_unescape_is_gos() -> None:
    assert query_unescape("a%3Db%2Cc") == "a=b,c"
    assert query_unescape("a+b") == "a b"
    assert query_unescape("%e2%82%ac") == "€"
    assert query_unescape("%ff") == "\ufffd"  # not UTF-8
    assert query_unescape("%ED%A0%80") == "\ufffd" * 3  # a surrogate's bytes: not UTF-8
    assert query_unescape("%") == "%"
    assert query_unescape("%4") == "%4"
    assert query_unescape("%41%g1") == "%41%g1"  # one bad escape: all kept as it is
    assert query_unescape("%00") == "\x00"


def test_sort_is_harbors() -> None:
    assert parse_sort("") == []
    assert parse_sort("a,-b,") == [("a", False), ("b", True), ("", False)]


@pytest.mark.parametrize(
    ("text", "snake"),
    [("ProjectID", "project_id"), ("OpTime", "op_time"), ("USERNAME", "username"),
     ("username", "username"), ("SysAdminFlag", "sys_admin_flag"), ("IsSuccessful",
     "is_successful")],
)  # fmt: skip
def test_snake_case_is_harbors(text: str, snake: str) -> None:
    assert snake_case(text) == snake


def test_fuzzy_folds_only_ascii_letters() -> None:
    assert fold("AbC-É") == "abc-É"
    assert fold("ABC") == "abc"


# ---- keys and values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("op_time", "op_time"), ("OpTime", "op_time"), ("OPERATION", "operation"),
     ("ProjectID", "project_id"), ("Username", "username"), ("resourceType", "resource_type"),
     ("resource-type", None), ("op_desc", None), ("project_id__gte", None), ("outcome", None)],
)  # fmt: skip
def test_keys_are_found_as_harbor_finds_them(spelling: str, name: str | None) -> None:
    key = AUDIT_KEYS.key(spelling)
    assert (key.name if key else None) == name


def test_an_unknown_key_is_a_400_naming_the_keys() -> None:
    with pytest.raises(BadRequest) as e:
        USER_KEYS.query("colour=red")
    assert e.value.message.startswith("unknown query key 'colour': the users list accepts ")
    assert "username" in e.value.message


@pytest.mark.parametrize(
    ("keys", "q", "why"),
    [
        (AUDIT_KEYS, "op_time=~2024", "op_time takes no fuzzy match"),
        (AUDIT_KEYS, "id=~1", "id takes no fuzzy match"),
        (AUDIT_KEYS, "id=x", "id must be an integer"),
        (AUDIT_KEYS, "id=1.5", "id must be an integer"),
        (AUDIT_KEYS, "id=\u0661", "id must be an integer"),  # an Arabic-Indic digit
        (AUDIT_KEYS, "id=9223372036854775808", "id must fit in 64 bits"),
        (AUDIT_KEYS, "id=[1~99999999999999999999]", "id must fit in 64 bits"),
        (AUDIT_KEYS, "op_time=yesterday", "op_time must be a time"),
        (AUDIT_EXT_KEYS, "op_result=maybe", 'op_result must be "true" or "false"'),
        (AUDIT_EXT_KEYS, "op_result=[0~1]", "op_result takes no range"),
        (ROBOT_KEYS, "Level={system}", "Level takes no any-of list"),
        (PROJECT_KEYS, "public={true}", "public takes no any-of list"),
        (PROJECT_KEYS, "owner=~adm", "owner takes no fuzzy match"),
        (USER_KEYS, "username_or_email=~a", "username_or_email takes no fuzzy match"),
    ],
)
def test_values_are_typed_by_their_key(keys: Keys[object], q: str, why: str) -> None:
    with pytest.raises(BadRequest) as e:
        keys.query(q)
    assert e.value.message.startswith("invalid query string value: ")
    assert why in e.value.message


def test_times_take_harbors_forms_and_unix_seconds() -> None:
    day = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())
    # NOTE: `+` in q is a space (Harbor unescapes q once more): an offset is written %2B.
    for text in ("2024-01-02T00:00:00", "2024-01-02 00:00:00", "2024-01-02", str(day),
                 "2024-01-02T01:00:00%2B01:00", "2024-01-02T00:00:00Z"):  # fmt: skip
        condition = AUDIT_KEYS.query(f"op_time=[{text}~]").conditions[0]
        assert condition.values == (day, None), text
    widest = AUDIT_KEYS.query("op_time=[0001-01-01T00:00:00~9999-12-31T23:59:59]")
    assert widest.conditions[0].values == (-62135596800, 253402300799)


def test_a_lists_own_parameters_replace_the_same_key_in_q() -> None:
    query = USER_KEYS.query("username=a,email=b", also={"username": Term(Op.EQ, ("c",), "c")})
    assert [(c.key.name, c.values) for c in query.conditions] == [
        ("username", ("c",)),
        ("email", ("b",)),
    ]


def test_sort_skips_unknown_keys_and_falls_back_to_the_default() -> None:
    assert [(o.key.name, o.descending) for o in AUDIT_KEYS.query(sort="-creation_time").order] == [
        ("op_time", True)
    ]
    query = USER_KEYS.query(sort="-creation_time,bogus,Username,username_or_email")
    assert [(o.key.name, o.descending) for o in query.order] == [
        ("creation_time", True),
        ("username", False),
    ]
    assert [o.key.name for o in USER_KEYS.query().order] == ["username"]


def test_a_key_declared_twice_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        Keys("x", (Key("a", Kind.INT, ("A",)), Key("b", Kind.INT, ("A",))))


# ---- matching and order ------------------------------------------------------------------

USERS = [
    User(1, "admin", "admin@example.com", "", "", "h", True, 100, 100),
    User(2, "Alice", "alice@example.com", "Alice A", "", "h", False, 200, 250),
    User(3, "bob", "", "Bob", "50%_off", "h", False, 300, 300),
]


@pytest.mark.parametrize(
    ("q", "sort", "names"),
    [
        ("", "", ["Alice", "admin", "bob"]),  # by username, code point order
        ("", "-user_id", ["bob", "Alice", "admin"]),
        ("username=alice", "", []),
        ("username=Alice", "", ["Alice"]),
        ("username=~ALI", "", ["Alice"]),
        ("comment=~%", "", ["bob"]),
        ("comment=~_", "", ["bob"]),
        ("email=~example", "", ["Alice", "admin"]),
        ("user_id=[2~]", "", ["Alice", "bob"]),
        ("user_id=[~2]", "", ["Alice", "admin"]),
        ("user_id={1 3 99}", "", ["admin", "bob"]),
        ("user_id={}", "", []),
        ("user_id=(2 2)", "", ["Alice"]),
        ("user_id=(1 2)", "", []),
        ("user_id=()", "", ["Alice", "admin", "bob"]),
        ("sysadmin_flag=true", "", ["admin"]),
        ("sysadmin_flag=0", "", ["Alice", "bob"]),
        ("deleted=true", "", []),
        ("creation_time=[1970-01-01T00:03:20~1970-01-01T00:04:10]", "", ["Alice"]),
        ("update_time=250", "", ["Alice"]),
        ("username_or_email=alice@example.com", "", ["Alice"]),
        ("username_or_email=bob", "", ["bob"]),
        ("username=[a~b]", "", ["admin"]),
        ("realname=~bob,user_id=3", "", ["bob"]),
        ("realname=~bob,user_id=2", "", []),
    ],
)
def test_users_are_selected_and_ordered(q: str, sort: str, names: list[str]) -> None:
    selected = USER_KEYS.select(USER_KEYS.query(q, sort), USERS)
    assert [u.username for u in selected] == names


def robot(id_: int, name: str, project: str | None) -> Robot:
    return Robot(
        id=id_,
        name=name,
        project_id=7 if project else None,
        project_name=project,
        description="",
        secret_hash="h",
        duration=-1,
        expires_at=-1 if id_ != 2 else 1000,
        disabled=id_ == 3,
        creation_time=id_,
        update_time=id_,
        permissions=(),
        level=Level.PROJECT if project else Level.SYSTEM,
    )


ROBOTS = [robot(1, "deploy", "web"), robot(2, "build", "web"), robot(3, "web", "ops")]


@pytest.mark.parametrize(
    ("q", "sort", "ids"),
    [
        ("", "", [3, 2, 1]),  # by Harbor's stored name: ops+web, web+build, web+deploy
        ("", "-expires_at", [2, 1, 3]),
        ("", "ExpiresAt,id", [1, 3, 2]),
        ("name=build", "", [2]),  # the short name
        ("name=web%2Bbuild", "", [2]),  # Harbor's stored name (`+` escaped: q is unescaped twice)
        ("name=~web", "", [3, 2, 1]),  # Harbor finds a project's robots by its name
        ("name=~WEB%2BB", "", [2]),
        ("name={deploy web}", "", [3, 1]),
        ("disable=true", "", [3]),
        ("disabled=false", "", [2, 1]),
        ("visible=true", "", [3, 2, 1]),
        ("expiresat=[0~]", "", [2]),
        ("expires_at=-1", "", [3, 1]),
        ("ProjectID=7", "", [3, 2, 1]),
    ],
)
def test_robots_are_selected_and_ordered(q: str, sort: str, ids: list[int]) -> None:
    assert [r.id for r in ROBOT_KEYS.select(ROBOT_KEYS.query(q, sort), ROBOTS)] == ids


def test_a_system_robot_has_harbors_project_id_0() -> None:
    system = robot(4, "all", None)
    assert [r.id for r in ROBOT_KEYS.select(ROBOT_KEYS.query("ProjectID=0"), [system])] == [4]


@pytest.mark.parametrize(
    ("q", "project_id", "left"),
    [
        ("", None, []),
        ("Level=system", None, []),
        ("Level=system,ProjectID=3,name=~a", None, ["name"]),  # Harbor overrides ProjectID
        ("ProjectID=3", None, []),
        ("Level=project,ProjectID=3", 3, ["project_id"]),
        ("Level=project,ProjectID=3,name=x", 3, ["project_id", "name"]),
    ],
)
def test_robot_scope_is_harbors(q: str, project_id: int | None, left: list[str]) -> None:
    scope, query = robot_scope(ROBOT_KEYS.query(q))
    assert scope == project_id
    assert [c.key.name for c in query.conditions] == left


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("Level=robot", "bad request error level input"),
        ("Level=Project,ProjectID=1", "bad request error level input"),
        ("Level=project", "must with project ID when to query project robots"),
        ("Level=project,ProjectID=0", "ProjectID must be a positive integer"),
        ("Level=project,ProjectID=-4", "ProjectID must be a positive integer"),
        ("Level=project,ProjectID=[1~2]", "ProjectID must be a positive integer"),
        ("Level=project,ProjectID={1}", "ProjectID must be a positive integer"),
    ],
)
def test_robot_scope_errors_are_harbors(q: str, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        robot_scope(ROBOT_KEYS.query(q))
    assert e.value.message == message


def test_projects_filter_on_owner_public_and_registry() -> None:
    projects = [
        Project(1, "lib", True, 1, 1, 1, "admin"),
        Project(2, "app", False, 2, 2, None, ""),
    ]

    def names(q: str) -> list[str]:
        return [p.name for p in PROJECT_KEYS.select(PROJECT_KEYS.query(q), projects)]

    assert names("") == ["app", "lib"]
    assert names("owner=admin") == ["lib"]
    assert names("owner_id=1") == ["lib"]
    assert names("public=false") == ["app"]
    assert names("registry_id=0") == ["app", "lib"]
    assert names("project_id=[2~]") == ["app"]


def test_everything_keeps_the_order_given() -> None:
    assert USER_KEYS.select(EVERYTHING, USERS) == USERS
    assert Query().condition("x") is None


# ---- never anything but a 400 ------------------------------------------------------------

_ALPHABET = st.sampled_from(list("=~[]{}()\"' ,%+\\-_aZ09:.T\x00é\u202e\ufffd"))
_KEYS: list[Keys[Any]] = [USER_KEYS, PROJECT_KEYS, ROBOT_KEYS, AUDIT_KEYS, AUDIT_EXT_KEYS]
_KEY_NAMES = st.sampled_from(
    sorted({s for keys in _KEYS for k in keys.keys for s in (k.name, *k.aliases)} | {"x"})
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    """Mostly well-formed terms on real keys, with hostile values."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(_KEY_NAMES)
        value = draw(st.text(_ALPHABET, max_size=12))
        shape = draw(st.sampled_from(["{}", "~{}", "[{}]", "[{}~]", "[~{}]", "{{{}}}", "({})"]))
        parts.append(f"{key}={shape.format(value)}")
    return ",".join(parts)


@settings(max_examples=400, deadline=None)
@given(
    q=st.one_of(queries(), st.text(max_size=40)),
    sort=st.one_of(
        st.lists(st.tuples(st.sampled_from(["", "-"]), _KEY_NAMES).map("".join)).map(",".join),
        st.text(max_size=20),
    ),
)
def test_any_query_is_a_selection_or_a_400(q: str, sort: str) -> None:
    items: list[tuple[Keys[Any], list[Any]]] = [
        (USER_KEYS, USERS),
        (PROJECT_KEYS, [Project(1, "lib", True, 1, 1, 1, "admin")]),
        (ROBOT_KEYS, ROBOTS),
        (AUDIT_KEYS, []),
        (AUDIT_EXT_KEYS, []),
    ]
    for keys, listed in items:
        try:
            query = keys.query(q, sort)
            if listed:
                keys.select(query, listed)
            if keys is ROBOT_KEYS:
                robot_scope(query)
        except BadRequest as e:
            assert e.message
            assert len(e.message) < 1000  # what the caller sent is repeated bounded
