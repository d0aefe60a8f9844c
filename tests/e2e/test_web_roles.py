"""End to end: the web page in headless Chromium (Playwright) as each role sees it, against a
real tokenserver and registry: expiry shown honestly (time left, soon, expired, never), an edit
of the expiration counted from today, controls that follow the caller's rights, and the "No
access" and "Not found" pages.

Screenshots are saved in test-artifacts/web/ next to test_web.py's.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e import test_web
from tests.e2e.conftest import Robot, Stack
from tests.e2e.test_web import log_in, logged_in, project_id, row, screenshot, shown

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page

DAY = 86400
USER_PASSWORD = "Us3rPassword"
PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5
RED = "rgb(179, 38, 30)"  # app.css --bad
ORANGE = "rgb(168, 79, 0)"
EVERY_ACTION = ["Edit", "Disable", "Enable", "Delete", "Refresh Secret", "Federation"]


def set_times(stack: Stack, robot: Robot, *, created: int, expires: int, duration: int) -> None:
    """Move a robot's creation and expiry: months cannot pass in a test."""
    with sqlite3.connect(stack.directory / "tokenserver.db") as db:
        db.execute(
            "UPDATE robot SET creation_time = ?, expires_at = ?, duration = ? WHERE id = ?",
            (created, expires, duration, robot.id),
        )


def user(stack: Stack, name: str, project: str | None = None, role: int | None = None) -> None:
    status, _, answer = stack.api("POST", "/users", {
        "username": name, "email": f"{name}@example.com", "realname": name,
        "password": USER_PASSWORD,
    })  # fmt: skip
    assert status == 201, answer
    if project is not None:
        body = {"role_id": role, "member_user": {"username": name}}
        status, _, answer = stack.api("POST", f"/projects/{project}/members", body)
        assert status == 201, answer


def sign_in(page: Page, name: str) -> None:
    log_in(page, name, USER_PASSWORD)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def open_project(page: Page, stack: Stack, name: str) -> None:
    page.goto(f"/#/projects/{project_id(stack, name)}/robots")
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def menu_items(page: Page, robot: str) -> list[str]:
    row(page, robot).get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    items = page.get_by_role("menuitem")
    expect(items.first).to_be_visible()
    labels = [text.strip() for text in items.all_inner_texts()]
    page.keyboard.press("Escape")
    return labels


def local_time(page: Page, seconds: int) -> str:
    """The date as the browser writes it (its locale and time zone)."""
    return str(page.evaluate("(s) => new Date(s * 1000).toLocaleString()", seconds))


def edit(page: Page, robot: str) -> Any:
    row(page, robot).get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    page.get_by_role("menuitem", name="Edit").click()
    return page.get_by_role("dialog", name=f"Edit {robot}")


