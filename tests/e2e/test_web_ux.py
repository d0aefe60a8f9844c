"""End to end: how the web page behaves around its actions, in headless Chromium (Playwright)
against a real tokenserver and registry: the status area (success, errors that clear, an
unreachable server with Retry, loading), the end of a session, a 390 px wide screen, the
keyboard and focus, menus and the document title.

Screenshots are saved in test-artifacts/web/ next to test_web.py's.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e import test_web
from tests.e2e.conftest import ADMIN_PASSWORD, Robot, Stack
from tests.e2e.test_web import act, log_in, logged_in, project_id, row, screenshot

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page

UNREACHABLE = "Cannot reach tokenserver"
SESSION_ENDED = "Your session has ended: log in again."


def status(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#status")


def open_project(page: Page, stack: Stack, name: str) -> None:
    page.goto(f"/#/projects/{project_id(stack, name)}/robots")
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def end_session_elsewhere(page: Page, stack: Stack) -> None:
    """Log the browser's session out from outside the page (as another tab, or the session's
    end, would): the browser keeps its cookie, the server no longer knows it."""
    sid = {c["name"]: c["value"] for c in page.context.cookies()}["sid"]
    origin = stack.api_base.removesuffix("/api/v2.0")
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        origin + "/c/log_out", headers={"Cookie": f"sid={sid}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 200


def log_in_again(page: Page) -> None:
    """Log in on the form shown, without loading the page anew (as log_in does)."""
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log In").click()


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def inside_viewport(page: Page, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None
    width = page.evaluate("document.documentElement.clientWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box, width)


# ---- The status area ---------------------------------------------------------------------


def test_each_action_says_it_succeeded(page: Page, web_stack: Stack) -> None:
    logged_in(page)
    page.get_by_role("button", name="New Project").click()
    page.get_by_role("dialog", name="New Project").get_by_label("Project Name").fill("said")
    page.get_by_role("dialog", name="New Project").get_by_role("button", name="OK").click()
    expect(page.locator("#status-text")).to_have_text("Created project said.")
    expect(status(page)).to_have_attribute("role", "status")

    open_project(page, web_stack, "said")
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("talker")
    dialog.get_by_label("pull repository", exact=True).check()
    dialog.get_by_role("button", name="Add").click()
    created = page.get_by_role("dialog", name="Robot account created")
    web_stack.remember(created.locator("#secret-value").inner_text().strip())
    created.get_by_role("button", name="Close").click()
    expect(page.locator("#status-text")).to_have_text("Created robot$said+talker.")

    name = "robot$said+talker"
    for action, said in (
        ("Disable", f"Disabled {name}."),
        ("Enable", f"Enabled {name}."),
    ):
        act(page, name, action)
        expect(page.locator("#status-text")).to_have_text(said)
    act(page, name, "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {name}")
    edit.get_by_label("Description (optional)").fill("saved")
    edit.get_by_role("button", name="Save").click()
    expect(page.locator("#status-text")).to_have_text(f"Saved {name}.")
    act(page, name, "Refresh Secret")
    page.get_by_role("dialog", name="Refresh Secret").get_by_role("button", name="Refresh").click()
    refreshed = page.get_by_role("dialog", name="Secret refreshed")
    web_stack.remember(refreshed.locator("#secret-value").inner_text().strip())
    refreshed.get_by_role("button", name="Close").click()
    expect(page.locator("#status-text")).to_have_text(f"Refreshed the secret of {name}.")
    screenshot(page, "ux-1-success")
    act(page, name, "Delete")
    page.get_by_role("dialog", name="Delete Robot Account").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator("#status-text")).to_have_text(f"Deleted {name}.")
    # The x dismisses it; navigating clears a message too.
    page.get_by_role("button", name="Dismiss message").click()
    expect(status(page)).to_be_hidden()


def test_an_error_clears_on_the_next_action_and_on_navigation(page: Page, web_stack: Stack) -> None:
    web_stack.project("slips")
    gone = [web_stack.robot("slips", f"gone{i}", "repository:pull") for i in range(3)]
    web_stack.robot("slips", "stays", "repository:pull")
    logged_in(page)
    open_project(page, web_stack, "slips")

    def fails(robot: Robot) -> None:
        """Deleted elsewhere after the list was shown: Disable fails, and says why."""
        assert web_stack.api("DELETE", f"/robots/{robot.id}")[0] == 200
        act(page, robot.name, "Disable")
        expect(status(page)).to_have_attribute("role", "alert")
        expect(page.locator("#status-text")).to_contain_text("not found")

    fails(gone[0])
    screenshot(page, "ux-2-error")
    # The next action: the error goes, and that action's own result shows.
    act(page, "robot$slips+stays", "Disable")
    expect(page.locator("#status-text")).to_have_text("Disabled robot$slips+stays.")
    # Cleared by a navigation.
    fails(gone[1])
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(status(page)).to_be_hidden()
    # And by a search, which changes nothing.
    open_project(page, web_stack, "slips")
    fails(gone[2])
    page.get_by_label("Search robot accounts by name").fill("stays")
    expect(status(page)).to_be_hidden()


def test_an_unreachable_server_is_said_and_retried(page: Page, web_stack: Stack) -> None:
    web_stack.project("outage")
    logged_in(page)
    port = urlsplit(web_stack.api_base).port
    assert port is not None
    server = web_stack.processes[0]
    server.terminate()
    server.wait(timeout=10)
    try:
        page.get_by_role("link", name="outage").click()
        expect(page.locator("#status-text")).to_contain_text(UNREACHABLE)
        expect(status(page)).to_have_attribute("role", "alert")
        retry = status(page).get_by_role("button", name="Retry")
        # Still down: Retry says so again.
        retry.click()
        expect(page.locator("#status-text")).to_contain_text(UNREACHABLE)
        # Not a login form: the session is not what failed.
        expect(page.get_by_role("form", name="Log in")).to_have_count(0)
        screenshot(page, "ux-3-unreachable")
    finally:
        web_stack.processes[0] = web_stack.serve(port, "tokenserver-restarted.log")
    status(page).get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", name="outage", level=1)).to_be_visible()
    expect(status(page)).to_be_hidden()
    # A dialog's action says it in the dialog as well.
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("offline")
    dialog.get_by_label("pull repository", exact=True).check()
    server = web_stack.processes[0]
    server.terminate()
    server.wait(timeout=10)
    try:
        dialog.get_by_role("button", name="Add").click()
        expect(dialog.get_by_role("alert")).to_contain_text(UNREACHABLE)
    finally:
        web_stack.processes[0] = web_stack.serve(port, "tokenserver-restarted-2.log")
    dialog.get_by_role("button", name="Add").click()
    created = page.get_by_role("dialog", name="Robot account created")
    web_stack.remember(created.locator("#secret-value").inner_text().strip())


def test_a_page_shows_that_it_is_loading(page: Page, web_stack: Stack) -> None:
    web_stack.project("slow")
    logged_in(page)
    held: list[Route] = []
    # The real server answers; the test only holds the answer until it has looked.
    page.route("**/api/v2.0/robots?*", lambda route: held.append(route))
    with page.expect_request("**/api/v2.0/robots?*"):
        page.goto(f"/#/projects/{project_id(web_stack, 'slow')}/robots")
    expect(page.locator("#status-text")).to_have_text("Loading…")
    expect(page.locator("#main")).to_have_attribute("aria-busy", "true")
    while not held:  # the handler runs as Playwright's events are read
        page.evaluate("0")
    for route in held:
        route.continue_()
    page.unroute("**/api/v2.0/robots?*")
    expect(page.get_by_role("button", name="New Robot Account")).to_be_visible()
    expect(status(page)).to_be_hidden()
    expect(page.locator("#main")).to_have_attribute("aria-busy", "false")


# ---- The end of a session ----------------------------------------------------------------


def test_an_ended_session_closes_dialogs_and_returns_after_login(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("lapse")
    logged_in(page)
    open_project(page, web_stack, "lapse")
    where = page.evaluate("location.hash")
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("late")
    dialog.get_by_label("pull repository", exact=True).check()
    end_session_elsewhere(page, web_stack)
    dialog.get_by_role("button", name="Add").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    expect(page.locator("#status-text")).to_have_text(SESSION_ENDED)
    expect(page.locator("#nav")).to_be_hidden()
    assert page.evaluate("location.hash") == where
    screenshot(page, "ux-4-session-ended")
    log_in_again(page)
    expect(page.get_by_role("heading", name="lapse", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="New Robot Account")).to_be_visible()
    expect(status(page)).to_be_hidden()
    assert page.evaluate("location.hash") == where
    # Nothing was created: the request was refused.
    query = f"/robots?q=Level=project,ProjectID={project_id(web_stack, 'lapse')}"
    assert web_stack.api("GET", query)[2] == []


def test_a_link_followed_before_login_is_shown_after_it(page: Page, web_stack: Stack) -> None:
    web_stack.project("deep")
    page.goto(f"/#/projects/{project_id(web_stack, 'deep')}/robots")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    log_in_again(page)
    expect(page.get_by_role("heading", name="deep", level=1)).to_be_visible()


def test_logging_out_says_so(page: Page, web_stack: Stack) -> None:
    logged_in(page)
    page.get_by_role("button", name="Log Out").click()
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    expect(page.locator("#status-text")).to_have_text("You have logged out.")
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


# ---- A 390 px wide screen ----------------------------------------------------------------


def test_the_page_fits_a_390_px_screen(page: Page, web_stack: Stack) -> None:
    web_stack.project("narrow")
    web_stack.robot("narrow", "a-rather-long-robot-name-for-a-phone", "repository:pull")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    no_horizontal_scroll(page)
    log_in(page)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    no_horizontal_scroll(page)
    inside_viewport(page, "#logout")
    inside_viewport(page, "#nav-issuers")

    open_project(page, web_stack, "narrow")
    name = "robot$narrow+a-rather-long-robot-name-for-a-phone"
    expect(row(page, name)).to_be_visible()
    no_horizontal_scroll(page)
    # The table is wider than the screen: it scrolls inside its own box.
    table = page.get_by_role("table", name="Robot accounts")
    holder = table.locator("xpath=..")
    sizes = holder.evaluate("(e) => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX]")
    assert sizes[0] > sizes[1] and sizes[2] == "auto", sizes
    # The toolbar wraps: each control is on the screen.
    for selector in ("#new-robot", "#action", "#robot-search", "#next-page"):
        inside_viewport(page, selector)
    screenshot(page, "ux-5-narrow-robots")

    act(page, name, "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {name}")
    expect(edit).to_be_visible()
    inside_viewport(page, "dialog")
    inside_viewport(page, "dialog .actions button.primary")
    no_horizontal_scroll(page)
    screenshot(page, "ux-6-narrow-dialog")
    edit.get_by_role("button", name="Cancel").click()

    act(page, name, "Federation")
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    page.get_by_role("button", name="Add Rule").click()
    no_horizontal_scroll(page)
    inside_viewport(page, ".claim-row .danger")
    screenshot(page, "ux-7-narrow-federation")

    page.goto("/#/federation-issuers")
    expect(page.get_by_role("heading", name="Federation Issuers")).to_be_visible()
    no_horizontal_scroll(page)
    page.get_by_role("button", name="Add Issuer").click()
    inside_viewport(page, "dialog")
    no_horizontal_scroll(page)


# ---- Keyboard, focus and menus -----------------------------------------------------------


def test_enter_submits_each_dialog(page: Page, web_stack: Stack) -> None:
    logged_in(page)
    page.get_by_role("button", name="New Project").click()
    page.get_by_label("Project Name").fill("entered")
    page.get_by_label("Project Name").press("Enter")
    expect(page.locator('tr[data-project="entered"]')).to_be_visible()

    open_project(page, web_stack, "entered")
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    dialog.get_by_label("Name", exact=True).fill("keyed")
    # Enter in a text area is a new line; Ctrl+Enter submits.
    description = dialog.get_by_label("Description (optional)")
    description.fill("line one")
    description.press("Enter")
    description.press_sequentially("line two")
    expect(dialog).to_be_visible()
    # Enter from a checkbox submits too.
    dialog.get_by_label("pull repository", exact=True).check()
    dialog.get_by_label("pull repository", exact=True).press("Enter")
    created = page.get_by_role("dialog", name="Robot account created")
    web_stack.remember(created.locator("#secret-value").inner_text().strip())
    created.get_by_role("button", name="Close").click()
    expect(row(page, "robot$entered+keyed").locator(".description")).to_have_text(
        "line one\nline two", use_inner_text=True
    )

    act(page, "robot$entered+keyed", "Refresh Secret")
    refresh = page.get_by_role("dialog", name="Refresh Secret")
    refresh.get_by_label("Manually reset the secret").check()
    chosen = web_stack.remember("Entered1Secret")
    refresh.get_by_label("New Secret").fill(chosen)
    refresh.get_by_label("Confirm Secret").fill(chosen)
    refresh.get_by_label("Confirm Secret").press("Enter")
    expect(refresh).to_have_count(0)
    expect(page.locator("#status-text")).to_contain_text("was changed")

    act(page, "robot$entered+keyed", "Edit")
    edit = page.get_by_role("dialog", name="Edit robot$entered+keyed")
    edit.get_by_label("Description (optional)").fill("by keyboard")
    edit.get_by_label("Description (optional)").press("Control+Enter")
    expect(edit).to_have_count(0)
    expect(row(page, "robot$entered+keyed")).to_contain_text("by keyboard")


def test_delete_asks_with_cancel_focused_and_focus_comes_back(page: Page, web_stack: Stack) -> None:
    web_stack.project("careful")
    web_stack.robot("careful", "kept", "repository:pull")
    logged_in(page)
    open_project(page, web_stack, "careful")
    name = "robot$careful+kept"
    act(page, name, "Delete")
    confirm = page.get_by_role("dialog", name="Delete Robot Account")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(confirm).to_have_count(0)
    expect(row(page, name)).to_be_visible()
    # Back on the control that opened the dialog (through its menu).
    expect(page.get_by_role("button", name="Action")).to_be_focused()

    act(page, name, "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {name}")
    expect(edit.get_by_label("Description (optional)")).to_be_visible()
    page.keyboard.press("Escape")
    expect(edit).to_have_count(0)
    expect(page.get_by_role("button", name="Action")).to_be_focused()

    act(page, name, "Edit")
    edit = page.get_by_role("dialog", name=f"Edit {name}")
    edit.get_by_label("Description (optional)").fill("focus")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_have_count(0)
    expect(page.get_by_role("button", name="Action")).to_be_focused()

    page.get_by_role("button", name="New Robot Account").click()
    page.get_by_role("dialog", name="New Robot Account").get_by_role(
        "button", name="Cancel"
    ).click()
    expect(page.get_by_role("button", name="New Robot Account")).to_be_focused()

    # Delete removes the robot, and the button goes disabled: focus goes to the page.
    act(page, name, "Delete")
    page.get_by_role("dialog", name="Delete Robot Account").get_by_role(
        "button", name="Delete"
    ).click()
    expect(row(page, name)).to_have_count(0)
    expect(page.locator("#main")).to_be_focused()


def test_the_menu_closes_on_an_outside_click_and_escape(page: Page, web_stack: Stack) -> None:
    web_stack.project("menus")
    web_stack.robot("menus", "m", "repository:pull")
    logged_in(page)
    open_project(page, web_stack, "menus")
    row(page, "robot$menus+m").get_by_role("checkbox").check()
    action = page.get_by_role("button", name="Action")
    action.click()
    expect(page.get_by_role("menu")).to_be_visible()
    expect(action).to_have_attribute("aria-expanded", "true")
    page.get_by_role("heading", name="menus", level=1).click()
    expect(page.get_by_role("menu")).to_be_hidden()
    expect(action).to_have_attribute("aria-expanded", "false")
    # A click on another control closes it, and that control still does its work.
    action.click()
    expect(page.get_by_role("menu")).to_be_visible()
    page.get_by_role("button", name="New Robot Account").click()
    expect(page.get_by_role("menu")).to_be_hidden()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    # Escape closes it, with the focus on the menu's button or in the menu.
    action.click()
    expect(page.get_by_role("menuitem", name="Edit")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_be_hidden()
    expect(action).to_be_focused()
    action.click()
    action.focus()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_be_hidden()
    # The button toggles it.
    action.click()
    expect(page.get_by_role("menu")).to_be_visible()
    action.click()
    expect(page.get_by_role("menu")).to_be_hidden()


# ---- The document title ------------------------------------------------------------------


@pytest.fixture
def titled(web_stack: Stack) -> Iterator[int]:
    web_stack.project("demo-title")
    robot = web_stack.robot("demo-title", "ci", "repository:pull")
    yield robot.id


def test_the_title_follows_the_page(page: Page, web_stack: Stack, titled: int) -> None:
    page.goto("/")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    expect(page).to_have_title("Log in · tokenserver")
    log_in(page)
    expect(page).to_have_title("Projects · tokenserver")
    page.get_by_role("link", name="demo-title").click()
    expect(page).to_have_title("Robot Accounts · project demo-title · tokenserver")
    page.get_by_role("link", name="System Robot Accounts").click()
    expect(page).to_have_title("System Robot Accounts · tokenserver")
    page.get_by_role("link", name="Federation Issuers").click()
    expect(page).to_have_title("Federation Issuers · tokenserver")
    page.goto(f"/#/robots/{titled}/federation")
    expect(page).to_have_title("Federation · robot$demo-title+ci · tokenserver")
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page).to_have_title("Projects · tokenserver")
    page.goto("/#/nowhere")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page).to_have_title("Not found · tokenserver")


def test_an_ended_session_met_on_a_page_load_shows_the_login_form(
    page: Page, web_stack: Stack
) -> None:
    """The Federation tab loads several things and shows its own error page when the first
    fails: an ended session is still the login form, and logging in returns to the tab."""
    web_stack.project("lapse-tab")
    robot = web_stack.robot("lapse-tab", "ci", "repository:pull")
    logged_in(page)
    end_session_elsewhere(page, web_stack)
    page.goto(f"/#/robots/{robot.id}/federation")
    expect(page.get_by_role("form", name="Log in")).to_be_visible()
    expect(page.locator("#status-text")).to_have_text(SESSION_ENDED)
    expect(page.locator("#federation-denied")).to_have_count(0)
    expect(page).to_have_title("Log in · tokenserver")
    log_in_again(page)
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    expect(page).to_have_title(f"Federation · {robot.name} · tokenserver")
