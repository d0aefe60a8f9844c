"""End to end: what a review of the web page in Chromium as each role found, at 1280 and 390 px
wide, against a real tokenserver and registry: long names and patterns that pushed the list's
columns or a dialog off the screen, a permission grid wider than its dialog and whose resource
names scrolled away on a phone, column headers beside their marks, the focus lost by Remove
rule, a dialog error that outlived its cause, a token lifetime said to be fine when it was not,
and the words for an entry on all projects.

Screenshots are saved in test-artifacts/web/ next to test_web.py's.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from tests.e2e import test_web
from tests.e2e.conftest import Stack
from tests.e2e.test_web import act, logged_in, project_id, row, screenshot

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
LONG_PROJECT = "p" * 200
LONG_PATTERN = "a" * 120 + "/" + "b" * 120 + "/*"


def robot(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    status, _, answer = stack.api("POST", "/robots", {"duration": 30, "description": "", **body})
    assert status == 201 and isinstance(answer, dict), answer
    stack.remember(answer["secret"])
    return answer


def pull(namespace: str, repositories: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "project", "namespace": namespace,
        "access": [{"resource": "repository", "action": "pull", "effect": "allow"}],
    }  # fmt: skip
    if repositories:
        entry["repositories"] = repositories
    return entry


def fits(locator: Locator) -> None:
    """The element does not scroll sideways: nothing in it is wider than it is."""
    widths = locator.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert widths[0] <= widths[1], f"wider inside than outside: {widths}"


def lines(locator: Locator) -> int:
    """How many lines the element's text takes."""
    count = locator.evaluate(
        "(e) => { const r = document.createRange(); r.selectNodeContents(e);"
        " return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"
    )
    return int(count)


def open_project(page: Page, stack: Stack, name: str) -> None:
    page.goto(f"/#/projects/{project_id(stack, name)}/robots")
    expect(page.locator("main h1")).to_contain_text(name[:20])
    expect(page.locator("#page-info")).to_be_visible()


def new_robot(page: Page) -> Locator:
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    expect(dialog.locator(".grid-scroll")).to_be_visible()
    return dialog


def focused(page: Page) -> str:
    return str(
        page.evaluate("document.activeElement.closest('fieldset')?.querySelector('legend')"
                      "?.textContent ?? document.activeElement.tagName")
    )  # fmt: skip


# ---- Long text -------------------------------------------------------------------------------


