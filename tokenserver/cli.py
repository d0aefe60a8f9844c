"""The command line: the same services as the HTTP API.

Output meant for scripts is JSON on stdout; messages go to stderr. Exit status: 0 success,
1 refused operation, 2 bad usage or configuration. Each subcommand is declared with its own
handler (`_Commands`); the handlers present what the services return and hold no rules.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import functools
import getpass
import importlib.metadata
import json
import logging
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from tokenserver.config import (
    ADMIN_PASSWORD_ENV,
    CONFIG_ENV,
    Settings,
    load_settings,
    parse_settings,
    render_config,
)
from tokenserver.domain.federation import DEFAULT_MAX_TOKEN_LIFETIME, FederationRule, Issuer
from tokenserver.domain.federation_rules import (
    MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
    check_max_token_lifetime,
    claims_from_pairs,
)
from tokenserver.domain.harbor_export import plan_import
from tokenserver.domain.harbor_json import (
    audit_json,
    federation_failure_json,
    federation_login_json,
    federation_rule_json,
    iso_time,
    issuer_json,
    project_json,
    refresh_token_json,
    robot_export_json,
    robot_federation_json,
    robot_json,
    user_json,
    webhook_execution_json,
    webhook_policy_json,
)
from tokenserver.domain.hosts import is_loopback
from tokenserver.domain.lifetimes import (
    FOLLOW_GLOBAL,
    LONGEST_TOKEN_LIFETIME,
    MIN_ROBOT_TOKEN_LIFETIME,
    TokenLifetimes,
)
from tokenserver.domain.models import (
    LOCAL,
    MAX_AUDIT_FIELD,
    MAX_DURATION_DAYS,
    MAX_KEEP_PREVIOUS,
    SECONDS_PER_DAY,
    KeyRecord,
    Level,
    Robot,
    duration_error,
)
from tokenserver.domain.names import quote_hint, shell_expanded
from tokenserver.domain.permissions import (
    PROJECT_ROBOT_ACCESS,
    Access,
    Effect,
    RequestedPermission,
    parse_access,
)
from tokenserver.domain.pull_secrets import (
    namespace_error,
    pull_secret,
    registry_error,
    secret_name_error,
)
from tokenserver.domain.repositories import EVERY_REPOSITORY, pattern_error
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost, Secret
from tokenserver.domain.text import printable, truncate
from tokenserver.domain.webhooks import EVENT_TYPES, check_address
from tokenserver.errors import (
    BadRequest,
    ConfigError,
    RobotNotFound,
    StorageError,
    TokenServerError,
)
from tokenserver.eventloop import event_loop
from tokenserver.http.observability import server_handler
from tokenserver.keys import (
    generate_private_key,
    load_certificates,
    load_private_key,
    make_certificate,
    write_certificate,
    write_new_file,
    write_private_key,
)
from tokenserver.runtime import Runtime, database_name, open_runtime
from tokenserver.services.federation import IssuerSpec, RuleSpec
from tokenserver.services.robots import RobotSpec
from tokenserver.services.users import ADMIN, check_admin_prefix, check_password
from tokenserver.services.webhooks import PolicySpec, TargetSpec

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command SIGPIPE stopped
MAX_ID = 2**63 - 1
DEFAULT_CONFIG = "tokenserver.toml"
DEFAULT_DURATION_DAYS = 30


class UsageError(Exception):
    """Bad usage found after argument parsing (exit status 2)."""


def check_output_path(text: str, flag: str, *, overwrite: bool = False) -> Path:
    """The file `flag` names, if a command can create it (with `overwrite`, also replace
    it): not a directory, in a directory that exists and that this process may write in.
    Raises UsageError naming the flag and the path. Never creates a directory: a mistyped
    path is refused rather than made. Call it before the command changes anything."""
    where = f"{flag} {text}"
    path = Path(text)
    if text.endswith(os.sep) or os.path.isdir(path):
        raise UsageError(f"{where}: names a directory; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise UsageError(f"{where}: exists; refusing to overwrite it")
    parent = path.parent
    if not os.path.isdir(parent):
        existing = next(p for p in (parent, *parent.parents) if os.path.lexists(p))
        if existing == parent or not os.path.isdir(existing):
            raise UsageError(f"{where}: {existing} is not a directory")
        raise UsageError(f"{where}: directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: cannot create files in {parent}")
    return path


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2), flush=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _row(*cells: str) -> None:
    """One line of a table, tab-separated. A cell can hold what a request put there (a name,
    a client id): its control characters, tabs and newlines included are shown escaped, so
    it can neither add a line or a column nor send escapes to the terminal."""
    print("\t".join(printable(c) for c in cells), flush=True)


def _settings(args: argparse.Namespace) -> Settings:
    """The configuration of the config file chosen (see `_choose_config`), hashing at the
    cost `main` was given. Raises UsageError when the file does not exist, saying where its
    name came from."""
    path = Path(args.config)
    if not path.exists():
        shown = os.path.abspath(path)
        if args.config_source == "--config":
            hint = f"create it with: tokenserver init --config {shlex.quote(args.config)}"
        elif args.config_source == CONFIG_ENV:
            shown += f" (from {CONFIG_ENV})"
            hint = f"create it with 'tokenserver init', or correct {CONFIG_ENV}"
        else:
            shown += f" (the default: neither --config nor {CONFIG_ENV} is given)"
            hint = (
                f"give the server's config file with --config FILE or {CONFIG_ENV}, or run "
                "'tokenserver init' to create a new server here"
            )
        raise UsageError(f"config file {shown} does not exist; {hint}")
    return _with_cost(args, load_settings(path))


def _with_cost(args: argparse.Namespace, settings: Settings) -> Settings:
    return settings.replace(kdf_cost=getattr(args, "kdf_cost", DEFAULT_KDF_COST))


def _choose_config(given: Sequence[str]) -> tuple[str, str]:
    """The config file and where its name came from: `--config` (given before or after the
    command words; twice with different files is a usage error), else $TOKENSERVER_CONFIG,
    else ./tokenserver.toml. An explicit --config wins over the variable, and says so."""
    from_env = os.environ.get(CONFIG_ENV, "")
    if given:
        files = dict.fromkeys(os.path.realpath(name) for name in given)
        if len(files) > 1:
            raise UsageError(f"--config names different files: {', '.join(given)}; give one")
        if from_env and os.path.realpath(from_env) not in files:
            _say(f"tokenserver: --config {given[-1]} overrides {CONFIG_ENV}={from_env}")
        return given[-1], "--config"
    if from_env:
        return from_env, CONFIG_ENV
    return DEFAULT_CONFIG, "default"


# ---- init, serve, registry-config ----------------------------------------------------------


def _split_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def registry_block(settings: Settings) -> str:
    """The registry's `auth.token` configuration (JSON strings are valid YAML scalars)."""
    return (
        "auth:\n"
        "  token:\n"
        f"    realm: {json.dumps(settings.server.realm)}\n"
        f"    service: {json.dumps(settings.token.service)}\n"
        f"    issuer: {json.dumps(settings.token.issuer)}\n"
        f"    rootcertbundle: {json.dumps(str(settings.token.certificate))}\n"
    )


def _init_configured_key(settings: Settings) -> None:
    if not settings.token.signing_key.exists():
        write_private_key(
            settings.token.signing_key, generate_private_key(settings.token.algorithm)
        )
        _say(f"generated {settings.token.algorithm} signing key {settings.token.signing_key}")
    if not settings.token.certificate.exists():
        private_key = load_private_key(settings.token.signing_key)
        write_certificate(
            settings.token.certificate, make_certificate(private_key, settings.token.issuer)
        )
        _say(f"wrote certificate {settings.token.certificate}")


async def _init_database(settings: Settings, password: str | None) -> None:
    async with open_runtime(settings, sign=False, create_database=True) as runtime:
        if not await runtime.keyring.keys():
            # Once the keyring has entries it decides which key signs; a retired configured
            # key may even have been destroyed: nothing to create then.
            _init_configured_key(settings)
        await runtime.keyring.signing_key()  # what `serve` will sign with: refuse it now
        if await runtime.header_seal.load():
            _say(f"generated webhook key {runtime.header_seal.path}")
        if await runtime.users.admin_exists():
            _say(f"the system admin '{ADMIN}' exists")
            if password is not None:
                _say(
                    f"  ({ADMIN_PASSWORD_ENV} is not used: it is the password of an admin init "
                    f"creates; change a password with 'tokenserver user set-password {ADMIN}')"
                )
            return
        generated = await runtime.users.ensure_admin(password)
        if generated is not None:
            _say(f"created the system admin '{ADMIN}' with password: {generated.reveal()}")
            _say(f"  (shown only once; change it with 'tokenserver user set-password {ADMIN}')")
        else:
            _say(f"created the system admin '{ADMIN}' with the password in {ADMIN_PASSWORD_ENV}")


