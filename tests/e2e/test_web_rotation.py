"""End to end: rotation and Kubernetes pull secrets on the page, in headless Chromium against
a real tokenserver: Refresh Secret keeping the old secret for a while (both log in at the
token endpoint), the list saying so, Revoke Previous Secret ending it; the secret dialog's
Kubernetes Secret saving the manifest the command line and kubectl make, byte for byte in
`.data`, without the secret leaving the browser."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e import test_web
from tests.e2e.conftest import Stack
from tests.e2e.test_web import logged_in, project_id, row, screenshot
from tokenserver.domain.pull_secrets import pull_secret

# test_web.py's stack (one for this module), browser and page, found by pytest under these names.
web_stack = test_web.web_stack
browser = test_web.browser
page = test_web.page


def logs_in(stack: Stack, name: str, secret: str) -> bool:
    """Whether the token endpoint takes `name` and `secret` (Basic, as docker sends them)."""
    origin = stack.api_base.removesuffix("/api/v2.0")
    auth = base64.b64encode(f"{name}:{secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        f"{origin}/service/token",
        headers={"Authorization": f"Basic {auth}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return bool(response.status == 200)
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.read()
        return False


def act(page: Page, robot: str, action: str) -> None:
    row(page, robot).get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    page.get_by_role("menuitem", name=action).click()


def test_refresh_keeps_the_old_secret_for_a_while_and_revoke_ends_it(
    page: Page, web_stack: Stack
) -> None:
    stack = web_stack
    stack.project("rotate")
    robot = stack.robot("rotate", "deployer", "repository:pull")
    logged_in(page)
    page.goto(f"/#/projects/{project_id(stack, 'rotate')}/robots")
    act(page, robot.name, "Refresh Secret")
    dialog = page.get_by_role("dialog", name="Refresh Secret")
    expect(dialog.locator("#keep-previous-said")).to_have_text(
        "The old secret stops working at once."
    )
    dialog.get_by_label("Keep the old secret working for").fill("31")
    dialog.get_by_label("Unit").select_option("days")
    expect(dialog.locator("#keep-previous-said")).to_contain_text("At most 30 days")
    dialog.get_by_label("Keep the old secret working for").fill("24")
    dialog.get_by_label("Unit").select_option("hours")
    expect(dialog.locator("#keep-previous-said")).to_contain_text("keeps working until")
    dialog.get_by_role("button", name="Refresh").click()

    shown = page.get_by_role("dialog", name="Secret refreshed")
    new_secret = shown.locator("#secret-value").inner_text().strip()
    stack.remember(new_secret)
    expect(page.locator("#status-text")).to_contain_text("The old one works until")
    shown.get_by_role("button", name="Close").click()
    assert logs_in(stack, robot.name, robot.secret)
    assert logs_in(stack, robot.name, new_secret)
    expect(row(page, robot.name).locator(".previous-secret")).to_contain_text("Old secret: 23 h")
    screenshot(page, "rotation-list")

    act(page, robot.name, "Revoke Previous Secret")
    confirm = page.get_by_role("dialog", name="Revoke Previous Secret")
    confirm.get_by_role("button", name="Revoke").click()
    expect(page.locator("#status-text")).to_have_text(f"Revoked the old secret of {robot.name}.")
    expect(row(page, robot.name).locator(".previous-secret")).to_have_count(0)
    assert not logs_in(stack, robot.name, robot.secret)
    assert logs_in(stack, robot.name, new_secret)
    # Without an old secret there is nothing to revoke.
    row(page, robot.name).get_by_role("checkbox").check()
    page.get_by_role("button", name="Action").click()
    expect(page.get_by_role("menuitem", name="Revoke Previous Secret")).to_have_count(0)


def test_the_secret_dialog_saves_a_kubernetes_pull_secret(page: Page, web_stack: Stack) -> None:
    stack = web_stack
    stack.project("kube")
    robot = stack.robot("kube", "puller", "repository:pull")
    logged_in(page)
    page.goto(f"/#/projects/{project_id(stack, 'kube')}/robots")
    act(page, robot.name, "Refresh Secret")
    page.get_by_role("dialog", name="Refresh Secret").get_by_role("button", name="Refresh").click()
    shown = page.get_by_role("dialog", name="Secret refreshed")
    secret = shown.locator("#secret-value").inner_text().strip()
    stack.remember(secret)

    shown.get_by_role("button", name="Kubernetes Secret").click()
    form = shown.locator("#k8s-secret")
    expect(form.get_by_label("Secret name")).to_have_value("robot-kube-puller")
    registry = stack.api_base.removesuffix("/api/v2.0").split("://", 1)[1]
    expect(form.get_by_label("Registry")).to_have_value(registry)
    # A name Kubernetes refuses is named, and nothing is saved.
    form.get_by_label("Secret name").fill("Pull_Secret")
    form.get_by_role("button", name="Save Secret Manifest").click()
    expect(form.locator("#k8s-error")).to_contain_text(
        '"Pull_Secret" is not a Kubernetes object name'
    )

    form.get_by_label("Secret name").fill("regcred")
    form.get_by_label("Namespace (optional)").fill("ci")
    form.get_by_label("Registry").fill("registry.example.com:5000")
    with page.expect_download() as download_info:
        form.get_by_label("Registry").press("Enter")  # Enter saves this form, not Export to File
    download = download_info.value
    assert download.suggested_filename == "regcred.json"
    saved = json.loads(Path(download.path()).read_text())
    assert saved == pull_secret("regcred", "registry.example.com:5000", robot.name, secret, "ci")
    config = json.loads(base64.b64decode(saved["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example.com:5000"]["password"] == secret
    expect(form.locator("#k8s-error")).to_have_text("")
    screenshot(page, "k8s-secret")


def test_the_manifest_matches_the_command_lines_for_hostile_secrets(
    page: Page, web_stack: Stack
) -> None:
    """Go's escapes (<, >, &) and non-ASCII: the browser's bytes are the command line's."""
    logged_in(page)
    for secret in ["Pa<ss>&w0rd", "Pässw0rdÄ€", 'q"uo\\te1A']:
        made = page.evaluate(
            """async (secret) => {
                const { pullSecretManifest } = await import("/ui/pullsecrets.js");
                return pullSecretManifest("s", "", "reg.example:443", "robot$p+x", secret);
            }""",
            secret,
        )
        assert made == pull_secret("s", "reg.example:443", "robot$p+x", secret)
