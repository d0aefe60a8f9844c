"""Harbor's `q=` and `sort=` on every list that takes them (issue 16 item 7): GET /users,
/projects, /robots, /audit-logs and /auditlog-exts filter and sort as asked, and a query
tokenserver cannot answer is a 400, never an unfiltered 200.

The tests only read: those of one fixture (users, projects, robots, an audit log) share one
server that it fills once for the module (a server and its contents for each of 130 tests was
most of the time), and run in the module's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import MakeSettings, write_settings
from tests.helpers import FAST_KDF_COST
from tests.http.conftest import basic, refusing_nothing, serving
from tests.http.test_api import ADMIN_PASSWORD, Api, error, project_robot
from tokenserver.domain.models import LOCAL
from tokenserver.http.app import create_app
from tokenserver.http.appkeys import RUNTIME

SHARED = pytest_asyncio.fixture(scope="module", loop_scope="module")
IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


@asynccontextmanager
async def shared_api(factory: pytest.TempPathFactory, name: str) -> AsyncIterator[Api]:
    """A server of the module's own, with its admin."""
    settings = write_settings(factory.mktemp(name), kdf_cost=FAST_KDF_COST)
    async with serving(settings) as server:
        await server.runtime.users.ensure_admin(ADMIN_PASSWORD)
        yield Api(server)


def one_test(api: Api) -> Iterator[Api]:
    """The shared `api`, for one test: what it makes the server serve is checked as it ends."""
    with refusing_nothing(api.server):
        yield api


async def listed(api: Api, path: str, field: str, auth: Any = None) -> list[Any]:
    r = await api.call("GET", path, auth or api.admin)
    assert r.status == 200, await r.text()
    items: list[dict[str, Any]] = await r.json()
    assert r.headers["X-Total-Count"] == str(len(items))
    return [item[field] for item in items]


def q(text: str) -> str:
    """`text` as the value of `q`, encoded once."""
    return quote(text, safe="")


async def bad_request(api: Api, path: str, message: str = "") -> str:
    text = await error(await api.call("GET", path, api.admin), 400, "BAD_REQUEST")
    assert message in text
    return text


# ---- users ---------------------------------------------------------------------------------


@SHARED
async def shared_users(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_api(tmp_path_factory, "users") as api:
        await fill_users(api)
        yield api


@pytest.fixture
def users(shared_users: Api) -> Iterator[Api]:
    yield from one_test(shared_users)


async def fill_users(api: Api) -> None:
    for name, email in (("alice", "alice@example.org"), ("Bob", "bob@example.com"),
                        ("carol", "")):  # fmt: skip
        r = await api.call(
            "POST",
            "/users",
            api.admin,
            {"username": name, "password": "Us3rPassword", "email": email, "realname": name},
        )
        assert r.status == 201, await r.text()


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["Bob", "admin", "alice", "carol"]),  # Harbor's order: by username
        ("&sort=-username", ["carol", "alice", "admin", "Bob"]),
        ("&sort=-user_id", ["carol", "Bob", "alice", "admin"]),
        ("&sort=UserID", ["admin", "alice", "Bob", "carol"]),
        ("&q=" + q("username=alice"), ["alice"]),
        ("&q=" + q("Username=ALICE"), []),
        ("&q=" + q("username=~B"), ["Bob"]),  # fuzzy: ASCII letters in any case
        ("&q=" + q("username=~b"), ["Bob"]),
        ("&q=" + q("email=~example.org"), ["alice"]),
        ("&q=" + q("email=~EXAMPLE"), ["Bob", "alice"]),
        ("&q=" + q("user_id=[2~3]"), ["Bob", "alice"]),
        ("&q=" + q("user_id=[3~]"), ["Bob", "carol"]),
        ("&q=" + q("user_id={1 4}"), ["admin", "carol"]),
        ("&q=" + q("user_id=(4 4)"), ["carol"]),
        ("&q=" + q("user_id=(3 4)"), []),
        ("&q=" + q("sysadmin_flag=true"), ["admin"]),
        ("&q=" + q("SysAdminFlag=false,realname=~o"), ["Bob", "carol"]),
        ("&q=" + q("username_or_email=bob@example.com"), ["Bob"]),
        ("&q=" + q("creation_time=[2000-01-01~]"), ["Bob", "admin", "alice", "carol"]),
        ("&q=" + q("creation_time=[~2000-01-01T00:00:00]"), []),
        ("&q=" + q("deleted=true"), []),
        # Harbor's own parameters: fuzzy, and they replace q's term under the same key.
        ("&username=ar", ["carol"]),
        ("&email=example.com", ["Bob"]),
        ("&username=a&q=" + q("username=carol,user_id=[~3]"), ["admin", "alice"]),
    ],
)
@IN_MODULE_LOOP
async def test_users_take_harbors_query(users: Api, query: str, names: list[str]) -> None:
    assert await listed(users, "/users?page_size=50" + query, "username") == names