def test_expiry_says_how_long_is_left_and_an_expired_robot_is_not_enabled(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("ttl")
    month = web_stack.robot("ttl", "month", "repository:pull", duration=30)
    week = web_stack.robot("ttl", "week", "repository:pull", duration=3)
    hours = web_stack.robot("ttl", "hours", "repository:pull", duration=1)
    gone = web_stack.robot("ttl", "gone", "repository:pull", duration=30)
    off = web_stack.robot("ttl", "off", "repository:pull", duration=30)
    forever = web_stack.robot("ttl", "forever", "repository:pull", duration=-1)
    now = int(time.time())
    # Five hours and a few minutes: the page rounds down, whatever the test's pace.
    set_times(web_stack, hours, created=now, expires=now + 5 * 3600 + 600, duration=1)
    set_times(web_stack, gone, created=now - 33 * DAY, expires=now - 3 * DAY - 600, duration=30)
    set_times(web_stack, off, created=now - 40 * DAY, expires=now - 10 * DAY, duration=30)
    assert web_stack.api("PUT", f"/robots/{off.id}", {
        "name": "off", "level": "project", "duration": 30, "disable": True,
        "permissions": shown(web_stack, off.id)["permissions"],
    })[0] == 200  # fmt: skip
    logged_in(page)
    open_project(page, web_stack, "ttl")

    expires = row(page, month.name).locator(".expires")
    expect(expires).to_have_text("expires in 29 d")
    expect(row(page, month.name).locator(".status")).to_have_text("Enabled")
    # The exact date is in the tooltip and the time element.
    month_at = shown(web_stack, month.id)["expires_at"]
    expect(expires.locator("time")).to_have_attribute("title", local_time(page, month_at))
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(month_at))
    expect(expires.locator("time")).to_have_attribute("datetime", iso)
    assert expires.evaluate("e => getComputedStyle(e).color") not in (RED, ORANGE)

    # Under seven days: orange; under a day: hours.
    for robot, text in ((week, "expires in 2 d"), (hours, "expires in 5 h")):
        cell = row(page, robot.name).locator(".expires")
        expect(cell).to_have_text(text)
        expect(cell).to_have_css("color", ORANGE)
        expect(row(page, robot.name).locator(".status")).to_have_text("Enabled")

    # Expired: red, in the Status column too, never "Enabled".
    status = row(page, gone.name).locator(".status")
    expect(status).to_have_text("Expired")
    expect(status).to_have_css("color", RED)
    expect(row(page, gone.name).locator(".expires")).to_have_text("expired 3 d ago")
    expect(row(page, gone.name).locator(".expires")).to_have_css("color", RED)
    # Disabled and expired: both said, each in its column.
    expect(row(page, off.name).locator(".status")).to_have_text("Disabled")
    expect(row(page, off.name).locator(".expires")).to_have_text("expired 10 d ago")

    never = row(page, forever.name).locator(".expires")
    expect(never).to_have_text("Never")
    expect(never.locator("time")).to_have_attribute("title", "Never expires")
    screenshot(page, "roles-1-expiry")


