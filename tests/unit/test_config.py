from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from tokenserver.config import environment_variables, load_settings, render_config
from tokenserver.domain.secrets import DEFAULT_KDF_COST, KdfCost
from tokenserver.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokenserver.toml"
    path.write_text(text)
    return path


def test_example_config_is_the_default_config() -> None:
    assert (ROOT / "config" / "tokenserver.example.toml").read_text() == render_config()


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""), environ={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.realm == "http://127.0.0.1:8080/service/token"
    assert settings.token.lifetime == 1800
    assert settings.token.algorithm == "ES256"
    assert settings.robots.name_prefix == "robot$"
    assert settings.database.path == tmp_path / "tokenserver.db"
    assert settings.token.signing_key == tmp_path / "keys" / "token.key"


def test_every_key_of_the_rendered_config_loads(tmp_path: Path) -> None:
    text = render_config({"server.port": 9000, "token.algorithm": "RS256"})
    settings = load_settings(_write(tmp_path, text), environ={})
    assert settings.server.port == 9000
    assert settings.token.algorithm == "RS256"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[token]\nlifetime = 600\n")
    env = {"TOKENSERVER_TOKEN_LIFETIME": "900", "TOKENSERVER_ROBOTS_NAME_PREFIX": "bot_"}
    settings = load_settings(path, environ=env)
    assert settings.token.lifetime == 900
    assert settings.robots.name_prefix == "bot_"


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[token]\nlifetime = 59\n", {}, "token.lifetime"),
        ('[token]\nlifetime = "long"\n', {}, "token.lifetime"),
        ("[token]\nlifetime = true\n", {}, "token.lifetime"),
        (
            "",
            {"TOKENSERVER_TOKEN_LIFETIME": "abc"},
            "token.lifetime (from TOKENSERVER_TOKEN_LIFETIME)",
        ),
        ('[token]\nalgorithm = "PS256"\n', {}, "token.algorithm"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ('[server]\nrealm = "ftp://x"\n', {}, "server.realm"),
        ('[token]\nservice = ""\n', {}, "token.service"),
        ('[robots]\nname_prefix = "a b"\n', {}, "robots.name_prefix"),
        ('[robots]\nname_prefix = "r:"\n', {}, "robots.name_prefix"),
        ("[token]\nlifetme = 100\n", {}, "token.lifetme"),
        ("[tokn]\nlifetime = 100\n", {}, "tokn.lifetime"),
        ("token = 1\n", {}, "token"),
        ("[token]\nrefresh_token_idle_days = 0\n", {}, "token.refresh_token_idle_days"),
        ("[token]\nrefresh_token_idle_days = -1\n", {}, "token.refresh_token_idle_days"),
        (
            "",
            {"TOKENSERVER_TOKEN_REFRESH_TOKEN_IDLE_DAYS": "0"},
            "token.refresh_token_idle_days (from TOKENSERVER_TOKEN_REFRESH_TOKEN_IDLE_DAYS)",
        ),
    ],
)
def test_invalid_values_name_the_key(
    text: str, env: dict[str, str], key: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), environ=env)
    assert info.value.key == key
    assert str(info.value).startswith(key)


