"""End to end: robots that log in with a workload's OIDC ID token instead of a secret (robot
federation, direct logins), through the real registry with real clients.

Configured as an operator would, with the CLI against the running stack's database: the
system admin trusts an issuer (`federation issuer add`), a robot gets rules (`robot
federation add`) and may lose its secret (`robot update --secret-login off`). The issuer is
the fake one of tests/oidc_issuer.py on loopback (http on 127.0.0.1 is allowed for loopback
issuers only), minting GitHub-shaped RS256 tokens padded to a GitHub token's size. One stack:
the registry's token algorithm is not what these tests are about.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.clients import Containerd, Docker, Helm, Podman, Skopeo, layout_digest, run
from tests.e2e.conftest import Robot, Stack, start_stack, stop_stack
from tests.e2e.oci import write_image
from tests.oidc_issuer import (
    AUDIENCE,
    FakeIssuer,
    ThreadedIssuer,
    github_claims,
    kubernetes_claims,
)

PROJECT = "e2e-fed"
ISSUER = "github"
PULL = "repository:pull"
PUSH = "repository:push"
RULE = (
    "repository_owner_id=1234567",
    "repository=acme/app",
    "ref=refs/heads/main",
    "ref=refs/tags/v*",
)
# The verifier's skew allowance on exp (tokenserver.services.oidc.LEEWAY).
LEEWAY = 60
# A GitHub Actions ID token is about 2.8 kB: the password every client below sends.
GITHUB_TOKEN_SIZE = 2800


@dataclass
class Federation:
    stack: Stack
    issuer: FakeIssuer
    threaded: ThreadedIssuer

    def robot(
        self, name: str, *permissions: str, issuer: str = ISSUER, rule: tuple[str, ...] = RULE
    ) -> Robot:
        """A robot of PROJECT with one rule (by default: tokens of acme/app's main branch and
        v* tags)."""
        robot = self.stack.robot(PROJECT, name, *(permissions or (PULL, PUSH)))
        claims = [f"--claim={condition}" for condition in rule]
        added = self.stack.cli(
            "robot", "federation", "add", robot.name, "--issuer", issuer, *claims
        )
        assert added.returncode == 0, added.stderr
        assert f"added rule {json.loads(added.stdout)['id']} to {robot.name}" in added.stderr
        return robot

    def token(self, issuer: FakeIssuer | None = None, **options: Any) -> str:
        """A GitHub-shaped, GitHub-sized ID token of acme/app's main branch; `options` go to
        `FakeIssuer.mint` (`audience`, `issued_at`, `lifetime`) or to `github_claims`."""
        mint = {k: options.pop(k) for k in ("audience", "issued_at", "lifetime") if k in options}
        claims = github_claims(**options)
        minter = issuer or self.issuer
        size = len(minter.mint(claims, **mint))
        # NOTE: a claim no rule reads, for the size: base64url makes 4 characters of 3 bytes.
        claims["x_padding"] = "p" * max(1, (GITHUB_TOKEN_SIZE - size) * 3 // 4 - 16)
        token = minter.mint(claims, **mint)
        assert abs(len(token) - GITHUB_TOKEN_SIZE) < 50, len(token)
        self.stack.remember(token)
        self.stack.remember(token.rsplit(".", 1)[1])  # the signature alone must not leak either
        return token

    def failures(self, robot: Robot) -> list[dict[str, Any]]:
        listed = self.stack.cli("robot", "federation", "failures", robot.name, "--json")
        assert listed.returncode == 0, listed.stderr
        failures: list[dict[str, Any]] = json.loads(listed.stdout)
        return failures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("stack-federation"), "ES256")
    try:
        stack.project(PROJECT)
        yield stack
    finally:
        stop_stack(stack)


@pytest.fixture(scope="module")
def fed(stack: Stack) -> Iterator[Federation]:
    threaded = ThreadedIssuer()
    with threaded as issuer:
        added = stack.cli(
            "federation", "issuer", "add", ISSUER, "--issuer", issuer.url, "--audience", AUDIENCE
        )
        assert added.returncode == 0, added.stderr
        yield Federation(stack, issuer, threaded)


def token_lines(stack: Stack, robot: Robot) -> list[str]:
    account = f"account='{robot.name}'"
    return [line for line in stack.server_log().splitlines() if account in line]


def skopeo_copy(
    source: str, destination: str, *, src_creds: str = "", dest_creds: str = ""
) -> subprocess.CompletedProcess[str]:
    """`skopeo copy` with credentials on the command line, as a CI step passes an ID token."""
    return run(
        "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        *([f"--src-creds={src_creds}"] if src_creds else ["--src-no-creds"]),
        *([f"--dest-creds={dest_creds}"] if dest_creds else ["--dest-no-creds"]),
        source, destination,
    )  # fmt: skip


def token_status(stack: Stack, username: str, password: str) -> int:
    """The token endpoint's status for a GET with Basic credentials (docker's path)."""
    base = stack.api_base.removesuffix("/api/v2.0") + "/service/token"
    query = urllib.parse.urlencode({"service": "registry", "scope": f"repository:{PROJECT}/x:pull"})
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (a loopback URL we built)
        f"{base}?{query}", headers={"Authorization": f"Basic {basic}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_skopeo_copies_with_an_id_token_and_back_with_equal_digests(fed: Federation) -> None:
    stack = fed.stack
    robot = fed.robot("skopeo")
    token = fed.token()
    layout = stack.new_dir("image")
    digest = write_image(layout, "pushed with an ID token")
    reference = f"docker://{stack.registry}/{PROJECT}/skopeo:v1"
    pushed = skopeo_copy(f"oci:{layout}:latest", reference,
                         dest_creds=f"{robot.name}:{token}")  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    back = stack.new_dir("pulled")
    pulled = skopeo_copy(reference, f"oci:{back}:latest",
                         src_creds=f"{robot.name}:{token}")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert layout_digest(back) == digest
    # The registry verified our access token; the server's log names the workload.
    assert f'auth.user.name="{robot.name}"' in stack.registry_log()
    issued = [line for line in token_lines(stack, robot) if "token issued grant=basic" in line]
    assert any("granted='repository:e2e-fed/skopeo:pull,push'" in line for line in issued)
    for field in (f"iss='{fed.issuer.url}'", "sub='repo:acme/app:ref:refs/heads/main'",
                  f"aud='{AUDIENCE}'", "repository='acme/app'", "run_id='9876543210'"):  # fmt: skip
        assert all(field in line for line in issued), (field, issued)
    # The robot's managers see which workload it was: one login for the one ID token that
    # skopeo sent with each of its token requests.
    listed = stack.cli("robot", "federation", "logins", robot.name, "--json")
    assert listed.returncode == 0, listed.stderr
    [login] = json.loads(listed.stdout)
    assert (login["issuer"], login["subject"], login["repository"], login["ref"],
            login["run_id"]) == (ISSUER, "repo:acme/app:ref:refs/heads/main", "acme/app",
                                 "refs/heads/main", "9876543210")  # fmt: skip
    assert len(issued) >= 2


def test_docker_logs_in_with_an_id_token_and_pulls_after_it_expired(
    fed: Federation, dockerd: str
) -> None:
    """docker login sends the ID token once (GET, offline_token=true) and keeps the refresh
    token it gets, never the ID token; the daemon pushes with it and, after the ID token has
    expired for good (past exp and the verifier's leeway, and refused by the server when
    presented), still pulls with it while the issuer is unreachable, until the robot's rules
    change.

    To keep the test short the token is minted already in its leeway: issued a minute ago
    and expired WINDOW seconds before the leeway ends, so it is accepted for WINDOW seconds
    and refused from then on."""
    stack = fed.stack
    robot = fed.robot("docker")
    docker = Docker(stack, dockerd)
    window = 10
    for _ in range(3):  # a login slower than the window gets a new token
        now = time.time()
        token = fed.token(issued_at=now - LEEWAY, lifetime=window)
        unusable_at = int(now - LEEWAY) + window + LEEWAY + 1
        login = docker.login(Robot(robot.name, token, robot.id))
        if login.returncode == 0 or time.time() < unusable_at - 1:
            break
    assert login.returncode == 0, login.stderr + stack.server_log()[-3000:]
    config = (docker.config / "config.json").read_text()
    stored = json.loads(config)["auths"][stack.registry]
    assert stack.remember(stored["identitytoken"]).startswith("tsr_")
    assert base64.b64decode(stored["auth"]).decode() == f"{robot.name}:"
    assert token not in config and token.rsplit(".", 1)[1] not in config
    login_lines = token_lines(stack, robot)
    assert "token issued grant=basic" in login_lines[-1] and "refresh_token=yes" in login_lines[-1]
    assert "sub='repo:acme/app:ref:refs/heads/main'" in login_lines[-1]

    reference = f"{stack.registry}/{PROJECT}/docker:v1"
    docker.image(reference.split("/", 1)[1], "pushed by dockerd for a workload")
    pushed = docker("push", reference)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
    assert digest is not None
    assert docker("rmi", reference).returncode == 0

    time.sleep(max(0.0, unusable_at - time.time()))
    # The ID token is dead: presented again, the server refuses it as expired...
    assert token_status(stack, robot.name, token) == 401
    assert "the token expired" in fed.failures(robot)[0]["reason"]
    # ... and the issuer is unreachable, so nothing could check an ID token now.
    fed.threaded.run(fed.issuer.refuse_connections())
    try:
        before = len(token_lines(stack, robot))
        pulled = docker("pull", reference)
    finally:
        fed.threaded.run(fed.issuer.accept_connections())
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-3000:]
    assert f"Digest: {digest.group(1)}" in pulled.stdout
    after = token_lines(stack, robot)[before:]
    assert after and all("token issued grant=refresh_token" in line for line in after), after

    # A change of the robot's rules ends that refresh token: docker must log in again.
    lib = ("--claim=repository_owner_id=1234567", "--claim=repository=acme/lib")
    changed = stack.cli("robot", "federation", "add", robot.name, "--issuer", ISSUER, *lib)
    assert changed.returncode == 0, changed.stderr
    assert docker("rmi", reference).returncode == 0
    ended = docker("pull", reference)
    assert ended.returncode != 0
    assert "invalid refresh token" in ended.stderr, ended.stderr


def test_podman_logs_in_pushes_and_pulls_with_an_id_token(fed: Federation) -> None:
    stack = fed.stack
    robot = fed.robot("podman")
    token = fed.token(ref="refs/tags/v1.2.3")
    podman = Podman(stack)
    login = podman.login(robot, password=token)
    assert login.returncode == 0, login.stderr + stack.server_log()[-3000:]
    podman.image(f"{PROJECT}/podman:v1", "pushed by podman for a workload")
    pushed = podman.push(f"{PROJECT}/podman:v1")
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    assert podman("rmi", f"{stack.registry}/{PROJECT}/podman:v1").returncode == 0
    pulled = podman.pull(f"{PROJECT}/podman:v1")
    assert pulled.returncode == 0, pulled.stderr
    # podman keeps the ID token as the password and sends it with every token request.
    issued = [line for line in token_lines(stack, robot) if "token issued" in line]
    assert len(issued) >= 3 and all("ref='refs/tags/v1.2.3'" in line for line in issued)


@pytest.mark.parametrize("major", [3, 4])
def test_helm_registry_login_push_pull_with_an_id_token(fed: Federation, major: int) -> None:
    stack = fed.stack
    robot = fed.robot(f"helm{major}")
    helm = Helm(stack, major)
    login = helm.login(robot, password=fed.token())
    assert login.returncode == 0, login.stderr + stack.server_log()[-3000:]
    package = helm.package(f"fed{major}", "0.1.0")
    pushed = helm.push(package, PROJECT)
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    result, pulled = helm.pull(PROJECT, f"fed{major}", "0.1.0")
    assert result.returncode == 0, result.stderr
    assert pulled.read_bytes() == package.read_bytes()
    lines = token_lines(stack, robot)
    # helm 3 logs in with GET offline_token and pushes with the refresh token it got; helm 4
    # (oras-go) logs in with the OAuth2 POST password grant and pushes with GET and Basic,
    # the ID token both times.
    login_grant = "basic" if major == 3 else "password"
    assert f"token issued grant={login_grant}" in lines[0] and "iss=" in lines[0], lines
    push_grant = "refresh_token" if major == 3 else "basic"
    scopes = f"scopes='repository:{PROJECT}/fed{major}:pull,push'"
    assert any(f"token issued grant={push_grant}" in line and scopes in line for line in lines)


def test_containerd_pulls_with_a_service_account_token_of_a_private_cluster(
    fed: Federation, containerd: str
) -> None:
    """ctr --user 'robot$p+n:<service account JWT>', as a kubelet's credential provider hands
    containerd a pod's projected token (ES256, nested `kubernetes.io` claims); the cluster's
    keys come from a JWKS file (`--jwks-file`): the cluster's issuer is gone before any login."""
    stack = fed.stack
    with ThreadedIssuer() as cluster:
        jwks = cluster.write_jwks(stack.new_dir("cluster") / "jwks.json")
        added = stack.cli(
            "federation", "issuer", "add", "cluster", "--issuer", cluster.url,
            "--audience", "registry.example", "--jwks-file", str(jwks),
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        token = cluster.mint(
            kubernetes_claims(namespace="ci", serviceaccount="builder"),
            alg="ES256",
            audience="registry.example",
        )
        stranger = cluster.mint(
            kubernetes_claims(namespace="dev", serviceaccount="builder"),
            alg="ES256",
            audience="registry.example",
        )
    for minted in (token, stranger):
        stack.remember(minted)
        stack.remember(minted.rsplit(".", 1)[1])
    robot = fed.robot(
        "ctr",
        PULL,
        PUSH,
        issuer="cluster",
        rule=("kubernetes.io.namespace=ci", "kubernetes.io.serviceaccount.name=builder"),
    )
    layout = stack.new_dir("image")
    digest = write_image(layout, "pulled by containerd for a pod")
    reference = f"{PROJECT}/ctr:v1"
    pushed = skopeo_copy(f"oci:{layout}:latest", f"docker://{stack.registry}/{reference}",
                         dest_creds=f"{robot.name}:{token}")  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr + stack.server_log()[-3000:]
    ctr = Containerd(stack, containerd)
    pulled = ctr.pull(reference, robot.name, token)
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-3000:]
    assert ctr.digest(reference) == digest
    # containerd's OAuth2 POST password grant carried the token and needed no fallback.
    posted = [line for line in token_lines(stack, robot) if "grant=password" in line]
    assert posted and all("token issued" in line for line in posted), posted
    assert all("sub='system:serviceaccount:ci:builder'" in line for line in posted), posted
    # A pod of another namespace is refused.
    other = Containerd(stack, containerd)
    assert other.pull(reference, robot.name, stranger).returncode != 0
    assert other.digest(reference) is None
    assert "claim 'kubernetes.io.namespace' did not match" in fed.failures(robot)[0]["reason"]


