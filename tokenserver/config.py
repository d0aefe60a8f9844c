"""Settings: one TOML file, `TOKENSERVER_<SECTION>_<KEY>` environment overrides, every key
validated at start with a message naming the dotted key.

A key is declared once, as a field of its section's dataclass (`TokenSettings.lifetime` is
token.lifetime, read as `settings.token.lifetime`) with its default, validator and comment;
loading, the environment variables' names and the written config derive from that. To add
a key, add the field, then write config/tokenserver.example.toml anew: it is `render_config()`
(tests/unit/test_config.py holds them equal) — and list the key in the README's table."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from tokenserver.domain.lifetimes import LONGEST_TOKEN_LIFETIME, MIN_ROBOT_TOKEN_LIFETIME
from tokenserver.domain.pull_secrets import registry_error
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost
from tokenserver.domain.text import escape
from tokenserver.errors import ConfigError

ENV_PREFIX = "TOKENSERVER_"
# Every TOKENSERVER_ variable that is not a config key (TOKENSERVER_<SECTION>_<KEY>): any other
# is refused, as an unknown key in the file is, so that a misspelt override cannot pass silently.
CONFIG_ENV = "TOKENSERVER_CONFIG"
ADMIN_PASSWORD_ENV = "TOKENSERVER_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
OTHER_VARIABLES: Mapping[str, str] = {
    CONFIG_ENV: "the config file, when --config is not given",
    ADMIN_PASSWORD_ENV: "the password 'tokenserver init' gives the system admin it creates",
}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALGORITHMS = ("ES256", "RS256")
LOG_LEVELS = ("debug", "info", "warning", "error")


# ---- validators: each returns the value or raises ValueError with the reason -------------


def _int(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return check


def _database_url(value: Any) -> str:
    """ "", sqlite:///path or postgresql://... (never echoed: it may hold a password)."""
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError("must start with postgresql://, postgres:// or sqlite:///")
    if value.startswith("sqlite:///") and not value.removeprefix("sqlite:///"):
        raise ValueError("sqlite:/// needs a file path")
    return value


def _text(*, allow_empty: bool = False, forbidden: str = "") -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if not value and not allow_empty:
            raise ValueError("must not be empty")
        if any(c in value for c in forbidden) or any(c.isspace() for c in value):
            also = f" or any of {forbidden!r}" if forbidden else ""
            raise ValueError(f"must not contain whitespace{also}, got {value!r}")
        return value

    return check


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"expected true or false, got {value!r}")


def _networks(value: Any) -> tuple[Network, ...]:
    """A list of CIDRs, or one string of them separated by commas or spaces (as an
    environment variable gives it); a bare address is a /32 or /128."""
    if isinstance(value, str):
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"expected a list of CIDRs, got {value!r}")
    networks: list[Network] = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            network: Network = item
        elif isinstance(item, str):
            try:
                network = ipaddress.ip_network(item.strip())
            except ValueError as e:
                raise ValueError(f"{item!r} is not a CIDR: {e}") from None
        else:
            raise ValueError(f"expected CIDR strings, got {item!r}")
        if network.prefixlen == 0:
            # NOTE: trusting every peer lets any client choose the address its failures
            # are counted under.
            raise ValueError(f"{network} trusts every client's headers; list only your proxies")
        networks.append(network)
    return tuple(networks)


def _registry(value: Any) -> str:
    text = _text(allow_empty=True)(value)
    if text and (error := registry_error(text)) is not None:
        raise ValueError(error)
    return text


def _url(value: Any) -> str:
    text = _text(allow_empty=True)(value)
    if text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    return text


# ---- the declaration: one frozen dataclass per config section, one field per key ----------
# A field's metadata holds the key's default (as written in the file), its validator and its
# comment: the schema, the environment variables, render_config and the example config all
# derive from these classes. Sections and keys are declared in the order of the written file.


@dataclass(frozen=True, slots=True)
class Key:
    """A config key: `default` as written in the file, `check` returns the value or raises
    ValueError with the reason, `comment` heads it in the written file. A `path` key names a
    file relative to the config file's directory, resolved to an absolute Path (empty: None)."""

    default: Any
    check: Callable[[Any], Any]
    comment: str
    path: bool = False


class _Section:
    """The base of each config section's dataclass: an attribute of Settings of such a type
    is a section, its name the section's."""

    __slots__ = ()


