"""End to end: robot federation on the web page in headless Chromium (Playwright), against a
real tokenserver, the real registry and a fake OIDC issuer on loopback: a system admin's
issuers, a robot's Federation tab (rules, warnings, refused logins, secret login), what a
developer sees, and hostile text shown as text.

Screenshots are saved in test-artifacts/web/ next to test_web.py's.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import test_web
from tests.e2e.conftest import Robot, Stack
from tests.e2e.test_web import act, log_in, row, screenshot
from tests.oidc_issuer import FakeIssuer, ThreadedIssuer, github_claims

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page

USER_PASSWORD = "Us3rPassword"
PROJECT_ADMIN, DEVELOPER = 1, 2
# Markup that would run or load something if the page put it in as HTML: it must show as
# text. (The page's Content-Security-Policy would block the inline handlers anyway; the
# tests look for the elements, which innerHTML would have made.)
HOSTILE_CLAIM = '<script>window.pwned="claim"</script>'
HOSTILE_PATTERN = "<img src=x onerror=\"window.pwned='pattern'\">"
HOSTILE_SUBJECT = "<img src=x onerror=\"window.pwned='subject'\">"
HOSTILE_AUDIENCE = "<b onmouseover=\"window.pwned='audience'\">aud</b>"


@pytest.fixture
def fake_issuer() -> Iterator[FakeIssuer]:
    """One per test: an issuer's URL is trusted once, under one name."""
    with ThreadedIssuer(fresh_keys=False) as issuer:
        yield issuer


def trust(stack: Stack, issuer: FakeIssuer, name: str) -> None:
    """The system admin trusts the fake issuer under `name` (through the API)."""
    body = {"name": name, "url": issuer.url, "audiences": [issuer.audience]}
    status, _, answer = stack.api("POST", "/federation/issuers", body)
    assert status == 201, answer


def member(stack: Stack, user: str, project: str, role: int) -> None:
    status, _, answer = stack.api("POST", "/users", {
        "username": user, "email": f"{user}@example.com", "realname": user,
        "password": USER_PASSWORD,
    })  # fmt: skip
    assert status == 201, answer
    body = {"role_id": role, "member_user": {"username": user}}
    status, _, answer = stack.api("POST", f"/projects/{project}/members", body)
    assert status == 201, answer


def rules_of(stack: Stack, robot: Robot) -> dict[str, Any]:
    status, _, answer = stack.api("GET", f"/robots/{robot.id}/federation")
    assert status == 200 and isinstance(answer, dict), answer
    return answer


def set_rules(stack: Stack, robot: Robot, *rules: dict[str, Any]) -> None:
    status, _, answer = stack.api("PUT", f"/robots/{robot.id}/federation", {"rules": list(rules)})
    assert status == 200, answer


def secret_login(stack: Stack, robot: Robot) -> bool:
    status, _, answer = stack.api("GET", f"/robots/{robot.id}")
    assert status == 200 and isinstance(answer, dict), answer
    return bool(answer["secret_login"])