def test_refused_id_tokens_fail_the_client_and_are_kept_for_the_robots_managers(
    fed: Federation, dockerd: str, containerd: str
) -> None:
    stack = fed.stack
    robot = fed.robot("refused")
    now = time.time()
    refusals = [
        # (client, token, the reason `robot federation failures` gives)
        ("skopeo", fed.token(repository="evil/app"), "claim 'repository' did not match"),
        ("docker", fed.token(audience="https://someone-else.example"),
         "aud 'https://someone-else.example' is not accepted"),
        ("podman", fed.token(issued_at=now - 4000, lifetime=600), "the token expired"),
        ("containerd", fed.token(ref="refs/heads/dev"), "claim 'ref' did not match"),
    ]  # fmt: skip
    for client, token, _ in refusals:
        if client == "skopeo":
            result = Skopeo(stack, robot).login(password=token)
        elif client == "docker":
            result = Docker(stack, dockerd).login(Robot(robot.name, token, robot.id))
        elif client == "podman":
            result = Podman(stack).login(robot, password=token)
        else:
            result = Containerd(stack, containerd).pull(f"{PROJECT}/any:v1", robot.name, token)
        assert result.returncode != 0, client
        assert re.search(r"invalid username/password|unauthorized|401", result.stderr), (
            client,
            result.stderr,
        )
    # Newest first, each saying what was wrong: one per refused login, two for containerd,
    # whose refused POST sends it to GET with the same token.
    failures = fed.failures(robot)
    reasons = [failure["reason"] for failure in failures]
    expected = [
        reason for client, _, reason in refusals for _ in range(1 + (client == "containerd"))
    ]
    assert len(reasons) == len(expected), reasons
    for reason, wanted in zip(reasons, reversed(expected), strict=True):
        assert wanted in reason, (wanted, reason)
    assert all(f["issuer"] == ISSUER and f["subject"].startswith("repo:") for f in failures)
    listed = stack.cli("robot", "federation", "failures", robot.name)
    assert "claim 'repository' did not match" in listed.stdout, listed.stdout + listed.stderr
    denied = [line for line in token_lines(stack, robot) if "token denied" in line]
    assert any("sub='repo:evil/app:ref:refs/heads/main'" in line for line in denied), denied
    ctr = [line for line in denied if "sub='repo:acme/app:ref:refs/heads/dev'" in line]
    assert any("grant=password" in line for line in ctr), denied
    assert any("grant=basic" in line for line in ctr), denied  # containerd's fallback

    # A token of an issuer nobody trusts is checked as the robot's secret, a wrong one: no
    # fetch goes to the address it names, and it is no federation failure of the robot.
    with ThreadedIssuer() as stranger:
        result = Skopeo(stack, robot).login(password=fed.token(issuer=stranger))
        assert result.returncode != 0
        assert "invalid username/password" in result.stderr
        assert stranger.discovery_fetches == 0 and stranger.jwks_fetches == 0
    assert len(fed.failures(robot)) == len(expected)
    assert "reason='invalid username or password'" in token_lines(stack, robot)[-1]

    # The robot was fine all along: its rule admits the right token.
    assert Skopeo(stack, robot).login(password=fed.token()).returncode == 0