def _key(default: Any, check: Callable[[Any], Any], comment: str, *, path: bool = False) -> Any:
    return field(metadata={Key: Key(default, check, comment, path)})


@dataclass(frozen=True, slots=True)
class ServerSettings(_Section):
    host: str = _key("127.0.0.1", _text(), "Address to listen on.")
    port: int = _key(8080, _int(1, 65535), "TCP port to listen on.")
    # Never empty once loaded: the default is derived from host, port and TLS.
    realm: str = _key(
        "",
        _url,
        "Public URL of the token endpoint, as clients reach it; the registry sends clients here.\n"
        'Empty means "http://<host>:<port>/service/token".',
    )
    registry: str = _key(
        "",
        _registry,
        "Where clients reach the registry (host[:port], as docker login takes it): the\n"
        "registry of the Kubernetes pull secrets `robot create --k8s-secret` and the web page\n"
        "make. Empty: the host of realm (Harbor's layout: registry and token service share a\n"
        "name).",
    )
    tls_certificate: Path | None = _key(
        "",
        _text(allow_empty=True),
        "Serve HTTPS with this certificate chain (PEM) and tls_key; relative to this file.\n"
        "Empty serves plain HTTP.",
        path=True,
    )
    tls_key: Path | None = _key(
        "", _text(allow_empty=True), "The TLS private key (PEM).", path=True
    )
    allow_plain_http: bool = _key(
        False,
        _boolean,
        "Plain HTTP on an address other than loopback sends secrets in clear: it is refused\n"
        "unless this is true (behind a TLS-terminating proxy), and then logged as a warning.",
    )
    trusted_proxies: tuple[Network, ...] = _key(
        (),
        _networks,
        'Reverse proxies in front of tokenserver, as CIDRs (e.g. ["127.0.0.1/32", "10.0.0.0/24"];\n'
        "as an environment variable, separated by commas). When the TCP peer is one of them,\n"
        "the client is the right-most address of forwarded_header that is not one of them:\n"
        "lockouts and logs use it, and X-Forwarded-Proto: https (Forwarded: proto=https) makes\n"
        "the web session cookie Secure. From any other peer these headers are ignored.\n"
        "Empty: no proxy is trusted.",
    )
    forwarded_header: str = _key(
        "x-forwarded-for",
        _choice("x-forwarded-for", "forwarded"),
        "The header your proxies set: x-forwarded-for (with X-Forwarded-Proto; nginx's\n"
        "$proxy_add_x_forwarded_for) or forwarded (RFC 7239). Only that one is read: a proxy\n"
        "passes the other on from the client unchanged.",
    )
    event_loop: str = _key(
        "auto",
        _choice("auto", "uvloop", "asyncio"),
        "The event loop `serve` runs on: uvloop (faster; installed with tokenserver on Linux\n"
        "and macOS), asyncio (the standard library's), or auto: uvloop where it is installed,\n"
        "else asyncio. uvloop where it is not installed stops the server at start.",
    )

    @property
    def registry_host(self) -> str:
        """Where clients find the registry: `registry`, else the realm's host, as in Harbor's
        layout, where the registry and its token service share one name (the token service
        alone cannot know where the registry is)."""
        return self.registry or urlsplit(self.realm).netloc


