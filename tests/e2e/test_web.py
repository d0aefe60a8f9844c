"""End to end: the Robot Accounts web page in headless Chromium (Debian's, driven by
Playwright), against a real tokenserver and the real registry.

Screenshots of the main screens are saved in test-artifacts/web/.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.clients import Skopeo
from tests.e2e.conftest import ADMIN_PASSWORD, Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image
from tests.harbor_export import export as harbor_export

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
# As root in a sandboxless machine with a closed network: no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def web_stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="ts-web-"))
    stack = start_stack(directory, "ES256")
    try:
        yield stack
    finally:
        stop_stack(stack)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "scripts/test-deps installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, web_stack: Stack) -> Iterator[Page]:
    origin = web_stack.api_base.removesuffix("/api/v2.0")
    context = browser.new_context(
        base_url=origin, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, user: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log In").click()


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-robot="{name}"]')


def act(page: Page, robot: str, action: str) -> None:
    """Select the robot's checkbox, then Action > `action` (as Harbor's page does)."""
    row(page, robot).get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    page.get_by_role("menuitem", name=action).click()


def push(stack: Stack, robot: Robot, reference: str) -> bool:
    skopeo = Skopeo(stack, robot)
    if skopeo.login().returncode != 0:
        return False
    layout = stack.new_dir("image")
    write_image(layout, reference)
    return skopeo.push(layout, reference).returncode == 0


def test_a_project_admin_manages_robots_by_clicking(page: Page, web_stack: Stack) -> None:
    page.goto("/")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    screenshot(page, "1-login")
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    # Create a project and open its Robot Accounts tab.
    page.get_by_role("button", name="New Project").click()
    page.get_by_label("Project Name").fill("webapp")
    page.get_by_role("button", name="OK").click()
    expect(page.locator('tr[data-project="webapp"]')).to_be_visible()
    screenshot(page, "2-projects")
    page.get_by_role("link", name="webapp").click()
    expect(page.get_by_role("link", name="Robot Accounts", exact=True)).to_be_visible()

    # New Robot Account with two permissions, 30 days.
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("builder")
    dialog.get_by_label("Description (optional)").fill("CI builds")
    dialog.get_by_label("Expiration time (days)").fill("30")
    dialog.get_by_label("push repository").check()
    dialog.get_by_label("pull repository").check()
    screenshot(page, "3-new-robot")
    dialog.get_by_role("button", name="Add").click()

    created = page.get_by_role("dialog", name="Robot account created")
    expect(created).to_contain_text("cannot be shown again")
    secret = created.locator("#secret-value").inner_text().strip()
    web_stack.remember(secret)
    screenshot(page, "4-secret")
    with page.expect_download() as download_info:
        created.get_by_role("button", name="Export to File").click()
    download = download_info.value
    assert download.suggested_filename == "robot$webapp+builder.json"
    exported = json.loads(Path(download.path()).read_text())
    assert set(exported) == {"id", "name", "secret", "creation_time", "expires_at"}
    assert exported["name"] == "robot$webapp+builder" and exported["secret"] == secret
    assert exported["expires_at"] > 0
    created.get_by_role("button", name="Copy Secret").click()
    expect(created).to_contain_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    created.get_by_role("button", name="Close").click()

    builder = row(page, "robot$webapp+builder")
    expect(builder).to_contain_text("Enabled")
    expect(builder).to_contain_text("2 permissions")
    expect(builder).to_contain_text("CI builds")
    screenshot(page, "5-robots")
    builder.get_by_role("button", name="2 permissions").click()
    shown = page.get_by_role("dialog", name="Permissions of robot$webapp+builder")
    expect(shown.locator('[data-pair="repository:push"]')).to_have_text("✓")
    shown.get_by_role("button", name="Close").click()

    # The exported secret pushes through the real registry.
    robot = Robot(exported["name"], secret, exported["id"])
    assert push(web_stack, robot, "webapp/app:v1"), web_stack.server_log()[-2000:]

    # Edit: description and Never Expired.
    act(page, "robot$webapp+builder", "Edit")
    edit = page.get_by_role("dialog", name="Edit robot$webapp+builder")
    edit.get_by_label("Description (optional)").fill("release builds")
    edit.get_by_label("Never Expired").check()
    edit.get_by_role("button", name="Save").click()
    expect(builder).to_contain_text("release builds")
    expect(builder.locator(".expires")).to_have_text("Never")

    # Disable: the push fails. Enable: it works again.
    act(page, "robot$webapp+builder", "Disable")
    expect(builder).to_contain_text("Disabled")
    assert not push(web_stack, robot, "webapp/app:v2")
    act(page, "robot$webapp+builder", "Enable")
    expect(builder).to_contain_text("Enabled")
    assert push(web_stack, robot, "webapp/app:v3")

    # Refresh Secret (random): the old secret fails, the new one works.
    act(page, "robot$webapp+builder", "Refresh Secret")
    page.get_by_role("dialog", name="Refresh Secret").get_by_role("button", name="Refresh").click()
    refreshed = page.get_by_role("dialog", name="Secret refreshed")
    new_secret = refreshed.locator("#secret-value").inner_text().strip()
    web_stack.remember(new_secret)
    assert new_secret != secret
    screenshot(page, "6-refreshed")
    refreshed.get_by_role("button", name="Close").click()
    assert not push(web_stack, robot, "webapp/app:v4")
    robot = Robot(robot.name, new_secret, robot.id)
    assert push(web_stack, robot, "webapp/app:v5")

    # Manual secret: a mismatch and a weak one are refused in words; a good one works.
    act(page, "robot$webapp+builder", "Refresh Secret")
    manual = page.get_by_role("dialog", name="Refresh Secret")
    manual.get_by_label("Manually reset the secret").check()
    manual.get_by_label("New Secret").fill("Passw0rdOne")
    manual.get_by_label("Confirm Secret").fill("Passw0rdTwo")
    manual.get_by_role("button", name="Refresh").click()
    expect(manual.get_by_role("alert")).to_have_text("The secrets do not match.")
    manual.get_by_label("New Secret").fill("weak")
    manual.get_by_label("Confirm Secret").fill("weak")
    manual.get_by_role("button", name="Refresh").click()
    expect(manual.get_by_role("alert")).to_contain_text("at least 1 uppercase letter")
    chosen = web_stack.remember("Manual1Secret")
    manual.get_by_label("New Secret").fill(chosen)
    manual.get_by_label("Confirm Secret").fill(chosen)
    manual.get_by_role("button", name="Refresh").click()
    expect(page.locator("#status-text")).to_contain_text("was changed")
    robot = Robot(robot.name, chosen, robot.id)
    assert push(web_stack, robot, "webapp/app:v6")

    # Delete, after a confirmation.
    act(page, "robot$webapp+builder", "Delete")
    confirm = page.get_by_role("dialog", name="Delete Robot Account")
    screenshot(page, "7-delete")
    confirm.get_by_role("button", name="Delete").click()
    expect(builder).to_have_count(0)
    assert not push(web_stack, robot, "webapp/app:v7")

    # Log out: the page asks for a login again.
    page.get_by_role("button", name="Log Out").click()
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("form", name="Log in")).to_be_visible()


def test_api_errors_are_shown_next_to_the_form(page: Page, web_stack: Stack) -> None:
    web_stack.project("errs")
    web_stack.robot("errs", "taken", "repository:pull")
    log_in(page)
    page.get_by_role("link", name="errs").click()
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("taken")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).to_have_text("Select at least one permission.")
    dialog.get_by_label("pull repository").check()
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).to_contain_text("already exists")
    dialog.get_by_label("Name", exact=True).fill("Bad Name!")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).not_to_be_empty()
    expect(dialog.get_by_role("alert")).not_to_contain_text("already exists")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)


def test_search_and_paging(page: Page, web_stack: Stack) -> None:
    web_stack.project("many")
    for i in range(12):
        web_stack.robot("many", f"bot{i:02d}", "repository:pull")
    log_in(page)
    page.get_by_role("link", name="many").click()
    expect(page.locator("#page-info")).to_have_text("1 - 10 of 12 items")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#page-info")).to_have_text("11 - 12 of 12 items")
    expect(row(page, "robot$many+bot11")).to_be_visible()
    page.get_by_label("Search robot accounts by name").fill("bot0")
    expect(page.locator("#page-info")).to_have_text("1 - 10 of 10 items")
    expect(row(page, "robot$many+bot10")).to_have_count(0)
    page.get_by_label("Search robot accounts by name").fill("bot11")
    expect(page.locator("#page-info")).to_have_text("1 - 1 of 1 items")


def test_projects_page_and_search(page: Page, web_stack: Stack) -> None:
    for i in range(11):
        web_stack.project(f"zz-page-{i:02d}")
    log_in(page)
    page.get_by_label("Search projects by name").fill("zz-page")
    expect(page.locator("#page-info")).to_have_text("1 - 10 of 11 items")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#page-info")).to_have_text("11 - 11 of 11 items")
    expect(page.locator('tr[data-project="zz-page-10"]')).to_be_visible()
    page.get_by_label("Search projects by name").fill("zz-page-03")
    expect(page.locator("#page-info")).to_have_text("1 - 1 of 1 items")


def test_legacy_robots_carry_a_label_and_fewer_actions(page: Page, web_stack: Stack) -> None:
    path = web_stack.new_dir("export") / "harbor.json"
    path.write_text(json.dumps(harbor_export()))
    assert web_stack.cli("import-harbor", str(path)).returncode == 0
    log_in(page)
    page.get_by_role("link", name="lib").click()
    legacy = row(page, "robot$legacy")
    expect(legacy.locator(".legacy")).to_have_text("Legacy")
    legacy.get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    items = page.get_by_role("menuitem")
    expect(items).to_have_text(["Disable", "Enable", "Delete"])
    screenshot(page, "8-legacy")
    page.get_by_role("menuitem", name="Disable").click()
    expect(legacy).to_contain_text("Disabled")


def test_system_admins_manage_system_robots(page: Page, web_stack: Stack) -> None:
    web_stack.project("sys-a")
    web_stack.project("sys-b")
    log_in(page)
    page.get_by_role("link", name="System Robot Accounts").click()
    expect(page.get_by_role("heading", name="System Robot Accounts")).to_be_visible()
    page.get_by_role("button", name="New System Robot Account").click()
    dialog = page.get_by_role("dialog", name="New System Robot Account")
    dialog.get_by_label("Name", exact=True).fill("webfleet")
    dialog.get_by_label("Never Expired").check()
    dialog.get_by_label("sys-a").check()
    dialog.get_by_label("sys-b").check()
    dialog.get_by_label("pull repository").check()
    dialog.get_by_role("button", name="Add").click()
    created = page.get_by_role("dialog", name="Robot account created")
    secret = web_stack.remember(created.locator("#secret-value").inner_text().strip())
    created.get_by_role("button", name="Close").click()
    fleet = row(page, "robot$webfleet")
    expect(fleet.locator(".expires")).to_have_text("Never")
    expect(fleet).to_contain_text("2 permissions")
    screenshot(page, "9-system-robots")
    # Its secret logs in at the registry, and it may not push (pull only).
    reader = Skopeo(web_stack, Robot("robot$webfleet", secret, 0))
    assert reader.login().returncode == 0
    assert not push(web_stack, Robot("robot$webfleet", secret, 0), "sys-a/app:v1")


def test_a_robot_cannot_log_in_to_the_page(page: Page, web_stack: Stack) -> None:
    web_stack.project("robots-out")
    robot = web_stack.robot("robots-out", "ci", "repository:pull")
    log_in(page, robot.name, robot.secret)
    expect(page.locator("#login-error")).to_contain_text("robot accounts cannot log in")
    log_in(page, "admin", "wrong-password")
    expect(page.locator("#login-error")).to_contain_text("invalid username or password")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()


def test_a_change_without_the_csrf_token_is_refused(page: Page, web_stack: Stack) -> None:
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sid"]["httpOnly"] and cookies["sid"]["sameSite"] == "Strict"
    # The browser's own cookie, without the header the page sends: refused.
    response = page.request.post("/api/v2.0/projects", data={"project_name": "csrf-less"})
    assert response.status == 403
    assert "CSRF" in response.json()["errors"][0]["message"]
    session = page.request.get("/c/session").json()
    response = page.request.post(
        "/api/v2.0/projects",
        data={"project_name": "with-csrf"},
        headers={"X-Harbor-CSRF-Token": session["csrf_token"]},
    )
    assert response.status == 201
    names = [p["name"] for p in page.request.get("/api/v2.0/projects?page_size=100").json()]
    assert "with-csrf" in names and "csrf-less" not in names


def test_project_admins_and_developers_see_what_their_role_allows(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("team")
    web_stack.project("other-team")
    for user, role in (("alice", 1), ("dave", 2)):  # project admin, developer
        status, _, _ = web_stack.api("POST", "/users", {
            "username": user, "email": f"{user}@example.com", "realname": user,
            "password": "Us3rPassword",
        })  # fmt: skip
        assert status == 201
        status, _, _ = web_stack.api(
            "POST", "/projects/team/members", {"role_id": role, "member_user": {"username": user}}
        )
        assert status == 201
    # A project admin: sees the project, no New Project, no system robots; adds a robot.
    log_in(page, "alice", "Us3rPassword")
    expect(page.locator('tr[data-project="team"]')).to_be_visible()
    expect(page.locator('tr[data-project="other-team"]')).to_have_count(0)
    expect(page.get_by_role("button", name="New Project")).to_have_count(0)
    expect(page.get_by_role("link", name="System Robot Accounts")).to_be_hidden()
    page.get_by_role("link", name="team").click()
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("deployer")
    dialog.get_by_label("pull repository").check()
    dialog.get_by_role("button", name="Add").click()
    created = page.get_by_role("dialog", name="Robot account created")
    web_stack.remember(created.locator("#secret-value").inner_text().strip())
    created.get_by_role("button", name="Close").click()
    expect(row(page, "robot$team+deployer")).to_contain_text("1 permission")
    # Edit the permissions: pull becomes pull and push.
    act(page, "robot$team+deployer", "Edit")
    edit = page.get_by_role("dialog", name="Edit robot$team+deployer")
    expect(edit.get_by_label("pull repository")).to_be_checked()
    edit.get_by_label("push repository").check()
    edit.get_by_role("button", name="Save").click()
    expect(row(page, "robot$team+deployer")).to_contain_text("2 permissions")
    page.get_by_role("button", name="Log Out").click()
    # A developer may not create robots: the page offers no New Robot Account (the API's
    # refusal shown in a dialog is tested in test_web_roles.py).
    log_in(page, "dave", "Us3rPassword")
    page.get_by_role("link", name="team").click()
    expect(row(page, "robot$team+deployer")).to_be_visible()
    expect(page.get_by_role("button", name="New Robot Account")).to_have_count(0)


def test_dialogs_work_from_the_keyboard(page: Page, web_stack: Stack) -> None:
    web_stack.project("keys")
    web_stack.robot("keys", "kb", "repository:pull")
    log_in(page)
    page.get_by_role("link", name="keys").click()
    page.get_by_role("button", name="New Robot Account").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New Robot Account")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    row(page, "robot$keys+kb").get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("menuitem", name="Edit")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Disable")).to_be_focused()
    page.keyboard.press("Enter")
    expect(row(page, "robot$keys+kb")).to_contain_text("Disabled")


# ---- Edit, Disable and Enable keep what they do not change ---------------------------------


def allow(resource: str, action: str) -> dict[str, str]:
    return {"resource": resource, "action": action, "effect": "allow"}


def deny(resource: str, action: str) -> dict[str, str]:
    return {"resource": resource, "action": action, "effect": "deny"}


def on(namespace: str, *access: dict[str, str], kind: str = "project") -> dict[str, Any]:
    return {"kind": kind, "namespace": namespace, "access": list(access)}


def api_robot(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    """Create a robot through the API (the page cannot make every kind: denies, system
    entries) and return it as GET shows it."""
    status, _, created = stack.api("POST", "/robots", body)
    assert status == 201, created
    assert isinstance(created, dict)
    stack.remember(created["secret"])
    return shown(stack, created["id"])


def shown(stack: Stack, robot_id: int) -> dict[str, Any]:
    status, _, robot = stack.api("GET", f"/robots/{robot_id}")
    assert status == 200 and isinstance(robot, dict), robot
    return robot


def logged_in(page: Page) -> None:
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def project_id(stack: Stack, name: str) -> int:
    status, _, project = stack.api("GET", f"/projects/{name}")
    assert status == 200 and isinstance(project, dict), project
    return int(project["project_id"])


def open_robots(page: Page, stack: Stack, robot: dict[str, Any]) -> None:
    """The robot's list (its project's tab, or System Robot Accounts), searched down to it."""
    if robot["level"] == "project":
        name = robot["permissions"][0]["namespace"]
        page.goto(f"/#/projects/{project_id(stack, name)}/robots")
        heading = page.get_by_role("heading", name=name, level=1)
    else:
        page.goto("/#/system-robots")
        heading = page.get_by_role("heading", name="System Robot Accounts", level=1)
    # The list shown before has a search box of the same name: wait for this one.
    expect(heading).to_be_visible()
    short = robot["name"].removeprefix("robot$").split("+")[-1]
    page.get_by_label("Search robot accounts by name").fill(short)
    expect(row(page, robot["name"])).to_be_visible()
    expect(page.locator("#page-info")).to_have_text("1 - 1 of 1 items")


def unchanged_but(before: dict[str, Any], after: dict[str, Any], **changed: Any) -> None:
    """`after` is `before` but for `changed` (and the update time)."""
    skip = {"update_time", "last_used_at"}
    expected = {k: v for k, v in before.items() if k not in skip} | changed
    assert {k: v for k, v in after.items() if k not in skip} == expected


def every_kind_of_robot(stack: Stack, tag: str) -> list[dict[str, Any]]:
    """A project robot; system robots with different permissions per project, with a
    system-level entry, with denies (one on a project that does not exist), with a project
    in two entries, with `*`."""
    a, b = stack.project(f"{tag}-a"), stack.project(f"{tag}-b")
    return [
        api_robot(stack, {
            "name": f"{tag}-proj", "level": "project", "duration": 30,
            "description": "project robot",
            "permissions": [on(a, allow("tag", "create"), allow("repository", "push"),
                               allow("repository", "pull"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-mixed", "level": "system", "duration": -1,
            "description": "pull everywhere, push on one",
            "permissions": [on("*", allow("repository", "pull")),
                            on(a, allow("repository", "push"), allow("repository", "pull")),
                            on(b, allow("artifact", "delete"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-sys", "level": "system", "duration": 7,
            "description": "system level",
            "permissions": [on("/", allow("catalog", "read"), allow("audit-log", "list"),
                               kind="system"),
                            on(b, allow("repository", "pull"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-deny", "level": "system", "duration": -1,
            "description": "denies",
            "permissions": [on("*", allow("repository", "pull"), allow("repository", "push")),
                            on(a, deny("repository", "push"), allow("tag", "create")),
                            on(b, deny("repository", "pull")),
                            on(f"{tag}-gone", deny("repository", "pull"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-projdeny", "level": "project", "duration": -1,
            "description": "project robot with a deny",
            "permissions": [on(b, allow("repository", "pull"), deny("repository", "push"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-twice", "level": "system", "duration": -1,
            "description": "one project in two entries",
            "permissions": [on(b, allow("repository", "pull")),
                            on("/", allow("catalog", "read"), kind="system"),
                            on(b, allow("tag", "create"))],
        }),
        api_robot(stack, {
            "name": f"{tag}-star", "level": "system", "duration": -1,
            "description": "every project",
            "permissions": [on("*", allow("repository", "pull"))],
        }),
    ]  # fmt: skip


def test_edit_keeps_the_permissions_of_every_kind_of_robot(page: Page, web_stack: Stack) -> None:
    robots = every_kind_of_robot(web_stack, "keep")
    logged_in(page)
    for before in robots:
        open_robots(page, web_stack, before)
        act(page, before["name"], "Edit")
        edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
        edit.get_by_label("Description (optional)").fill(f"{before['description']}, edited")
        edit.get_by_role("button", name="Save").click()
        expect(edit).to_have_count(0)
        expect(row(page, before["name"])).to_contain_text("edited")
        after = shown(web_stack, before["id"])
        unchanged_but(before, after, description=f"{before['description']}, edited")


def test_edit_changes_only_the_entry_changed(page: Page, web_stack: Stack) -> None:
    robots = {r["name"]: r for r in every_kind_of_robot(web_stack, "one")}
    logged_in(page)

    # One project entry of several gains push: the others stay as they were.
    before = robots["robot$one-mixed"]
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    entry = edit.get_by_role("group", name="Permissions on project one-b")
    expect(entry.get_by_label("delete artifact", exact=True)).to_be_checked()
    expect(entry.get_by_label("push repository", exact=True)).not_to_be_checked()
    entry.get_by_label("push repository", exact=True).check()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    star, a, b = before["permissions"]
    b = on("one-b", *b["access"], allow("repository", "push"))
    unchanged_but(before, shown(web_stack, before["id"]), permissions=[star, a, b])

    # The system-level entry offers the system permissions: one more, the project entry kept.
    before = robots["robot$one-sys"]
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    system = edit.get_by_role("group", name="System permissions")
    expect(system.get_by_label("read catalog", exact=True)).to_be_checked()
    expect(system.get_by_label("pull repository", exact=True)).to_have_count(0)
    system.get_by_label("list project", exact=True).check()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    root, b = before["permissions"]
    root = on("/", *root["access"], allow("project", "list"), kind="system")
    unchanged_but(before, shown(web_stack, before["id"]), permissions=[root, b])

    # An entry with a deny loses an allow: the deny stays, and so do the other entries.
    before = robots["robot$one-deny"]
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    entry = edit.get_by_role("group", name="Permissions on project one-a")
    expect(entry).to_contain_text("deny push repository")
    screenshot(page, "10-edit-system-robot")
    entry.get_by_label("create tag", exact=True).uncheck()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    star, a, b, gone = before["permissions"]
    a = on("one-a", deny("repository", "push"))
    unchanged_but(before, shown(web_stack, before["id"]), permissions=[star, a, b, gone])

    # The project chooser: one project entry removed, another added with its own permissions.
    before = robots["robot$one-star"]
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    projects = edit.get_by_role("group", name="Projects", exact=True)
    expect(projects.get_by_label("All projects, including future ones")).to_be_checked()
    projects.get_by_label("one-a", exact=True).check()
    edit.get_by_role("button", name="Save").click()
    expect(edit.get_by_role("alert")).to_contain_text("project one-a")
    edit.get_by_role("group", name="Permissions on project one-a").get_by_label(
        "push repository", exact=True
    ).check()
    projects.get_by_label("All projects, including future ones").uncheck()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    unchanged_but(
        before,
        shown(web_stack, before["id"]),
        permissions=[on("one-a", allow("repository", "push"))],
    )

    # A project robot: one permission more, its deny kept.
    before = robots["robot$one-b+one-projdeny"]
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    expect(edit.get_by_label("pull repository", exact=True)).to_be_checked()
    edit.get_by_label("create tag", exact=True).check()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    (only,) = before["permissions"]
    only = on("one-b", *only["access"], allow("tag", "create"))
    unchanged_but(before, shown(web_stack, before["id"]), permissions=[only])


def test_disable_and_enable_keep_the_permissions(page: Page, web_stack: Stack) -> None:
    robots = every_kind_of_robot(web_stack, "toggle")
    logged_in(page)
    for before in robots:
        open_robots(page, web_stack, before)
        act(page, before["name"], "Disable")
        expect(row(page, before["name"])).to_contain_text("Disabled")
        unchanged_but(before, shown(web_stack, before["id"]), disable=True)
        act(page, before["name"], "Enable")
        expect(row(page, before["name"])).to_contain_text("Enabled")
        unchanged_but(before, shown(web_stack, before["id"]))


def test_edit_and_disable_start_from_the_robot_as_it_is_now(page: Page, web_stack: Stack) -> None:
    """A change made elsewhere after the list was shown (a new project and an entry on it
    among them) is not undone by the page."""
    web_stack.project("fresh")
    robot = api_robot(web_stack, {
        "name": "fresh-bot", "level": "system", "duration": -1,
        "permissions": [on("fresh", allow("repository", "pull"))],
    })  # fmt: skip
    logged_in(page)
    open_robots(page, web_stack, robot)
    web_stack.project("fresh-late")
    meanwhile = [
        on("fresh", allow("repository", "pull"), allow("repository", "push")),
        on("fresh-late", allow("repository", "pull")),
    ]
    body = {"name": "fresh-bot", "level": "system", "duration": -1, "permissions": meanwhile}
    assert web_stack.api("PUT", f"/robots/{robot['id']}", body)[0] == 200
    act(page, robot["name"], "Disable")
    expect(row(page, robot["name"])).to_contain_text("Disabled")
    assert shown(web_stack, robot["id"])["permissions"] == meanwhile

    body["permissions"] = meanwhile = [
        on("fresh", allow("tag", "create")),
        on("fresh-late", allow("repository", "pull")),
    ]
    body["disable"] = True
    assert web_stack.api("PUT", f"/robots/{robot['id']}", body)[0] == 200
    act(page, robot["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {robot['name']}")
    fresh = edit.get_by_role("group", name="Permissions on project fresh", exact=True)
    expect(fresh.get_by_label("create tag", exact=True)).to_be_checked()
    late = edit.get_by_role("group", name="Permissions on project fresh-late")
    expect(late.get_by_label("pull repository", exact=True)).to_be_checked()
    edit.get_by_label("Description (optional)").fill("seen fresh")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    assert shown(web_stack, robot["id"])["permissions"] == meanwhile


def test_the_expiration_is_bounded_on_the_page(page: Page, web_stack: Stack) -> None:
    web_stack.project("bounded")
    logged_in(page)
    page.goto(f"/#/projects/{project_id(web_stack, 'bounded')}/robots")
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    days = dialog.get_by_label("Expiration time (days)")
    assert days.get_attribute("max") == "36500" and days.get_attribute("min") == "1"
    dialog.get_by_label("Name", exact=True).fill("forever")
    dialog.get_by_label("pull repository", exact=True).check()
    for typed in ("36501", "99999999", "1.5", "0"):
        days.fill(typed)
        dialog.get_by_role("button", name="Add").click()
        expect(dialog.get_by_role("alert")).to_contain_text("36500")
    query = f"/robots?q=Level=project,ProjectID={project_id(web_stack, 'bounded')}"
    assert web_stack.api("GET", query)[2] == []
    days.fill("36500")
    dialog.get_by_role("button", name="Add").click()
    created = page.get_by_role("dialog", name="Robot account created")
    web_stack.remember(created.locator("#secret-value").inner_text().strip())
    created.get_by_role("button", name="Close").click()
    expect(row(page, "robot$bounded+forever")).to_be_visible()


def test_no_secret_or_session_reaches_a_log_or_the_database(page: Page, web_stack: Stack) -> None:
    """Runs last: the secrets the page showed, the passwords typed and the session cookies
    are absent, in clear, from the server's log and the database files."""
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    session = {c["name"]: c["value"] for c in page.context.cookies()}["sid"]
    sent = [*web_stack.secrets, session, ADMIN_PASSWORD, "Passw0rdOne", "Passw0rdTwo"]
    assert len(web_stack.secrets) >= 5
    places = {"tokenserver log": web_stack.server_log().encode()}
    for path in web_stack.directory.glob("tokenserver.db*"):
        places[path.name] = path.read_bytes()
    for name, content in places.items():
        for secret in sent:
            assert secret.encode() not in content, f"a secret is in the {name}"
