"""End to end: the page's Webhooks tabs in headless Chromium against a real tokenserver, with
receivers on loopback: a project's policies with their recent deliveries (one receiver
answering, one failing, whose tries and last outcome show), the auth header never shown,
hostile text shown as text, the tab only for whoever may list the policies, and the system
policies for system administrators."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_web
from tests.e2e.conftest import Stack
from tests.e2e.test_web import logged_in, project_id, screenshot
from tests.e2e.test_web_roles import DEVELOPER, MAINTAINER, sign_in, user
from tests.e2e.test_webhooks import Receiver, until

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page

HEADER = "Bearer hook-credential-5d1e"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    answering, failing = Receiver(), Receiver()
    answering.failing = False
    threads = [
        threading.Thread(target=r.server.serve_forever, daemon=True) for r in (answering, failing)
    ]
    for thread in threads:
        thread.start()
    try:
        yield answering, failing
    finally:
        for r in (answering, failing):
            r.server.shutdown()
            r.server.server_close()


def policy(stack: Stack, base: str, name: str, address: str, **extra: Any) -> None:
    body = {
        "name": name,
        "targets": [{"type": "http", "address": address, "auth_header": HEADER}],
        "event_types": ["ROBOT_CREATED", "ROBOT_DELETED"],
        **extra,
    }
    status, _, answer = stack.api("POST", f"{base}/webhook/policies", body)
    assert status == 201, answer


def test_a_projects_policies_show_with_their_deliveries(
    page: Page, web_stack: Stack, receivers: tuple[Receiver, Receiver]
) -> None:
    answering, failing = receivers
    stack = web_stack
    stack.project("hooks")
    policy(stack, "/projects/hooks", "notify-ci", answering.url, description=HOSTILE)
    policy(stack, "/projects/hooks", "broken-receiver", failing.url, enabled=True)
    robot = stack.robot("hooks", "builder", "repository:pull")
    until(lambda: answering.seen and failing.seen, "both receivers to be tried")

    logged_in(page)
    page.goto(f"/#/projects/{project_id(stack, 'hooks')}/robots")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="hooks", level=1)).to_be_visible()
    expect(page).to_have_title("Webhooks · project hooks · tokenserver")

    ok = page.locator('section[data-policy="notify-ci"]')
    expect(ok.locator("tr.delivery")).to_have_count(1)
    expect(ok.locator("tr.delivery td.delivery-status")).to_have_text("Success")
    expect(ok.locator("tr.delivery td.event")).to_have_text("ROBOT_CREATED")
    expect(ok.locator("p.description")).to_have_text(HOSTILE)  # text, not markup
    expect(ok.get_by_text("Authorization header set")).to_be_visible()

    broken = page.locator('section[data-policy="broken-receiver"]')
    expect(broken.locator("tr.delivery td.delivery-status")).to_have_text("Pending")
    expect(broken.locator("tr.delivery td.outcome")).to_contain_text("HTTP 503")
    expect(broken.locator("tr.delivery td.tries")).not_to_have_text("0")
    expect(broken.locator("td.url").first).to_have_text(failing.url)

    content = page.content()
    assert HEADER not in content and "hook-credential" not in content
    assert page.title() != "pwned"
    screenshot(page, "webhooks-project")

    # A refresh shows a delivery made since.
    status, _, answer = stack.api("DELETE", f"/robots/{robot.id}")
    assert status == 200, answer
    until(lambda: len(answering.seen) >= 2, "the deletion's delivery")
    ok.get_by_role("button", name="Refresh the deliveries of notify-ci").click()
    expect(ok.locator("tr.delivery")).to_have_count(2)
    expect(ok.locator("tr.delivery td.event").first).to_have_text("ROBOT_DELETED")


def test_the_tab_follows_who_may_list_the_policies(page: Page, web_stack: Stack) -> None:
    stack = web_stack
    stack.project("quiet")
    user(stack, "hookmaint", "quiet", MAINTAINER)
    user(stack, "hookdev", "quiet", DEVELOPER)
    # Harbor's maintainer reads the project's policies.
    sign_in(page, "hookmaint")
    page.goto(f"/#/projects/{project_id(stack, 'quiet')}/webhooks")
    expect(page.locator("#no-webhooks")).to_have_text("No webhook policies.")
    expect(page.get_by_role("navigation", name="Project").get_by_role("link")).to_have_text(
        ["Robot Accounts", "Webhooks"]
    )
    page.get_by_role("button", name="Log Out").click()
    # A developer does not: no tab, and the address is a No access page.
    sign_in(page, "hookdev")
    page.goto(f"/#/projects/{project_id(stack, 'quiet')}/robots")
    expect(page.get_by_role("navigation", name="Project").get_by_role("link")).to_have_text(
        ["Robot Accounts"]
    )
    page.goto(f"/#/projects/{project_id(stack, 'quiet')}/webhooks")
    expect(page.get_by_role("heading", name="No access")).to_be_visible()
    page.goto("/#/system-webhooks")
    expect(page.get_by_role("heading", name="No access")).to_be_visible()


def test_system_administrators_see_the_system_policies(
    page: Page, web_stack: Stack, receivers: tuple[Receiver, Receiver]
) -> None:
    answering, _ = receivers
    policy(web_stack, "/system", "fleet-audit", answering.url)
    logged_in(page)
    page.goto("/#/system-robots")
    page.get_by_role("navigation", name="System").get_by_role("link", name="Webhooks").click()
    expect(page).to_have_title("Webhooks · system robots · tokenserver")
    card = page.locator('section[data-policy="fleet-audit"]')
    expect(card.locator(".events")).to_have_text("ROBOT_CREATED, ROBOT_DELETED")
    expect(card.locator("tr.delivery")).to_have_count(0)
    expect(card.get_by_text("No deliveries yet.")).to_be_visible()