def test_a_long_robot_name_wraps_and_the_list_keeps_its_columns(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("longrow")
    name = "build-" + "x" * 150
    markup = '<img src=x onerror="document.title=1"><b>bold</b> ' + "unbroken" * 60
    robot(web_stack, {"name": name, "level": "project", "description": markup,
                      "permissions": [pull("longrow")]})  # fmt: skip
    logged_in(page)
    open_project(page, web_stack, "longrow")
    full = f"robot$longrow+{name}"
    listed = row(page, full)
    # Its status, permissions and expiry are on the screen, not past a sideways scroll.
    fits(page.locator("main div:has(> table)"))
    for cell in (listed.locator("td.status"), listed.locator("td.expires")):
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, box
    # The next to widest cell takes the room it leaves: short values stay on one line.
    for short in (listed.locator("td.expires time"), listed.locator("button.permissions")):
        assert lines(short) == 1, short
    # The description is text, not markup.
    expect(listed.locator("td.description")).to_have_text(markup)
    expect(listed.locator("td.description img, td.description b")).to_have_count(0)
    screenshot(page, "review-1-long-name")


def test_long_project_names_and_patterns_stay_inside_the_dialogs(
    browser: Browser, web_stack: Stack
) -> None:
    web_stack.project(LONG_PROJECT)
    robot(web_stack, {"name": "widesys", "level": "system",
                      "permissions": [pull(LONG_PROJECT, [LONG_PATTERN])]})  # fmt: skip
    robot(web_stack, {"name": "wide", "level": "project", "permissions": [pull(LONG_PROJECT)]})
    origin = web_stack.api_base.removesuffix("/api/v2.0")
    for viewport in (PHONE, DESKTOP):
        context = browser.new_context(base_url=origin, viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            logged_in(page)
            # A project robot's full name holds the project's.
            open_project(page, web_stack, LONG_PROJECT)
            row(page, f"robot${LONG_PROJECT}+wide").locator("button.permissions").click()
            shown = page.get_by_role("dialog", name=f"Permissions of robot${LONG_PROJECT}+wide")
            expect(shown).to_be_visible()
            fits(shown)
            shown.get_by_role("button", name="Close").click()

            # New: a long pattern's chip, and a long bad one's message.
            dialog = new_robot(page)
            patterns = dialog.get_by_placeholder("team-a/*, then Enter")
            patterns.fill(LONG_PATTERN)
            patterns.press("Enter")
            expect(dialog.locator(f'.chip[data-pattern="{LONG_PATTERN}"]')).to_be_visible()
            patterns.fill("Q" * 200)
            patterns.press("Enter")
            expect(dialog.locator(".pattern-error")).to_contain_text("upper case")
            fits(dialog)
            dialog.get_by_role("button", name="Cancel").click()

            # A system robot on that project: the chooser, the entry's legend and its chip.
            page.goto("/#/system-robots")
            row(page, "robot$widesys").locator("button.permissions").click()
            shown = page.get_by_role("dialog", name="Permissions of robot$widesys")
            expect(shown.locator(".chip")).to_be_visible()
            fits(shown)
            shown.get_by_role("button", name="Close").click()
            act(page, "robot$widesys", "Edit")
            edit = page.get_by_role("dialog", name="Edit robot$widesys")
            expect(edit.locator(".grid-scroll")).to_be_visible()
            fits(edit)
            screenshot(page, f"review-2-long-names-{viewport['width']}")
        finally:
            context.close()


# ---- The grid --------------------------------------------------------------------------------


def test_the_grid_fits_a_desktop_dialog_and_names_its_presets(page: Page, web_stack: Stack) -> None:
    web_stack.project("gridfit")
    logged_in(page)
    open_project(page, web_stack, "gridfit")
    dialog = new_robot(page)
    # Every column at once on a 1280 px screen: Stop (scans) was cut off.
    fits(dialog.locator(".grid-scroll"))
    expect(dialog.get_by_label("Every stop permission")).to_be_in_viewport()
    # The preset list says what it is, not only "Custom".
    expect(dialog.locator(".grid-tools")).to_contain_text("Preset")
    screenshot(page, "review-3-grid-1280")


def test_on_a_phone_the_resource_names_stay_while_the_grid_scrolls(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("gridphone")
    page.set_viewport_size(PHONE)
    logged_in(page)
    open_project(page, web_stack, "gridphone")
    dialog = new_robot(page)
    scroller = dialog.locator(".grid-scroll")
    scroller.evaluate("(e) => { e.scrollLeft = e.scrollWidth; }")
    frame = scroller.bounding_box()
    assert frame is not None
    # Scrolled to its last column, the grid still says which row is which...
    name = dialog.locator('tr[data-resource="scan"] th')
    box = name.bounding_box()
    assert box is not None and box["x"] >= frame["x"] - 1, (box, frame)
    # ...and the boxes of that column are not under it: a click reaches them.
    stop = dialog.get_by_label("stop scan", exact=True)
    stop.click()
    expect(stop).to_be_checked()
    expect(dialog.locator(".count")).to_have_text("1 selected")
    fits(page.locator("html"))
    screenshot(page, "review-4-grid-390")


def test_read_only_column_headers_stand_over_their_marks(page: Page, web_stack: Stack) -> None:
    web_stack.project("marks")
    web_stack.robot("marks", "marked", "repository:pull", "repository:push")
    logged_in(page)
    open_project(page, web_stack, "marks")
    row(page, "robot$marks+marked").locator("button.permissions").click()
    grid = page.get_by_role("dialog", name="Permissions of robot$marks+marked").locator("table")
    for index, pair in ((1, "repository:pull"), (2, "repository:push")):
        head = grid.locator("thead th").nth(index).bounding_box()
        mark = grid.locator(f'td[data-pair="{pair}"]').bounding_box()
        assert head is not None and mark is not None
        middle = (head["x"] + head["width"] / 2, mark["x"] + mark["width"] / 2)
        text = (
            grid.locator("thead th")
            .nth(index)
            .evaluate(
                "(th) => { const r = document.createRange(); r.selectNodeContents(th);"
                " const b = r.getBoundingClientRect(); return b.x + b.width / 2; }"
            )
        )
        assert abs(text - middle[1]) <= 2, (pair, text, middle)


def test_all_projects_entries_say_every_repository_of_every_project(
    page: Page, web_stack: Stack
) -> None:
    robot(web_stack, {"name": "everywhere", "level": "system", "permissions": [pull("*")]})
    logged_in(page)
    page.goto("/#/system-robots")
    row(page, "robot$everywhere").locator("button.permissions").click()
    shown = page.get_by_role("dialog", name="Permissions of robot$everywhere")
    expect(shown).to_contain_text("Every repository of every project.")
    expect(shown).not_to_contain_text("of the project")
    shown.get_by_role("button", name="Close").click()
    act(page, "robot$everywhere", "Edit")
    entry = page.get_by_role("group", name="Permissions on all projects")
    expect(entry).to_contain_text("No pattern: every repository of every project.")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    # A new system robot's rules go to each project chosen above them.
    page.get_by_role("button", name="New System Robot Account").click()
    rules = page.get_by_role("group", name="Permission(s)")
    expect(rules).to_contain_text("No pattern: every repository of each project chosen.")


# ---- Focus, errors and the token lifetime ---------------------------------------------------


def test_remove_rule_leaves_the_focus_on_the_rule_before(page: Page, web_stack: Stack) -> None:
    web_stack.project("rulefocus")
    logged_in(page)
    open_project(page, web_stack, "rulefocus")
    dialog = new_robot(page)
    dialog.get_by_role("button", name="New deny rule").click()
    denied = dialog.get_by_role("group", name="Denied permission(s)")
    expect(denied).to_be_visible()
    denied.get_by_role("button", name="Remove rule").click()
    expect(denied).to_have_count(0)
    # Not lost to the page behind the dialog: on the rule that remains, whose next Tab goes on.
    assert focused(page) == "Permission(s)"
    page.keyboard.press("Tab")
    assert focused(page) == "Permission(s)"


def test_a_dialog_error_clears_when_the_form_changes(page: Page, web_stack: Stack) -> None:
    web_stack.project("errclear")
    logged_in(page)
    open_project(page, web_stack, "errclear")
    dialog = new_robot(page)
    dialog.get_by_label("Name", exact=True).fill("fixer")
    dialog.get_by_label("Name", exact=True).press("Enter")
    error = dialog.locator("p.error")
    expect(error).to_have_text("Select at least one permission.")
    dialog.get_by_label("pull repository", exact=True).check()
    expect(error).to_have_text("")
    expect(error).to_be_hidden()
    # The next failure says its own words.
    dialog.get_by_label("Name", exact=True).fill("")
    expect(error).to_have_text("")
    dialog.get_by_role("button", name="Add", exact=True).click()
    expect(error).to_have_text("A name is required.")
    dialog.get_by_label("Description (optional)").fill("typed")
    expect(error).to_have_text("")


def test_the_token_lifetime_says_at_once_when_it_is_out_of_range(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("lifespan")
    logged_in(page)
    open_project(page, web_stack, "lifespan")
    dialog = new_robot(page)
    amount = dialog.get_by_label("Token lifetime (optional)")
    unit = dialog.get_by_label("Token lifetime unit")
    said = dialog.locator("#robot-token-effective")
    refused = "The token lifetime must be from 1 minute to 1 d, or empty for the server's default."
    amount.fill("30")
    unit.select_option(label="seconds")
    expect(said).to_have_text(refused)
    expect(said).to_have_class("muted hint error")
    unit.select_option(label="days")
    amount.fill("2")
    expect(said).to_have_text(refused)
    amount.fill("1")
    expect(said).to_have_text("Tokens last 1 d.")
    expect(said).not_to_have_class("muted hint error")
    amount.fill("1.5")
    expect(said).to_have_class("muted hint error")
