"""The README's walkthrough, run as written: its shell blocks are taken from the README itself,
so a command that stops working there fails here.

Only what a test machine must change is changed: the registry's port and directory (a free
port and a temporary directory instead of 127.0.0.1:5000 and /tmp/registry), and where the
clients keep their state (a private docker daemon, podman's storage, auth files under a
temporary HOME), all through the environment the clients read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.conftest import ADMIN_PASSWORD, wait_for
from tests.helpers import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]


def _walkthrough_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Walkthrough")
    section = readme[start : readme.index("\n## ", start + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def _api_example() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Management API")
    block: str = re.findall(r"```sh\n(.*?)```", readme[start:], re.S)[0]
    return block


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path, dockerd: str) -> None:
    blocks = _walkthrough_blocks()
    # The set-up and registry, then the two alternatives of step 3 (docker; podman and skopeo).
    assert len(blocks) == 3, blocks
    setup, with_docker, without_daemon = blocks
    assert "docker login" in with_docker and "skopeo copy" in without_daemon

    work = tmp_path / "work"
    (work / "var").mkdir(parents=True)
    # The walkthrough runs from the repository's top, where scripts/run made .venv.
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])
    port, registry_port = free_port(), free_port()
    registry_dir = tmp_path / "registry"
    runroot = Path(tempfile.mkdtemp(prefix="ts-wk-", dir="/tmp"))  # podman: at most 50 chars
    (tmp_path / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{runroot}"\ngraphroot = "{tmp_path / "podman"}"\n'
    )
    (tmp_path / "containers.conf").write_text(
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
    )
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "run").mkdir(mode=0o700)
    env = clean_env(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
        DOCKER_HOST=dockerd,
        CONTAINERS_STORAGE_CONF=str(tmp_path / "storage.conf"),
        CONTAINERS_CONF=str(tmp_path / "containers.conf"),
        TOKENSERVER_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    env = {k: v for k, v in env.items() if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")}

    # "In one terminal, start tokenserver (scripts/run)": what scripts/run does, on a free port.
    config = work / "var" / "tokenserver.toml"
    tokenserver = str(work / ".venv" / "bin" / "tokenserver")
    init = subprocess.run(
        [tokenserver, "init", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [tokenserver, "serve", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", server, log)
        script = "\n".join(
            [
                "set -euo pipefail",
                "trap 'kill $(jobs -p) 2>/dev/null' EXIT",
                setup,
                # The registry was started in the background: wait until it answers.
                "for _ in $(seq 100); do curl -s 127.0.0.1:5000/v2/ >/dev/null && break;"
                " sleep 0.1; done",
                with_docker,
                # The README: run `docker logout` before trying the other alternative.
                "docker logout 127.0.0.1:5000",
                without_daemon,
            ]
        )
        script = script.replace("127.0.0.1:5000", f"127.0.0.1:{registry_port}")
        script = script.replace("/tmp/registry", str(registry_dir))
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=work, capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stderr[-4000:]}\n{log.read_text()[-4000:]}"

        # Then the Management API's example, with the admin's password where it says so: its
        # names must not collide with the walkthrough's.
        example = re.sub(
            r"ADMIN_PASSWORD='[^']*'", f"ADMIN_PASSWORD='{ADMIN_PASSWORD}'", _api_example()
        )
        example = example.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        api = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + example],
            cwd=work, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert api.returncode == 0, api.stderr
        # POST /projects answers 201 with no body; a 409 would print its error envelope.
        (robot,) = (json.loads(line) for line in api.stdout.splitlines() if line.strip())
        assert robot["name"] == "robot$team+deploy" and robot["secret"], api.stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
        subprocess.run(["rm", "-rf", str(runroot)], check=False)

    export = work / "ci-robot.json"
    assert json.loads(export.read_text())["name"] == "robot$demo+ci"
    assert export.stat().st_mode & 0o777 == 0o600
    # skopeo copied what podman pushed into an OCI layout.
    index = json.loads((work / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    # The docker path's image and the podman path's are both in the registry.
    tags = registry_dir / "data" / "docker" / "registry" / "v2" / "repositories" / "demo"
    assert sorted(p.name for p in tags.iterdir()) == ["app", "hello"]
