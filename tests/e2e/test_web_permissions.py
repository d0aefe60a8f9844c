"""End to end: the robot dialogs' permission grid, repository patterns and token lifetime,
and the list's read-only Permissions dialog, in headless Chromium (Playwright) against a real
tokenserver and the real registry.

Screenshots are saved in test-artifacts/web/ next to test_web.py's.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.e2e import test_web
from tests.e2e.conftest import Robot, Stack
from tests.e2e.test_web import (
    act,
    allow,
    api_robot,
    deny,
    log_in,
    on,
    open_robots,
    project_id,
    push,
    row,
    screenshot,
    shown,
    unchanged_but,
)

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page


def logged_in(page: Page) -> None:
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def new_robot_dialog(page: Page, stack: Stack, project: str) -> Locator:
    page.goto(f"/#/projects/{project_id(stack, project)}/robots")
    expect(page.get_by_role("heading", name=project, level=1)).to_be_visible()
    page.get_by_role("button", name="New Robot Account").click()
    return page.get_by_role("dialog", name="New Robot Account")


def create(page: Page, dialog: Locator, stack: Stack) -> dict[str, Any]:
    """Add the robot of `dialog`; close the secret; the robot as GET shows it."""
    dialog.get_by_role("button", name="Add", exact=True).click()
    created = page.get_by_role("dialog", name="Robot account created")
    secret = stack.remember(created.locator("#secret-value").inner_text().strip())
    name = created.locator("#secret-name").inner_text().strip()
    created.get_by_role("button", name="Close").click()
    result = stack.cli("robot", "show", name)
    assert result.returncode == 0, result.stderr
    robot: dict[str, Any] = json.loads(result.stdout)
    robot["secret"] = secret
    return robot


def add_pattern(entry: Locator, pattern: str) -> None:
    box = entry.get_by_label("Repositories", exact=True)
    box.fill(pattern)
    box.press("Enter")


def project_permissions(stack: Stack) -> list[dict[str, str]]:
    status, _, table = stack.api("GET", "/permissions")
    assert status == 200 and isinstance(table, dict), table
    project: list[dict[str, str]] = table["project"]
    return project


def token_expires_in(stack: Stack, robot: Robot, scope: str) -> int:
    origin = stack.api_base.removesuffix("/api/v2.0")
    auth = base64.b64encode(f"{robot.name}:{robot.secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        f"{origin}/service/token?scope={scope}",
        headers={"Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        answer = json.loads(response.read())
    expires_in: int = answer["expires_in"]
    return expires_in


# ---- The grid --------------------------------------------------------------------------------


def test_the_grid_selects_by_row_column_preset_and_all(page: Page, web_stack: Stack) -> None:
    web_stack.project("grid")
    offered = project_permissions(web_stack)
    logged_in(page)
    dialog = new_robot_dialog(page, web_stack, "grid")
    dialog.get_by_label("Name", exact=True).fill("gridbot")
    grid = dialog.get_by_role("group", name="Permission(s)")
    count = grid.locator(".count")
    expect(count).to_have_text("0 selected")
    # Resources are rows, actions columns; a pair that does not exist has no box.
    tag_row = grid.locator('tr[data-resource="tag"]')
    expect(tag_row.get_by_role("checkbox")).to_have_count(4)  # the row's box + create list delete
    expect(grid.locator('tr[data-resource="repository"]').get_by_role("checkbox")).to_have_count(7)

    preset = grid.get_by_label("Preset")
    preset.select_option(label="Push and pull")
    expect(grid.get_by_label("pull repository", exact=True)).to_be_checked()
    expect(grid.get_by_label("push repository", exact=True)).to_be_checked()
    expect(count).to_have_text("2 selected")
    # The repository row is partly chosen: its box says so.
    every_repository = grid.get_by_label("Every repository permission")
    expect(every_repository).to_have_js_property("indeterminate", True)

    # A row: every tag permission; the preset no longer describes the choice.
    grid.get_by_label("Every tag permission").check()
    for action in ("create", "list", "delete"):
        expect(grid.get_by_label(f"{action} tag", exact=True)).to_be_checked()
    expect(count).to_have_text("5 selected")
    expect(preset).to_have_value("")
    expect(preset.locator("option:checked")).to_have_text("Custom")

    # A column: every delete permission, then none of them.
    deletes = [p for p in offered if p["action"] == "delete"]
    grid.get_by_label("Every delete permission").check()
    expect(count).to_have_text(f"{5 + len(deletes) - 1} selected")  # tag delete was in
    grid.get_by_label("Every delete permission").uncheck()
    expect(grid.get_by_label("delete tag", exact=True)).not_to_be_checked()
    expect(grid.get_by_label("delete artifact", exact=True)).not_to_be_checked()
    expect(count).to_have_text("4 selected")

    # Select all: every permission the server lists; then none.
    grid.get_by_role("button", name="Select all").click()
    expect(count).to_have_text(f"{len(offered)} selected")
    expect(every_repository).to_be_checked()
    screenshot(page, "11-permission-grid")
    grid.get_by_role("button", name="Unselect all").click()
    expect(count).to_have_text("0 selected")

    # Harbor's robot set: the ten of its page before 2.8, those the server still lists.
    preset.select_option(label="Harbor's robot set")
    expect(count).to_have_text("7 selected")
    for label in ("push repository", "delete artifact", "create tag", "delete tag",
                  "create artifact-label", "create scan"):  # fmt: skip
        expect(grid.get_by_label(label, exact=True)).to_be_checked()

    # Pull, saved: exactly that.
    preset.select_option(label="Pull")
    expect(count).to_have_text("1 selected")
    robot = create(page, dialog, web_stack)
    assert robot["permissions"] == [on("grid", allow("repository", "pull"))]


def test_the_grid_fits_a_narrow_screen_and_scrolls_in_its_box(page: Page, web_stack: Stack) -> None:
    web_stack.project("narrow")
    page.set_viewport_size({"width": 390, "height": 844})
    logged_in(page)
    dialog = new_robot_dialog(page, web_stack, "narrow")
    grid = dialog.get_by_role("group", name="Permission(s)")
    grid.get_by_label("Every repository permission").check()
    screenshot(page, "12-permission-grid-390")
    scroller = grid.locator(".grid-scroll")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # the grid scrolls inside
    # (The dialog's own width at 390 px is tests/e2e/test_web_ux.py's.)
    box = grid.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box


def test_a_system_robot_has_a_grid_per_project_rule_and_one_for_the_system(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("sysgrid")
    logged_in(page)
    page.goto("/#/system-robots")
    page.get_by_role("button", name="New System Robot Account").click()
    dialog = page.get_by_role("dialog", name="New System Robot Account")
    dialog.get_by_label("Name", exact=True).fill("sysgrid-bot")
    dialog.get_by_label("All projects, including future ones").check()
    rules = dialog.get_by_role("group", name="Permission(s)", exact=True)
    rules.get_by_label("Preset").select_option(label="Pull")
    add_pattern(rules, "team-a/**")
    dialog.get_by_label("System permissions (outside any project)").check()
    system = dialog.get_by_role("group", name="System permissions")
    expect(system.get_by_label("Preset")).to_have_count(0)  # presets are for projects
    expect(system.get_by_label("Repositories", exact=True)).to_have_count(0)
    system.get_by_label("read catalog", exact=True).check()
    expect(system.locator(".count")).to_have_text("1 selected")
    robot = create(page, dialog, web_stack)
    assert robot["permissions"] == [
        {**on("*", allow("repository", "pull")), "repositories": ["team-a/**"]},
        on("/", allow("catalog", "read"), kind="system"),
    ]


# ---- Repository patterns ---------------------------------------------------------------------


def test_patterns_are_chips_explained_by_an_example_and_the_registry_honours_them(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("chips")
    logged_in(page)
    dialog = new_robot_dialog(page, web_stack, "chips")
    dialog.get_by_label("Name", exact=True).fill("teambot")
    rule = dialog.get_by_role("group", name="Permission(s)", exact=True)
    expect(rule).to_contain_text("No pattern: every repository of the project.")
    rule.get_by_label("Preset").select_option(label="Push and pull")
    add_pattern(rule, "team-a/*")
    add_pattern(rule, "team-b/**")
    add_pattern(rule, "tools")
    chips = rule.locator(".chip")
    expect(chips).to_have_count(3)
    expect(chips.locator("code")).to_have_text(["team-a/*", "team-b/**", "tools"])
    expect(chips.locator(".example")).to_have_text(
        [
            "matches team-a/app, not team-a/x/app",
            "matches team-b/app and team-b/x/app, not team-b",
            "matches tools only",
        ]
    )
    expect(rule.get_by_text("No pattern")).to_be_hidden()
    # Enter added the patterns; it did not submit the dialog.
    expect(dialog).to_be_visible()
    rule.get_by_role("button", name="Remove team-b/**").click()
    rule.get_by_role("button", name="Remove tools").click()
    expect(chips).to_have_count(1)

    # A deny rule inside the allow: no push to team-a/secrets.
    rule.get_by_role("button", name="New deny rule").click()
    denied = dialog.get_by_role("group", name="Denied permission(s)")
    expect(denied.get_by_label("Repositories", exact=True)).to_be_focused()
    add_pattern(denied, "team-a/secrets")
    denied.get_by_label("deny push repository", exact=True).check()
    screenshot(page, "13-patterns")
    robot = create(page, dialog, web_stack)
    assert robot["permissions"] == [
        {**on("chips", allow("repository", "pull"), allow("repository", "push")),
         "repositories": ["team-a/*"]},
        {**on("chips", deny("repository", "push")), "repositories": ["team-a/secrets"]},
    ]  # fmt: skip

    # The registry: team-a/app yes; team-b/app, chips/app and team-a/secrets no.
    bot = Robot(robot["name"], robot["secret"], robot["id"])
    assert push(web_stack, bot, "chips/team-a/app:v1"), web_stack.server_log()[-2000:]
    assert not push(web_stack, bot, "chips/team-b/app:v1")
    assert not push(web_stack, bot, "chips/app:v1")
    assert not push(web_stack, bot, "chips/team-a/secrets:v1")


def test_bad_patterns_are_named_by_the_page_or_the_api(page: Page, web_stack: Stack) -> None:
    web_stack.project("badpat")
    logged_in(page)
    dialog = new_robot_dialog(page, web_stack, "badpat")
    dialog.get_by_label("Name", exact=True).fill("badbot")
    rule = dialog.get_by_role("group", name="Permission(s)", exact=True)
    rule.get_by_label("pull repository", exact=True).check()
    problem = rule.locator(".pattern-error")
    for bad, says in (
        ("Team-A/*", "holds upper case"),
        ("team-a//app", "empty path segment"),
        ("**/app", "'**' may only be the last segment"),
        ("../etc", "holds '..'"),
        ("app-*", "is neither a repository name component"),
        ('<img src=x onerror="window.pwned=1">', "is neither a repository name component"),
    ):
        add_pattern(rule, bad)
        expect(problem).to_contain_text(f"'{bad}'")
        expect(problem).to_contain_text(says)
        expect(rule.locator(".chip")).to_have_count(0)
    # Shown as text: no element was made from it.
    expect(dialog.locator("img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None

    # A bad pattern typed but not added stops Add, named.
    rule.get_by_label("Repositories", exact=True).fill("UPPER")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("'UPPER' holds upper case")

    # The API's 400: two rules of a project robot with the same patterns.
    add_pattern(rule, "app")
    rule.get_by_role("button", name="New allow rule").click()
    second = dialog.get_by_role("group", name="Permission(s) (rule 2)")
    add_pattern(second, "app")
    second.get_by_label("push repository", exact=True).check()
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("same")
    query = f"/robots?q=Level=project,ProjectID={project_id(web_stack, 'badpat')}"
    assert web_stack.api("GET", query)[2] == []
    # Remove the second rule: the robot is made.
    second.get_by_role("button", name="Remove rule").click()
    expect(second).to_have_count(0)
    robot = create(page, dialog, web_stack)
    assert robot["permissions"] == [
        {**on("badpat", allow("repository", "pull")), "repositories": ["app"]}
    ]


def robots_with_patterns(stack: Stack, tag: str) -> list[dict[str, Any]]:
    """An allow on every repository with a deny on secrets/**; a system robot with patterns on
    `*` and on a project, its own token lifetime and a system entry."""
    a = stack.project(f"{tag}-a")
    return [
        api_robot(stack, {
            "name": f"{tag}-secrets", "level": "project", "duration": 30,
            "permissions": [
                on(a, allow("repository", "pull"), allow("repository", "push")),
                {**on(a, deny("repository", "push"), deny("repository", "pull")),
                 "repositories": ["secrets/**"]},
            ],
        }),
        api_robot(stack, {
            "name": f"{tag}-fleet", "level": "system", "duration": -1, "token_lifetime": 5400,
            "permissions": [
                {**on("*", allow("repository", "pull")), "repositories": ["base/*", "tools"]},
                on("/", allow("catalog", "read"), kind="system"),
                {**on(a, allow("repository", "push"), allow("repository", "pull"),
                      allow("tag", "create")), "repositories": ["team-a/**"]},
                {**on(a, deny("repository", "push")), "repositories": ["team-a/frozen"]},
            ],
        }),
    ]  # fmt: skip


def test_several_rules_per_project_round_trip_through_edit_unchanged(
    page: Page, web_stack: Stack
) -> None:
    robots = robots_with_patterns(web_stack, "trip")
    logged_in(page)
    for before in robots:
        open_robots(page, web_stack, before)
        act(page, before["name"], "Edit")
        edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
        edit.get_by_label("Description (optional)").fill("round trip")
        if before["level"] == "project":
            allowed = edit.get_by_role("group", name="Permission(s)", exact=True)
            expect(allowed.get_by_label("push repository", exact=True)).to_be_checked()
            expect(allowed).to_contain_text("No pattern: every repository of the project.")
            denied = edit.get_by_role("group", name="Denied permission(s)")
            expect(denied.get_by_label("deny push repository", exact=True)).to_be_checked()
            expect(denied.locator(".chip code")).to_have_text(["secrets/**"])
            expect(denied.locator(".chip .example")).to_have_text(
                ["matches secrets/app and secrets/x/app, not secrets"]
            )
            screenshot(page, "14-edit-rules")
        else:
            expect(edit.get_by_label("Token lifetime (optional)")).to_have_value("90")
            expect(edit.get_by_label("Token lifetime unit")).to_have_value("60")
            expect(edit.locator("#robot-token-effective")).to_have_text("Tokens last 1 h 30 min.")
            star = edit.get_by_role("group", name="Permissions on all projects")
            expect(star.locator(".chip code")).to_have_text(["base/*", "tools"])
            frozen = edit.get_by_role("group", name="Denied on project trip-a")
            expect(frozen.locator(".chip code")).to_have_text(["team-a/frozen"])
        edit.get_by_role("button", name="Save").click()
        expect(edit).to_have_count(0)
        unchanged_but(before, shown(web_stack, before["id"]), description="round trip")


def test_edit_adds_and_removes_patterns(page: Page, web_stack: Stack) -> None:
    before, fleet = robots_with_patterns(web_stack, "repat")
    logged_in(page)
    open_robots(page, web_stack, before)
    act(page, before["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {before['name']}")
    # The allow rule gains a pattern; the deny rule loses its only one: it is asked for in
    # words, as every repository (a PUT without the field would keep the stored patterns).
    add_pattern(edit.get_by_role("group", name="Permission(s)", exact=True), "team-a/*")
    denied = edit.get_by_role("group", name="Denied permission(s)")
    denied.get_by_role("button", name="Remove secrets/**").click()
    expect(denied).to_contain_text("No pattern: every repository of the project.")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    allowed, refused = before["permissions"]
    unchanged_but(
        before,
        shown(web_stack, before["id"]),
        permissions=[{**allowed, "repositories": ["team-a/*"]}, on("repat-a", *refused["access"])],
    )

    # A system robot: one rule on `*` changed, the others kept as they were.
    open_robots(page, web_stack, fleet)
    act(page, fleet["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {fleet['name']}")
    star = edit.get_by_role("group", name="Permissions on all projects")
    star.get_by_role("button", name="Remove tools").click()
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    first, *others = fleet["permissions"]
    unchanged_but(
        fleet,
        shown(web_stack, fleet["id"]),
        permissions=[{**first, "repositories": ["base/*"]}, *others],
    )


# ---- Token lifetime --------------------------------------------------------------------------


def test_a_robot_gets_its_own_token_lifetime_and_loses_it(page: Page, web_stack: Stack) -> None:
    web_stack.project("lifetime")
    logged_in(page)
    dialog = new_robot_dialog(page, web_stack, "lifetime")
    dialog.get_by_label("Name", exact=True).fill("slowpush")
    dialog.get_by_label("pull repository", exact=True).check()
    lifetime = dialog.get_by_label("Token lifetime (optional)")
    effective = dialog.locator("#robot-token-effective")
    # Empty: the server's default, as the server says it (token.lifetime, 30 minutes here).
    expect(lifetime).to_have_value("")
    expect(effective).to_have_text("Tokens last 30 min, the server's default.")
    lifetime.fill("3")
    dialog.get_by_label("Token lifetime unit").select_option(label="hours")
    expect(effective).to_have_text("Tokens last 3 h.")
    # Out of the server's bounds: refused before sending, naming them.
    dialog.get_by_label("Token lifetime unit").select_option(label="days")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("from 1 minute to 1 d")
    lifetime.fill("30")
    dialog.get_by_label("Token lifetime unit").select_option(label="seconds")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("from 1 minute to 1 d")
    lifetime.fill("3")
    dialog.get_by_label("Token lifetime unit").select_option(label="hours")
    robot = create(page, dialog, web_stack)
    assert robot["token_lifetime"] == 10800 and robot["effective_token_lifetime"] == 10800
    bot = Robot(robot["name"], robot["secret"], robot["id"])
    assert token_expires_in(web_stack, bot, "repository:lifetime/app:pull") == 10800

    # Edit shows it; emptied, the robot has none of its own again.
    act(page, robot["name"], "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {robot['name']}")
    expect(edit.get_by_label("Token lifetime (optional)")).to_have_value("3")
    expect(edit.get_by_label("Token lifetime unit")).to_have_value("3600")
    edit.get_by_label("Token lifetime (optional)").fill("")
    expect(edit.locator("#robot-token-effective")).to_have_text(
        "Tokens last 30 min, the server's default."
    )
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    after = shown(web_stack, robot["id"])
    assert "token_lifetime" not in after and after["effective_token_lifetime"] == 1800
    assert token_expires_in(web_stack, bot, "repository:lifetime/app:pull") == 1800


# ---- The list --------------------------------------------------------------------------------


def test_the_list_shows_a_count_that_opens_the_permissions_read_only(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("listed")
    offered = project_permissions(web_stack)
    everything = [allow(p["resource"], p["action"]) for p in offered]
    robot = api_robot(web_stack, {
        "name": "listed-all", "level": "project", "duration": -1,
        "permissions": [on("listed", *everything),
                        {**on("listed", deny("repository", "push")),
                         "repositories": ["secrets/**"]}],
    })  # fmt: skip
    logged_in(page)
    open_robots(page, web_stack, robot)
    listed = row(page, robot["name"])
    count = len(offered) + 1
    button = listed.get_by_role("button", name=f"{count} permissions")
    expect(button).to_be_visible()
    # Dozens of permissions no longer stretch the row.
    box = listed.bounding_box()
    assert box is not None and box["height"] < 80, box
    button.click()
    dialog = page.get_by_role("dialog", name=f"Permissions of {robot['name']}")
    entries = dialog.locator(".entry-summary")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("Every repository of the project.")
    expect(entries.nth(0).locator('[data-pair="repository:push"]')).to_have_text("✓")
    expect(entries.nth(0).locator("td.allow")).to_have_count(len(offered))
    expect(entries.nth(1).locator(".chip")).to_have_text(
        ["secrets/**matches secrets/app and secrets/x/app, not secrets"]
    )
    expect(entries.nth(1).locator('[data-pair="repository:push"]')).to_have_text("✕ deny")
    expect(dialog.get_by_role("checkbox")).to_have_count(0)  # read only
    screenshot(page, "15-permissions-dialog")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    unchanged_but(robot, shown(web_stack, robot["id"]))
