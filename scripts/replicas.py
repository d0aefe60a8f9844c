"""Replicas on one machine, for trying them out: `up` starts (or resumes) a private PostgreSQL
cluster, two `tokenserver serve` replicas on it, nginx in front of them as the balancer, and a
registry (Debian's docker-registry, distribution 2.8.2) whose token realm is the balancer; `down`
stops all of it, keeping the data; `status` says what runs. Every command is idempotent: `up`
starts only what is not running (a replica that was stopped comes back), `down` stops only
what runs.

Everything lives under one directory (--dir, default var/replicas in the repository), and the
ports follow one base (--base-port, default 8090): the balancer on it, the replicas on the next
two, the registry on the third, PostgreSQL on the fourth, all on 127.0.0.1. Each process is
found again through its pid file, and only if its command line is the one this script started
there: a stale pid file never makes `down` signal another program.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import grp
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from glob import glob
from pathlib import Path

PROG = "scripts/replicas"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "var" / "replicas"
DEFAULT_BASE_PORT = 8090
REPLICAS = 2
DATABASE = "tokenserver"
DB_USER = "tokenserver"
# nginx connects to the replicas from this address, the only proxy they trust: a client that
# connects to a replica directly cannot forge its address in X-Forwarded-For.
PROXY_ADDRESS = "127.0.0.2"
# Characters the generated files cannot carry in a path: nginx expands `$` in some directives,
# and pg_ctl runs PostgreSQL through /bin/sh inside double quotes.
FORBIDDEN_IN_DIR = set('"\\$`')
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


class Failure(Exception):
    """Stops the command with a one-line message (and the tail of a log when one helps)."""

    def __init__(self, message: str, code: int = EXIT_FAILED, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.log = log


def usage(message: str) -> Failure:
    return Failure(message, EXIT_USAGE)


@dataclass(frozen=True)
class Layout:
    """Where everything of one set of replicas lives, and on which ports."""

    dir: Path
    base_port: int

    @property
    def balancer_port(self) -> int:
        return self.base_port

    def replica_port(self, number: int) -> int:
        return self.base_port + number

    @property
    def registry_port(self) -> int:
        return self.base_port + REPLICAS + 1

    @property
    def postgres_port(self) -> int:
        return self.base_port + REPLICAS + 2

    @property
    def state(self) -> Path:
        return self.dir / "state.json"

    @property
    def config(self) -> Path:
        return self.dir / "tokenserver.toml"

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    @property
    def admin_password(self) -> Path:
        return self.dir / "admin-password"

    @property
    def postgres(self) -> Path:
        return self.dir / "postgres"

    @property
    def nginx(self) -> Path:
        return self.dir / "nginx"

    @property
    def registry(self) -> Path:
        return self.dir / "registry"

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.dir / "run" / f"{name}.pid"

    def realm(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}/service/token"


# ---- arguments ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="PostgreSQL, two tokenserver replicas, nginx as their balancer and a "
        "registry whose realm is the balancer, on this machine.",
    )
    commands = parser.add_subparsers(dest="command", metavar="up|down|status")
    for name, text in (
        ("up", "start what is not running (first time: create everything)"),
        ("down", "stop everything (the data is kept; rm -r the directory to start afresh)"),
        ("status", "say what runs (exit status 3 when something does not)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--dir",
            default=str(DEFAULT_DIR),
            help=f"where everything lives (default {DEFAULT_DIR})",
        )
        command.add_argument(
            "--base-port",
            help=f"the balancer's port; replicas, registry and PostgreSQL take the next "
            f"{REPLICAS + 2} (default {DEFAULT_BASE_PORT}, or the directory's own)",
        )
    return parser


def _check_dir(text: str) -> Path:
    if not text:
        raise usage("--dir: empty")
    bad = sorted({c for c in text if c in FORBIDDEN_IN_DIR or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise usage(
            f"--dir {text!r}: holds {shown}, which nginx's or PostgreSQL's start-up cannot take "
            "in a path; choose another directory"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise usage(f"--dir {text!r}: not valid UTF-8") from None
    path = Path(text).absolute()
    if path.exists() and not path.is_dir():
        raise usage(f"--dir {text}: exists and is not a directory")
    return path


def _check_port(text: str) -> int:
    last = 65535 - (REPLICAS + 2)
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (text.isascii() and text.isdigit()) or not 1024 <= int(text) <= last:
        raise usage(
            f"--base-port {text!r}: must be a number from 1024 to {last} "
            f"(it and the next {REPLICAS + 2} ports are used)"
        )
    return int(text)


def _layout(args: argparse.Namespace) -> Layout:
    """The directory and ports; the ports a directory was set up with stay its ports."""
    directory = _check_dir(args.dir)
    given = None if args.base_port is None else _check_port(args.base_port)
    state = _read_state(directory / "state.json")
    remembered = state.get("base_port")
    if isinstance(remembered, int):
        if given is not None and given != remembered:
            raise usage(
                f"--base-port {given}: {directory} was set up with --base-port {remembered}; "
                f"use that, or '{PROG} down --dir {shlex.quote(str(directory))}' and remove the "
                "directory to start afresh"
            )
        return Layout(directory, remembered)
    return Layout(directory, DEFAULT_BASE_PORT if given is None else given)


def _read_state(path: Path) -> dict[str, object]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise usage(f"{path}: unreadable ({e}); remove the directory to start afresh") from None
    if not isinstance(loaded, dict):
        raise usage(f"{path}: not a JSON object; remove the directory to start afresh")
    return loaded


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


# ---- processes ---------------------------------------------------------------------------------


def _alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs (not a zombie) and its command line holds `marker`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return False
    # The state follows the command's name in parentheses (which may itself hold ") ").
    if stat[stat.rfind(")") + 2 :].startswith("Z"):
        return False
    return marker in cmdline


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**22 else None


def _running(path: Path, marker: str) -> int | None:
    """The pid in `path` if that process runs with `marker` in its command line."""
    pid = _read_pid(path)
    return pid if pid is not None and _alive(pid, marker) else None


def _stop_pid(pid: int, marker: str, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal our process and wait for it to go; SIGKILL after 20 s."""
    if not _alive(pid, marker):
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + 20
    while _alive(pid, marker):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.1)