def token_status(stack: Stack, robot: Robot, password: str, project: str) -> int:
    """The token endpoint's status for a Basic login (as `docker login` does) of `robot`."""
    base = stack.api_base.removesuffix("/api/v2.0")
    query = urllib.parse.urlencode(
        {"service": "registry", "scope": f"repository:{project}/app:pull"}
    )
    basic = base64.b64encode(f"{robot.name}:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        f"{base}/service/token?{query}", headers={"Authorization": f"Basic {basic}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def open_federation(page: Page, robot: Robot) -> None:
    """From the robot's project page: select its row, then Action > Federation."""
    act(page, robot.name, "Federation")
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()


def nothing_ran(page: Page) -> None:
    assert page.evaluate("window.pwned") is None
    expect(page.locator("main img, main script, main b, dialog img")).to_have_count(0)


# ---- issuers -----------------------------------------------------------------------------


def test_a_system_admin_adds_and_removes_issuers(
    page: Page, web_stack: Stack, fake_issuer: FakeIssuer
) -> None:
    log_in(page)
    page.get_by_role("link", name="Federation Issuers").click()
    expect(page.get_by_role("heading", name="Federation Issuers")).to_be_visible()
    expect(page.get_by_role("table", name="Issuers")).to_contain_text("No issuers")

    # Add: an http:// URL off loopback is refused in the API's words, in the dialog.
    page.get_by_role("button", name="Add Issuer").click()
    dialog = page.get_by_role("dialog", name="Add Issuer")
    dialog.get_by_label("Name", exact=True).fill("ci-fake")
    dialog.get_by_label("Issuer URL").fill("http://issuer.example.com")
    dialog.get_by_label("Audiences").fill(f"{fake_issuer.audience}\n{HOSTILE_AUDIENCE}\n")
    dialog.get_by_label("Max token lifetime (seconds)").fill("600")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.get_by_role("alert")).to_contain_text("loopback")
    jwks = fake_issuer.write_jwks(web_stack.new_dir("jwks") / "jwks.json")
    dialog.get_by_label("Issuer URL").fill(fake_issuer.url)
    dialog.get_by_label("JWKS file (optional)").fill(str(jwks))
    screenshot(page, "federation-1-add-issuer")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog).to_have_count(0)

    listed = page.locator('tr[data-issuer="ci-fake"]')
    expect(listed.locator(".url")).to_have_text(fake_issuer.url)
    expect(listed.locator(".audiences li")).to_have_text([fake_issuer.audience, HOSTILE_AUDIENCE])
    expect(listed.locator(".jwks")).to_have_text(str(jwks))
    expect(listed.locator(".ca")).to_have_text("none")
    expect(listed.locator(".lifetime")).to_have_text("600 s")
    nothing_ran(page)
    status, _, issuer = web_stack.api("GET", "/federation/issuers/ci-fake")
    assert status == 200 and isinstance(issuer, dict), issuer
    assert issuer["audiences"] == [fake_issuer.audience, HOSTILE_AUDIENCE]
    assert issuer["max_token_lifetime"] == 600 and issuer["jwks_file"] == str(jwks)
    screenshot(page, "federation-2-issuers")

    # Remove while a robot's rule uses it: the API's 409, shown in the dialog; the issuer stays.
    web_stack.project("issuer-use")
    robot = web_stack.robot("issuer-use", "user", "repository:pull")
    set_rules(web_stack, robot, {"issuer": "ci-fake", "claims": {"sub": "repo:acme/app:*"}})
    listed.get_by_role("button", name="Remove issuer ci-fake").click()
    confirm = page.get_by_role("dialog", name="Remove Issuer")
    confirm.get_by_role("button", name="Remove").click()
    expect(confirm.get_by_role("alert")).to_contain_text("used by the federation rules of 1 robot")
    screenshot(page, "federation-3-issuer-in-use")
    confirm.get_by_role("button", name="Cancel").click()
    expect(listed).to_be_visible()
    assert web_stack.api("GET", "/federation/issuers/ci-fake")[0] == 200

    # Once no rule uses it, it goes.
    set_rules(web_stack, robot)
    listed.get_by_role("button", name="Remove issuer ci-fake").click()
    page.get_by_role("dialog", name="Remove Issuer").get_by_role("button", name="Remove").click()
    expect(listed).to_have_count(0)
    assert web_stack.api("GET", "/federation/issuers/ci-fake")[0] == 404


# ---- a robot's Federation tab ------------------------------------------------------------