def test_refresh_token_idle_days_default_and_override(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, ""), environ={}).token.refresh_token_idle_days == 90
    path = _write(tmp_path, "[token]\nrefresh_token_idle_days = 30\n")
    assert load_settings(path, environ={}).token.refresh_token_idle_days == 30
    env = {"TOKENSERVER_TOKEN_REFRESH_TOKEN_IDLE_DAYS": "1"}
    assert load_settings(path, environ=env).token.refresh_token_idle_days == 1


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[server\n"), environ={})


def test_json_log_lines() -> None:
    import json
    import logging

    from tokenserver.http.observability import JsonFormatter

    record = logging.LogRecord("tokenserver.token", logging.INFO, "", 0, "issued %s", ("x",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info"
    assert entry["logger"] == "tokenserver.token"
    assert entry["message"] == "issued x"


def test_database_url_selects_the_database(tmp_path: Path) -> None:
    config = _write(tmp_path, '[database]\nurl = "sqlite:///data/ts.db"\n')
    settings = load_settings(config, environ={})
    assert (settings.database.path, settings.database.url) == (tmp_path / "data" / "ts.db", "")
    absolute = load_settings(config, environ={"TOKENSERVER_DATABASE_URL": "sqlite:////srv/t.db"})
    assert (absolute.database.path, absolute.database.url) == (Path("/srv/t.db"), "")
    url = "postgresql://ts:Pa55word@db.example:5432/tokens?sslmode=verify-full"
    postgres = load_settings(config, environ={"TOKENSERVER_DATABASE_URL": url})
    assert (postgres.database.url, postgres.database.pool_size) == (url, 10)
    assert load_settings(_write(tmp_path, ""), environ={}).database.url == ""


@pytest.mark.parametrize("url", ["mysql://u:Pa55word@h/db", "sqlite:///", "Pa55word"])
def test_a_bad_database_url_is_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"database\.url") as refused:
        load_settings(_write(tmp_path, ""), environ={"TOKENSERVER_DATABASE_URL": url})
    assert "Pa55word" not in str(refused.value)


@pytest.mark.parametrize("section", ["security", "kdf", "server"])
def test_attack_the_kdf_cost_cannot_be_lowered_by_configuration(
    section: str, tmp_path: Path
) -> None:
    """The KDF cost of new hashes is no configuration key: a config file or an environment
    variable cannot make secrets cheap to guess. Only code (tests) can build other settings."""
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(_write(tmp_path, f"[{section}]\nkdf_cost = 1\n"), environ={})
    for name in (f"TOKENSERVER_{section.upper()}_KDF_COST", "TOKENSERVER_KDF_COST"):
        with pytest.raises(ConfigError, match=f"unknown environment variable {name}"):
            load_settings(_write(tmp_path, ""), environ={name: "1"})
    settings = load_settings(_write(tmp_path, ""), environ={})
    assert settings.kdf_cost == DEFAULT_KDF_COST == KdfCost(log2_n=14, r=8, p=5)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("TOKENSERVER_TOKEN_LIFTIME", "TOKENSERVER_TOKEN_LIFETIME"),
        ("TOKENSERVER_LIFETIME", "TOKENSERVER_TOKEN_LIFETIME"),
        ("TOKENSERVER_PORT", "TOKENSERVER_SERVER_PORT"),
        ("TOKENSERVER_ADMIN_PASWORD", "TOKENSERVER_ADMIN_PASSWORD"),
        ("TOKENSERVER_DATABASE_URI", "TOKENSERVER_DATABASE_URL"),
        # Names are case-sensitive: this one would be ignored.
        ("tokenserver_token_lifetime", "TOKENSERVER_TOKEN_LIFETIME"),
        ("TokenServer_Log_Level", "TOKENSERVER_LOG_LEVEL"),
    ],
)
def test_an_unknown_variable_is_refused_with_the_name_meant(
    tmp_path: Path, name: str, meant: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, ""), environ={name: "600", "HOME": "/root"})
    assert f"unknown environment variable {name} (did you mean {meant}?)" in str(refused.value)


def test_every_unknown_variable_is_named_at_once(tmp_path: Path) -> None:
    env = {"TOKENSERVER_B_XYZZY": "1", "TOKENSERVER_A_QWERTY": "2", "TOKENSERVERX": "3"}
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, ""), environ=env)
    message = str(refused.value)
    assert "unknown environment variables TOKENSERVER_A_QWERTY, TOKENSERVER_B_XYZZY: " in message
    assert "TOKENSERVERX" not in message  # not the prefix: someone else's variable
    assert "TOKENSERVER_CONFIG, TOKENSERVER_ADMIN_PASSWORD" in message


def test_attack_an_unknown_variables_name_cannot_write_to_the_terminal(tmp_path: Path) -> None:
    name = "TOKENSERVER_X\x1b]0;owned\x07\u202e"
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, ""), environ={name: "1"})
    message = str(refused.value)
    assert message.isprintable()
    assert "TOKENSERVER_X\\x1b]0;owned\\x07\\u202e" in message


def test_every_key_and_the_other_variables_are_accepted(tmp_path: Path) -> None:
    """Each key's variable passes the name check (its value may still be refused)."""
    path = _write(tmp_path, "")
    for name in environment_variables():
        try:
            load_settings(path, environ={name: "x"})
        except ConfigError as e:
            assert "unknown environment variable" not in str(e), name
    assert {"TOKENSERVER_CONFIG", "TOKENSERVER_ADMIN_PASSWORD", "TOKENSERVER_DATABASE_URL"} <= set(
        environment_variables()
    )