def _spawn(argv: Sequence[str], log: Path, env: dict[str, str], pid_file: Path) -> None:
    """Start a process that outlives this script (its own session), logging to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 (a loopback URL we built)
    except urllib.error.HTTPError:
        return True  # it answers, whatever it says
    except OSError:
        return False
    return True


def _wait_until_up(what: str, url: str, pid_file: Path, marker: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not _answers(url):
        if _running(pid_file, marker) is None:
            raise Failure(f"{what} exited at start; its log: {log}", log=log)
        if time.monotonic() > deadline:
            raise Failure(f"{what} did not answer {url} within 60 s; its log: {log}", log=log)
        time.sleep(0.2)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the servers: a connection in TIME_WAIT does not hold the port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim_port(port: int, what: str, layout: Layout) -> None:
    if not _port_free(port):
        # A directory keeps the ports it was set up with.
        choose = "a new --dir and --base-port" if layout.state.exists() else "another --base-port"
        raise Failure(
            f"port {port} ({what}) is in use by another program: stop it, or choose {choose}",
            EXIT_USAGE,
        )


def _as_user(user: str) -> list[str]:
    """The prefix that runs a command as `user` when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


def _reachable_by(user: str, directory: Path, why: str) -> None:
    if os.geteuid() != 0:
        return
    shutil.chown(directory, user)
    probe = subprocess.run([*_as_user(user), "test", "-w", str(directory)], check=False)
    if probe.returncode != 0:
        raise Failure(
            f"--dir: {why}, as the user {user}, which cannot write to {directory}: choose a "
            "directory that other users may enter (not under a mode 0700 directory)",
            EXIT_USAGE,
        )


# ---- PostgreSQL --------------------------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise Failure("PostgreSQL is not installed (scripts/replicas up installs it)")
    return Path(found[-1]).parent


