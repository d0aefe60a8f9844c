"""Benchmark the token endpoint against the machine's ceiling, every case in one run.

The ceiling is a minimal aiohttp handler returning a JSON body of a token response's size,
served the same way (one process, on the event loop the server runs on by default: uvloop
where it is installed). Every other row is divided by it; the rows on the other loop (asyncio)
by a ceiling on that loop, and both ceilings' absolute numbers are in the table.
The server is pinned to CPU 0 and wrk (a C load generator, with a Lua script for headers and
bodies) to CPU 1, so the load generator is not the bottleneck; the CPU each used is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port, make_robot  # noqa: E402
from tests.postgres import PostgresServer, binaries  # noqa: E402
from tokenserver.config import load_settings  # noqa: E402
from tokenserver.domain.federation import Condition  # noqa: E402
from tokenserver.domain.models import LOCAL, NEVER, Level  # noqa: E402
from tokenserver.domain.permissions import (  # noqa: E402
    Access,
    Effect,
    Permission,
    RequestedPermission,
    parse_access,
)
from tokenserver.domain.secrets import generate_secret, hash_secret  # noqa: E402
from tokenserver.eventloop import event_loop  # noqa: E402
from tokenserver.keys import generate_private_key  # noqa: E402
from tokenserver.runtime import open_runtime  # noqa: E402
from tokenserver.services.ports import NewIssuer, NewRobot, NewRule  # noqa: E402
from tokenserver.services.robots import RobotSpec  # noqa: E402

CEILING_APP = """
import sys
from aiohttp import web
from tokenserver.eventloop import event_loop
body = b'{"token": "' + b'x' * (int(sys.argv[2]) - 13) + b'"}'
async def handler(request):
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/service/token", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
            loop=event_loop(sys.argv[3]).new())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert process.poll() is None, f"{url}: server exited"
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def lua(method: str, path: str, headers: dict[str, str], body: str = "") -> str:
    lines = [f'wrk.method = "{method}"', f'wrk.path = "{path}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if body:
        lines.append(f'wrk.body = "{body}"')
    return "\n".join(lines) + "\n"


def start_wrk(
    port: int, script: str, seconds: int, directory: Path, name: str, connections: int = 32
) -> subprocess.Popen[str]:
    path = directory / f"{name}.lua"
    path.write_text(script)
    return subprocess.Popen(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(path), f"http://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def parse_wrk(out: str) -> dict[str, Any]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(port: int, script: str, seconds: int, pid: int, directory: Path) -> dict[str, Any]:
    before, started = cpu_seconds(pid), time.monotonic()
    out, _ = start_wrk(port, script, seconds, directory, "case").communicate()
    server_cpu = (cpu_seconds(pid) - before) / (time.monotonic() - started)
    return {**parse_wrk(out), "server_cpu": round(server_cpu, 2)}


class Ceiling:
    """The minimal aiohttp server, sampled right before each case, so that every ratio divides
    two measurements taken moments apart: a shared VM's speed drifts within one run."""

    def __init__(self, directory: Path, seconds: int, loop: str = "auto") -> None:
        """`loop`: a `server.event_loop` value; the ceiling runs on the loop it gives."""
        self._directory, self._seconds = directory, seconds
        self.loop = event_loop(loop).name
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self.samples: list[dict[str, Any]] = []

    def start(self, body_size: int) -> None:
        self._port = free_port()
        self._process = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-c", CEILING_APP, str(self._port),
             str(body_size), self.loop]
        )  # fmt: skip
        wait(f"http://127.0.0.1:{self._port}/service/token", self._process)

    def sample(self) -> float:
        assert self._process is not None
        script = lua("GET", "/service/token", {})
        row = run_wrk(self._port, script, self._seconds, self._process.pid, self._directory)
        self.samples.append(row)
        rps: float = row["rps"]
        return rps

    def paired(self, port: int, script: str, pid: int, seconds: int) -> dict[str, Any]:
        """The case on `port` for `seconds` one-second rounds, each right after a one-second
        ceiling round: the ratio of the sums follows the VM's drift second by second. p50 is
        the median of the rounds', p99 the worst round's."""
        cases, ceilings = [], []
        for _ in range(seconds):
            ceiling = run_wrk(self._port, lua("GET", "/service/token", {}), 1,
                              self._pid(), self._directory)  # fmt: skip
            self.samples.append(ceiling)
            ceilings.append(ceiling)
            cases.append(run_wrk(port, script, 1, pid, self._directory))
        return {
            "rps": sum(r["rps"] for r in cases) / len(cases),
            "p50_ms": sorted(r["p50_ms"] for r in cases)[len(cases) // 2],
            "p99_ms": max(r["p99_ms"] for r in cases),
            "errors": sum(r["errors"] for r in cases),
            "server_cpu": round(sum(r["server_cpu"] for r in cases) / len(cases), 2),
            "ceiling_rps": sum(r["rps"] for r in ceilings) / len(ceilings),
        }

    def _pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def row(self) -> dict[str, Any]:
        """The median sample, as the table's first row."""
        middle = sorted(self.samples, key=lambda r: r["rps"])[len(self.samples) // 2]
        return {"case": f"ceiling (minimal aiohttp, same body size), {self.loop}, median of "
                "samples", **middle, "ceiling_rps": middle["rps"]}  # fmt: skip

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


def cold_burst(
    port: int, cold: str, warm: str, seconds: int, pid: int, directory: Path, ceiling: float
) -> list[dict[str, Any]]:
    """Cold robots (a KDF each) and, at the same time, warm requests: the warm p99 shows
    whether the event loop stays free while the KDF runs."""
    before, started = cpu_seconds(pid), time.monotonic()
    cold_run = start_wrk(port, cold, seconds, directory, "cold", connections=8)
    warm_run = start_wrk(port, warm, seconds, directory, "warm", connections=8)
    cold_out, _ = cold_run.communicate()
    warm_out, _ = warm_run.communicate()
    server_cpu = round((cpu_seconds(pid) - before) / (time.monotonic() - started), 2)
    return [
        {"case": "cold robots (KDF each), during the burst", **parse_wrk(cold_out),
         "server_cpu": server_cpu, "ceiling_rps": ceiling},
        {"case": "warm robot ES256, during the cold burst", **parse_wrk(warm_out),
         "server_cpu": server_cpu, "ceiling_rps": ceiling},
    ]  # fmt: skip


def cold_script(path: str, credentials: list[str]) -> str:
    """A script that cycles through many robots, each asked for once (so never cached)."""
    listed = ",\n".join(f'  "{c}"' for c in credentials)
    return (
        f"creds = {{\n{listed}\n}}\ni = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  local c = creds[((i - 1) % #creds) + 1]\n"
        f'  return wrk.format("GET", "{path}", {{["Authorization"] = c}})\n'
        "end\n"
    )


LARGE_SCOPES = 85  # of 78 characters: about 7 kB, what fits in a request line (8 kB)


def unique_large_script(auth: str, count: int) -> str:
    """`count` requests, each unique, each with LARGE_SCOPES long scopes in one public project;
    every other one as the robot, the rest anonymous. wrk stops after `count` answers."""
    return (
        f'auth = "{auth}"\npad = string.rep("x", 50)\nsent, received = 0, 0\n'
        "request = function()\n"
        "  sent = sent + 1\n"
        "  local parts = {}\n"
        f"  for j = 1, {LARGE_SCOPES} do\n"
        '    parts[j] = string.format("repository:p/%s%08d%02d:pull", pad, sent, j)\n'
        "  end\n"
        '  local path = "/service/token?service=registry&scope=" .. table.concat(parts, "%20")\n'
        "  local headers = {}\n"
        '  if sent % 2 == 0 then headers["Authorization"] = auth end\n'
        '  return wrk.format("GET", path, headers)\n'
        "end\n"
        "response = function(status, headers, body)\n"
        "  received = received + 1\n"
        f"  if received >= {count} then wrk.thread:stop() end\n"
        "end\n"
    )


def token_requests(port: int) -> float:
    """Token requests the server has answered (its /metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tokenserver_token_requests_total{")
    )


def unique_large(
    port: int, auth: str, count: int, pid: int, directory: Path, ceiling: float
) -> dict[str, Any]:
    """The server's memory before and after `count` unique large requests: the memos of the
    token path are bounded in bytes, so it stays flat."""
    before, base = rss_mb(pid), token_requests(port)
    started, cpu = time.monotonic(), cpu_seconds(pid)
    # wrk runs for a duration, not a count: the script stops sending after `count` answers
    # and wrk, interrupted (its Ctrl-C), prints its summary.
    run = start_wrk(port, unique_large_script(auth, count), 3600, directory, "large")
    while run.poll() is None and token_requests(port) - base < count:
        time.sleep(1)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate()
    server_cpu = round((cpu_seconds(pid) - cpu) / (time.monotonic() - started), 2)
    return {
        "case": f"{count:,} unique large requests ({LARGE_SCOPES} scopes, 7 kB; anonymous "
        f"and robot), RSS after; before: {before:.0f} MB",
        **parse_wrk(out),
        "server_cpu": server_cpu,
        "ceiling_rps": ceiling,
        "rss_before_mb": before,
        "rss_mb": rss_mb(pid),
    }


def basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


COLD_ROBOTS = 80


async def prepare(
    config: Path, cold: int, environ: dict[str, str] | None = None
) -> tuple[str, str, list[str], str]:
    """The project, the warm robot, `cold` more robots (their Basic headers), and a robot
    that logs in with an ID token (its Basic header with that token)."""
    settings = load_settings(config, environ=environ or {})
    async with open_runtime(settings, sign=False) as runtime:
        await runtime.projects.create(LOCAL, "p", public=True)
        robot, secret = await make_robot(runtime, "p", "ci", "repository:pull", "repository:push")
        made = await asyncio.gather(
            *(make_robot(runtime, "p", f"cold{i}", "repository:pull") for i in range(cold))
        )
        headers = [basic(r.full_name("robot$"), s.reveal()) for r, s in made]
        federated = await federated_robot(runtime, config.parent)
        return robot.full_name("robot$"), secret.reveal(), headers, federated


PATTERNS = 10


async def patterned_robot(config: Path) -> str:
    """The Basic header of a robot like the warm one whose push and pull are limited to ten
    repository patterns (the last matches the benchmark's repository), with a deny pattern
    beside them: what compiling and matching patterns costs on a warm request."""
    settings = load_settings(config, environ={})
    async with open_runtime(settings, sign=False) as runtime:
        patterns = (*(f"team-{i}/*" for i in range(PATTERNS - 1)), "app")
        access = (parse_access("repository:pull"), parse_access("repository:push"))
        spec = RobotSpec(
            name="narrow",
            level=Level.PROJECT,
            permissions=(
                RequestedPermission("p", access, repositories=patterns),
                RequestedPermission(
                    "p",
                    tuple(Access(a.resource, a.action, Effect.DENY) for a in access),
                    repositories=("secrets/**",),
                ),
            ),
            duration=NEVER,
        )
        robot, secret = await runtime.robots.create(LOCAL, spec)
        return basic(robot.full_name("robot$"), secret.reveal())


def check_narrow(port: int, scope: str, auth: str) -> None:
    """The patterned robot's row measures a real grant, not an empty one."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/service/token?service=registry&scope={scope}",
        headers={"Authorization": auth},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback)
        token = json.loads(response.read())["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    if claims["access"][0]["actions"] != ["pull", "push"]:
        raise SystemExit(f"the patterned robot was granted {claims['access']}")


async def federated_robot(runtime: Any, directory: Path) -> str:
    """A robot with a federation rule for an issuer whose keys are in a JWKS file (no issuer
    to run), and the Basic header of a GitHub-shaped ID token it admits (RS256, as GitHub
    signs), valid for the whole run."""
    key = generate_private_key("RS256")
    public = key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    jwks = directory / "issuer-jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "RS256", "use": "sig"}]}))
    url = "https://token.actions.githubusercontent.com"
    now = int(time.time())
    issuer = await runtime.store.add_issuer(
        NewIssuer(name="github", url=url, audiences=("tokenserver",), jwks_file=str(jwks),
                  ca_file=None, max_token_lifetime=3600, created_at=now)
    )  # fmt: skip
    robot, _ = await make_robot(runtime, "p", "gha", "repository:pull", "repository:push")
    conditions = (Condition("repository_owner_id", ("1234567",)),
                  Condition("repository", ("acme/app",)))  # fmt: skip
    await runtime.store.replace_federation_rules(robot.id, [NewRule(issuer.id, conditions)], now)
    claims = {
        "iss": url, "aud": "tokenserver", "iat": now, "nbf": now, "exp": now + 3600,
        "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app",
        "repository_owner_id": "1234567", "ref": "refs/heads/main", "jti": "bench",
    }  # fmt: skip
    token = jwt.encode(claims, key, "RS256", headers={"kid": "bench"})
    return basic(robot.full_name("robot$"), token)


async def populate(config: Path, robots: int, projects: int) -> tuple[str, str]:
    """A database with `robots` robots spread over `projects` projects; the warm robot is one
    of them, in a project in the middle. Only that robot's secret is known: the others share
    one stored hash (a KDF each would take hours), which changes nothing for a lookup."""
    async with open_runtime(load_settings(config, environ={}), sign=False) as runtime:
        store = runtime.store
        names = [f"proj{i:04d}" for i in range(projects)]
        for name in names:
            await runtime.projects.create(LOCAL, name, public=False)
        middle = names[projects // 2]
        robot, secret = await make_robot(
            runtime, middle, "ci", "repository:pull", "repository:push"
        )
        stored = hash_secret(generate_secret())
        access = (parse_access("repository:pull"),)
        made = 1
        for index, name in enumerate(names):
            project = await store.find_project(name)
            assert project is not None
            share = (robots - 1) // projects + (1 if index < (robots - 1) % projects else 0)
            async with store.transaction():
                for i in range(share):
                    await store.create_robot(
                        NewRobot(
                            name=f"bot{i}",
                            project_id=project.id,
                            level=Level.PROJECT,
                            description="",
                            secret_hash=stored,
                            duration=-1,
                            expires_at=NEVER,
                            creation_time=0,
                            permissions=(Permission(name, access, project_id=project.id),),
                        )
                    )
            made += share
        assert made == robots
        return robot.full_name("robot$"), secret.reveal()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


TURNS = 3  # the target rows are measured this many times; the row is the median turn


def median_turn(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The turn with the median ratio to its ceiling: on a shared VM one turn can land on a
    slow or a fast spell."""
    return sorted(turns, key=lambda r: r["rps"] / r["ceiling_rps"])[len(turns) // 2]


@dataclass
class GrowthCase:
    case: str
    port: int
    script: str
    server: subprocess.Popen[bytes]
    turns: list[dict[str, Any]] = field(default_factory=list)


def growth(
    directory: Path, seconds: int, robots: int, projects: int, ceiling: Ceiling, turns: int
) -> list[dict[str, Any]]:
    """The warm ES256 case with 10 robots in the database and with `robots` robots in
    `projects` projects: both servers run side by side and are measured in turns, each turn
    after a ceiling sample; a row is the turn with the median ratio. The difference between
    the two is small next to the VM's drift, hence the turns. Also each server's memory."""
    cases: list[GrowthCase] = []
    try:
        for count, spread in ((10, 1), (robots, projects)):
            config = directory / f"growth-{count}" / "tokenserver.toml"
            config.parent.mkdir()
            port = free_port()
            subprocess.run(
                [sys.executable, "-m", "tokenserver", "init", "--config", str(config),
                 "--listen", f"127.0.0.1:{port}"],
                check=True, capture_output=True,
            )  # fmt: skip
            user, secret = asyncio.run(populate(config, count, spread))
            server = serve(config, directory / f"growth-{count}.log")
            project = user.removeprefix("robot$").split("+")[0]
            get = f"/service/token?service=registry&scope=repository:{project}/app:pull,push"
            script = lua("GET", get, {"Authorization": basic(user, secret)})
            name = f"warm robot ES256, {count:,} robots in {spread:,} projects"
            cases.append(GrowthCase(name, port, script, server))
            wait(f"http://127.0.0.1:{port}/healthz", server)
            run_wrk(port, script, 1, server.pid, directory)  # warm up: the one KDF
        for _ in range(turns):
            for case in cases:
                row = ceiling.paired(case.port, case.script, case.server.pid, seconds)
                case.turns.append({"case": case.case, **row})
        return [{**median_turn(c.turns), "rss_mb": rss_mb(c.server.pid)} for c in cases]
    finally:
        for case in cases:
            case.server.terminate()
            case.server.wait(timeout=10)


def serve(
    config: Path,
    log: Path,
    workers: int = 1,
    environ: dict[str, str] | None = None,
    pinned: bool = True,
) -> subprocess.Popen[bytes]:
    """One process pinned to CPU 0, or `workers` processes (or not `pinned`) free to use both
    cores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSERVER_")}
    # Logging is measured in a row of its own (default logging): the others measure the rest.
    env["TOKENSERVER_LOG_LEVEL"] = "warning"
    env.update(environ or {})
    pin = ["taskset", "-c", "0"] if workers == 1 and pinned else []
    return subprocess.Popen(
        [*pin, sys.executable, "-m", "tokenserver", "serve", "--config", str(config),
         "--workers", str(workers)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per case (default 5)")
    parser.add_argument(
        "--turns", type=int, default=TURNS,
        help=f"turns of the target and growth rows; each is the median turn (default {TURNS})",
    )  # fmt: skip
    parser.add_argument("--output", default="bench-results.json")
    parser.add_argument("--robots", type=int, default=100_000, help="growth case (default 100000)")
    parser.add_argument("--projects", type=int, default=1000, help="growth case (default 1000)")
    parser.add_argument(
        "--large-requests", type=int, default=100_000,
        help="unique large requests for the memory row (default 100000)",
    )  # fmt: skip
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs wrk and taskset (scripts/bench installs them)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as tmp:
        directory = Path(tmp)
        ceiling = Ceiling(directory, args.seconds)
        notes: dict[str, Any] = {}
        try:
            rows = run_cases(directory, args, ceiling, notes)
            rows.insert(0, ceiling.row())
        finally:
            ceiling.stop()
    for row in rows:
        row["ratio"] = round(row["rps"] / row["ceiling_rps"], 3)
    # The growth rows, appended last; each divided by its own ceiling sample first, as the
    # machine's speed drifts between them.
    small, large = rows[-2]["ratio"], rows[-1]["ratio"]
    growth_ratio = round(large / small, 3)
    print(
        f"{'case':56} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ceiling':>8} {'ratio':>6} "
        f"{'cpu':>5} {'err':>4} {'rss MB':>7}"
    )
    for row in rows:
        cpu = "-" if row["server_cpu"] is None else f"{row['server_cpu']:.2f}"
        rss = f"{row['rss_mb']:.0f}" if "rss_mb" in row else "-"
        print(f"{row['case']:56} {row['rps']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
              f"{row['ceiling_rps']:8.0f} {row['ratio']:6.3f} {cpu:>5} {row['errors']:4d} "
              f"{rss:>7}")  # fmt: skip
    print(f"growth (ratio to ceiling, large / small database): {growth_ratio}")
    for load, delays in notes.get("change_to_effect_ms", {}).items():
        print(f"PostgreSQL, a commit elsewhere to replica B's first answer honouring it, {load}: "
              f"p50 {delays['p50']:.2f} ms, p99 {delays['p99']:.2f} ms, "
              f"max {delays['max']:.2f} ms ({delays['changes']} changes)")  # fmt: skip
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "machine": platform.machine(), "server_cpu": 0, "load_generator_cpu": 1}  # fmt: skip
    report = {"machine": machine, "rows": rows, "growth_ratio": growth_ratio, **notes,
              "ceiling_samples": [r["rps"] for r in ceiling.samples]}  # fmt: skip
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"server pinned to CPU 0, wrk to CPU 1; 'cpu' is the server's share of its core; "
        f"'ceiling' the ceiling rounds alternated with the row's; results in {args.output}",
        file=sys.stderr,
    )
    return 0


def run_cases(
    directory: Path, args: argparse.Namespace, ceiling: Ceiling, notes: dict[str, Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    scope = "repository:p/app:pull,push"
    many = "&".join(f"scope=repository:p/app{i}:pull,push" for i in range(16))
    for algorithm in ("ES256", "RS256"):
        config = directory / algorithm / "tokenserver.toml"
        config.parent.mkdir()
        port = free_port()
        subprocess.run(
            [sys.executable, "-m", "tokenserver", "init", "--config", str(config),
             "--listen", f"127.0.0.1:{port}", "--algorithm", algorithm],
            check=True, capture_output=True,
        )  # fmt: skip
        user, secret, cold_headers, federated = asyncio.run(
            prepare(config, COLD_ROBOTS if algorithm == "ES256" else 0)
        )
        auth = basic(user, secret)
        narrow = asyncio.run(patterned_robot(config)) if algorithm == "ES256" else ""
        server = serve(config, directory / f"{algorithm}.log")
        try:
            wait(f"http://127.0.0.1:{port}/healthz", server)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/service/token?service=registry&scope={scope}",
                headers={"Authorization": auth},
            )
            with urllib.request.urlopen(request) as response:  # noqa: S310 (warms the cache)
                body = response.read()
            if algorithm == "ES256":
                ceiling.start(len(body))
                check_narrow(port, scope, narrow)
            refresh_request = urllib.request.Request(
                f"http://127.0.0.1:{port}/service/token?service=registry&offline_token=true",
                headers={"Authorization": auth},
            )
            with urllib.request.urlopen(refresh_request) as response:  # noqa: S310
                refresh = json.loads(response.read())["refresh_token"]
            get = f"/service/token?service=registry&scope={scope}"
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            quoted = user.replace("$", "%24").replace("+", "%2B")
            cases = [(f"warm robot {algorithm}", lua("GET", get, {"Authorization": auth}))]
            if algorithm == "ES256":
                # Beside the warm row and measured as it is (in turns): within 5% of it.
                cases.append(
                    (f"warm robot ES256, {PATTERNS} repository patterns",
                     lua("GET", get, {"Authorization": narrow}))
                )  # fmt: skip
                password = (
                    f"grant_type=password&service=registry&username={quoted}"
                    f"&password={secret}&scope={scope}"
                )
                refreshing = (
                    f"grant_type=refresh_token&service=registry&refresh_token={refresh}"
                    f"&scope={scope}"
                )
                anonymous = "/service/token?service=registry&scope=repository:p/app:pull"
                sixteen = f"/service/token?service=registry&{many}"
                cases += [
                    ("warm robot ES256, 16 scopes",
                     lua("GET", sixteen, {"Authorization": auth})),
                    ("warm federated login (RS256 ID token), ES256",
                     lua("GET", get, {"Authorization": federated})),
                    ("anonymous pull, public project", lua("GET", anonymous, {})),
                    ("POST password", lua("POST", "/service/token", form, password)),
                    ("POST refresh_token", lua("POST", "/service/token", form, refreshing)),
                ]  # fmt: skip
            for index, (name, script) in enumerate(cases):
                # The target row (the first: warm robot) in turns, as the growth rows are.
                turns = args.turns if index == 0 or "repository patterns" in name else 1
                row = median_turn(
                    [ceiling.paired(port, script, server.pid, args.seconds) for _ in range(turns)]
                )
                rows.append({"case": name, **row})
            if cold_headers:
                base = ceiling.sample()
                rows += cold_burst(
                    port,
                    cold_script(get, cold_headers),
                    lua("GET", get, {"Authorization": auth}),
                    max(args.seconds, 3),  # a KDF takes a while: give the burst time
                    server.pid,
                    directory,
                    base,
                )
                rows.append(
                    unique_large(
                        port, auth, args.large_requests, server.pid, directory, ceiling.sample()
                    )
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
        if algorithm == "ES256":
            rows += default_logging(directory, port, get, auth, args, ceiling)
            rows += other_loop(directory, port, get, auth, args, len(body))
            # The same warm case with --workers 2 (SO_REUSEPORT), free to use both cores,
            # which it then shares with wrk: compare with the pinned one-process row.
            server = serve(config, directory / "workers.log", workers=2)
            try:
                wait(f"http://127.0.0.1:{port}/healthz", server)
                time.sleep(1)  # both workers up
                script = lua("GET", get, {"Authorization": auth})
                base = ceiling.sample()
                out, _ = start_wrk(port, script, args.seconds, directory, "workers").communicate()
                rows.append({"case": "warm robot ES256, --workers 2 (unpinned)",
                             **parse_wrk(out), "server_cpu": None,
                             "ceiling_rps": base})  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=20)
    rows += replicas_on_postgres(directory, args.seconds, ceiling, notes)
    rows += growth(directory, args.seconds, args.robots, args.projects, ceiling, args.turns)
    return rows


def default_logging(
    directory: Path, port: int, path: str, auth: str, args: argparse.Namespace, ceiling: Ceiling
) -> list[dict[str, Any]]:
    """The warm ES256 case as the default configuration runs it: `log.level = "info"`, one
    line per token request, written to a file as a server's stderr usually is."""
    config = directory / "ES256" / "tokenserver.toml"
    server = serve(config, directory / "logging.log", environ={"TOKENSERVER_LOG_LEVEL": "info"})
    try:
        wait(f"http://127.0.0.1:{port}/healthz", server)
        script = lua("GET", path, {"Authorization": auth})
        run_wrk(port, script, 1, server.pid, directory)  # warm up: the one KDF
        row = median_turn(
            [ceiling.paired(port, script, server.pid, args.seconds) for _ in range(args.turns)]
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = sum(1 for line in (directory / "logging.log").open() if " token issued " in line)
    if lines < row["rps"]:  # at least a second's worth: the server logged what it served
        raise SystemExit(f"the default-logging server logged {lines} token lines")
    return [{"case": "warm robot ES256, default logging (info)", **row, "log_lines": lines}]


def other_loop(
    directory: Path, port: int, path: str, auth: str, args: argparse.Namespace, body_size: int
) -> list[dict[str, Any]]:
    """The warm ES256 case on the standard library's loop (`server.event_loop = "asyncio"`),
    divided by a ceiling on that loop: both loops' absolute numbers in one run. None where
    uvloop is not installed (every row is on asyncio then)."""
    if event_loop("auto").name == "asyncio":
        return []
    config = directory / "ES256" / "tokenserver.toml"
    ceiling = Ceiling(directory, args.seconds, loop="asyncio")
    server = serve(
        config, directory / "asyncio.log", environ={"TOKENSERVER_SERVER_EVENT_LOOP": "asyncio"}
    )
    try:
        ceiling.start(body_size)
        wait(f"http://127.0.0.1:{port}/healthz", server)
        script = lua("GET", path, {"Authorization": auth})
        run_wrk(port, script, 1, server.pid, directory)  # warm up: the one KDF
        row = median_turn(
            [ceiling.paired(port, script, server.pid, args.seconds) for _ in range(args.turns)]
        )
        return [ceiling.row(), {"case": "warm robot ES256, asyncio", **row}]
    finally:
        ceiling.stop()
        server.terminate()
        server.wait(timeout=10)


def replicas_on_postgres(
    directory: Path, seconds: int, ceiling: Ceiling, notes: dict[str, Any]
) -> list[dict[str, Any]]:
    """The warm ES256 case on a private PostgreSQL (tests/postgres.py): one replica pinned as
    the SQLite rows are, then two replicas (two `serve` processes, two ports, a wrk each),
    free to use both cores, which they share with PostgreSQL and wrk. Between them, how long
    a change committed elsewhere takes to count on the one replica (`change_to_effect`), idle
    and under the warm load, into `notes`."""
    if binaries() is None:
        print("PostgreSQL not installed (scripts/test-deps): no replica rows", file=sys.stderr)
        return []
    postgres = PostgresServer()
    try:
        environ = {"TOKENSERVER_DATABASE_URL": postgres.empty_database()}
        config = directory / "pg" / "tokenserver.toml"
        config.parent.mkdir()
        ports = [free_port(), free_port()]
        subprocess.run(
            [sys.executable, "-m", "tokenserver", "init", "--config", str(config),
             "--listen", f"127.0.0.1:{ports[0]}"],
            check=True, capture_output=True, env={**os.environ, **environ},
        )  # fmt: skip
        user, secret, _, _ = asyncio.run(prepare(config, 0, environ))
        script = lua("GET", "/service/token?service=registry&scope=repository:p/app:pull,push",
                     {"Authorization": basic(user, secret)})  # fmt: skip
        rows: list[dict[str, Any]] = []
        one = serve(config, directory / "pg-one.log", environ=environ)
        try:
            wait(f"http://127.0.0.1:{ports[0]}/healthz", one)
            run_wrk(ports[0], script, 1, one.pid, directory)  # warm up: the one KDF
            row = ceiling.paired(ports[0], script, one.pid, seconds)
            rows.append({"case": "warm robot ES256, PostgreSQL, 1 replica", **row})
            url = environ["TOKENSERVER_DATABASE_URL"]
            measured = {"idle": asyncio.run(change_to_effect(ports[0], url, CHANGES))}
            load = start_wrk(ports[0], script, seconds, directory, "pg-load", connections=16)
            measured["under the warm load"] = asyncio.run(change_to_effect(ports[0], url, CHANGES))
            load.communicate()
            notes["change_to_effect_ms"] = measured
        finally:
            one.terminate()
            one.wait(timeout=10)
        replicas = [
            serve(config, directory / f"pg-{port}.log", pinned=False,
                  environ={**environ, "TOKENSERVER_SERVER_PORT": str(port)})
            for port in ports
        ]  # fmt: skip
        try:
            for port, replica in zip(ports, replicas, strict=True):
                wait(f"http://127.0.0.1:{port}/healthz", replica)
                run_wrk(port, script, 1, replica.pid, directory)
            base = ceiling.sample()
            runs = [start_wrk(port, script, seconds, directory, f"pg{port}", connections=16)
                    for port in ports]  # fmt: skip
            results = [parse_wrk(run.communicate()[0]) for run in runs]
            rows.append({
                "case": "warm robot ES256, PostgreSQL, 2 replicas (unpinned)",
                "rps": sum(r["rps"] for r in results),
                "p50_ms": max(r["p50_ms"] for r in results),
                "p99_ms": max(r["p99_ms"] for r in results),
                "errors": sum(r["errors"] for r in results),
                "server_cpu": None,
                "ceiling_rps": base,
            })  # fmt: skip
        finally:
            for replica in replicas:
                replica.terminate()
            for replica in replicas:
                replica.wait(timeout=10)
        return rows
    finally:
        postgres.stop()


CHANGES = 200  # even


async def change_to_effect(port: int, url: str, changes: int) -> dict[str, Any]:
    """Milliseconds from a commit made outside the replica (this script's own connection, as
    another replica or the command line would) to the replica's first answer that honours it:
    project p turned private, then public, `changes` times (even: it ends as it began); an
    anonymous pull of p/app is asked for again and again until its grant follows. A poll is
    one request (about a millisecond here): the figures include up to one."""
    import aiohttp
    import asyncpg

    path = f"http://127.0.0.1:{port}/service/token?service=registry&scope=repository:p/app:pull"
    delays: list[float] = []
    conn = await asyncpg.connect(url)
    try:
        async with aiohttp.ClientSession() as http:

            async def pulls() -> bool:
                async with http.get(path) as r:
                    token = (await r.json())["token"]
                claims = jwt.decode(token, options={"verify_signature": False})
                return any(entry["actions"] for entry in claims["access"])

            public = await pulls()
            for _ in range(changes):
                await conn.execute("UPDATE project SET public = NOT public WHERE name = 'p'")
                committed = time.perf_counter()
                public = not public
                while await pulls() != public:
                    pass
                delays.append((time.perf_counter() - committed) * 1000)
    finally:
        await conn.close()
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return {"changes": changes, "p50": delays[len(delays) // 2], "p99": p99, "max": delays[-1]}


if __name__ == "__main__":
    raise SystemExit(main())