@dataclass(frozen=True, slots=True)
class TokenSettings(_Section):
    service: str = _key(
        "registry",
        _text(),
        "Audience of the tokens: must equal the registry's auth.token.service.",
    )
    issuer: str = _key(
        "tokenserver",
        _text(),
        "Issuer of the tokens: must equal the registry's auth.token.issuer.",
    )
    lifetime: int = _key(1800, _int(60, 86400), "Token lifetime in seconds (60 .. 86400).")
    max_lifetime: int = _key(
        86400,
        _int(MIN_ROBOT_TOKEN_LIFETIME, LONGEST_TOKEN_LIFETIME),
        "The longest a robot's own token_lifetime may make its tokens last, in seconds\n"
        f"({MIN_ROBOT_TOKEN_LIFETIME} .. {LONGEST_TOKEN_LIFETIME}, at least token.lifetime). "
        "Lowered below a robot's, that robot's\n"
        "tokens last this long from then on; what the robot shows as its own is kept.",
    )
    algorithm: str = _key(
        "ES256",
        _choice(*ALGORITHMS),
        "Signing algorithm: ES256 (P-256, fast) or RS256 (RSA-2048).",
    )
    kid_format: str = _key(
        "libtrust",
        _choice("libtrust", "thumbprint"),
        'The JWT header\'s kid: "libtrust" (distribution 2.x matches it against its\n'
        'rootcertbundle) or "thumbprint" (RFC 7638, what distribution 3.x matches against the\n'
        "bundle or a JWKS file; see 'tokenserver keys jwks').",
    )
    x5c: bool = _key(
        False,
        _boolean,
        "Also send the certificate in an x5c header. Both 2.8 and 3.x try x5c first, so x5c\n"
        "with either kid works for both; it adds about 500 bytes to every token.",
    )
    refresh_token_idle_days: int = _key(
        90,
        _int(1, 36500),
        "A refresh token (what docker login keeps instead of the password) unused for this\n"
        "many days stops working (1 .. 36500). Uses are recorded at most once an hour, so it\n"
        "may last up to an hour longer.",
    )
    signing_key: Path = _key(
        "keys/token.key",
        _text(),
        "Private signing key (PEM, mode 0600); relative paths are relative to this file.\n"
        "It signs until the first 'tokenserver keys add'; then the keyring decides.",
        path=True,
    )
    certificate: Path = _key(
        "keys/token.crt",
        _text(),
        "Certificate of the signing key: the registry's auth.token.rootcertbundle. After the\n"
        "first 'tokenserver keys add', 'keys bundle' writes every trusted certificate here.",
        path=True,
    )


@dataclass(frozen=True, slots=True)
class RobotsSettings(_Section):
    name_prefix: str = _key(
        "robot$",
        _text(forbidden=":+/"),
        "Prefix of every robot's full name, <prefix><project>+<name>. Not stored: changing it\n"
        "renames every robot. No user's name may read as a robot's under it: such users are\n"
        "refused at creation and, if created under another prefix, reported at start.",
    )


@dataclass(frozen=True, slots=True)
class DatabaseSettings(_Section):
    path: Path = _key(
        "tokenserver.db",
        _text(),
        "SQLite database file; relative paths are relative to this file.",
        path=True,
    )
    # Once loaded, a PostgreSQL URL or empty: a sqlite:/// URL has become `path`.
    url: str = _key(
        "",
        _database_url,
        "Database URL, overriding path: sqlite:///relative/file.db, sqlite:////absolute/file.db,\n"
        "or postgresql://user:password@host:port/dbname (asyncpg; libpq parameters such as\n"
        "?sslmode=verify-full work) to run several replicas on one PostgreSQL. Prefer the\n"
        "TOKENSERVER_DATABASE_URL environment variable to a password in this file.",
    )
    pool_size: int = _key(
        10, _int(1, 1000), "PostgreSQL only: most connections each server process opens."
    )


@dataclass(frozen=True, slots=True)
class SecuritySettings(_Section):
    verify_cache_size: int = _key(
        10000,
        _int(0, 10_000_000),
        "Successful secret verifications kept in memory (0 disables the cache).",
    )
    verify_cache_ttl: int = _key(
        300,
        _int(0, 86400),
        "Seconds a cached verification is trusted. A changed secret, a disabled, expired or\n"
        "deleted robot is refused at once whatever this says.",
    )
    lockout_threshold: int = _key(
        10,
        _int(1, 1_000_000),
        "Failed authentications of one account from one address before 429 (scores halve\n"
        "every 5 minutes; identical retries within 5 s count once).",
    )
    lockout_address_threshold: int = _key(
        100,
        _int(1, 1_000_000),
        "Failed authentications from one address, whatever the account, before 429.",
    )
    lockout_max_seconds: int = _key(
        900,
        _int(1, 86400),
        "Longest Retry-After: past the threshold the wait doubles with every failure up to it.",
    )
    project_creation_restriction: str = _key(
        "everyone",
        _choice("everyone", "adminonly"),
        "Who may create projects, as Harbor's setting of that name: everyone (any user, who\n"
        "becomes its projectAdmin, and any system robot) or adminonly (system admins, and\n"
        "system robots granted project:create). Project robots never may.",
    )