def _pg(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*_as_user("postgres"), str(_pg_bin() / tool), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise Failure(f"{tool} failed: {(result.stderr or result.stdout).strip()}")
    return result


def _pg_running(layout: Layout) -> bool:
    data = layout.postgres / "data"
    return data.is_dir() and _pg("pg_ctl", "status", "-D", str(data), check=False).returncode == 0


def _postgres_up(layout: Layout, state: dict[str, object]) -> str:
    data = layout.postgres / "data"
    log = layout.postgres / "server.log"
    if not (data / "PG_VERSION").exists():
        layout.postgres.mkdir(parents=True, exist_ok=True)
        _reachable_by("postgres", layout.postgres, "PostgreSQL refuses to run as root and runs")
        password = secrets.token_urlsafe(24)
        pwfile = layout.postgres / "pw"
        _write_private(pwfile, password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        try:
            _pg(
                "initdb", "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8",
            )  # fmt: skip
        finally:
            pwfile.unlink()
        with (data / "postgresql.conf").open("a") as conf:
            # TCP on loopback only: no Unix socket, whose path length and directory rights
            # would depend on --dir.
            conf.write(
                "\n# scripts/replicas\n"
                f"port = {layout.postgres_port}\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
            )
        state["database_password"] = password
        _save_state(layout, state)
    if _pg_running(layout):
        return "running"
    _claim_port(layout.postgres_port, "PostgreSQL", layout)
    result = _pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", check=False)
    if result.returncode != 0:
        raise Failure(f"PostgreSQL did not start; its log: {log}", log=log)
    asyncio.run(_create_database(layout, _database_password(state)))
    return "started"


def _database_password(state: dict[str, object]) -> str:
    password = state.get("database_password")
    if not isinstance(password, str):
        raise usage("state.json holds no database password; remove the directory to start afresh")
    return password


def database_url(layout: Layout, state: dict[str, object]) -> str:
    password = _database_password(state)
    return f"postgresql://{DB_USER}:{password}@127.0.0.1:{layout.postgres_port}/{DATABASE}"


async def _create_database(layout: Layout, password: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=layout.postgres_port,
        user=DB_USER,
        password=password,
        database="postgres",
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()


def _postgres_down(layout: Layout) -> str:
    if not _pg_running(layout):
        return "not running"
    _pg("pg_ctl", "-D", str(layout.postgres / "data"), "-m", "fast", "-w", "stop")
    return "stopped"


# ---- tokenserver -------------------------------------------------------------------------------


def _admin_password() -> str:
    """A password tokenserver accepts (upper and lower case letters and a digit)."""
    while True:
        password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def _tokenserver_env(layout: Layout, state: dict[str, object], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TOKENSERVER_CONFIG", None)  # --config is always given
    env["TOKENSERVER_DATABASE_URL"] = database_url(layout, state)
    env.update(extra)
    return env


def _tokenserver(layout: Layout, state: dict[str, object], *args: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tokenserver", *args, "--config", str(layout.config)],
        capture_output=True,
        text=True,
        env=_tokenserver_env(layout, state, **env),
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise Failure(f"tokenserver {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _init(layout: Layout, state: dict[str, object]) -> None:
    """`tokenserver init` once (again if an earlier `up` stopped half-way: init resumes)."""
    if state.get("initialized") is True:
        return
    password = layout.admin_password.read_text().strip() if layout.admin_password.exists() else ""
    if not password:
        password = _admin_password()
        _write_private(layout.admin_password, password + "\n")
    options = [] if layout.config.exists() else [
        "--listen", f"127.0.0.1:{layout.replica_port(1)}", "--realm", layout.realm(),
    ]  # fmt: skip
    _tokenserver(layout, state, "init", *options, TOKENSERVER_ADMIN_PASSWORD=password)
    env = (
        "# The command line's settings for the replicas in this directory: `. THIS_FILE`, then\n"
        "# `tokenserver project create demo` etc. It holds the database's password.\n"
        f"export TOKENSERVER_CONFIG={shlex.quote(str(layout.config))}\n"
        f"export TOKENSERVER_DATABASE_URL={shlex.quote(database_url(layout, state))}\n"
    )
    _write_private(layout.env_file, env)
    state["initialized"] = True
    _save_state(layout, state)


def _replica_marker(layout: Layout) -> str:
    return f"tokenserver serve --config {layout.config}"


def _replica_up(layout: Layout, state: dict[str, object], number: int) -> str:
    name = f"replica-{number}"
    marker = _replica_marker(layout)
    if _running(layout.pid_file(name), marker) is not None:
        return "running"
    port = layout.replica_port(number)
    _claim_port(port, f"replica {number}", layout)
    env = _tokenserver_env(
        layout,
        state,
        TOKENSERVER_SERVER_HOST="127.0.0.1",
        TOKENSERVER_SERVER_PORT=str(port),
        TOKENSERVER_SERVER_TRUSTED_PROXIES=f"{PROXY_ADDRESS}/32",
    )
    argv = [sys.executable, "-m", "tokenserver", "serve", "--config", str(layout.config)]
    _spawn(argv, layout.log(name), env, layout.pid_file(name))
    return "started"


# ---- nginx -------------------------------------------------------------------------------------

NGINX_CONF = """\
# Written by scripts/replicas at every `up`.
{user}worker_processes 1;
pid {pid};
error_log {error_log} notice;
events {{ worker_connections 1024; }}
http {{
    access_log {access_log};
    client_body_temp_path {body};
    proxy_temp_path {proxy_tmp};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    upstream tokenserver {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tokenserver;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_bind {proxy};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # A replica that refuses the connection or does not answer: the request goes to
            # the other one (before a byte of it was sent, so a POST is safe to retry too).
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


def _nginx_binary() -> str:
    # Debian's nginx is in /usr/sbin, which a non-root PATH may lack.
    return shutil.which("nginx") or "/usr/sbin/nginx"


def _quoted(path: Path) -> str:
    return '"' + str(path) + '"'  # _check_dir refused `"`, `\` and `$`


def _nginx_marker(layout: Layout) -> str:
    return f"nginx: master process {_nginx_binary()} -p {layout.nginx}"


def _nginx_up(layout: Layout) -> str:
    tmp = layout.nginx / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    user = ""
    if os.geteuid() == 0:
        # Root's nginx runs its worker as nobody, which buffers request bodies under tmp/.
        group = "nogroup" if _group_exists("nogroup") else "nobody"
        _reachable_by("nobody", tmp, "nginx runs its worker")
        user = f"user nobody {group};\n"
    servers = "".join(
        f"        server 127.0.0.1:{layout.replica_port(n)} max_fails=1 fail_timeout=10s;\n"
        for n in range(1, REPLICAS + 1)
    )
    conf = layout.nginx / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user=user,
            pid=_quoted(layout.nginx / "nginx.pid"),
            error_log=_quoted(layout.nginx / "error.log"),
            access_log=_quoted(layout.nginx / "access.log"),
            body=_quoted(tmp / "body"),
            proxy_tmp=_quoted(tmp / "proxy"),
            fastcgi=_quoted(tmp / "fastcgi"),
            uwsgi=_quoted(tmp / "uwsgi"),
            scgi=_quoted(tmp / "scgi"),
            servers=servers,
            port=layout.balancer_port,
            proxy=PROXY_ADDRESS,
        )
    )
    if _running(layout.nginx / "nginx.pid", _nginx_marker(layout)) is not None:
        return "running"
    _claim_port(layout.balancer_port, "the balancer", layout)
    if not Path(_nginx_binary()).exists():
        raise Failure("nginx is not installed (scripts/replicas up installs it)")
    started = subprocess.run(
        [_nginx_binary(), "-p", str(layout.nginx), "-c", str(conf),
         "-e", str(layout.nginx / "error.log")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        raise Failure(
            f"nginx did not start: {started.stderr.strip()}", log=layout.nginx / "error.log"
        )
    return "started"


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


# ---- registry ----------------------------------------------------------------------------------


def _registry_marker(layout: Layout) -> str:
    return f"docker-registry serve {layout.registry / 'config.yml'}"


def _registry_up(layout: Layout, state: dict[str, object]) -> str:
    secret = state.get("registry_secret")
    if not isinstance(secret, str):
        secret = secrets.token_urlsafe(24)
        state["registry_secret"] = secret
        _save_state(layout, state)
    auth = _tokenserver(layout, state, "registry-config")
    config = layout.registry / "config.yml"
    layout.registry.mkdir(parents=True, exist_ok=True)
    _write_private(
        config,
        "# Written by scripts/replicas at every `up`.\n"
        "version: 0.1\n"
        "log:\n  level: info\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {json.dumps(str(layout.registry / 'data'))}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{layout.registry_port}\n  secret: {json.dumps(secret)}\n" + auth,
    )
    if _running(layout.pid_file("registry"), _registry_marker(layout)) is not None:
        return "running"
    _claim_port(layout.registry_port, "the registry", layout)
    binary = shutil.which("docker-registry")
    if binary is None:
        raise Failure("docker-registry is not installed (scripts/replicas up installs it)")
    # NOTE: REGISTRY_* variables override the registry's config file (skopeo's
    # REGISTRY_AUTH_FILE even stops it from starting).
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    _spawn(
        ["docker-registry", "serve", str(config)],
        layout.log("registry"),
        env,
        layout.pid_file("registry"),
    )
    return "started"


# ---- commands ----------------------------------------------------------------------------------


def _save_state(layout: Layout, state: dict[str, object]) -> None:
    state["base_port"] = layout.base_port
    _write_private(layout.state, json.dumps(state, indent=2) + "\n")


def _components(layout: Layout) -> list[tuple[str, int, str, str]]:
    """(name, port, address, what it is) of every part, in start order."""
    rows = [("PostgreSQL", layout.postgres_port, "", f"database {DATABASE}")]
    rows += [
        (f"replica {n}", layout.replica_port(n), "http://", "tokenserver serve")
        for n in range(1, REPLICAS + 1)
    ]
    rows.append(("balancer", layout.balancer_port, "http://", "nginx"))
    rows.append(("registry", layout.registry_port, "", "docker-registry"))
    return [(name, port, f"{scheme}127.0.0.1:{port}", what) for name, port, scheme, what in rows]


def _statuses(layout: Layout) -> list[str]:
    states = ["running" if _pg_running(layout) else "stopped"]
    for n in range(1, REPLICAS + 1):
        pid = _running(layout.pid_file(f"replica-{n}"), _replica_marker(layout))
        states.append("stopped" if pid is None else "running")
    nginx = _running(layout.nginx / "nginx.pid", _nginx_marker(layout))
    states.append("stopped" if nginx is None else "running")
    registry = _running(layout.pid_file("registry"), _registry_marker(layout))
    states.append("stopped" if registry is None else "running")
    return states


def _table(layout: Layout, states: Sequence[str]) -> str:
    lines = [f"{PROG} in {layout.dir}:"]
    for (name, _, address, what), state in zip(_components(layout), states, strict=True):
        lines.append(f"  {name:<11} {address:<23} {state:<11} {what}")
    return "\n".join(lines) + "\n"


def _guide(layout: Layout) -> str:
    registry = f"127.0.0.1:{layout.registry_port}"
    env = shlex.quote(str(layout.env_file))
    return (
        "\nPoint clients at:\n"
        f"  registry      {registry} (plain HTTP on loopback: skopeo --tls-verify=false; "
        f"its token realm is {layout.realm()})\n"
        f"  API, web page http://127.0.0.1:{layout.balancer_port}/ (user admin, password in "
        f"{layout.admin_password})\n"
        f"  command line  . {env}   # then, for instance:\n"
        f"                {ROOT}/.venv/bin/tokenserver project create demo\n"
        f"                {ROOT}/.venv/bin/tokenserver robot create --project demo --name ci "
        "--permission repository:push\n"
        f"  logs          {layout.dir / 'logs'}, {layout.nginx}, {layout.postgres / 'server.log'}\n"
    )


def cmd_up(layout: Layout) -> int:
    if os.geteuid() == 0:
        # PostgreSQL and nginx's worker run as other users and must enter it.
        layout.dir.chmod(layout.dir.stat().st_mode | 0o055)
    # Every port first, before the directory remembers them: a port taken by another program
    # is a choice of --base-port to make again, not a half-started set.
    for (name, port, _, _), now in zip(_components(layout), _statuses(layout), strict=True):
        if now != "running":
            _claim_port(port, name, layout)
    state = _read_state(layout.state)
    _save_state(layout, state)
    states = [_postgres_up(layout, state)]
    _init(layout, state)
    states += [_replica_up(layout, state, n) for n in range(1, REPLICAS + 1)]
    for n in range(1, REPLICAS + 1):
        name = f"replica-{n}"
        _wait_until_up(
            f"replica {n}",
            f"http://127.0.0.1:{layout.replica_port(n)}/healthz",
            layout.pid_file(name),
            _replica_marker(layout),
            layout.log(name),
        )
    states.append(_nginx_up(layout))
    _wait_until_up(
        "the balancer",
        f"http://127.0.0.1:{layout.balancer_port}/healthz",
        layout.nginx / "nginx.pid",
        _nginx_marker(layout),
        layout.nginx / "error.log",
    )
    states.append(_registry_up(layout, state))
    _wait_until_up(
        "the registry",
        f"http://127.0.0.1:{layout.registry_port}/v2/",
        layout.pid_file("registry"),
        _registry_marker(layout),
        layout.log("registry"),
    )
    sys.stdout.write(_table(layout, states) + _guide(layout))
    return EXIT_OK


def cmd_down(layout: Layout) -> int:
    if not layout.state.exists():
        sys.stdout.write(f"{PROG}: nothing set up in {layout.dir}\n")
        return EXIT_OK
    # The reverse of the start order: the registry and the balancer before what they call.
    states: list[str] = []
    stoppers: list[tuple[Path, str, signal.Signals]] = [
        (layout.pid_file("registry"), _registry_marker(layout), signal.SIGTERM),
        (layout.nginx / "nginx.pid", _nginx_marker(layout), signal.SIGQUIT),
        *(
            (layout.pid_file(f"replica-{n}"), _replica_marker(layout), signal.SIGTERM)
            for n in range(REPLICAS, 0, -1)
        ),
    ]
    for pid_file, marker, sig in stoppers:
        pid = _running(pid_file, marker)
        if pid is not None:
            _stop_pid(pid, marker, sig)
        pid_file.unlink(missing_ok=True)
        states.append("not running" if pid is None else "stopped")
    states.append(_postgres_down(layout))
    states.reverse()
    sys.stdout.write(_table(layout, states))
    return EXIT_OK


def cmd_status(layout: Layout) -> int:
    if not layout.state.exists():
        sys.stdout.write(f"{PROG}: nothing set up in {layout.dir}\n")
        return EXIT_NOT_RUNNING
    states = _statuses(layout)
    sys.stdout.write(_table(layout, states))
    return EXIT_OK if all(s == "running" for s in states) else EXIT_NOT_RUNNING


@contextlib.contextmanager
def _exclusive(layout: Layout) -> Iterator[None]:
    """One command at a time per directory: two `up`s at once would each start a replica on
    the same port, and the loser's pid file would hide the winner from `down`."""
    if not layout.dir.is_dir():
        yield  # nothing set up: nothing to race for
        return
    with (layout.dir / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Failure(
                f"another {PROG} command is running on {layout.dir}; try again when it is done"
            ) from None
        yield  # the lock goes with the file, and with this process if it dies


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: a command is required: up, down or status\n")
        return EXIT_USAGE
    try:
        layout = _layout(args)
        if args.command == "up":
            layout.dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(layout):
            if args.command == "up":
                return cmd_up(layout)
            if args.command == "down":
                return cmd_down(layout)
            return cmd_status(layout)
    except Failure as e:
        sys.stderr.write(f"{PROG}: {e.message}\n")
        if e.log is not None and e.log.exists():
            tail = e.log.read_text(errors="replace").splitlines()[-20:]
            sys.stderr.write("".join(f"  | {line}\n" for line in tail))
        return e.code


if __name__ == "__main__":
    sys.exit(main())