# ---- projects ------------------------------------------------------------------------------


@SHARED
async def shared_projects(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Api, dict[str, str]]]:
    async with shared_api(tmp_path_factory, "projects") as api:
        yield api, await fill_projects(api)


@pytest.fixture
def projects(
    shared_projects: tuple[Api, dict[str, str]],
) -> Iterator[tuple[Api, dict[str, str]]]:
    api, alice = shared_projects
    for each in one_test(api):
        yield each, alice


async def fill_projects(api: Api) -> dict[str, str]:
    alice = await api.user("alice")
    await api.project("alpha", public=True)
    await api.project("beta")
    await api.project("gamma", auth=alice)  # owned by alice
    await api.project("a_b")
    return alice


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["a_b", "alpha", "beta", "gamma"]),
        ("&sort=-name", ["gamma", "beta", "alpha", "a_b"]),
        ("&sort=-project_id", ["a_b", "gamma", "beta", "alpha"]),
        ("&q=" + q("name=beta"), ["beta"]),
        ("&q=" + q("name=~A"), ["a_b", "alpha", "beta", "gamma"]),
        ("&q=" + q("name=~_"), ["a_b"]),
        ("&q=" + q("name=~%"), []),
        ("&q=" + q("name={alpha gamma x}"), ["alpha", "gamma"]),
        ("&q=" + q("name=[b~g]"), ["beta"]),
        ("&q=" + q("public=true"), ["alpha"]),
        ("&q=" + q("public=false,name=~m"), ["gamma"]),
        ("&q=" + q("owner=alice"), ["gamma"]),
        ("&q=" + q("owner=admin"), ["a_b", "alpha", "beta"]),
        ("&q=" + q("project_id=[2~3]"), ["beta", "gamma"]),
        ("&q=" + q("ProjectID=1"), ["alpha"]),
        ("&q=" + q("registry_id=0"), ["a_b", "alpha", "beta", "gamma"]),
        ("&q=" + q("update_time=[2000-01-01~]"), ["a_b", "alpha", "beta", "gamma"]),
        ("&name=et", ["beta"]),
        ("&owner=alice", ["gamma"]),
        ("&public=false&q=" + q("name=~a"), ["a_b", "beta", "gamma"]),
    ],
)
@IN_MODULE_LOOP
async def test_projects_take_harbors_query(
    projects: tuple[Api, dict[str, str]], query: str, names: list[str]
) -> None:
    api, _ = projects
    assert await listed(api, "/projects?page_size=50" + query, "name") == names


@IN_MODULE_LOOP
async def test_a_query_never_shows_a_project_the_caller_may_not_read(
    projects: tuple[Api, dict[str, str]],
) -> None:
    api, alice = projects
    assert await listed(api, "/projects?q=" + q("name=~a"), "name", alice) == ["alpha", "gamma"]
    assert await listed(api, "/projects?q=" + q("name=beta"), "name", alice) == []
    assert await listed(api, "/projects?q=" + q("owner=admin"), "name", alice) == ["alpha"]