@dataclass(frozen=True, slots=True)
class WebSettings(_Section):
    enabled: bool = _key(
        True,
        _boolean,
        "Serve the Robot Accounts web page at / (it uses only the /api/v2.0 endpoints).",
    )
    session_lifetime: int = _key(
        28800,
        _int(60, 30 * 86400),
        "Seconds a web login lasts (an HttpOnly, SameSite=Strict cookie); a password change\n"
        "ends the user's sessions at once.",
    )


@dataclass(frozen=True, slots=True)
class FederationSettings(_Section):
    session_lifetime: int = _key(
        3600,
        _int(60, 86400),
        "Robots with federation rules log in with a workload's OIDC ID token (a CI job's, a\n"
        "pod's). Seconds a refresh token from such a login, and a temporary robot secret from\n"
        "a token exchange, keep working (60 .. 86400), so that no runner keeps a long-lived\n"
        "credential; a change of the robot's rules ends them at once.",
    )


@dataclass(frozen=True, slots=True)
class LogSettings(_Section):
    level: str = _key("info", _choice(*LOG_LEVELS), "Log level: debug, info, warning or error.")
    format: str = _key(
        "text",
        _choice("text", "json"),
        "Log lines as text, or as one JSON object per line. Every request is logged by\n"
        "tokenserver.access with its request id (X-Request-Id, echoed in the response).",
    )


@dataclass(frozen=True, slots=True)
class LegacySettings(_Section):
    verification_key: Path | None = _key(
        "",
        _text(allow_empty=True),
        "Legacy (pre-Harbor 2.2) robot$<name> accounts log in with a JWT signed by the old\n"
        "Harbor's token key: the PEM public key or certificate of that key, relative to this\n"
        "file. Empty disables legacy robots.",
        path=True,
    )