def test_a_project_admin_sets_rules_turns_the_secret_off_and_sees_refusals(
    page: Page, web_stack: Stack, fake_issuer: FakeIssuer
) -> None:
    trust(web_stack, fake_issuer, "gh")
    web_stack.project("fedweb")
    member(web_stack, "fed-alice", "fedweb", PROJECT_ADMIN)
    ci = web_stack.robot("fedweb", "ci", "repository:pull")
    bare = web_stack.robot("fedweb", "bare", "repository:pull")
    log_in(page, "fed-alice", USER_PASSWORD)
    expect(page.get_by_role("link", name="Federation Issuers")).to_be_hidden()
    page.get_by_role("link", name="fedweb").click()

    # A robot without rules: its secret login cannot be turned off (the API's 409, shown).
    open_federation(page, bare)
    expect(page.locator("#no-rules")).to_be_visible()
    expect(page.locator("#secret-login-state")).to_contain_text("Secret login: On")
    page.get_by_role("button", name="Turn Secret Login Off").click()
    confirm = page.get_by_role("dialog", name="Turn Secret Login Off")
    confirm.get_by_role("button", name="Turn Off").click()
    expect(confirm.get_by_role("alert")).to_contain_text("has no federation rules")
    confirm.get_by_role("button", name="Cancel").click()
    assert secret_login(web_stack, bare)

    # A rule with two claims, one of them a list of patterns; a second rule and a third claim
    # row added and removed again before saving.
    page.go_back()
    expect(row(page, ci.name)).to_be_visible()
    open_federation(page, ci)
    page.get_by_role("button", name="Add Rule").click()
    rule = page.get_by_role("group", name="Rule 1")
    rule.get_by_label("Issuer", exact=True).fill("gh")
    rule.get_by_label("Claim", exact=True).fill("repository")
    rule.get_by_label("Pattern(s)", exact=True).fill("acme/app")
    rule.get_by_role("button", name="Add Claim").click()
    rule.get_by_label("Claim", exact=True).nth(1).fill("ref")
    rule.get_by_label("Pattern(s)", exact=True).nth(1).fill("refs/heads/main\nrefs/tags/v*")
    rule.get_by_role("button", name="Add Claim").click()
    rule.get_by_label("Claim", exact=True).nth(2).fill("environment")
    rule.get_by_role("button", name="Remove claim").nth(2).click()
    expect(rule.get_by_label("Claim", exact=True)).to_have_count(2)
    page.get_by_role("button", name="Add Rule").click()
    page.get_by_role("group", name="Rule 2").get_by_label("Issuer", exact=True).fill("gh")
    page.get_by_role("group", name="Rule 2").get_by_role("button", name="Remove Rule").click()
    expect(page.get_by_role("group", name="Rule 2")).to_have_count(0)
    screenshot(page, "federation-4-rule")
    page.get_by_role("button", name="Save Rules").click()

    # The API's warning: a GitHub-shaped rule that pins no immutable id.
    warnings = page.locator("#federation-warnings")
    expect(warnings).to_contain_text("pins no repository_owner_id or repository_id")
    expect(page.locator("#rules-notice")).to_have_text("Saved: 1 rule(s).")
    screenshot(page, "federation-5-warning")
    saved = rules_of(web_stack, ci)
    assert [(r["issuer"], r["claims"]) for r in saved["rules"]] == [
        ("gh", {"repository": "acme/app", "ref": ["refs/heads/main", "refs/tags/v*"]})
    ]
    assert len(saved["warnings"]) == 1

    # After a reload the page shows the rule as stored, and the warning still.
    page.reload()
    rule = page.get_by_role("group", name=f"Rule 1 (id {saved['rules'][0]['id']})")
    expect(rule.get_by_label("Issuer", exact=True)).to_have_value("gh")
    expect(rule.get_by_label("Claim", exact=True)).to_have_count(2)
    expect(rule.get_by_label("Claim", exact=True).nth(0)).to_have_value("repository")
    expect(rule.get_by_label("Pattern(s)", exact=True).nth(0)).to_have_value("acme/app")
    expect(rule.get_by_label("Claim", exact=True).nth(1)).to_have_value("ref")
    expect(rule.get_by_label("Pattern(s)", exact=True).nth(1)).to_have_value(
        "refs/heads/main\nrefs/tags/v*"
    )
    expect(page.locator("#federation-warnings")).to_contain_text("repository_owner_id")

    # Pinning the owner's id clears the warning.
    rule.get_by_role("button", name="Add Claim").click()
    rule.get_by_label("Claim", exact=True).nth(2).fill("repository_owner_id")
    rule.get_by_label("Pattern(s)", exact=True).nth(2).fill("1234567")
    page.get_by_role("button", name="Save Rules").click()
    expect(page.locator("#rules-notice")).to_have_text("Saved: 1 rule(s).")
    expect(page.locator("#federation-warnings")).to_be_hidden()
    assert rules_of(web_stack, ci)["warnings"] == []

    # Secret login off: the secret stops working, an ID token the rule admits logs in. A rule
    # being written meanwhile stays on the page, unsaved.
    assert token_status(web_stack, ci, ci.secret, "fedweb") == 200
    page.get_by_role("button", name="Add Rule").click()
    page.get_by_role("group", name="Rule 2").get_by_label("Issuer", exact=True).fill("gh")
    page.get_by_role("button", name="Turn Secret Login Off").click()
    page.get_by_role("dialog", name="Turn Secret Login Off").get_by_role(
        "button", name="Turn Off"
    ).click()
    expect(page.locator("#secret-login-state")).to_contain_text("Secret login: Off")
    expect(page.get_by_role("button", name="Turn Secret Login On")).to_be_visible()
    draft = page.get_by_role("group", name="Rule 2 (new)")
    expect(draft.get_by_label("Issuer", exact=True)).to_have_value("gh")
    draft.get_by_role("button", name="Remove Rule").click()
    assert not secret_login(web_stack, ci)
    assert token_status(web_stack, ci, ci.secret, "fedweb") == 401
    admitted = fake_issuer.mint(github_claims(ref="refs/tags/v2.0.0"))
    web_stack.remember(admitted)
    assert token_status(web_stack, ci, admitted, "fedweb") == 200

    # A token from another repository is refused: the refusal is listed, with its reason.
    expect(page.get_by_role("table", name="Refused logins")).to_contain_text("No refused logins")
    refused = fake_issuer.mint(github_claims(repository="evil/app"))
    web_stack.remember(refused)
    assert token_status(web_stack, ci, refused, "fedweb") == 401
    page.get_by_role("button", name="Refresh Recent Refused Logins").click()
    failure = page.locator("tr.failure")
    expect(failure).to_have_count(1)
    expect(failure.locator(".issuer")).to_have_text("gh")
    expect(failure.locator(".subject")).to_have_text("repo:evil/app:ref:refs/heads/main")
    expect(failure.locator(".reason")).to_contain_text("repository")

    # The admitted login is listed too: which workflow (repository, ref, commit, run) it was.
    page.get_by_role("button", name="Refresh Recent Federated Logins").click()
    login = page.locator("tr.login")
    expect(login).to_have_count(1)
    expect(login.locator(".subject")).to_have_text("repo:acme/app:ref:refs/tags/v2.0.0")
    expect(login.locator(".repository")).to_have_text("acme/app")
    expect(login.locator(".ref")).to_have_text("refs/tags/v2.0.0")
    expect(login.locator(".sha")).to_have_text("a" * 12)
    expect(login.locator(".run")).to_have_text("9876543210")
    screenshot(page, "federation-6-refused")

    # The robot list says the secret does not log it in.
    page.get_by_role("link", name="Robot Accounts").click()
    expect(row(page, ci.name)).to_contain_text("Federation only")
    expect(row(page, bare.name)).not_to_contain_text("Federation only")

    # Neither ID token is in the server's log.
    log = web_stack.server_log()
    assert admitted not in log and refused not in log