# ---- robots --------------------------------------------------------------------------------


@SHARED
async def shared_robots(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Api, int]]:
    async with shared_api(tmp_path_factory, "robots") as api:
        yield api, await fill_robots(api)


@pytest.fixture
def robots(shared_robots: tuple[Api, int]) -> Iterator[tuple[Api, int]]:
    api, project_id = shared_robots
    for each in one_test(api):
        yield each, project_id


async def fill_robots(api: Api) -> int:
    project_id = await api.project("p")
    for name, duration in (("build", -1), ("deploy", 30), ("backup", 7)):
        await api.robot(project_robot("p", name, "repository:pull", duration=duration))
    await api.project("q")
    await api.robot(project_robot("q", "other", "repository:pull"))
    r = await api.call(
        "POST",
        "/robots",
        api.admin,
        {
            "name": "sys",
            "level": "system",
            "duration": -1,
            "disable": True,
            "permissions": [
                {
                    "kind": "system",
                    "namespace": "/",
                    "access": [{"resource": "audit-log", "action": "list"}],
                }
            ],
        },
    )
    assert r.status == 201, await r.text()
    return project_id


@pytest.mark.parametrize(
    ("terms", "params", "names"),
    [
        ("", "", ["backup", "build", "deploy"]),  # Harbor's order: by name
        ("", "&sort=-name", ["deploy", "build", "backup"]),
        ("", "&sort=-duration", ["deploy", "backup", "build"]),
        ("", "&sort=expires_at,name", ["build", "backup", "deploy"]),
        ("", "&sort=id", ["build", "deploy", "backup"]),
        (",name=deploy", "", ["deploy"]),
        (",name=p%2Bdeploy", "", ["deploy"]),  # Harbor's stored name, its + escaped for q
        (",name=~B", "", ["backup", "build"]),
        (",name=~p%2Bb", "", ["backup", "build"]),
        (",name={build backup}", "", ["backup", "build"]),
        (",duration=[1~30]", "", ["backup", "deploy"]),
        (",duration=-1", "", ["build"]),
        (",expires_at=-1", "", ["build"]),
        (",ExpiresAt=[0~]", "", ["backup", "deploy"]),
        (",disabled=false", "", ["backup", "build", "deploy"]),
        (",description=~deploy", "", ["deploy"]),
        (",id=(2 2)", "", ["deploy"]),
        (",creation_time=[2000-01-01~]", "", ["backup", "build", "deploy"]),
    ],
)
@IN_MODULE_LOOP
async def test_project_robots_take_harbors_query(
    robots: tuple[Api, int], terms: str, params: str, names: list[str]
) -> None:
    api, project_id = robots
    path = "/robots?q=" + q(f"Level=project,ProjectID={project_id}{terms}") + params
    assert [n.removeprefix("robot$p+") for n in await listed(api, path, "name")] == names


@IN_MODULE_LOOP
async def test_system_robots_take_harbors_query(robots: tuple[Api, int]) -> None:
    api, project_id = robots
    assert await listed(api, "/robots", "name") == ["robot$sys"]
    assert await listed(api, "/robots?q=" + q("Level=system,disable=true"), "name") == ["robot$sys"]
    assert await listed(api, "/robots?q=" + q("disabled=false"), "name") == []
    # Harbor lists system robots whatever ProjectID says unless Level=project.
    assert await listed(api, "/robots?q=" + q(f"ProjectID={project_id}"), "name") == ["robot$sys"]