@dataclass(frozen=True, slots=True)
class WebhooksSettings(_Section):
    secret_key: Path = _key(
        "keys/webhook.key",
        _text(),
        "Key that seals the webhook targets' auth headers in the database (AES-256-GCM): 32\n"
        "random bytes in base64, mode 0600, relative to this file; made by 'tokenserver init'\n"
        "or on first use, never overwritten. Back it up with the database (without it the\n"
        "stored headers are lost: they must be entered again); every replica needs the same.",
        path=True,
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """The loaded configuration: one attribute per config section (`settings.token.lifetime`
    is the key token.lifetime), with paths absolute and the realm resolved."""

    config_path: Path
    server: ServerSettings
    token: TokenSettings
    robots: RobotsSettings
    database: DatabaseSettings
    security: SecuritySettings
    web: WebSettings
    federation: FederationSettings
    log: LogSettings
    legacy: LegacySettings
    webhooks: WebhooksSettings
    # The cost of new secret hashes. NOTE: deliberately no config key (no file, no environment
    # variable): a deployment always hashes at DEFAULT_KDF_COST. Tests that are not about
    # hashing build Settings with a cheap cost, which is most of the suite's time otherwise.
    kdf_cost: KdfCost = DEFAULT_KDF_COST

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes`: attributes (kdf_cost=...) or loaded config values by key,
        `.` spelt `__` (token__lifetime=600, legacy__verification_key=None)."""
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            section, dotted, key = name.partition("__")
            if dotted:
                sections.setdefault(section, {})[key] = value
            else:
                top[name] = value
        for section, values in sections.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)


_SECTIONS: dict[str, type[Any]] = {
    name: kind
    for name, kind in get_type_hints(Settings).items()
    if isinstance(kind, type) and issubclass(kind, _Section)
}
# (section, key, declaration): the order of the written config file.
_SCHEMA: tuple[tuple[str, str, Key], ...] = tuple(
    (section, f.name, f.metadata[Key])
    for section, kind in _SECTIONS.items()
    for f in dataclasses.fields(kind)
)


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override from the environment and validate; raise ConfigError naming the key."""
    try:
        with path.open("rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"config file {path} not found") from None
    except OSError as e:
        raise ConfigError("", f"cannot read config file {path}: {e.strerror}") from None
    return parse_settings(data, path, environ)


def environment_variables() -> list[str]:
    """Every TOKENSERVER_ variable tokenserver reads: the config keys', then OTHER_VARIABLES."""
    return [env_name(s, k) for s, k, _ in _SCHEMA] + list(OTHER_VARIABLES)


def check_environment(environ: Mapping[str, str]) -> None:
    """Raise ConfigError naming every TOKENSERVER_ variable (in any case: the names are
    case-sensitive) that is neither a config key nor one of OTHER_VARIABLES, with the name
    probably meant."""
    known = environment_variables()
    unknown = sorted(
        name for name in environ if name.upper().startswith(ENV_PREFIX) and name not in known
    )
    if not unknown:
        return
    named = []
    for name in unknown:
        meant = _meant(name[len(ENV_PREFIX) :].upper(), [k[len(ENV_PREFIX) :] for k in known])
        # NOTE: a variable's name can hold any character but '=': escaped, like a log field.
        named.append(
            f"{escape(name)} (did you mean {ENV_PREFIX}{meant}?)" if meant else escape(name)
        )
    raise ConfigError(
        "",
        f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(named)}: "
        f"the {ENV_PREFIX} variables are the config keys, {ENV_PREFIX}<SECTION>_<KEY>, and "
        f"{', '.join(OTHER_VARIABLES)}",
    )


def _meant(word: str, words: list[str]) -> str | None:
    """The one of `words` probably meant by `word` (after the common prefix, which would make
    any two names look alike): a close spelling, else the only one `word` ends (PORT:
    SERVER_PORT)."""
    close = difflib.get_close_matches(word, words, n=1)
    if close:
        return close[0]
    ending = [w for w in words if w.endswith(f"_{word}")]
    return ending[0] if len(ending) == 1 else None


def parse_settings(data: bytes, path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """`load_settings` of a config file's content `data`, as if read from `path`."""
    environ = os.environ if environ is None else environ
    check_environment(environ)
    try:
        document = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("", f"{path} is not valid TOML: {e}") from None

    known = {(s, k) for s, k, _ in _SCHEMA}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(section, "expected a [section] table")
        for key in table:
            if (section, key) not in known:
                raise ConfigError(f"{section}.{key}", "unknown key")

    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    for section, key, declared in _SCHEMA:
        dotted = f"{section}.{key}"
        raw = document.get(section, {}).get(key, declared.default)
        source = dotted
        if env_name(section, key) in environ:
            raw = environ[env_name(section, key)]
            source = f"{dotted} (from {env_name(section, key)})"
        try:
            values[section][key] = declared.check(raw)
        except ValueError as e:
            raise ConfigError(source, str(e)) from None

    # Values that depend on others or on the file's place, resolved here and only here.
    server, database = values["server"], values["database"]
    token = values["token"]
    if token["max_lifetime"] < token["lifetime"]:
        raise ConfigError(
            "token.max_lifetime",
            f"must be at least token.lifetime ({token['lifetime']}), got {token['max_lifetime']}",
        )
    if bool(server["tls_certificate"]) != bool(server["tls_key"]):
        raise ConfigError("server.tls_key", "set both tls_certificate and tls_key, or neither")
    if not server["realm"]:
        scheme = "https" if server["tls_certificate"] else "http"
        server["realm"] = f"{scheme}://{_url_host(server['host'])}:{server['port']}/service/token"
    if database["url"].startswith("sqlite:///"):
        database["path"], database["url"] = database["url"].removeprefix("sqlite:///"), ""
    base = path.resolve().parent
    for section, key, declared in _SCHEMA:
        if declared.path:
            name = values[section][key]
            values[section][key] = base / name if name else None
    return Settings(
        config_path=path.resolve(),
        **{section: kind(**values[section]) for section, kind in _SECTIONS.items()},
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(str(item)) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def render_config(overrides: Mapping[str, Any] | None = None) -> str:
    """A complete, commented config file: defaults, with `overrides` by dotted key. Raises
    ConfigError naming the key of an invalid override."""
    overrides = overrides or {}
    lines = [
        "# tokenserver configuration. Every key may be overridden by an environment variable",
        "# TOKENSERVER_<SECTION>_<KEY>, e.g. TOKENSERVER_TOKEN_LIFETIME=600. Any other variable",
        "# named TOKENSERVER_... is refused, so that a misspelt one cannot pass silently, except",
        f"# {', '.join(OTHER_VARIABLES)}.",
    ]
    current = ""
    for section, key, declared in _SCHEMA:
        if section != current:
            lines += ["", f"[{section}]"]
            current = section
        try:
            value = declared.check(overrides.get(f"{section}.{key}", declared.default))
        except ValueError as e:
            raise ConfigError(f"{section}.{key}", str(e)) from None
        lines += [f"# {line}" for line in declared.comment.splitlines()]
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