def test_an_edit_counts_the_expiration_days_from_today(page: Page, web_stack: Stack) -> None:
    """PUT `duration` counts from the robot's creation (or its last restart): the page turns
    "30 days" into the duration that ends 30 days from now, and shows that date first."""
    web_stack.project("renew")
    lapsed = web_stack.robot("renew", "lapsed", "repository:pull", duration=30)
    live = web_stack.robot("renew", "live", "repository:pull", duration=90)
    endless = web_stack.robot("renew", "endless", "repository:pull", duration=-1)
    old = web_stack.robot("renew", "old", "repository:pull", duration=400)
    # An hour more than whole days ago: the days elapsed, rounded up, do not depend on the
    # test's pace.
    now = int(time.time()) - 3600
    set_times(web_stack, lapsed, created=now - 60 * DAY, expires=now - 30 * DAY, duration=30)
    set_times(web_stack, live, created=now - 60 * DAY, expires=now + 30 * DAY, duration=90)
    set_times(web_stack, endless, created=now - 60 * DAY, expires=-1, duration=-1)
    set_times(web_stack, old, created=now - 100 * DAY, expires=now + 300 * DAY, duration=400)
    now += 3600
    logged_in(page)
    open_project(page, web_stack, "renew")

    # The expired robot: the dialog says it has expired; 30 days from today are saved.
    dialog = edit(page, lapsed.name)
    preview = dialog.locator("#robot-expiry-preview")
    expect(preview).to_contain_text("Expired on")
    days = dialog.get_by_label("Expiration time (days)")
    expect(days).to_have_value("")
    days.fill("30")
    expect(preview).to_contain_text("(in 30 d)")
    shown_preview = preview.inner_text()
    screenshot(page, "roles-2-renew")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    saved = shown(web_stack, lapsed.id)
    # At least the 30 days asked for, within a day (durations are whole days).
    assert now + 30 * DAY <= saved["expires_at"] <= int(time.time()) + 31 * DAY, saved
    assert saved["disable"] is False
    expect(row(page, lapsed.name).locator(".status")).to_have_text("Enabled")
    expect(row(page, lapsed.name).locator(".expires")).to_have_text("expires in 30 d")
    # The dialog showed the very date that was saved.
    assert local_time(page, saved["expires_at"]) in shown_preview

    # A live robot shortened to 10 days: 10 days from today, not from its creation (which
    # would have been in the past).
    dialog = edit(page, live.name)
    expect(dialog.get_by_label("Expiration time (days)")).to_have_value("29")
    dialog.get_by_label("Expiration time (days)").fill("10")
    preview = dialog.locator("#robot-expiry-preview")
    expect(preview).to_contain_text("(in 10 d)")
    shown_preview = preview.inner_text()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    saved = shown(web_stack, live.id)
    assert now + 10 * DAY <= saved["expires_at"] <= int(time.time()) + 11 * DAY, saved
    assert local_time(page, saved["expires_at"]) in shown_preview

    # Never Expired turned off: the days default to 30, from today.
    dialog = edit(page, endless.name)
    dialog.get_by_label("Never Expired").uncheck()
    expect(dialog.get_by_label("Expiration time (days)")).to_have_value("30")
    expect(dialog.locator("#robot-expiry-preview")).to_contain_text("(in 30 d)")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    saved = shown(web_stack, endless.id)
    assert now + 30 * DAY <= saved["expires_at"] <= int(time.time()) + 31 * DAY, saved

    # An edit that leaves the expiration alone keeps it to the second.
    before = shown(web_stack, old.id)
    dialog = edit(page, old.name)
    expect(dialog.locator("#robot-expiry-preview")).to_contain_text("(in 299 d)")
    dialog.get_by_label("Description (optional)").fill("kept")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    after = shown(web_stack, old.id)
    assert after["description"] == "kept"
    assert (after["expires_at"], after["duration"]) == (before["expires_at"], before["duration"])

    # Out of range, counted from today: refused on the page, nothing sent.
    dialog = edit(page, old.name)
    days = dialog.get_by_label("Expiration time (days)")
    for typed, said in (("36500", "at most 36399 days from now"), ("0", "from 1 to 36500"),
                        ("1.5", "from 1 to 36500"), ("-3", "from 1 to 36500")):  # fmt: skip
        days.fill(typed)
        expect(dialog.locator("#robot-expiry-preview")).to_contain_text(said)
        dialog.get_by_role("button", name="Save").click()
        expect(dialog.get_by_role("alert")).to_contain_text(said)
    days.fill("36399")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    assert shown(web_stack, old.id)["duration"] == 36500