@IN_MODULE_LOOP
async def test_a_client_that_quotes_q_itself_is_understood(robots: tuple[Api, int]) -> None:
    """Harbor's own test library quotes q before its client encodes it: Harbor unescapes q
    twice, and so does tokenserver."""
    api, project_id = robots
    twice = quote(quote(f"Level=project,ProjectID={project_id},name=~dep", safe=""), safe="")
    assert await listed(api, "/robots?q=" + twice, "name") == ["robot$p+deploy"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/robots?q=" + q("Level=project"), "must with project ID when to query project robots"),
        ("/robots?q=" + q("Level=everything"), "bad request error level input"),
        ("/robots?q=" + q("Level=project,ProjectID=0"), "ProjectID must be a positive integer"),
        ("/robots?q=" + q("Colour=red"), "unknown query key 'Colour': the robots list accepts"),
        ("/robots?q=" + q("level=project"), "unknown query key 'level'"),
        ("/robots?q=" + q("secret=x"), "unknown query key 'secret'"),
        ("/robots?q=" + q("name"), 'the query string must contain "=" and the key/value'),
        ("/robots?q=" + q("name=[a"), "invalid query string value: [a: range must start"),
        ("/robots?q=" + q("duration=~1"), "duration takes no fuzzy match"),
        ("/users?q=" + q("password=x"), "unknown query key 'password'"),
        ("/users?q=" + q("username=~"), "fuzzy match value must start with"),
        ("/projects?q=" + q("member=1"), "unknown query key 'member'"),
        ("/projects?q=" + q("public=maybe"), 'public must be "true" or "false"'),
        ("/projects?q=" + q("name={a"), 'or list must start with "{" and end with "}"'),
        ("/projects?q=" + q("project_id=(1"), 'and list must start with "(" and end with ")"'),
        ("/projects?q=" + q("name=a,,"), 'the query string must contain "="'),
    ],
)
@IN_MODULE_LOOP
async def test_a_query_that_cannot_be_answered_is_harbors_400(
    robots: tuple[Api, int], path: str, message: str
) -> None:
    api, _ = robots
    await bad_request(api, path, message)


@IN_MODULE_LOOP
async def test_the_next_page_link_keeps_the_query(robots: tuple[Api, int]) -> None:
    api, project_id = robots
    path = "/robots?q=" + q(f"Level=project,ProjectID={project_id},name=~b") + "&page_size=1"
    r = await api.call("GET", path, api.admin)
    assert [x["name"] for x in await r.json()] == ["robot$p+backup"]
    assert r.headers["X-Total-Count"] == "2"
    link = r.headers["Link"].split(">")[0].removeprefix("<").removeprefix("/api/v2.0")
    r = await api.call("GET", link, api.admin)
    assert [x["name"] for x in await r.json()] == ["robot$p+build"]


# ---- audit logs ----------------------------------------------------------------------------


@SHARED
async def shared_audit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with shared_api(tmp_path_factory, "audit") as api:
        await fill_audit(api)
        yield api


@pytest.fixture
def audit(shared_audit: Api) -> Iterator[Api]:
    yield from one_test(shared_audit)


async def fill_audit(api: Api) -> None:
    """An audit log: projects a_b and p created, a robot created in p and deleted, a user
    created, a project `x%y` refused (its name is invalid)."""
    await api.project("a_b")
    await api.project("p")
    robot = await api.robot(project_robot("p", "ci", "repository:pull"))
    assert (await api.call("DELETE", f"/robots/{robot['id']}", api.admin)).status == 200
    await api.user("alice")
    r = await api.call("POST", "/projects", api.admin, {"project_name": "x%y"})
    assert r.status == 400


ALL = ["x%y", "alice", "robot$p+ci", "robot$p+ci", "p", "a_b"]