def test_render_config_names_the_key_of_a_bad_value() -> None:
    with pytest.raises(ConfigError, match=r"^server\.realm: must be an http"):
        render_config({"server.realm": "example.com/token"})


def test_settings_are_grouped_by_section_under_the_keys_own_names(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""), environ={})
    written = {
        (section, key) for section, keys in tomllib.loads(render_config()).items() for key in keys
    }
    read = {
        (section.name, key.name)
        for section in dataclasses.fields(settings)
        if dataclasses.is_dataclass(getattr(settings, section.name)) and section.name != "kdf_cost"
        for key in dataclasses.fields(getattr(settings, section.name))
    }
    assert read == written


@pytest.mark.parametrize(
    ("dotted", "written", "read"),
    [
        ("token.lifetime", 600, 600),
        ("token.refresh_token_idle_days", 7, 7),
        ("robots.name_prefix", "bot_", "bot_"),
        ("database.pool_size", 3, 3),
        ("database.url", "postgresql://db/ts", "postgresql://db/ts"),
        ("security.lockout_threshold", 3, 3),
        ("security.verify_cache_ttl", 0, 0),
        ("web.enabled", False, False),
        ("web.session_lifetime", 600, 600),
        ("log.level", "debug", "debug"),
        ("log.format", "json", "json"),
        ("server.forwarded_header", "forwarded", "forwarded"),
        ("server.allow_plain_http", True, True),
    ],
)
def test_a_key_is_read_under_its_dotted_name(
    tmp_path: Path, dotted: str, written: object, read: object
) -> None:
    settings = load_settings(_write(tmp_path, render_config({dotted: written})), environ={})
    section, key = dotted.split(".")
    assert getattr(getattr(settings, section), key) == read


def test_file_keys_are_absolute_paths_beside_the_config_file(tmp_path: Path) -> None:
    text = render_config(
        {
            "database.path": "data/ts.db",
            "legacy.verification_key": "old/harbor.pem",
            "server.tls_certificate": "tls/cert.pem",
            "server.tls_key": "/etc/tls/key.pem",
        }
    )
    settings = load_settings(_write(tmp_path, text), environ={})
    assert settings.database.path == tmp_path / "data" / "ts.db"
    assert settings.legacy.verification_key == tmp_path / "old" / "harbor.pem"
    assert settings.server.tls_certificate == tmp_path / "tls" / "cert.pem"
    assert settings.server.tls_key == Path("/etc/tls/key.pem")
    assert settings.server.realm == "https://127.0.0.1:8080/service/token"
    defaults = load_settings(_write(tmp_path, ""), environ={})
    assert (defaults.legacy.verification_key, defaults.server.tls_certificate) == (None, None)


def test_replace_changes_keys_by_section_and_keeps_the_rest(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, ""), environ={})
    cheap = KdfCost(log2_n=4, r=1, p=1)
    changed = settings.replace(kdf_cost=cheap, token__lifetime=60, legacy__verification_key=None)
    assert (changed.kdf_cost, changed.token.lifetime) == (cheap, 60)
    assert changed.token.issuer == settings.token.issuer == "tokenserver"
    assert changed.server == settings.server
    assert (settings.kdf_cost, settings.token.lifetime) == (DEFAULT_KDF_COST, 1800)
    with pytest.raises(TypeError):
        settings.replace(token__lifetme=60)


@pytest.mark.parametrize(
    ("value", "host"),
    [("", "tokens.example:8443"), ("registry.example.com:5000", "registry.example.com:5000")],
)
def test_the_registry_is_server_registry_else_the_realms_host(
    tmp_path: Path, value: str, host: str
) -> None:
    path = _write(
        tmp_path,
        f'[server]\nrealm = "https://tokens.example:8443/service/token"\nregistry = "{value}"\n',
    )
    assert load_settings(path, environ={}).server.registry_host == host


@pytest.mark.parametrize(
    "value",
    ["bad host", "-x.example", "x.example:0", "x.example:99999", "x..example/../a", "a\x00b"],
)
def test_attack_a_registry_docker_would_refuse_is_a_config_error(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, ""), environ={"TOKENSERVER_SERVER_REGISTRY": value})
    assert "server.registry" in str(refused.value)
    assert str(refused.value).isprintable()