def test_controls_follow_the_callers_role(page: Page, web_stack: Stack) -> None:
    web_stack.project("crew")
    ci = web_stack.robot("crew", "ci", "repository:pull", duration=-1)
    people = {
        "crew-admin": PROJECT_ADMIN, "crew-maint": MAINTAINER, "crew-dev": DEVELOPER,
        "crew-guest": GUEST, "crew-limited": LIMITED_GUEST,
    }  # fmt: skip
    for name, role in people.items():
        user(web_stack, name, "crew", role)

    # A project admin: every control.
    sign_in(page, "crew-admin")
    open_project(page, web_stack, "crew")
    expect(page.get_by_role("button", name="New Robot Account")).to_be_visible()
    assert menu_items(page, ci.name) == EVERY_ACTION
    page.get_by_role("button", name="Log Out").click()

    # Maintainer, developer, guest: they may read the robots, not create or change them.
    for name in ("crew-maint", "crew-dev", "crew-guest"):
        sign_in(page, name)
        open_project(page, web_stack, "crew")
        expect(row(page, ci.name)).to_be_visible()
        expect(page.get_by_role("button", name="New Robot Account")).to_have_count(0)
        assert menu_items(page, ci.name) == ["Federation"], name
        if name == "crew-dev":
            screenshot(page, "roles-3-developer")
        page.get_by_role("button", name="Log Out").click()

    # A limited guest may not list them: the page says so instead of an error.
    log_in(page, "crew-limited", USER_PASSWORD)
    page.get_by_role("link", name="crew").click()
    expect(page.get_by_role("heading", name="No access")).to_be_visible()
    expect(page.locator("#no-access")).to_contain_text("the robot accounts of project crew")
    expect(page.get_by_role("table", name="Robot accounts")).to_have_count(0)
    page.get_by_role("link", name="Back to Projects").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def test_the_server_still_refuses_a_right_lost_while_the_page_was_open(
    page: Page, web_stack: Stack
) -> None:
    web_stack.project("demoted")
    user(web_stack, "demo-ted", "demoted", PROJECT_ADMIN)
    sign_in(page, "demo-ted")
    open_project(page, web_stack, "demoted")
    page.get_by_role("button", name="New Robot Account").click()
    dialog = page.get_by_role("dialog", name="New Robot Account")
    status, _, members = web_stack.api("GET", "/projects/demoted/members?entityname=demo-ted")
    assert status == 200 and isinstance(members, list) and len(members) == 1, members
    body = {"role_id": DEVELOPER}
    assert web_stack.api("PUT", f"/projects/demoted/members/{members[0]['id']}", body)[0] == 200
    dialog.get_by_label("Name", exact=True).fill("sneaky")
    dialog.get_by_label("pull repository", exact=True).check()
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).to_contain_text("not allowed")
    query = f"/robots?q=Level=project,ProjectID={project_id(web_stack, 'demoted')}"
    assert web_stack.api("GET", query)[2] == []


def test_no_access_and_not_found_pages(page: Page, web_stack: Stack) -> None:
    web_stack.project("closed")
    web_stack.project("open-house", public=True)
    hidden = web_stack.robot("closed", "hidden", "repository:pull")
    user(web_stack, "outsider")
    closed, public = project_id(web_stack, "closed"), project_id(web_stack, "open-house")
    sign_in(page, "outsider")

    def says(heading: str, text: str) -> None:
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        expect(page.locator("main")).to_contain_text(text)
        expect(page.get_by_role("link", name="Back to Projects")).to_be_visible()
        expect(page.locator("#status")).to_be_hidden()

    # Someone else's project, its robot, a public project's robots, the admins' pages.
    for address, text in (
        (f"#/projects/{closed}/robots", "not allowed"),
        (f"#/robots/{hidden.id}/federation", "not allowed"),
        (f"#/projects/{public}/robots", "the robot accounts of project open-house"),
        ("#/system-robots", "system administrators"),
        ("#/federation-issuers", "system administrators"),
    ):
        page.goto(f"/{address}")
        says("No access", text)
    screenshot(page, "roles-4-no-access")
    page.get_by_role("link", name="Back to Projects").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    page.get_by_role("button", name="Log Out").click()

    # For an admin too: ids that do not exist, addresses that are no page.
    logged_in(page)
    for address, text in (
        ("#/projects/987654/robots", "987654"),
        ("#/robots/987654/federation", "987654"),
        ("#/nowhere", "There is no page at #/nowhere"),
        ("#/projects/closed/robots", "There is no page at #/projects/closed/robots"),
        ("#/projects/1/robots/extra", "There is no page at"),
        ("#/projects/99999999999999999999/robots", "There is no page at"),
    ):
        page.goto(f"/{address}")
        says("Not found", text)
    screenshot(page, "roles-5-not-found")

    # An address holding markup shows it as text.
    page.goto("/#/<img src=x onerror=window.pwned=1>")
    says("Not found", "There is no page at #/<img src=x onerror=window.pwned=1>")
    expect(page.locator("main img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None

    # The ordinary pages still open.
    page.goto(f"/#/projects/{closed}/robots")
    expect(row(page, hidden.name)).to_be_visible()
    page.goto("/#/")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