@pytest.mark.parametrize(
    ("query", "resources"),
    [
        ("", ALL),  # newest first
        ("&sort=op_time", ALL[::-1]),
        ("&sort=-op_time", ALL),
        ("&sort=-creation_time", ALL),  # Harbor's own test sorts by a key the log lacks
        ("&sort=resource,-id", ["a_b", "alice", "p", "robot$p+ci", "robot$p+ci", "x%y"]),
        ("&q=" + q("operation=delete"), ["robot$p+ci"]),
        ("&q=" + q("Operation=create,resource_type=project"), ["x%y", "p", "a_b"]),
        ("&q=" + q("resource_type={user robot}"), ["alice", "robot$p+ci", "robot$p+ci"]),
        ("&q=" + q("resource=~P"), ["robot$p+ci", "robot$p+ci", "p"]),
        ("&q=" + q("resource=~%"), ["x%y"]),  # matched as itself, not as a wildcard
        ("&q=" + q("resource=~_"), ["a_b"]),
        ("&q=" + q("resource=~%25"), ["x%y"]),  # escaped once more for q: still %
        ("&q=" + q("username=admin,resource=x%y"), ["x%y"]),
        ("&q=" + q("username=~dmi"), ALL),
        ("&q=" + q("op_time=[2000-01-01T00:00:00~9999-12-31T23:59:59]"), ALL),
        ("&q=" + q("op_time=[0001-01-01 00:00:00~]"), ALL),
        ("&q=" + q("op_time=[~2000-01-01]"), []),
        ("&q=" + q("id=[-9223372036854775808~9223372036854775807]"), ALL),
        ("&q=" + q("id={1 2}"), ["p", "a_b"]),
        ("&q=" + q("id=(3 3)"), ["robot$p+ci"]),
        ("&q=" + q("ID=[5~]"), ["x%y", "alice"]),
    ],
)
@IN_MODULE_LOOP
async def test_the_audit_log_takes_harbors_query(
    audit: Api, query: str, resources: list[str]
) -> None:
    assert await listed(audit, "/audit-logs?page_size=50" + query, "resource") == resources


@pytest.mark.parametrize(
    ("query", "resources"),
    [
        ("&q=" + q("op_result=false"), ["x%y"]),
        ("&q=" + q("IsSuccessful=true,resource_type=project"), ["p", "a_b"]),
        ("&q=" + q("op_desc=delete robot: robot$p%2Bci"), ["robot$p+ci"]),
        ("&q=" + q("OperationDescription=~CREATE USER"), ["alice"]),
        ("&sort=-creation_time&page_size=1", ["x%y"]),
    ],
)
@IN_MODULE_LOOP
async def test_the_audit_log_ext_takes_harbors_query(
    audit: Api, query: str, resources: list[str]
) -> None:
    path = "/auditlog-exts?" + query.removeprefix("&")
    r = await audit.call("GET", path, audit.admin)
    entries = await r.json()
    assert [e["resource"] for e in entries] == resources
    assert int(r.headers["X-Total-Count"]) >= len(entries)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=" + q("outcome=success"), "unknown query key 'outcome': the audit log list accepts"),
        ("q=" + q("op_result=true"), "unknown query key 'op_result'"),  # only the ext has it
        ("q=" + q("op_time=yesterday"), "op_time must be a time"),
        ("q=" + q("op_time=~2024"), "op_time takes no fuzzy match"),
        ("q=" + q("id=[0~99999999999999999999]"), "id must fit in 64 bits"),
        ("q=" + q("op_time=[0~1e30]"), "op_time must be a time"),
        ("q=" + q("resource=[~]"), "min and max at least one should be set in range"),
        ("q=" + q("resource=~"), "fuzzy match value must start with"),
    ],
)
@IN_MODULE_LOOP
async def test_an_audit_query_that_cannot_be_answered_is_a_400(
    audit: Api, query: str, message: str
) -> None:
    await bad_request(audit, "/audit-logs?" + query, message)


@IN_MODULE_LOOP
async def test_attack_a_sort_repeating_a_key_thousands_of_times_is_one_key(audit: Api) -> None:
    # SQLite refuses an ORDER BY of more than 2000 terms: it was a 500.
    for path in ("/audit-logs", "/auditlog-exts", "/users", "/projects", "/robots"):
        field = "resource" if "audit" in path else "username" if path == "/users" else "name"
        got = await listed(audit, f"{path}?page_size=100&sort=" + "id," * 2100, field)
        if path == "/audit-logs":
            assert got == ALL[::-1]