def test_a_developer_sees_no_federation_editing(
    page: Page, web_stack: Stack, fake_issuer: FakeIssuer
) -> None:
    trust(web_stack, fake_issuer, "dev-gh")
    web_stack.project("fed-dev")
    member(web_stack, "fed-dave", "fed-dev", DEVELOPER)
    robot = web_stack.robot("fed-dev", "ci", "repository:pull")
    set_rules(web_stack, robot, {"issuer": "dev-gh", "claims": {"repository_id": "7654321"}})
    log_in(page, "fed-dave", USER_PASSWORD)
    expect(page.get_by_role("link", name="Federation Issuers")).to_be_hidden()
    page.get_by_role("link", name="fed-dev").click()
    act(page, robot.name, "Federation")

    denied = page.locator("#federation-denied")
    expect(denied).to_contain_text("No access")
    expect(denied).to_contain_text("not allowed")
    expect(page.locator("#secret-login-state")).to_contain_text("Secret login: On")
    screenshot(page, "federation-7-developer")
    for button in ("Add Rule", "Save Rules", "Turn Secret Login Off"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    expect(page.locator("main input, main textarea")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("7654321")

    # The issuers page is not theirs: the address says so.
    page.goto("/#/federation-issuers")
    expect(page.get_by_role("heading", name="No access")).to_be_visible()
    expect(page.get_by_role("heading", name="Federation Issuers")).to_have_count(0)


def test_hostile_text_in_claims_and_refusals_is_shown_as_text(
    page: Page, web_stack: Stack, fake_issuer: FakeIssuer
) -> None:
    trust(web_stack, fake_issuer, "hostile")
    web_stack.project("fed-hostile")
    robot = web_stack.robot("fed-hostile", "ci", "repository:pull")
    log_in(page)
    page.get_by_role("link", name="fed-hostile").click()
    open_federation(page, robot)
    page.get_by_role("button", name="Add Rule").click()
    rule = page.get_by_role("group", name="Rule 1")
    rule.get_by_label("Issuer", exact=True).fill("hostile")
    rule.get_by_label("Claim", exact=True).fill(HOSTILE_CLAIM)
    rule.get_by_label("Pattern(s)", exact=True).fill(HOSTILE_PATTERN)
    page.get_by_role("button", name="Save Rules").click()
    expect(page.locator("#rules-notice")).to_have_text("Saved: 1 rule(s).")
    assert rules_of(web_stack, robot)["rules"][0]["claims"] == {HOSTILE_CLAIM: HOSTILE_PATTERN}

    # A token whose subject is markup and whose claim does not match is refused and listed.
    refused = fake_issuer.mint({"sub": HOSTILE_SUBJECT, HOSTILE_CLAIM: "something else"})
    web_stack.remember(refused)
    assert token_status(web_stack, robot, refused, "fed-hostile") == 401

    page.reload()
    rule = page.get_by_role("group", name="Rule 1")
    expect(rule.get_by_label("Claim", exact=True)).to_have_value(HOSTILE_CLAIM)
    expect(rule.get_by_label("Pattern(s)", exact=True)).to_have_value(HOSTILE_PATTERN)
    failure = page.locator("tr.failure")
    expect(failure.locator(".subject")).to_have_text(HOSTILE_SUBJECT)
    expect(failure.locator(".reason")).to_contain_text(HOSTILE_CLAIM)
    screenshot(page, "federation-8-hostile")
    nothing_ran(page)

    # An API error naming the hostile text (an issuer that does not exist) shows it as text too.
    page.get_by_role("button", name="Add Rule").click()
    second = page.get_by_role("group", name="Rule 2")
    second.get_by_label("Issuer", exact=True).fill(HOSTILE_SUBJECT)
    second.get_by_label("Claim", exact=True).fill("sub")
    second.get_by_label("Pattern(s)", exact=True).fill("repo:acme/app:*")
    page.get_by_role("button", name="Save Rules").click()
    expect(page.locator("#rules-error")).to_contain_text(f"rule 2: issuer {HOSTILE_SUBJECT!r}")
    nothing_ran(page)
    assert len(rules_of(web_stack, robot)["rules"]) == 1


# Markup, an entity, both quotes, a backslash escape spelled out and a real ESC: what the
# tables show is the server's once-escaped line (the backslash and the ESC as escapes), the
# markup and the entity as the very characters sent.
HOSTILE_ONCE = "<img src=x onerror=\"window.pwned='once'\"> &amp; \"dq\" 'sq' \\x41 \x1b end"
SHOWN_ONCE = "<img src=x onerror=\"window.pwned='once'\"> &amp; \"dq\" 'sq' \\\\x41 \\x1b end"
QUOTED_ONCE = (
    "'<img src=x onerror=\"window.pwned=\\'once\\'\"> &amp; \"dq\" \\'sq\\' \\\\x41 \\x1b end'"
)


def test_refused_and_federated_logins_show_hostile_text_escaped_once(
    page: Page, web_stack: Stack, fake_issuer: FakeIssuer
) -> None:
    """The refused logins' subject and reason were escaped twice (`\\\\x1b` for an ESC, `\\\\'`
    for a quote); the federated logins' text once, as it must be. Both show it once, as text."""
    trust(web_stack, fake_issuer, "once")
    web_stack.project("fed-once")
    robot = web_stack.robot("fed-once", "ci", "repository:pull")
    set_rules(web_stack, robot, {
        "issuer": "once", "claims": {"repository": "acme/app", "ref": "refs/tags/v*"},
    })  # fmt: skip
    rule_id = rules_of(web_stack, robot)["rules"][0]["id"]  # the stack's rules are numbered as one
    refused = fake_issuer.mint(github_claims(repository=HOSTILE_ONCE, sub=HOSTILE_ONCE))
    admitted = fake_issuer.mint(github_claims(
        ref="refs/tags/v" + HOSTILE_ONCE, sha=HOSTILE_ONCE, run_id=HOSTILE_ONCE, sub=HOSTILE_ONCE,
    ))  # fmt: skip
    web_stack.remember(refused)
    web_stack.remember(admitted)
    assert token_status(web_stack, robot, refused, "fed-once") == 401
    assert token_status(web_stack, robot, admitted, "fed-once") == 200

    log_in(page)
    page.get_by_role("link", name="fed-once").click()
    open_federation(page, robot)
    failure = page.locator("tr.failure")
    expect(failure).to_have_count(1)
    expect(failure.locator(".subject")).to_have_text(SHOWN_ONCE)
    expect(failure.locator(".reason")).to_have_text(
        f"rule {rule_id}: claim 'repository' did not match: it is {QUOTED_ONCE}"
    )
    login = page.locator("tr.login")
    expect(login).to_have_count(1)
    expect(login.locator(".subject")).to_have_text(SHOWN_ONCE)
    expect(login.locator(".ref")).to_have_text("refs/tags/v" + SHOWN_ONCE)
    expect(login.locator(".run")).to_have_text(SHOWN_ONCE)
    expect(login.locator(".sha")).to_have_text(SHOWN_ONCE[:12])
    screenshot(page, "federation-9-escaped-once")
    nothing_ran(page)