# init's options, by the config key each sets (--listen sets two).
_INIT_OPTIONS = {
    "server.host": "--listen",
    "server.port": "--listen",
    "server.realm": "--realm",
    "token.service": "--service",
    "token.issuer": "--issuer",
    "token.algorithm": "--algorithm",
}


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.config)
    overrides: dict[str, Any] = {}
    if args.listen:
        overrides["server.host"], overrides["server.port"] = _split_listen(args.listen)
    for key, option in _INIT_OPTIONS.items():
        value = getattr(args, option.removeprefix("--"))
        if option != "--listen" and value:
            overrides[key] = value
    # Everything is checked before anything is written: the options, the configuration with
    # the environment's overrides, the admin's password.
    text = None
    if path.exists():
        if overrides:
            _say(f"{path} exists and is kept; options that would change it are ignored")
        settings = _settings(args)
    else:
        try:
            text = render_config(overrides)
        except ConfigError as e:
            reason = str(e).removeprefix(f"{e.key}: ")
            raise UsageError(f"{_INIT_OPTIONS[e.key]} ({e.key}): {reason}") from None
        settings = _with_cost(args, parse_settings(text.encode(), path))
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password is not None:
        try:
            check_password(password)
        except BadRequest as e:
            raise ConfigError(ADMIN_PASSWORD_ENV, e.message) from None
    if text is not None:
        check_admin_prefix(settings.robots.name_prefix)  # a new server will create the admin
        write_new_file(path, text.encode(), 0o644)
        _say(f"wrote {path}")
    asyncio.run(_init_database(settings, password))
    _say(f"database {database_name(settings)} ready")
    _say("registry config.yml:")
    print(registry_block(settings), end="", flush=True)
    return EXIT_OK


def cmd_registry_config(args: argparse.Namespace) -> int:
    print(registry_block(_settings(args)), end="", flush=True)
    return EXIT_OK


def configure_logging(level: str, form: str = "text") -> None:
    handler = server_handler(sys.stderr, form)
    # NOTE: no format shows a record's thread, process or source line; not collecting them
    # (the logging HOWTO's optimisations) saves microseconds on each token request's line.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.server.tls_certificate is None or settings.server.tls_key is None:
        return None
    for key, path in (
        ("server.tls_certificate", settings.server.tls_certificate),
        ("server.tls_key", settings.server.tls_key),
    ):
        try:
            path.open("rb").close()
        except OSError as e:
            raise ConfigError(key, f"cannot read {path}: {e.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.server.tls_certificate, settings.server.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            "server.tls_certificate",
            f"cannot load the TLS pair {settings.server.tls_certificate} and "
            f"{settings.server.tls_key}: {e}",
        ) from None
    return context


def cmd_serve(args: argparse.Namespace) -> int:
    from tokenserver.http.app import create_app

    settings = _settings(args)
    configure_logging(settings.log.level, settings.log.format)
    loop = event_loop(settings.server.event_loop)
    context = _tls_context(settings)
    if context is None and not is_loopback(settings.server.host):
        if not settings.server.allow_plain_http:
            raise ConfigError(
                "server.allow_plain_http",
                f"refusing plain HTTP on {settings.server.host}: secrets would cross the network "
                "in clear; configure server.tls_certificate and server.tls_key, or set "
                "allow_plain_http = true behind a TLS-terminating proxy",
            )
        logging.getLogger("tokenserver").warning(
            "serving plain HTTP on non-loopback address %s: credentials travel in clear unless "
            "a proxy terminates TLS in front",
            settings.server.host,
        )
    if args.workers > 1 and not args.worker:
        return _supervise(args)
    # NOTE: with --workers, each worker binds the same port; the kernel spreads connections
    # over them (SO_REUSEPORT). They share the database, and the lockouts kept in it.
    app = create_app(settings, create_database=False, shared_lockouts=args.worker)
    with asyncio.Runner(loop_factory=loop.new) as runner:
        runner.run(_serve(app, settings, context, reuse_port=args.worker, loop_name=loop.name))
    return EXIT_OK


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(
    app: web.Application,
    settings: Settings,
    context: ssl.SSLContext | None,
    *,
    reuse_port: bool,
    loop_name: str,
) -> None:
    """Serve `app` until SIGINT or SIGTERM. Says where it serves once it listens there;
    raises ConfigError naming the address when it cannot listen (in use, not local...)."""
    from tokenserver.http.runner import make_runner

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        runner = make_runner(app)
        await runner.setup()
        try:
            await _listen(runner, settings, context, reuse_port, loop_name)
            await stop.wait()
            logging.getLogger("tokenserver").info("stopping: finishing requests in flight")
        finally:
            await runner.cleanup()
        logging.getLogger("tokenserver").info("stopped")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _listen(
    runner: web.AppRunner,
    settings: Settings,
    context: ssl.SSLContext | None,
    reuse_port: bool,
    loop_name: str,
) -> None:
    address = _address(settings.server.host, settings.server.port)
    site = web.TCPSite(
        runner,
        settings.server.host,
        settings.server.port,
        ssl_context=context,
        reuse_port=reuse_port,
    )
    try:
        await site.start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            reason = "the address is in use (is another server listening there?)"
        elif isinstance(e, socket.gaierror) or not e.errno:
            reason = e.strerror or str(e)
        else:
            reason = os.strerror(e.errno)
        host_at_fault = isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL
        key = "server.host" if host_at_fault else "server.port"
        raise ConfigError(key, f"cannot listen on {address}: {reason}") from None
    logging.getLogger("tokenserver").info(
        "serving on %s, realm %s, service %s, issuer %s, %s, event loop %s",
        address,
        settings.server.realm,
        settings.token.service,
        settings.token.issuer,
        settings.token.algorithm,
        loop_name,
    )


