"""End to end: project robots push and pull through the real registry with real clients.

Every test runs twice: against a registry trusting an ES256 key and one trusting RS256.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode

import pytest

from tests.e2e.clients import Docker, Helm, Podman, Skopeo, docker_login, layout_digest
from tests.e2e.conftest import Robot, Stack
from tests.e2e.oci import write_image
from tests.harbor_export import HARBOR_SECRET, legacy_token
from tests.harbor_export import export as harbor_export

PULL = "repository:pull"
PUSH = "repository:push"


def test_push_then_pull_back_with_equal_digests(stack: Stack) -> None:
    stack.project("e2e-push")
    robot = stack.robot("e2e-push", "ci", PULL, PUSH)
    skopeo = Skopeo(stack, robot)
    login = skopeo.login()
    assert login.returncode == 0, login.stderr + stack.server_log()
    layout = stack.new_dir("image")
    digest = write_image(layout, "hello " + stack.algorithm)
    pushed = skopeo.push(layout, "e2e-push/app:v1")
    assert pushed.returncode == 0, pushed.stderr + stack.registry_log()
    assert skopeo.digest("e2e-push/app:v1") == digest
    back = stack.new_dir("pulled")
    pulled = skopeo.pull("e2e-push/app:v1", back)
    assert pulled.returncode == 0, pulled.stderr
    assert layout_digest(back) == digest
    # The registry really verified our token: its log names the robot.
    assert f'auth.user.name="{robot.name}"' in stack.registry_log()
    # One line per token request: the token log's, with what the access log said.
    log = stack.server_log()
    account = re.escape(robot.name)
    assert re.search(rf"tokenserver\.token token issued grant=basic account='{account}' "
                     r"client=127\.0\.0\.1 .* method=GET status=200 ms=[\d.]+ id=[0-9a-f]{32} "
                     r"agent='[^']", log)  # fmt: skip
    assert "GET /service/token" not in log


def test_wrong_secret_fails_skopeo_login(stack: Stack) -> None:
    stack.project("e2e-wrong")
    robot = stack.robot("e2e-wrong", "ci", PULL)
    skopeo = Skopeo(stack, robot)
    wrong = robot.secret[:-1] + ("y" if robot.secret.endswith("x") else "x")
    result = skopeo.login(password=wrong)
    assert result.returncode != 0
    assert "invalid username/password" in result.stderr
    assert f"token denied grant=basic account='{robot.name}'" in stack.server_log()
    assert not skopeo.authfile.exists()


def test_docker_login_right_and_wrong_secret(stack: Stack) -> None:
    stack.project("e2e-docker")
    robot = stack.robot("e2e-docker", "ci", PULL)
    result, config = docker_login(stack, robot.name, robot.secret)
    assert result.returncode == 0, result.stderr
    assert "Login Succeeded" in result.stdout
    stored = json.loads((config / "config.json").read_text())["auths"][stack.registry]
    # docker login asked for offline access: it keeps the refresh token, not the secret.
    assert stack.remember(stored["identitytoken"]).startswith("tsr_")
    assert b64decode(stored["auth"]).decode() == f"{robot.name}:"
    assert robot.secret not in json.dumps(stored)
    wrong, wrong_config = docker_login(stack, robot.name, "Wr0ngSecretValue")
    assert wrong.returncode != 0
    assert "unauthorized" in wrong.stderr
    assert (
        not (wrong_config / "config.json").exists()
        or stack.registry not in (wrong_config / "config.json").read_text()
    )


def test_pull_only_robot_cannot_push(stack: Stack) -> None:
    stack.project("e2e-ro")
    writer = Skopeo(stack, stack.robot("e2e-ro", "writer", PUSH))
    reader_robot = stack.robot("e2e-ro", "reader", PULL)
    reader = Skopeo(stack, reader_robot)
    layout = stack.new_dir("image")
    digest = write_image(layout, "read only")
    assert writer.login().returncode == 0
    assert writer.push(layout, "e2e-ro/app:v1").returncode == 0
    assert reader.login().returncode == 0
    assert reader.digest("e2e-ro/app:v1") == digest
    other = stack.new_dir("image")
    write_image(other, "not allowed")
    refused = reader.push(other, "e2e-ro/app:v2")
    assert refused.returncode != 0
    assert "authentication required" in refused.stderr or "denied" in refused.stderr.lower()
    assert (
        f"account='{reader_robot.name}' client=127.0.0.1 scopes='repository:e2e-ro/app:pull,push' "
        "granted='repository:e2e-ro/app:pull'"
    ) in stack.server_log()
    assert writer.digest("e2e-ro/app:v1") == digest
    assert writer.pull("e2e-ro/app:v2", stack.new_dir("pulled")).returncode != 0


def test_robot_of_one_project_cannot_touch_another(stack: Stack) -> None:
    stack.project("e2e-a")
    stack.project("e2e-b")
    a = Skopeo(stack, stack.robot("e2e-a", "ci", PULL, PUSH))
    b = Skopeo(stack, stack.robot("e2e-b", "ci", PULL, PUSH))
    layout = stack.new_dir("image")
    write_image(layout, "project b")
    assert b.login().returncode == 0
    assert b.push(layout, "e2e-b/app:v1").returncode == 0
    assert a.login().returncode == 0
    assert a.pull("e2e-b/app:v1", stack.new_dir("pulled")).returncode != 0
    assert a.push(layout, "e2e-b/app:v2").returncode != 0
    assert a.push(layout, "e2e-a/app:v1").returncode == 0


def test_a_push_to_a_project_nobody_created_is_explained_in_the_server_log(
    stack: Stack,
) -> None:
    """The registry and the client say only that access was denied; the token log line says
    the project does not exist."""
    stack.project("e2e-hint")
    robot = stack.robot("e2e-hint", "ci", PULL, PUSH)
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    write_image(layout, "no such project")
    assert skopeo.push(layout, "e2e-nope/app:v1").returncode != 0
    assert re.search(
        rf"token issued grant=basic account='{re.escape(robot.name)}' .*"
        r"scopes='repository:e2e-nope/app:pull,push' granted='repository:e2e-nope/app:' "
        r"reason='project e2e-nope does not exist'",
        stack.server_log(),
    ), stack.server_log()[-3000:]


def test_a_robot_name_a_shell_expanded_gets_a_hint_in_the_server_log(stack: Stack) -> None:
    """`skopeo login -u robot$e2e-shell+ci` unquoted sends `robot-shell+ci`."""
    stack.project("e2e-shell")
    robot = stack.robot("e2e-shell", "ci", PULL)
    mangled = Robot("robot-shell+ci", robot.secret, robot.id)
    assert Skopeo(stack, mangled).login().returncode != 0
    line = next(
        line
        for line in stack.server_log().splitlines()
        if "token denied grant=basic account='robot-shell+ci'" in line
    )
    assert "arrives as \\'robot-shell+ci\\': put robot names in single quotes'" in line
    assert robot.secret not in stack.server_log()


def test_disabled_expired_and_deleted_robots_are_refused(stack: Stack) -> None:
    stack.project("e2e-state")
    disabled = stack.robot("e2e-state", "disabled", PULL)
    expired = stack.robot("e2e-state", "expired", PULL, duration=1)
    deleted = stack.robot("e2e-state", "deleted", PULL)
    for robot in (disabled, expired, deleted):
        assert Skopeo(stack, robot).login().returncode == 0  # now cached by the server
    assert stack.cli("robot", "disable", disabled.name).returncode == 0
    stack.expire(expired)
    assert stack.cli("robot", "delete", deleted.name).returncode == 0
    for robot in (disabled, expired, deleted):
        assert Skopeo(stack, robot).login().returncode != 0, robot.name
    assert stack.cli("robot", "enable", disabled.name).returncode == 0
    assert Skopeo(stack, disabled).login().returncode == 0


def test_refreshed_secret_replaces_the_old_one(stack: Stack) -> None:
    stack.project("e2e-refresh")
    robot = stack.robot("e2e-refresh", "ci", PULL)
    assert Skopeo(stack, robot).login().returncode == 0
    result = stack.cli("robot", "refresh-secret", robot.name)
    assert result.returncode == 0, result.stderr
    new_secret = stack.remember(json.loads(result.stdout)["secret"])
    assert Skopeo(stack, robot).login().returncode != 0
    assert Skopeo(stack, robot).login(password=new_secret).returncode == 0
    manual = stack.cli(
        "robot", "refresh-secret", robot.name, "--secret", "-", stdin="Chos3nSecret\n"
    )
    assert manual.returncode == 0
    assert Skopeo(stack, robot).login(password=new_secret).returncode != 0
    assert Skopeo(stack, robot).login(password="Chos3nSecret").returncode == 0


def test_anonymous_pull_works_on_public_projects_only(stack: Stack) -> None:
    stack.project("e2e-public", public=True)
    stack.project("e2e-private")
    layout = stack.new_dir("image")
    digest = write_image(layout, "public")
    for project in ("e2e-public", "e2e-private"):
        writer = Skopeo(stack, stack.robot(project, "ci", PUSH))
        assert writer.login().returncode == 0
        assert writer.push(layout, f"{project}/app:v1").returncode == 0
    anonymous = Skopeo(stack)
    pulled = stack.new_dir("pulled")
    result = anonymous.pull("e2e-public/app:v1", pulled)
    assert result.returncode == 0, result.stderr
    assert layout_digest(pulled) == digest
    assert anonymous.pull("e2e-private/app:v1", stack.new_dir("pulled")).returncode != 0
    assert anonymous.push(layout, "e2e-public/app:v2").returncode != 0


def test_skopeo_delete_needs_artifact_delete(stack: Stack) -> None:
    stack.project("e2e-delete")
    writer = Skopeo(stack, stack.robot("e2e-delete", "writer", PULL, PUSH))
    deleter = Skopeo(stack, stack.robot("e2e-delete", "deleter", PULL, "artifact:delete"))
    layout = stack.new_dir("image")
    write_image(layout, "to delete")
    assert writer.login().returncode == 0
    assert writer.push(layout, "e2e-delete/app:v1").returncode == 0
    refused = writer.delete("e2e-delete/app:v1")
    assert refused.returncode != 0
    assert writer.digest("e2e-delete/app:v1")
    assert deleter.login().returncode == 0
    deleted = deleter.delete("e2e-delete/app:v1")
    assert deleted.returncode == 0, deleted.stderr + stack.registry_log()[-2000:]
    gone = writer.pull("e2e-delete/app:v1", stack.new_dir("pulled"))
    assert gone.returncode != 0
    assert re.search(r"manifest unknown|not found", gone.stderr, re.IGNORECASE)


def test_docker_daemon_pushes_and_pulls(stack: Stack, dockerd: str) -> None:
    stack.project("e2e-dockerd")
    writer = Docker(stack, dockerd)
    assert writer.login(stack.robot("e2e-dockerd", "ci", PULL, PUSH)).returncode == 0
    reference = f"{stack.registry}/e2e-dockerd/hello:{stack.algorithm.lower()}"
    writer.image(reference.split("/", 1)[1], "from dockerd " + stack.algorithm)
    pushed = writer("push", reference)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-2000:]
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
    assert digest is not None
    assert writer("rmi", reference).returncode == 0
    pulled = writer("pull", reference)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {digest.group(1)}" in pulled.stdout

    reader = Docker(stack, dockerd)
    assert reader.login(stack.robot("e2e-dockerd", "reader", PULL)).returncode == 0
    other = f"{stack.registry}/e2e-dockerd/other:1"
    reader.image(other.split("/", 1)[1], "reader may not push")
    refused = reader("push", other)
    assert refused.returncode != 0
    assert "denied" in refused.stderr or "unauthorized" in refused.stderr


def test_a_robot_created_through_the_api_pushes(stack: Stack) -> None:
    status, headers, _ = stack.api("POST", "/projects", {"project_name": "e2e-api"})
    assert status == 201, headers
    status, headers, export = stack.api(
        "POST",
        "/robots",
        {
            "name": "ci",
            "level": "project",
            "duration": 30,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "e2e-api",
                    "access": [{"resource": "repository", "action": "push"}],
                }
            ],
        },
    )
    assert status == 201, export
    assert isinstance(export, dict)
    robot = Robot(export["name"], stack.remember(export["secret"]), export["id"])
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0
    layout = stack.new_dir("image")
    digest = write_image(layout, "pushed by an API robot")
    pushed = skopeo.push(layout, "e2e-api/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    assert skopeo.digest("e2e-api/app:v1") == digest


def test_a_system_robot_for_all_projects_pulls_from_a_later_project(stack: Stack) -> None:
    status, _, export = stack.api(
        "POST",
        "/robots",
        {
            "name": f"fleet-{stack.algorithm.lower()}",
            "level": "system",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "*",
                    "access": [{"resource": "repository", "action": "pull"}],
                }
            ],
        },
    )
    assert status == 201, export
    assert isinstance(export, dict)
    fleet = Robot(export["name"], stack.remember(export["secret"]), export["id"])
    status, _, _ = stack.api("POST", "/projects", {"project_name": "e2e-later"})
    assert status == 201
    writer = Skopeo(stack, stack.robot("e2e-later", "writer", PUSH))
    layout = stack.new_dir("image")
    digest = write_image(layout, "for the fleet")
    assert writer.login().returncode == 0
    assert writer.push(layout, "e2e-later/app:v1").returncode == 0
    reader = Skopeo(stack, fleet)
    assert reader.login().returncode == 0
    pulled = stack.new_dir("pulled")
    result = reader.pull("e2e-later/app:v1", pulled)
    assert result.returncode == 0, result.stderr
    assert layout_digest(pulled) == digest
    assert reader.push(layout, "e2e-later/app:v2").returncode != 0


def test_docker_keeps_a_refresh_token_and_mounts_across_repositories(
    stack: Stack, dockerd: str
) -> None:
    stack.project("e2e-refresh-docker")
    robot = stack.robot("e2e-refresh-docker", "ci", PULL, PUSH)
    docker = Docker(stack, dockerd)
    login = docker.login(robot)
    assert login.returncode == 0, login.stderr
    stored = json.loads((docker.config / "config.json").read_text())["auths"][stack.registry]
    assert stack.remember(stored["identitytoken"]).startswith("tsr_")
    assert robot.secret not in json.dumps(stored)
    source = f"{stack.registry}/e2e-refresh-docker/source:1"
    docker.image(source.split("/", 1)[1], "mount me " + stack.algorithm)
    pushed = docker("push", source)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    assert f"grant=refresh_token account='{robot.name}'" in stack.server_log()
    target = f"{stack.registry}/e2e-refresh-docker/target:1"
    assert docker("tag", source, target).returncode == 0
    mounted = docker("push", target)
    assert mounted.returncode == 0, mounted.stderr
    assert "Mounted from e2e-refresh-docker/source" in mounted.stdout
    assert (
        "scopes='repository:e2e-refresh-docker/target:push,pull "
        "repository:e2e-refresh-docker/source:pull'"
    ) in stack.server_log()


def test_podman_login_push_pull_and_refusals(stack: Stack) -> None:
    stack.project("e2e-podman")
    robot = stack.robot("e2e-podman", "ci", PULL, PUSH)
    podman = Podman(stack)
    wrong = podman.login(robot, password="Wr0ngSecretValue")
    assert wrong.returncode != 0
    assert "invalid username/password" in wrong.stderr
    login = podman.login(robot)
    assert login.returncode == 0, login.stderr
    podman.image("e2e-podman/app:1", "podman " + stack.algorithm)
    pushed = podman.push("e2e-podman/app:1")
    assert pushed.returncode == 0, pushed.stderr
    assert podman("rmi", f"{stack.registry}/e2e-podman/app:1").returncode == 0
    pulled = podman.pull("e2e-podman/app:1")
    assert pulled.returncode == 0, pulled.stderr
    reader = Podman(stack)
    assert reader.login(stack.robot("e2e-podman", "reader", PULL)).returncode == 0
    assert reader.pull("e2e-podman/app:1").returncode == 0
    reader.image("e2e-podman/app:2", "not allowed")
    refused = reader.push("e2e-podman/app:2")
    assert refused.returncode != 0
    assert "authentication required" in refused.stderr or "denied" in refused.stderr, refused.stderr


@pytest.mark.parametrize("major", [3, 4])
def test_helm_registry_login_push_pull(stack: Stack, major: int) -> None:
    project = f"e2e-helm{major}"
    stack.project(project)
    robot = stack.robot(project, "ci", PULL, PUSH)
    helm = Helm(stack, major)
    wrong = helm.login(robot, password="Wr0ngSecretValue")
    assert wrong.returncode != 0
    assert "401" in wrong.stderr or "unauthorized" in wrong.stderr.lower(), wrong.stderr
    login = helm.login(robot)
    assert login.returncode == 0, login.stderr + stack.server_log()[-2000:]
    package = helm.package("demo", "0.1.0")
    pushed = helm.push(package, project)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-2000:]
    result, pulled = helm.pull(project, "demo", "0.1.0")
    assert result.returncode == 0, result.stderr
    assert pulled.read_bytes() == package.read_bytes()
    # helm 3 logs in with GET offline_token and pushes with the refresh token it got; helm 4
    # logs in with the OAuth2 POST password grant.
    grant = "refresh_token" if major == 3 else "password"
    assert f"token issued grant={grant} account='{robot.name}'" in stack.server_log()

    reader = Helm(stack, major)
    assert reader.login(stack.robot(project, "reader", PULL)).returncode == 0
    result, pulled = reader.pull(project, "demo", "0.1.0")
    assert result.returncode == 0, result.stderr
    refused = reader.push(reader.package("demo", "0.2.0"), project)
    assert refused.returncode != 0
    assert "401" in refused.stderr or "denied" in refused.stderr.lower(), refused.stderr
    result, _ = reader.pull(project, "demo", "0.2.0")
    assert result.returncode != 0


def test_robots_imported_from_harbor_push_and_legacy_jwts_work(stack: Stack) -> None:
    path = stack.new_dir("export") / "harbor.json"
    path.write_text(json.dumps(harbor_export()))
    imported = stack.cli("import-harbor", str(path))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["robots_created"] == 5
    again = stack.cli("import-harbor", str(path))
    assert json.loads(again.stdout)["robots_created"] == 0

    ci = Skopeo(stack, Robot("robot$lib+ci", HARBOR_SECRET, 0))
    assert ci.login().returncode == 0, stack.server_log()[-2000:]
    layout = stack.new_dir("image")
    digest = write_image(layout, "imported " + stack.algorithm)
    pushed = ci.push(layout, "lib/app:v1")
    assert pushed.returncode == 0, pushed.stderr

    legacy = Skopeo(stack, Robot("robot$legacy", stack.remember(legacy_token(stack.harbor_key)), 0))
    assert legacy.login().returncode == 0, stack.server_log()[-2000:]
    legacy_layout = stack.new_dir("image")
    legacy_digest = write_image(legacy_layout, "legacy " + stack.algorithm)
    assert legacy.push(legacy_layout, "lib/legacy:v1").returncode == 0
    pulled = stack.new_dir("pulled")
    assert legacy.pull("lib/app:v1", pulled).returncode == 0
    assert layout_digest(pulled) == digest
    assert ci.digest("lib/legacy:v1") == legacy_digest

    expired = Skopeo(
        stack, Robot("robot$legacy", legacy_token(stack.harbor_key, expires_in=-120), 0)
    )
    assert expired.login().returncode != 0
    pull_only = stack.remember(
        legacy_token(stack.harbor_key, access=[("/project/7/repository", "pull")])
    )
    reader = Skopeo(stack, Robot("robot$legacy", pull_only, 0))
    assert reader.login().returncode == 0
    assert reader.push(legacy_layout, "lib/legacy:v2").returncode != 0


def test_attack_docker_login_of_a_legacy_robot_refreshes_with_the_stored_policies(
    stack: Stack, dockerd: str
) -> None:
    # docker login sends the legacy JWT with offline_token=true, keeps the refresh token and
    # pushes and pulls with it: the registry must see exactly the JWT's grant (the imported
    # robot's stored policies hold only pull in lib).
    path = stack.new_dir("export") / "harbor.json"
    path.write_text(json.dumps(harbor_export()))
    assert stack.cli("import-harbor", str(path)).returncode == 0  # idempotent
    writer = Docker(stack, dockerd)
    jwt_push = stack.remember(legacy_token(stack.harbor_key))  # push and pull in lib (7)
    login = writer.login(Robot("robot$legacy", jwt_push, 0))
    assert login.returncode == 0, login.stderr + stack.server_log()[-2000:]
    stored = json.loads((writer.config / "config.json").read_text())["auths"][stack.registry]
    assert stack.remember(stored["identitytoken"]).startswith("tsr_")
    reference = f"{stack.registry}/lib/legacy-docker:{stack.algorithm.lower()}"
    writer.image(reference.split("/", 1)[1], "legacy docker " + stack.algorithm)
    pushed = writer("push", reference)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    assert "grant=refresh_token account='robot$legacy'" in stack.server_log()
    assert writer("rmi", reference).returncode == 0
    pulled = writer("pull", reference)
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-3000:]

    # A JWT granting only pull: its refresh token pulls, and pushes nothing.
    reader = Docker(stack, dockerd)
    jwt_pull = stack.remember(
        legacy_token(stack.harbor_key, access=[("/project/7/repository", "pull")])
    )
    assert reader.login(Robot("robot$legacy", jwt_pull, 0)).returncode == 0
    pulled = reader("pull", reference)
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-3000:]
    other = f"{stack.registry}/lib/legacy-docker:other"
    reader.image(other.split("/", 1)[1], "legacy reader may not push")
    refused = reader("push", other)
    assert refused.returncode != 0
    assert "denied" in refused.stderr or "unauthorized" in refused.stderr


def test_no_secret_reaches_a_log_or_the_database(stack: Stack) -> None:
    """Runs last for each stack: every secret, refresh token, legacy JWT and wrong password the
    tests above sent is absent from the server's and the registry's logs and from the
    database files, in clear."""
    sent = [*stack.secrets, HARBOR_SECRET, "Chos3nSecret", "Wr0ngSecretValue"]
    assert len(stack.secrets) > 20
    places = {
        "tokenserver log": stack.server_log().encode(),
        "registry log": stack.registry_log().encode(),
    }
    for path in stack.directory.glob("tokenserver.db*"):
        places[path.name] = path.read_bytes()
    for name, content in places.items():
        for secret in sent:
            assert secret.encode() not in content, f"a secret is in the {name}"