def test_secret_login_off_refuses_the_secret_while_the_id_token_works(
    fed: Federation, dockerd: str
) -> None:
    """Turned off, the secret fails skopeo login, and the refresh token docker got with it
    ends too (docker would otherwise keep it); the ID token logs in, pushes and pulls."""
    stack = fed.stack
    robot = fed.robot("nosecret")
    skopeo = Skopeo(stack, robot)
    assert skopeo.login().returncode == 0  # the secret, while it is on
    layout = stack.new_dir("image")
    digest = write_image(layout, "no secret anywhere")
    assert skopeo.push(layout, f"{PROJECT}/nosecret:v1").returncode == 0
    docker = Docker(stack, dockerd)
    assert docker.login(robot).returncode == 0
    reference = f"{stack.registry}/{PROJECT}/nosecret:v1"
    pulled = docker("pull", reference)
    assert pulled.returncode == 0, pulled.stderr
    assert docker("rmi", reference).returncode == 0

    off = stack.cli("robot", "update", robot.name, "--secret-login", "off")
    assert off.returncode == 0, off.stderr
    assert "no longer logs it in" in off.stderr
    refused = Skopeo(stack, robot).login()
    assert refused.returncode != 0
    assert "invalid username/password" in refused.stderr
    assert "secret login is turned off" in token_lines(stack, robot)[-1]
    refused = docker("pull", reference)
    assert refused.returncode != 0
    assert re.search(r"unauthorized|denied", refused.stderr), refused.stderr
    # (A refresh token that is no longer valid names no account.)
    denied = (r"token denied grant=refresh_token account='' .*"
              rf"scopes='repository:{PROJECT}/nosecret:pull' "
              r"reason='invalid refresh token' .*status=401")  # fmt: skip
    assert re.search(denied, stack.server_log())

    token = fed.token()
    with_token = Skopeo(stack, robot)
    assert with_token.login(password=token).returncode == 0
    other = stack.new_dir("image")
    other_digest = write_image(other, "pushed with the ID token")
    pushed = with_token.push(other, f"{PROJECT}/nosecret:v2")
    assert pushed.returncode == 0, pushed.stderr
    assert with_token.digest(f"{PROJECT}/nosecret:v2") == other_digest
    assert with_token.digest(f"{PROJECT}/nosecret:v1") == digest
    assert docker.login(Robot(robot.name, token, robot.id)).returncode == 0
    pulled = docker("pull", reference)
    assert pulled.returncode == 0, pulled.stderr + stack.server_log()[-3000:]


def test_no_id_token_reaches_a_log_or_the_database(fed: Federation) -> None:
    """Runs last: no ID token the clients above sent (right or refused), nor its signature
    alone, nor any secret or refresh token, is in the server's or the registry's log or in
    the database files."""
    stack = fed.stack
    tokens = [secret for secret in stack.secrets if secret.count(".") == 2]
    assert len(tokens) >= 10, len(tokens)
    places = {"tokenserver log": stack.server_log().encode(),
              "registry log": stack.registry_log().encode()}  # fmt: skip
    for path in stack.directory.glob("tokenserver.db*"):
        places[path.name] = path.read_bytes()
    for name, content in places.items():
        for secret in stack.secrets:
            assert secret.encode() not in content, f"a secret or ID token is in the {name}"
    # The log did name the workloads: what was logged instead of the tokens.
    assert stack.server_log().count(f"iss='{fed.issuer.url}'") >= 10