def _supervise(args: argparse.Namespace) -> int:
    """Run `--workers N` worker processes; stop them all when one stops or on a signal."""
    command = [sys.executable, "-m", "tokenserver", "serve", "--config", args.config, "--worker"]
    # The workers are given the file chosen; the variable would only repeat what was said.
    environ = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    workers = [subprocess.Popen(command, env=environ) for _ in range(args.workers)]
    log = logging.getLogger("tokenserver")
    log.info("started %d workers: %s", len(workers), " ".join(str(w.pid) for w in workers))

    def stop(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while all(w.poll() is None for w in workers):
        time.sleep(0.2)
    stop(signal.SIGTERM, None)
    for worker in workers:
        status = status or (worker.wait() or 0)
    return status if status > 0 else EXIT_OK


# ---- projects, robots, keys: actions on a runtime --------------------------------------------

Command = Callable[[argparse.Namespace], int]
Action = Callable[[Runtime, argparse.Namespace], Awaitable[int]]


def _run(args: argparse.Namespace, action: Callable[[Runtime], Awaitable[int]]) -> int:
    settings = _settings(args)

    async def main() -> int:
        # Only init creates a database: run with a wrong configuration, a command would put
        # its changes in a new, empty one that no server reads.
        async with open_runtime(settings, sign=False, create_database=False) as runtime:
            return await action(runtime)

    return asyncio.run(main())


def _on_runtime(action: Action) -> Command:
    """The command running `action` on a runtime opened from `--config`."""

    def command(args: argparse.Namespace) -> int:
        return _run(args, lambda rt: action(rt, args))

    return command


def _on_robot(action: Action) -> Command:
    """`_on_runtime` for a command naming a robot (`args.robot`): when it is not found and
    reads as a name the shell changed (`robot$demo+ci` unquoted arrives as `robot+ci`),
    the error says so."""

    async def hinted(rt: Runtime, args: argparse.Namespace) -> int:
        try:
            return await action(rt, args)
        except RobotNotFound as e:
            prefix = rt.robots.prefix
            if not shell_expanded(prefix, args.robot):
                raise
            raise RobotNotFound(f"{e.message}; {quote_hint(prefix, args.robot)}") from None

    return _on_runtime(hinted)


async def project_create(rt: Runtime, args: argparse.Namespace) -> int:
    project = await rt.projects.create(LOCAL, args.name, public=args.public)
    _say(f"created project {project.name} ({'public' if project.public else 'private'})")
    _out(project_json(project))
    return EXIT_OK


async def project_list(rt: Runtime, args: argparse.Namespace) -> int:
    projects = await rt.projects.list(LOCAL)
    if args.json:
        metadata = await rt.projects.metadata(projects)
        _out([project_json(p, metadata=metadata.get(p.id)) for p in projects])
    else:
        for p in projects:
            _row(str(p.id), p.name, "public" if p.public else "private")
    return EXIT_OK


async def project_delete(rt: Runtime, args: argparse.Namespace) -> int:
    await rt.projects.delete(LOCAL, args.name, is_name=True)
    _say(f"deleted project {args.name} and its robots")
    return EXIT_OK


def _permissions(values: Sequence[str]) -> list[Access]:
    return [parse_access(p) for value in values for p in value.split(",") if p.strip()]


class _InOrder(argparse.Action):
    """Keeps `--permission`, `--deny` and `--repository` in the order given (in `entries`):
    which entry a `--repository` limits depends on the flags before it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        entries = list(getattr(namespace, "entries", None) or [])
        entries.append((self.dest, str(values)))
        namespace.entries = entries


def _entries(project: str, flags: Sequence[tuple[str, str]]) -> tuple[RequestedPermission, ...]:
    """Permission entries from the flags in order. A run of `--permission` flags, or of
    `--deny` flags, makes an entry, and the `--repository` flags after it limit that entry
    to their patterns (an entry without one reaches every repository): so
    `--permission pull,push --deny push --repository 'secrets/**'` allows everywhere and
    denies only under secrets/. Entries with the same patterns are then one entry (a project
    robot's entries differ in their patterns)."""
    runs: list[tuple[str, list[Access], list[str]]] = []
    for flag, value in flags:
        if flag == "repository":
            if not runs:
                raise UsageError(
                    f"--repository {printable(value)}: give it after the --permission (or "
                    "--deny) flags of the entry it limits"
                )
            error = pattern_error(value)
            if error is not None:
                raise UsageError(f"--repository {printable(value)}: {error}")
            runs[-1][2].append(value)
            continue
        found = _permissions([value])
        if flag == "deny":
            found = [Access(a.resource, a.action, Effect.DENY) for a in found]
        if not runs or runs[-1][0] != flag or runs[-1][2]:
            runs.append((flag, [], []))
        runs[-1][1].extend(found)
    merged: dict[frozenset[str], tuple[list[Access], tuple[str, ...]]] = {}
    for _, access, patterns in runs:
        # Said in words: the flags state every entry (a PUT's absent field would keep a
        # patterned entry's patterns).
        shown = tuple(dict.fromkeys(patterns)) or (EVERY_REPOSITORY,)
        key = frozenset(shown)
        if key in merged:
            merged[key][0].extend(a for a in access if a not in merged[key][0])
        else:
            merged[key] = (list(dict.fromkeys(access)), shown)
    return tuple(
        RequestedPermission(project, tuple(access), repositories=shown)
        for access, shown in merged.values()
    )


@dataclasses.dataclass(frozen=True)
class _ExportFile:
    """The `--export` file, created (empty, mode 0600) before the robot or secret it is for,
    so that a path the secret cannot be written to is refused before anything changes."""

    text: str
    path: Path
    fd: int

    @classmethod
    def reserve(cls, text: str) -> _ExportFile:
        path = check_output_path(text, "--export")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise UsageError(f"--export {text}: cannot create it: {e.strerror}") from None
        return cls(text, path, fd)

    def release(self) -> None:
        """Remove the file: nothing (or not all) was written to it."""
        os.close(self.fd)
        self.path.unlink(missing_ok=True)

    def write(self, data: dict[str, Any], done: str) -> int:
        """Write the export JSON `data` (`done`: what the command did, for the messages).
        If that fails, the secret exists nowhere else: print it on stdout, say so, exit 2."""
        try:
            _write_fd(self.fd, (json.dumps(data, indent=2) + "\n").encode())
        except OSError as e:
            self.release()
            _say(
                f"tokenserver: {done}, but cannot write --export {self.text}: {e.strerror}; "
                "the export JSON with the secret is on stdout instead (shown only once)"
            )
            _out(data)
            return EXIT_USAGE
        os.close(self.fd)
        _say(f"{done}; secret written to {self.text}")
        return EXIT_OK


def _replace_file(target: Path, data: bytes, where: str) -> None:
    """Write `data` to `target` whole or not at all (a reader never sees half a bundle), or
    raise UsageError naming `where` (the flag or key) and the path, leaving nothing behind."""
    partial = target.with_name(target.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_fd(fd, data)
        finally:
            os.close(fd)
        os.replace(partial, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UsageError(f"{where} {target}: cannot write it: {e.strerror}") from None


def _write_fd(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` and sync it: the file then holds the only copy of a
    secret."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _read_secret(value: str) -> str:
    return sys.stdin.readline().rstrip("\r\n") if value == "-" else value


def _token_lifetime_within(rt: Runtime, seconds: int | None) -> int | None:
    """`--token-lifetime` (None: not given) if the configuration allows it; UsageError
    naming the flag and token.max_lifetime otherwise."""
    if seconds is not None:
        try:
            rt.robots.lifetimes.check(seconds)
        except BadRequest as e:
            raise UsageError(f"--token-lifetime: {e.message}") from None
    return seconds


@dataclasses.dataclass(frozen=True)
class _PullSecret:
    """`--k8s-secret NAME [--namespace NS] [--registry HOST]`: what the command prints (or
    writes with --export) instead of the export JSON: a Kubernetes pull secret manifest."""

    name: str
    namespace: str | None
    registry: str

    @classmethod
    def from_args(cls, rt: Runtime, args: argparse.Namespace) -> _PullSecret | None:
        """The flags checked (UsageError naming the flag), before anything changes; None
        without --k8s-secret (then --namespace and --registry are refused)."""
        if args.k8s_secret is None:
            for flag, value in (("--namespace", args.namespace), ("--registry", args.registry)):
                if value is not None:
                    raise UsageError(f"{flag}: give it with --k8s-secret NAME")
            return None
        checks = (
            ("--k8s-secret", args.k8s_secret, secret_name_error),
            ("--namespace", args.namespace, namespace_error),
            ("--registry", args.registry, registry_error),
        )
        for flag, value, error_of in checks:
            error = None if value is None else error_of(value)
            if error is not None:
                raise UsageError(f"{flag} {printable(value)}: {error}")
        registry = args.registry
        if registry is None:
            server = rt.settings.server
            registry = server.registry_host
            source = "server.registry" if server.registry else "server.realm"
            _say(
                f"registry {registry} (from {source}); give --registry HOST if the "
                "registry is elsewhere"
            )
        return cls(args.k8s_secret, args.namespace, registry)

    def manifest(self, robot: Robot, prefix: str, secret: Secret) -> dict[str, Any]:
        return pull_secret(
            self.name, self.registry, robot.full_name(prefix), secret.reveal(), self.namespace
        )


async def robot_create(rt: Runtime, args: argparse.Namespace) -> int:
    spec = RobotSpec(
        name=args.name,
        level=Level.PROJECT,
        permissions=_entries(args.project, args.entries),
        duration=args.duration,
        description=args.description,
        token_lifetime=_token_lifetime_within(rt, args.token_lifetime),
    )
    pull = _PullSecret.from_args(rt, args)
    export_file = None if args.export is None else _ExportFile.reserve(args.export)
    try:
        robot, secret = await rt.robots.create(LOCAL, spec)
    except BaseException:
        if export_file is not None:
            export_file.release()
        raise
    prefix = rt.robots.prefix
    export = (
        robot_export_json(robot, prefix, secret)
        if pull is None
        else pull.manifest(robot, prefix, secret)
    )
    if export_file is not None:
        return export_file.write(export, f"created {robot.full_name(prefix)}")
    _say(f"created {robot.full_name(prefix)}; the secret is shown only once")
    _out(export)
    return EXIT_OK


async def robot_list(rt: Runtime, args: argparse.Namespace) -> int:
    prefix = rt.robots.prefix
    if args.expiring is not None:
        robots = await rt.robots.list_expiring(LOCAL, args.expiring, args.project)
        robots = [r for r in robots if args.name in r.name]
    elif args.project is None:
        raise UsageError(
            "robot list: give --project P (or --expiring SPAN for every robot expiring soon)"
        )
    else:
        robots = await rt.robots.list(LOCAL, args.project, args.name)
    lifetimes = rt.robots.lifetimes
    if args.json:
        now = rt.robots.now()
        _out([robot_json(r, prefix, lifetimes, now=now) for r in robots])
    else:
        for r in robots:
            expiry = "never" if r.expires_at == -1 else iso_time(r.expires_at)
            state = "disabled" if r.disabled else "enabled"
            access = ";".join(
                ",".join(str(a) for a in p.access)
                + (f" on {','.join(p.repositories)}" if p.repositories else "")
                for p in r.permissions
            )
            tokens = _tokens_cell(r.token_lifetime, lifetimes)
            _row(str(r.id), r.full_name(prefix), state, f"expires {expiry}", tokens, access)
    return EXIT_OK


def _tokens_cell(own: int | None, lifetimes: TokenLifetimes) -> str:
    """How long a robot's tokens last, and why, for `robot list`."""
    effective = lifetimes.effective(own)
    if own is None:
        return f"tokens {effective} s (token.lifetime)"
    if effective < own:
        return f"tokens {effective} s (its {own} s capped by token.max_lifetime)"
    return f"tokens {effective} s"


async def robot_show(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.robots.get(LOCAL, args.robot)
    _out(robot_json(robot, rt.robots.prefix, rt.robots.lifetimes, now=rt.robots.now()))
    return EXIT_OK


async def robot_disable(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.robots.set_disabled(LOCAL, args.robot, True)
    _say(f"disabled {robot.full_name(rt.robots.prefix)}")
    return EXIT_OK


async def robot_enable(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.robots.set_disabled(LOCAL, args.robot, False)
    _say(f"enabled {robot.full_name(rt.robots.prefix)}")
    return EXIT_OK


async def robot_delete(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.robots.delete(LOCAL, args.robot)
    _say(f"deleted {robot.full_name(rt.robots.prefix)}")
    return EXIT_OK


async def robot_refresh_tokens(rt: Runtime, args: argparse.Namespace) -> int:
    tokens = await rt.refresh.list(LOCAL, args.robot)
    if args.json:
        _out([refresh_token_json(t) for t in tokens])
    else:
        for t in tokens:
            _row(str(t.id), iso_time(t.created_at), t.client_id)
    return EXIT_OK


async def robot_revoke_refresh_tokens(rt: Runtime, args: argparse.Namespace) -> int:
    revoked = await rt.refresh.revoke(LOCAL, args.robot, args.id)
    _say(f"revoked {revoked} refresh token(s)")
    return EXIT_OK


async def robot_refresh_secret(rt: Runtime, args: argparse.Namespace) -> int:
    manual = None if args.secret is None else _read_secret(args.secret)
    pull = _PullSecret.from_args(rt, args)
    keep = args.keep_previous or 0
    if args.export is not None or pull is not None:
        robot = await rt.robots.get(LOCAL, args.robot)
        export_file = None if args.export is None else _ExportFile.reserve(args.export)
        try:
            generated = await rt.robots.refresh_secret(
                LOCAL, args.robot, manual, keep_previous=keep
            )
        except BaseException:
            if export_file is not None:
                export_file.release()
            raise
        await _say_previous_kept(rt, robot, keep)
        secret = generated if generated is not None else Secret(manual or "")
        prefix = rt.robots.prefix
        export = (
            robot_export_json(robot, prefix, secret)
            if pull is None
            else pull.manifest(robot, prefix, secret)
        )
        if export_file is None:
            _say("new secret set; the manifest holds it and is shown only once")
            _out(export)
            return EXIT_OK
        return export_file.write(export, f"refreshed the secret of {robot.full_name(prefix)}")
    generated = await rt.robots.refresh_secret(LOCAL, args.robot, manual, keep_previous=keep)
    await _say_previous_kept(rt, None, keep, args.robot)
    if generated is None:
        _say("secret set")
    else:
        _say("new secret generated; it is shown only once")
        _out({"secret": generated.reveal()})
    return EXIT_OK


async def _say_previous_kept(rt: Runtime, robot: Robot | None, keep: int, ref: str = "") -> None:
    """After a refresh with --keep-previous: until when the old secret works (or why not)."""
    if not keep:
        return
    refreshed = await rt.robots.resolve(str(robot.id) if robot is not None else ref)
    until = refreshed.previous_secret_until(rt.robots.now())
    name = refreshed.full_name(rt.robots.prefix)
    if until is None:
        _say(f"the old secret of {name} was not kept: the robot is disabled or has expired")
    else:
        _say(
            f"the old secret of {name} keeps working until {iso_time(until)} "
            f"('robot revoke-previous-secret' ends it sooner)"
        )


async def robot_revoke_previous_secret(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.robots.revoke_previous_secret(LOCAL, args.robot)
    _say(
        f"the previous secret of {robot.full_name(rt.robots.prefix)} and its refresh tokens "
        "no longer work"
    )
    return EXIT_OK


async def robot_update(rt: Runtime, args: argparse.Namespace) -> int:
    flags = getattr(args, "entries", None) or []
    if not flags and args.secret_login is None and args.token_lifetime is None:
        raise UsageError("robot update: give --secret-login, --token-lifetime or --permission")
    seconds = _token_lifetime_within(rt, args.token_lifetime)
    if flags:
        robot = await rt.robots.get(LOCAL, args.robot)
        if robot.project_name is None:
            raise UsageError(
                "--permission: a system robot's permissions are changed with the API "
                "(PUT /api/v2.0/robots/{id})"
            )
        if not any(flag != "repository" for flag, _ in flags):
            raise UsageError("--repository: give it after the --permission flags it limits")
        spec = RobotSpec(
            name=robot.name,
            level=robot.level,
            permissions=_entries(robot.project_name, flags),
            duration=None,
            description=robot.description,
            disable=robot.disabled,
            token_lifetime=seconds,
        )
        robot = await rt.robots.update(LOCAL, args.robot, spec)
        _say(f"replaced the permissions of {robot.full_name(rt.robots.prefix)}")
    elif seconds is not None:
        robot = await rt.robots.set_token_lifetime(LOCAL, args.robot, seconds)
    if seconds is not None:
        name = robot.full_name(rt.robots.prefix)
        lasting = _tokens_cell(robot.token_lifetime, rt.robots.lifetimes).removeprefix("tokens ")
        _say(f"the tokens of {name} last {lasting} from its next token on")
    if args.secret_login is not None:
        enabled = {"on": True, "off": False}[args.secret_login]
        robot = await rt.robots.set_secret_login(LOCAL, args.robot, enabled)
        name = robot.full_name(rt.robots.prefix)
        if robot.secret_login:
            _say(f"the secret of {name} logs it in again (refresh it if it may have leaked)")
        else:
            _say(f"the secret of {name} no longer logs it in: only its federation rules do; "
                 "its refresh tokens from secret logins have ended")  # fmt: skip
    return EXIT_OK


# ---- robot federation ------------------------------------------------------------------------


def _readable(text: str, flag: str) -> str:
    """The absolute path of the file `flag` names, which the server will read; UsageError
    naming the flag if this process cannot read it."""
    path = os.path.abspath(text)
    try:
        with open(path, "rb"):
            pass
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not a file name"
        raise UsageError(f"{flag} {printable(text)}: cannot read it: {reason}") from None
    return path


def _lifetime(text: str) -> int:
    try:
        seconds = int(text)
        return check_max_token_lifetime(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds ({MIN_TOKEN_LIFETIME} to {MAX_TOKEN_LIFETIME}), got {text!r}"
        ) from None
    except BadRequest as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _issuer_row(issuer: Issuer) -> None:
    keys = f"jwks {issuer.jwks_file}" if issuer.jwks_file else "keys from discovery"
    _row(issuer.name, issuer.url, ",".join(issuer.audiences),
         f"max {issuer.max_token_lifetime} s", keys)  # fmt: skip


async def federation_issuer_add(rt: Runtime, args: argparse.Namespace) -> int:
    spec = IssuerSpec(
        name=args.name,
        url=args.issuer,
        audiences=tuple(args.audience),
        jwks_file=None if args.jwks_file is None else _readable(args.jwks_file, "--jwks-file"),
        ca_file=None if args.ca_file is None else _readable(args.ca_file, "--ca-file"),
        max_token_lifetime=args.max_token_lifetime,
    )
    issuer = await rt.federation.add_issuer(LOCAL, spec)
    _say(f"added issuer {issuer.name} ({issuer.url}); robots' rules may name it now")
    _out(issuer_json(issuer))
    return EXIT_OK


async def federation_issuer_list(rt: Runtime, args: argparse.Namespace) -> int:
    issuers = await rt.federation.list_issuers(LOCAL)
    if args.json:
        _out([issuer_json(i) for i in issuers])
    else:
        for issuer in issuers:
            _issuer_row(issuer)
    return EXIT_OK


async def federation_issuer_remove(rt: Runtime, args: argparse.Namespace) -> int:
    issuer = await rt.federation.remove_issuer(LOCAL, args.name)
    _say(f"removed issuer {issuer.name}; its tokens log no robot in")
    return EXIT_OK


def _claims_cell(rule: FederationRule) -> str:
    return " ".join(f"{c.claim}={'|'.join(c.patterns)}" for c in rule.conditions)


async def robot_federation_add(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        claims = claims_from_pairs(args.claim)
    except BadRequest as e:
        raise UsageError(f"--claim: {e.message}") from None
    spec = RuleSpec(args.issuer, claims)
    rule, warning = await rt.federation.add_rule(LOCAL, args.robot, spec)
    robot = await rt.robots.resolve(args.robot)
    _say(f"added rule {rule.id} to {robot.full_name(rt.robots.prefix)}; its refresh tokens "
         "from federated logins and its temporary secrets have ended")  # fmt: skip
    if warning is not None:
        _say(f"warning: rule {rule.id} (issuer {rule.issuer}): {warning}")
    _out(federation_rule_json(rule))
    return EXIT_OK


async def robot_federation_list(rt: Runtime, args: argparse.Namespace) -> int:
    found = await rt.federation.rules(LOCAL, args.robot)
    if args.json:
        _out(robot_federation_json(found.rules, found.warnings, found.temporary_secrets))
    else:
        for rule in found.rules:
            _row(str(rule.id), rule.issuer, _claims_cell(rule), iso_time(rule.created_at))
        for secret in found.temporary_secrets:
            who = secret.identity
            _row(f"secret {secret.id}", who.issuer, f"sub={who.sub}",
                 f"{iso_time(secret.created_at)} until {iso_time(secret.expires_at)}")  # fmt: skip
    for warning in found.warnings:
        _say(f"warning: {warning}")
    return EXIT_OK


async def robot_federation_remove(rt: Runtime, args: argparse.Namespace) -> int:
    robot = await rt.federation.remove_rule(LOCAL, args.robot, args.rule_id)
    _say(f"removed rule {args.rule_id} of {robot.full_name(rt.robots.prefix)}; its refresh "
         "tokens from federated logins and its temporary secrets have ended")  # fmt: skip
    return EXIT_OK


async def robot_federation_logins(rt: Runtime, args: argparse.Namespace) -> int:
    _, logins = await rt.federation.logins(LOCAL, args.robot)
    if args.json:
        _out([federation_login_json(login) for login in logins])
    else:
        for login in logins:
            who = login.identity
            _row(iso_time(login.at), who.issuer, who.sub, f"rule {who.rule_id}", who.repository,
                 who.ref, who.sha, who.run_id, who.jti)  # fmt: skip
    return EXIT_OK


async def robot_federation_failures(rt: Runtime, args: argparse.Namespace) -> int:
    _, failures = await rt.federation.failures(LOCAL, args.robot)
    if args.json:
        _out([federation_failure_json(f) for f in failures])
    else:
        for f in failures:
            _row(iso_time(f.at), f.issuer, f.subject, f.reason)
    return EXIT_OK


def _webhook_scope(args: argparse.Namespace) -> str | None:
    """The project a webhook command names (None: the system's policies)."""
    return None if args.system else str(args.project)


_NOT_UTF8 = "not valid UTF-8 (bytes no database can hold)"


def _utf8(text: str) -> str:
    """A text argument, refused (exit 2, argparse naming the flag) if it holds bytes that
    are not UTF-8: Python hands them over as lone surrogates, which cannot be stored."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise argparse.ArgumentTypeError(_NOT_UTF8) from None
    return text


def _webhook_address(text: str) -> str:
    try:
        return check_address(_utf8(text))
    except BadRequest as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _auth_header(value: str | None) -> str:
    if value is None:
        return ""
    if value != "-":
        raise UsageError(
            "--auth-header takes only '-' (read the header from stdin): a credential on the "
            "command line is visible to other users in ps and stays in shell history"
        )
    try:
        return _utf8(_read_secret("-"))
    except (UnicodeDecodeError, argparse.ArgumentTypeError):
        # NOTE: never the header itself in the message: it is a credential.
        raise UsageError(f"--auth-header: the line read from stdin is {_NOT_UTF8}") from None


async def webhook_add(rt: Runtime, args: argparse.Namespace) -> int:
    spec = PolicySpec(
        name=args.name,
        targets=(TargetSpec(args.address, _auth_header(args.auth_header), args.skip_cert_verify),),
        event_types=tuple(args.event or EVENT_TYPES),
        description=args.description,
        enabled=not args.disabled,
    )
    policy = await rt.webhooks.create(LOCAL, _webhook_scope(args), spec)
    where = "the system's robots" if policy.project_id is None else f"project {args.project}"
    _say(f"created webhook policy {policy.id} ({policy.name}) for {where}")
    _out(webhook_policy_json(policy))
    return EXIT_OK


async def webhook_list(rt: Runtime, args: argparse.Namespace) -> int:
    policies = await rt.webhooks.policies(LOCAL, _webhook_scope(args))
    if args.json:
        _out([webhook_policy_json(p) for p in policies])
    else:
        for p in policies:
            _row(str(p.id), p.name, "enabled" if p.enabled else "disabled",
                 " ".join(t.address for t in p.targets), ",".join(p.event_types))  # fmt: skip
    return EXIT_OK


async def webhook_switch(rt: Runtime, args: argparse.Namespace) -> int:
    enabled = args.webhook_command == "enable"
    policy = await rt.webhooks.set_enabled(
        LOCAL, await rt.webhooks.scope_of(args.id), args.id, enabled
    )
    _say(f"webhook policy {policy.id} ({policy.name}) is {'enabled' if enabled else 'disabled'}")
    return EXIT_OK


async def webhook_remove(rt: Runtime, args: argparse.Namespace) -> int:
    policy = await rt.webhooks.delete(LOCAL, await rt.webhooks.scope_of(args.id), args.id)
    _say(f"removed webhook policy {policy.id} ({policy.name}) and its deliveries")
    return EXIT_OK


async def webhook_deliveries(rt: Runtime, args: argparse.Namespace) -> int:
    size = args.page_size
    deliveries, _ = await rt.webhooks.deliveries(
        LOCAL, await rt.webhooks.scope_of(args.id), args.id, (args.page - 1) * size, size
    )
    if args.json:
        _out([webhook_execution_json(d) for d in deliveries])
    else:
        for d in deliveries:
            _row(str(d.id), iso_time(d.creation_time), d.event_type, d.status.value,
                 f"tries {d.attempts}", d.status_message, d.target.address)  # fmt: skip
    return EXIT_OK


async def keys_add(rt: Runtime, args: argparse.Namespace) -> int:
    record = await rt.keyring.add(LOCAL, args.algorithm)
    key = rt.keyring.load(record)
    _out({"id": record.id, "state": record.state.value, "kid": key.kid})
    _say("published; run 'tokenserver keys bundle' and restart the registry, then "
         f"'tokenserver keys activate {record.id}'")  # fmt: skip
    return EXIT_OK


async def keys_list(rt: Runtime, args: argparse.Namespace) -> int:
    records = await rt.keyring.keys()
    if not records:
        key = rt.keyring.load(None)
        _out([{"id": None, "state": "active", "kid": key.kid, "key": str(
            rt.settings.token.signing_key)}])  # fmt: skip
    else:
        retention = await rt.keyring.retention()
        _out([
            {"id": r.id, "state": r.state.value, "kid": rt.keyring.kid(r, retention),
             "key": str(rt.keyring.path(r.key_path)), "retired_at": r.retired_at,
             "published": rt.keyring.is_published(r, retention)}
            for r in records
        ])  # fmt: skip
    return EXIT_OK


async def keys_bundle(rt: Runtime, args: argparse.Namespace) -> int:
    if args.output:
        check_output_path(args.output, "--output", overwrite=True)
    target = Path(args.output) if args.output else rt.settings.token.certificate
    bundle = await rt.keyring.bundle()
    _replace_file(target, bundle, "--output" if args.output else "token.certificate")
    _say(f"wrote {bundle.count(b'BEGIN CERTIFICATE')} certificate(s) to {target}; "
         "restart the registry to load them")  # fmt: skip
    return EXIT_OK


def _require_in_bundle(rt: Runtime, record: KeyRecord | None) -> None:
    """Refuse to activate a key whose certificate is not in the bundle the registry loads
    (`token.certificate`): every token it signed would be refused until the registry has it."""
    if record is None:
        return  # the keyring says it does not exist
    bundle = rt.settings.token.certificate
    signing = rt.keyring.load(record)
    try:
        trusted = [c.public_bytes(serialization.Encoding.DER) for c in load_certificates(bundle)]
    except ConfigError:
        trusted = []
    if signing.certificate_der not in trusted:
        raise UsageError(
            f"key {record.id} is not in the bundle {bundle} (token.certificate), so the "
            "registry would refuse every token it signs: run 'tokenserver keys bundle' and "
            "restart the registry first (with a JWKS, 'tokenserver keys jwks' and reload it), "
            "then activate; --force activates it anyway"
        )


async def keys_activate(rt: Runtime, args: argparse.Namespace) -> int:
    if not args.force:
        _require_in_bundle(rt, next((r for r in await rt.keyring.keys() if r.id == args.id), None))
    await rt.keyring.activate(LOCAL, args.id)
    _say(f"key {args.id} signs from now on (running servers switch within seconds)")
    return EXIT_OK


async def keys_retire(rt: Runtime, args: argparse.Namespace) -> int:
    until = await rt.keyring.retire(LOCAL, args.id)
    rule = await rt.keyring.retention()
    _say(f"key {args.id} retired; 'keys bundle' and 'keys jwks' leave it out once {rule.seconds} "
         f"s have passed ({rule.source} {rule.lifetime} s + {rule.leeway} s leeway), at "
         f"{iso_time(until)}; write them again then and restart the registry")  # fmt: skip
    return EXIT_OK


async def keys_jwks(rt: Runtime, args: argparse.Namespace) -> int:
    if args.output:
        check_output_path(args.output, "--output", overwrite=True)
    text = json.dumps(await rt.keyring.jwks(), indent=2) + "\n"
    if args.output:
        _replace_file(Path(args.output), text.encode(), "--output")
        _say(f"wrote {args.output}: set the registry's auth.token.jwks to it")
    else:
        print(text, end="", flush=True)
    return EXIT_OK


def cmd_import_harbor(args: argparse.Namespace) -> int:
    try:
        data = json.loads(Path(args.file).read_bytes())
    except OSError as e:
        raise UsageError(f"cannot read {args.file}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{args.file} is not valid JSON: {e}") from None
    plan = plan_import(data)

    async def action(rt: Runtime) -> int:
        report = await rt.harbor_import.run(LOCAL, plan, rt.projects.now())
        _out(dataclasses.asdict(report))
        _say(
            f"imported {report.projects_created} projects and {report.robots_created} robots "
            f"({report.projects_existing} projects and {report.robots_existing} robots existed)"
        )
        return EXIT_OK

    return _run(args, action)


def cmd_audit(args: argparse.Namespace) -> int:
    async def action(rt: Runtime) -> int:
        offset = (args.page - 1) * args.page_size
        entries, total = await rt.audit.list(LOCAL, offset, args.page_size)
        if args.json:
            _out([audit_json(e) for e in entries])
        else:
            for e in entries:
                _row(
                    iso_time(e.op_time),
                    truncate(e.operator, MAX_AUDIT_FIELD),
                    e.operation,
                    e.resource_type,
                    truncate(e.resource, MAX_AUDIT_FIELD),
                    e.outcome,
                )
        _say(f"{len(entries)} of {total} entries, newest first")
        return EXIT_OK

    return _run(args, action)


def _new_password(args: argparse.Namespace) -> str:
    """The password `user set-password` sets: a line of stdin with `--password -`, else asked
    twice on the terminal. Never an argument: `ps` and shell history would show it."""
    if args.password is not None:
        if args.password != "-":  # noqa: S105 (stdin, not a password)
            raise UsageError(
                "--password takes only '-' (read the password from stdin): a password on the "
                "command line is visible to other users in ps and stays in shell history"
            )
        return _read_secret("-")
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to ask for the password on: give it on stdin with --password -"
        )
    try:
        first = getpass.getpass(f"new password for {args.name!r}: ")
        again = getpass.getpass("the same again: ")
    except EOFError:
        raise UsageError("no password given; nothing changed") from None
    if first != again:
        raise UsageError("the two passwords differ; nothing changed")
    return first


def cmd_user_set_password(args: argparse.Namespace) -> int:
    password = _new_password(args)

    async def action(rt: Runtime) -> int:
        user = await rt.users.set_password(LOCAL, args.name, password)
        _say(f"password of {printable(repr(user.username))} set; the user's web sessions and "
             "refresh tokens have ended")  # fmt: skip
        return EXIT_OK

    return _run(args, action)


def cmd_user_create(args: argparse.Namespace) -> int:
    password = _new_password(args)

    async def action(rt: Runtime) -> int:
        user = await rt.users.create(
            LOCAL,
            args.name,
            password,
            email=args.email,
            realname=args.realname,
            comment=args.comment,
            sysadmin=args.sysadmin,
        )
        role = "system admin" if user.sysadmin else "user"
        _say(f"created {role} {printable(repr(user.username))}")
        _out(user_json(user))
        return EXIT_OK

    return _run(args, action)


async def user_list(rt: Runtime, args: argparse.Namespace) -> int:
    users = await rt.users.list(LOCAL)
    if args.json:
        _out([user_json(u) for u in users])
    else:
        for u in users:
            _row(str(u.id), u.username, "sysadmin" if u.sysadmin else "-", u.email)
    return EXIT_OK


async def user_set_sysadmin(rt: Runtime, args: argparse.Namespace) -> int:
    user = await rt.users.set_sysadmin(LOCAL, args.name, args.flag == "true")
    now = "now" if user.sysadmin else "no longer"
    _say(f"{printable(repr(user.username))} is {now} a system admin")
    return EXIT_OK


async def user_delete(rt: Runtime, args: argparse.Namespace) -> int:
    user = await rt.users.delete(LOCAL, args.name)
    _say(
        f"deleted user {printable(repr(user.username))} with its project memberships; its web "
        "sessions and refresh tokens have ended"
    )
    return EXIT_OK


def _permission_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """`--permission`, `--deny` and `--repository`, read in order (see `_entries`)."""
    allowed = ", ".join(f"{r}:{a}" for r, a in PROJECT_ROBOT_ACCESS)
    parser.set_defaults(entries=[])
    parser.add_argument(
        "--permission",
        action=_InOrder,
        dest="permission",
        required=required,
        metavar="RESOURCE:ACTION",
        help=f"allow; repeatable or comma-separated; one of: {allowed}",
    )
    parser.add_argument(
        "--deny",
        action=_InOrder,
        dest="deny",
        metavar="RESOURCE:ACTION",
        help="deny (a deny wins over any allow); repeatable or comma-separated",
    )
    parser.add_argument(
        "--repository",
        action=_InOrder,
        dest="repository",
        metavar="PATTERN",
        help="limit the entry made by the --permission/--deny flags before it to matching "
        "repositories, relative to the project: 'app' (exact), 'team-a/*' (one path segment), "
        "'team-a/**' (any depth below team-a), '**' (every one, the default); repeatable; a "
        "--permission or --deny after a --repository starts another entry",
    )


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if int(text) > MAX_ID:
        # NOTE: the databases' integers are 64 bits: SQLite raised OverflowError on such an id.
        raise argparse.ArgumentTypeError(f"{text} is larger than any id ({MAX_ID})")
    return int(text)


# ---- argument parsing ------------------------------------------------------------------------


def _token_lifetime(text: str) -> int:
    """`--token-lifetime`: seconds, or none/default (FOLLOW_GLOBAL); bounded by the
    configuration once it is read (`_token_lifetime_within`)."""
    if text in ("none", "default"):
        return FOLLOW_GLOBAL
    try:
        seconds = int(text)
    except ValueError:
        seconds = -1
    if not MIN_ROBOT_TOKEN_LIFETIME <= seconds <= LONGEST_TOKEN_LIFETIME:
        raise argparse.ArgumentTypeError(
            f"expected seconds ({MIN_ROBOT_TOKEN_LIFETIME} to token.max_lifetime) or none, "
            f"got {text!r}"
        )
    return seconds


_SPAN = {"s": 1, "m": 60, "h": 3600, "d": SECONDS_PER_DAY}


def _span(text: str) -> int:
    """A span of time: seconds, or a number with a unit, `90s`, `30m`, `24h`, `7d`."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _SPAN else (text, "s")
    if not (number.isascii() and number.isdigit()) or len(number) > 12:
        raise argparse.ArgumentTypeError(
            f"expected a span like 3600, 90s, 30m, 24h or 7d, got {text!r}"
        )
    return int(number) * _SPAN[unit]


def _keep_previous(text: str) -> int:
    seconds = _span(text)
    if not 1 <= seconds <= MAX_KEEP_PREVIOUS:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: 1s to 30d")
    return seconds


def _expiring(text: str) -> int:
    seconds = _span(text)
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: at least 1s")
    return seconds


def _k8s_flags(parser: argparse.ArgumentParser) -> None:
    """`--k8s-secret`, `--namespace`, `--registry`: a pull secret manifest instead of the
    export JSON."""
    parser.add_argument(
        "--k8s-secret",
        metavar="NAME",
        help="print (or write with --export) a Kubernetes Secret NAME of type "
        "kubernetes.io/dockerconfigjson holding the robot's name and new secret, instead of "
        "the export JSON",
    )
    parser.add_argument(
        "--namespace", metavar="NS", help="the Secret's namespace (with --k8s-secret)"
    )
    parser.add_argument(
        "--registry",
        metavar="HOST",
        help="the registry the Secret logs in to, host[:port] (with --k8s-secret; default: "
        "the host of server.realm)",
    )


def _duration(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of days (1 to {MAX_DURATION_DAYS}) or -1, got {text!r}"
        ) from None
    error = duration_error(days)
    if error is not None:
        raise argparse.ArgumentTypeError(error)
    return days


class _ConfigOption(argparse.Action):
    """`--config FILE`, before or after the command words. Every value given is kept in
    `given`: a subcommand's parser would otherwise put its default over a value given before
    the command (`tokenserver --config X init` used to ignore X)."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, *, given: list[str], **kwargs: Any
    ) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)
        self.given = given

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if not values:
            parser.error("--config needs a file name")
        self.given.append(str(values))


def _version() -> str:
    try:
        return importlib.metadata.version("tokenserver")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown: not installed)"


class _Commands:
    """Where subcommands are declared: each with its own handler, or a group of its own."""

    def __init__(
        self,
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
    ):
        self._sub = sub
        self._common = common

    def command(self, name: str, text: str, handler: Command) -> argparse.ArgumentParser:
        parser = self._sub.add_parser(name, parents=[self._common], help=text)
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, text: str) -> _Commands:
        parser = self._sub.add_parser(name, parents=[self._common], help=text)
        sub = parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")
        return _Commands(sub, self._common)


def build_parser() -> argparse.ArgumentParser:
    given: list[str] = []
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        action=_ConfigOption,
        given=given,
        metavar="FILE",
        help=f"config file, before or after the command (default: ${CONFIG_ENV}, else "
        f"./{DEFAULT_CONFIG}; --config wins over ${CONFIG_ENV}, and says so)",
    )
    parser = argparse.ArgumentParser(
        prog="tokenserver",
        description="Token service for OCI/Docker registries with Harbor-style robot accounts.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(config_given=given)
    commands = _Commands(
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), common
    )

    init = commands.command(
        "init", "write a config if none exists, create keys and database", cmd_init
    )
    init.add_argument("--listen", metavar="HOST:PORT", help="address to serve on")
    init.add_argument("--realm", metavar="URL", help="public URL of /service/token")
    init.add_argument("--service", metavar="S", help="the registry's auth.token.service")
    init.add_argument("--issuer", metavar="I", help="the registry's auth.token.issuer")
    init.add_argument("--algorithm", choices=("ES256", "RS256"), help="signing algorithm")

    serve = commands.command("serve", "run the token server", cmd_serve)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT) and the database (default 1)",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    commands.command(
        "registry-config", "print the registry's auth.token block", cmd_registry_config
    )

    project = commands.group("project", "manage projects")
    p = project.command("create", "create a project", _on_runtime(project_create))
    p.add_argument("name")
    p.add_argument("--public", action="store_true", help="anyone may pull, even anonymously")
    p = project.command("list", "list projects", _on_runtime(project_list))
    p.add_argument("--json", action="store_true", help="print JSON")
    p = project.command("delete", "delete a project and its robots", _on_runtime(project_delete))
    p.add_argument("name")

    robot = commands.group("robot", "manage project robot accounts")
    r = robot.command("create", "create a robot; prints its secret once", _on_runtime(robot_create))
    r.add_argument("--project", required=True)
    r.add_argument("--name", required=True, help="short name; the full name is prefix+project+name")
    _permission_flags(r, required=True)
    r.add_argument(
        "--duration",
        type=_duration,
        default=DEFAULT_DURATION_DAYS,
        help=f"days until expiry, -1 for never (default {DEFAULT_DURATION_DAYS})",
    )
    r.add_argument("--description", default="")
    r.add_argument(
        "--token-lifetime",
        type=_token_lifetime,
        metavar="SECONDS",
        help=f"how long its registry tokens last ({MIN_ROBOT_TOKEN_LIFETIME} to "
        "token.max_lifetime); default: token.lifetime",
    )
    r.add_argument("--export", metavar="FILE", help="write the export JSON here (mode 0600)")
    _k8s_flags(r)
    r = robot.command("list", "list a project's robots", _on_runtime(robot_list))
    r.add_argument("--project", help="the project (required unless --expiring is given)")
    r.add_argument("--name", default="", help="only names containing this (without prefix)")
    r.add_argument(
        "--expiring",
        type=_expiring,
        metavar="SPAN",
        help="only enabled robots that have not expired and will within SPAN (7d, 24h, "
        "3600), soonest first; without --project, every project's and the system robots",
    )
    r.add_argument("--json", action="store_true", help="print Harbor's robot JSON")
    for name, text, action in (
        ("show", "show a robot as JSON", robot_show),
        ("disable", "disable a robot", robot_disable),
        ("enable", "enable a robot", robot_enable),
        ("delete", "delete a robot", robot_delete),
    ):
        r = robot.command(name, text, _on_robot(action))
        r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r = robot.command("refresh-secret", "replace a robot's secret", _on_robot(robot_refresh_secret))
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument(
        "--secret", help="set this secret instead of a random one ('-' reads it from stdin)"
    )
    r.add_argument(
        "--export",
        metavar="FILE",
        help="write the export JSON with the new secret here (mode 0600) instead of stdout",
    )
    r.add_argument(
        "--keep-previous",
        type=_keep_previous,
        metavar="SPAN",
        help="the old secret keeps working this long beside the new one (90s, 30m, 24h, 7d; "
        "at most 30d; never past the robot's expiry), with its refresh tokens",
    )
    _k8s_flags(r)
    r = robot.command(
        "revoke-previous-secret",
        "end the old secret a refresh with --keep-previous kept, now",
        _on_robot(robot_revoke_previous_secret),
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r = robot.command(
        "refresh-tokens",
        "list a robot's refresh tokens (ids, clients)",
        _on_robot(robot_refresh_tokens),
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--json", action="store_true", help="print JSON")
    r = robot.command(
        "revoke-refresh-tokens",
        "revoke a robot's refresh tokens",
        _on_robot(robot_revoke_refresh_tokens),
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--id", type=_positive, help="revoke only this one (default: all)")
    r = robot.command("update", "change a robot's settings", _on_robot(robot_update))
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    _permission_flags(r, required=False)
    r.add_argument(
        "--secret-login",
        choices=("on", "off"),
        help="whether the robot's secret logs it in; off: only its federation rules do "
        "(a robot without rules keeps it on)",
    )
    r.add_argument(
        "--token-lifetime",
        type=_token_lifetime,
        metavar="SECONDS",
        help=f"how long its registry tokens last from its next token on ({MIN_ROBOT_TOKEN_LIFETIME}"
        " to token.max_lifetime); none or default: token.lifetime",
    )
    federated = robot.group(
        "federation", "which workloads' OIDC ID tokens log a robot in, instead of its secret"
    )
    r = federated.command(
        "add", "add a rule: tokens of ISSUER whose claims match", _on_robot(robot_federation_add)
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--issuer", required=True, metavar="NAME", help="a trusted issuer's name")
    r.add_argument(
        "--claim",
        action="append",
        required=True,
        metavar="KEY=PATTERN",
        help="the claim KEY (a.b reaches a nested claim) matches PATTERN (exact, or a glob: "
        "*, ?, [...]); every KEY must match; a KEY given several times matches any of its "
        "patterns",
    )
    r = federated.command(
        "list", "a robot's rules: id, issuer, claims", _on_robot(robot_federation_list)
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--json", action="store_true", help="print the API's JSON")
    r = federated.command("remove", "remove one rule", _on_robot(robot_federation_remove))
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("rule_id", type=_positive, metavar="RULE_ID")
    r = federated.command(
        "logins",
        "a robot's newest federated logins, one per ID token: time, issuer, subject, rule, "
        "repository, ref, commit, run, jti",
        _on_robot(robot_federation_logins),
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--json", action="store_true", help="print the API's JSON")
    r = federated.command(
        "failures",
        "a robot's newest refused federated logins: time, issuer, subject, reason",
        _on_robot(robot_federation_failures),
    )
    r.add_argument("robot", help="id, full name, or PROJECT+NAME")
    r.add_argument("--json", action="store_true", help="print the API's JSON")

    webhook = commands.group(
        "webhook", "webhook policies: robot events POSTed to a receiver, with their deliveries"
    )
    w = webhook.command("add", "create a webhook policy", _on_runtime(webhook_add))
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--project", type=_utf8, metavar="PROJECT", help="the project's robots (name or id)"
    )
    where.add_argument("--system", action="store_true", help="the system robots")
    w.add_argument(
        "--name", type=_utf8, required=True, help="the policy's name, unique in its project"
    )
    w.add_argument(
        "--address",
        required=True,
        type=_webhook_address,
        metavar="URL",
        help="http:// or https:// URL the events are POSTed to (redirects are not followed)",
    )
    w.add_argument(
        "--event",
        action="append",
        choices=EVENT_TYPES,
        metavar="TYPE",
        help=f"an event type to send (repeatable; default all: {', '.join(EVENT_TYPES)})",
    )
    w.add_argument(
        "--auth-header",
        metavar="-",
        help="read the Authorization header to send from stdin",
    )
    w.add_argument(
        "--skip-cert-verify", action="store_true", help="do not check the receiver's certificate"
    )
    w.add_argument("--description", type=_utf8, default="")
    w.add_argument("--disabled", action="store_true", help="create it disabled")
    w = webhook.command("list", "a project's (or the system's) policies", _on_runtime(webhook_list))
    where = w.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", type=_utf8, metavar="PROJECT", help="name or id")
    where.add_argument("--system", action="store_true", help="the system's policies")
    w.add_argument("--json", action="store_true", help="print Harbor's WebhookPolicy JSON")
    for name, text in (("enable", "send events again"), ("disable", "stop sending events")):
        w = webhook.command(name, text, _on_runtime(webhook_switch))
        w.add_argument("id", type=_positive, metavar="POLICY_ID")
    w = webhook.command("remove", "delete a policy and its deliveries", _on_runtime(webhook_remove))
    w.add_argument("id", type=_positive, metavar="POLICY_ID")
    w = webhook.command(
        "deliveries",
        "a policy's deliveries, newest first: id, time, event, status, tries, last outcome",
        _on_runtime(webhook_deliveries),
    )
    w.add_argument("id", type=_positive, metavar="POLICY_ID")
    w.add_argument("--page", type=_positive, default=1)
    w.add_argument("--page-size", type=_positive, default=50)
    w.add_argument("--json", action="store_true", help="print Harbor's Execution JSON")

    federation = commands.group(
        "federation", "robot federation: the OIDC issuers robots may log in with"
    )
    issuer = federation.group("issuer", "the OIDC issuers the system admin trusts")
    f = issuer.command("add", "trust an OIDC issuer", _on_runtime(federation_issuer_add))
    f.add_argument("name", help="its name in rules: lower-case letters, digits, '.', '_', '-'")
    f.add_argument(
        "--issuer",
        required=True,
        metavar="URL",
        help="its URL, exactly as its tokens' iss says (https://, or http:// on loopback)",
    )
    f.add_argument(
        "--audience",
        action="append",
        required=True,
        metavar="AUD",
        help="an aud its tokens for this server carry (repeatable, 1 to 10)",
    )
    f.add_argument(
        "--jwks-file", metavar="FILE", help="its keys, when they cannot be fetched (a JWKS)"
    )
    f.add_argument(
        "--ca-file",
        metavar="FILE",
        help="the CA bundle of its HTTPS server (default: the system's)",
    )
    f.add_argument(
        "--max-token-lifetime",
        type=_lifetime,
        default=DEFAULT_MAX_TOKEN_LIFETIME,
        metavar="SECONDS",
        help="the longest its ID tokens may live, exp - iat (default "
        f"{DEFAULT_MAX_TOKEN_LIFETIME})",
    )
    f = issuer.command("list", "the trusted issuers", _on_runtime(federation_issuer_list))
    f.add_argument("--json", action="store_true", help="print the API's JSON")
    f = issuer.command(
        "remove",
        "stop trusting an issuer (refused while robots' rules use it)",
        _on_runtime(federation_issuer_remove),
    )
    f.add_argument("name")

    keys = commands.group("keys", "signing keys and their rotation")
    k = keys.command("add", "a new key, published but not signing", _on_runtime(keys_add))
    k.add_argument("--algorithm", choices=("ES256", "RS256"), help="default: token.algorithm")
    keys.command("list", "the keyring as JSON", _on_runtime(keys_list))
    k = keys.command(
        "bundle",
        "write the registry's rootcertbundle (every trusted key)",
        _on_runtime(keys_bundle),
    )
    k.add_argument("--output", metavar="FILE", help="default: token.certificate")
    for name, text, action in (
        ("activate", "sign with this key", keys_activate),
        ("retire", "stop trusting this key", keys_retire),
    ):
        k = keys.command(name, text, _on_runtime(action))
        k.add_argument("id", type=_positive)
        if name == "activate":
            k.add_argument(
                "--force",
                action="store_true",
                help="activate even if token.certificate (the bundle) lacks the key",
            )
    k = keys.command(
        "jwks", "print (or write) the JWKS file distribution 3.x reads", _on_runtime(keys_jwks)
    )
    k.add_argument("--output", metavar="FILE", help="write it to FILE instead of stdout")

    imp = commands.command(
        "import-harbor",
        "import projects and robots from a JSON export of Harbor's database",
        cmd_import_harbor,
    )
    imp.add_argument("file", help="the export (see README: Migration from Harbor)")

    audit = commands.command("audit", "show the audit log of management operations", cmd_audit)
    audit.add_argument("--page", type=_positive, default=1)
    audit.add_argument("--page-size", type=_positive, default=50)
    audit.add_argument("--json", action="store_true", help="print Harbor's audit-log JSON")

    user = commands.group("user", "manage users (of the API and the web page)")
    from_stdin = "read the password from stdin (default: ask for it twice on the terminal)"
    u = user.command("create", "create a user; the password is asked for", cmd_user_create)
    u.add_argument("name", help="the new user's name")
    u.add_argument("--password", metavar="-", help=from_stdin)
    u.add_argument("--email", default="")
    u.add_argument("--realname", default="")
    u.add_argument("--comment", default="")
    u.add_argument("--sysadmin", action="store_true", help="make the user a system admin")
    u = user.command("list", "list users", _on_runtime(user_list))
    u.add_argument("--json", action="store_true", help="print Harbor's user JSON")
    u = user.command(
        "set-password",
        "set a user's password, the old one unknown (e.g. a lost admin password)",
        cmd_user_set_password,
    )
    u.add_argument("name", help=f"the user's name, such as {ADMIN}")
    u.add_argument("--password", metavar="-", help=from_stdin)
    u = user.command(
        "set-sysadmin",
        "make a user a system admin (true) or not (false)",
        _on_runtime(user_set_sysadmin),
    )
    u.add_argument("name")
    u.add_argument("flag", choices=("true", "false"))
    u = user.command(
        "delete",
        "delete a user, its memberships, web sessions and refresh tokens",
        _on_runtime(user_delete),
    )
    u.add_argument("name")
    return parser


@functools.cache
def _built(build: Callable[[], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The parser `build` makes, made once per process: building it was most of the time of
    a short command run in-process, as the tests run hundreds (a process runs one)."""
    return build()


_PARSING = threading.Lock()


def main(argv: Sequence[str] | None = None, *, kdf_cost: KdfCost = DEFAULT_KDF_COST) -> int:
    """The `tokenserver` command. `kdf_cost` is the cost of the secret hashes it makes: the
    installed command always uses the default; tests that run it in-process pass a cheap one."""
    parser = _built(build_parser)
    # The parser's own list of the --config values given, filled while it parses (see
    # `_ConfigOption`): one parse at a time, each from an empty list, keeping its own copy.
    given: list[str] = parser.get_default("config_given")
    arguments = list(sys.argv[1:] if argv is None else argv)
    for i, word in enumerate(arguments):
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            # Python hands bytes that are not UTF-8 over as lone surrogates, which no
            # database and no terminal takes: refuse them here, for every command.
            flag = arguments[i - 1] if i and arguments[i - 1].startswith("-") else None
            where = f"argument {flag}" if flag else f"argument {i + 1}"
            parser.error(f"{where}: {_NOT_UTF8}")
    with _PARSING:
        given.clear()
        args = parser.parse_args(argv)
        args.config_given = list(given)
    args.kdf_cost = kdf_cost
    try:
        args.config, args.config_source = _choose_config(args.config_given)
    except UsageError as e:
        parser.error(str(e))
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:  # declared without a handler: an error, never another command
        words = [args.command, getattr(args, f"{args.command}_command", None)]
        parser.error(f"{' '.join(w for w in words if w)}: no such command")
    try:
        return handler(args)
    except (ConfigError, StorageError, UsageError) as e:
        _say(f"tokenserver: {e}")
        return EXIT_USAGE
    except TokenServerError as e:
        _say(f"tokenserver: {e.message}")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`| head`): stop quietly, as other commands do.
        # NOTE: stdout is pointed at /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