@IN_MODULE_LOOP
async def test_attack_lists_of_thousands_of_values_are_answered(audit: Api) -> None:
    # `+` is a space in a URL's query: the longest lists a request line can carry.
    ones, many = "+".join(["1"] * 2500), "+".join(str(i) for i in range(1, 1200))
    assert await listed(audit, f"/audit-logs?q=id%3D({ones})", "resource") == ["a_b"]
    assert await listed(audit, f"/audit-logs?q=id%3D({many})", "resource") == []
    assert await listed(audit, f"/audit-logs?q=id%3D%7B{many}%7D", "resource") == ALL
    assert await listed(audit, f"/users?q=user_id%3D%7B{many}%7D", "username") == [
        "admin",
        "alice",
    ]


@pytest.mark.parametrize(
    "value",
    ["é", "%C3%A9", "\u202e", "%00", "a%2500", "%FF", "%ED%A0%80", "\U0001f600", "'", '"'],
)
@IN_MODULE_LOOP
async def test_attack_hostile_text_in_an_audit_query_matches_nothing(
    audit: Api, value: str
) -> None:
    for key in ("resource=~", "username=", "operation={", "resource=["):
        text = key + value + {"{": "}", "[": "~]"}.get(key[-1], "")
        r = await audit.call("GET", "/audit-logs?q=" + q(text), audit.admin)
        assert r.status in (200, 400), await r.text()
        if r.status == 200 and not key.startswith("resource=["):
            assert await r.json() == [], text


@IN_MODULE_LOOP
async def test_attack_a_nul_in_a_query_on_every_list_is_not_a_500(audit: Api) -> None:
    for path in ("/users?q=username%3D~a%2500", "/projects?q=name%3Da%00",
                 "/robots?q=name%3D~a%00", "/audit-logs?q=resource%3D~a%00",
                 "/auditlog-exts?q=resource%3D%5Ba%00~%5D"):  # fmt: skip
        r = await audit.call("GET", path, audit.admin)
        assert r.status == 200, (path, await r.text())


# ---- never a 500 ---------------------------------------------------------------------------

_ALPHABET = "=~[]{}() ,%+\\'\"-_:aAzZ09\x00é"
_KEYS = ["username", "name", "resource", "op_time", "id", "Level", "ProjectID", "project_id",
         "op_result", "public", "owner", "x"]  # fmt: skip


def test_any_query_on_any_list_is_a_page_or_a_400(make_settings: MakeSettings) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(make_settings())
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    admin = basic("admin", ADMIN_PASSWORD)

    async def setup() -> None:
        rt = app[RUNTIME]
        await rt.users.ensure_admin(ADMIN_PASSWORD)
        await rt.projects.create(LOCAL, "p")

    loop.run_until_complete(setup())

    async def probe(path: str, query: str, sort: str) -> None:
        r = await client.get(
            f"/api/v2.0{path}?q={quote(query, safe='')}&sort={quote(sort, safe='')}",
            headers=admin,
        )
        assert r.status in (200, 400), (path, query, r.status, await r.text())
        body = await r.json()
        if r.status == 400:
            (entry,) = body["errors"]
            assert entry["code"] == "BAD_REQUEST" and entry["message"]

    term = st.builds(
        lambda k, shape, v: k + "=" + shape.format(v, v),
        st.sampled_from(_KEYS),
        st.sampled_from(["{}", "~{}", "[{}]", "[{}~]", "[~{}]", "{{{}}}", "({})", "[{}~{}]"]),
        st.text(_ALPHABET, max_size=10),
    )

    lists = ["/users", "/projects", "/robots", "/audit-logs", "/auditlog-exts",
             "/projects/p/logs", "/projects/p/auditlog-exts"]  # fmt: skip

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(lists),
        st.one_of(st.lists(term, max_size=3).map(",".join), st.text(max_size=30)),
        st.text(_ALPHABET, max_size=12),
    )
    def check(path: str, query: str, sort: str) -> None:
        loop.run_until_complete(probe(path, query, sort))

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.close()
