"""Which config file a command uses, and what it says when that file or the environment is
wrong: `--config` before or after the command words, never silently overridden; a missing
file named with where its name came from; a misspelt TOKENSERVER_ variable refused.

Commands run in this process (`tokenserver.cli.main`) with the argument list exactly as
given: `call_cli` appends `--config`, which these tests place themselves."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST_KDF_COST, call_cli
from tokenserver.cli import main
from tokenserver.config import OTHER_VARIABLES, environment_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]


def tokenserver(
    *argv: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`tokenserver ARGV` in this process, with no TOKENSERVER_ variable but `env`."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith("TOKENSERVER_"):
                patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(argv), kdf_cost=FAST_KDF_COST)
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    return subprocess.CompletedProcess(list(argv), status, out.getvalue(), err.getvalue())


def initialised(path: Path, *args: str) -> Path:
    result = call_cli(path, "init", *args)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: the default config file would be written here."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


# ---- --config before the command --------------------------------------------------------------


def test_config_before_the_command_is_the_one_init_writes(tmp_path: Path, cwd: Path) -> None:
    """`tokenserver --config X init`, the form the top-level --help shows, wrote
    ./tokenserver.toml, keys/ and tokenserver.db into the working directory."""
    config = tmp_path / "etc" / "tokenserver.toml"
    result = tokenserver("--config", str(config), "init", "--service", "reg")
    assert result.returncode == 0, result.stderr
    assert config.exists()
    assert load_settings(config, environ={}).token.service == "reg"
    assert (tmp_path / "etc" / "tokenserver.db").exists()
    assert list(cwd.iterdir()) == []


def test_config_before_the_command_is_the_one_every_command_uses(tmp_path: Path, cwd: Path) -> None:
    config = initialised(tmp_path / "a" / "tokenserver.toml")
    created = tokenserver("--config", str(config), "project", "create", "web")
    assert created.returncode == 0, created.stderr
    listed = tokenserver("--config", str(config), "project", "list")
    assert listed.returncode == 0, listed.stderr
    assert "web\tprivate" in listed.stdout
    # Between the group and the action too.
    assert "web" in tokenserver("project", "--config", str(config), "list").stdout
    assert list(cwd.iterdir()) == []


def test_config_before_the_command_wins_over_the_environment_variable(
    tmp_path: Path, cwd: Path
) -> None:
    """With TOKENSERVER_CONFIG naming another server, `--config` before the command acted on
    that other server."""
    mine = initialised(tmp_path / "mine" / "tokenserver.toml")
    other = initialised(tmp_path / "other" / "tokenserver.toml")
    env = {"TOKENSERVER_CONFIG": str(other)}
    result = tokenserver("--config", str(mine), "project", "create", "mine-only", env=env)
    assert result.returncode == 0, result.stderr
    # Said, never silent.
    assert f"--config {mine} overrides TOKENSERVER_CONFIG={other}" in result.stderr
    assert "mine-only" in tokenserver("--config", str(mine), "project", "list").stdout
    assert "mine-only" not in tokenserver("project", "list", env=env).stdout


def test_the_environment_variable_and_the_same_config_say_nothing(tmp_path: Path) -> None:
    config = initialised(tmp_path / "tokenserver.toml")
    env = {"TOKENSERVER_CONFIG": str(config)}
    result = tokenserver("project", "list", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    "argv",
    [
        ("--config", "{a}", "project", "create", "x", "--config", "{b}"),
        ("--config", "{a}", "project", "--config", "{b}", "create", "x"),
        ("project", "create", "x", "--config", "{a}", "--config", "{b}"),
    ],
)
def test_two_different_config_files_are_a_usage_error(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    """Before, the last one won silently: the project went to one of two servers."""
    a = initialised(tmp_path / "a" / "tokenserver.toml")
    b = initialised(tmp_path / "b" / "tokenserver.toml")
    result = tokenserver(*(arg.format(a=a, b=b) for arg in argv))
    assert result.returncode == 2
    assert f"--config names different files: {a}, {b}" in result.stderr
    assert "usage: tokenserver" in result.stderr
    for config in (a, b):
        assert "x" not in tokenserver("project", "list", "--config", str(config)).stdout


def test_attack_one_file_named_twice_is_one_file(tmp_path: Path, cwd: Path) -> None:
    """The same file spelt differently (relative, absolute, through a symbolic link) is no
    disagreement."""
    config = initialised(cwd / "tokenserver.toml")
    (tmp_path / "link").symlink_to(cwd)
    for other in (str(config), "./tokenserver.toml", str(tmp_path / "link" / "tokenserver.toml")):
        result = tokenserver("--config", "tokenserver.toml", "project", "list", "--config", other)
        assert result.returncode == 0, (other, result.stderr)


def test_an_empty_config_name_is_a_usage_error(tmp_path: Path) -> None:
    result = tokenserver("--config", "", "project", "list")
    assert result.returncode == 2
    assert "--config needs a file name" in result.stderr


def test_help_states_where_config_goes_and_what_wins() -> None:
    top = tokenserver("--help")
    assert top.returncode == 0
    text = " ".join(top.stdout.split())
    assert "before or after the command" in text
    assert "--config wins over $TOKENSERVER_CONFIG" in text
    assert "--config wins over $TOKENSERVER_CONFIG" in " ".join(
        tokenserver("project", "list", "--help").stdout.split()
    )


# ---- a config file that does not exist ------------------------------------------------------


def test_missing_config_from_the_option_names_it_and_how_to_create_it(tmp_path: Path) -> None:
    """A wrong --config used to get "run 'tokenserver init'", which would have written
    ./tokenserver.toml: a second server rather than the file meant."""
    missing = tmp_path / "typo" / "tokenserver.toml"
    result = tokenserver("project", "list", "--config", str(missing))
    assert result.returncode == 2
    assert f"config file {missing} does not exist" in result.stderr
    assert f"create it with: tokenserver init --config {missing}" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_from_the_variable_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "tokenserver.toml"
    result = tokenserver("project", "list", env={"TOKENSERVER_CONFIG": str(missing)})
    assert result.returncode == 2
    assert f"config file {missing} (from TOKENSERVER_CONFIG) does not exist" in result.stderr
    assert "or correct TOKENSERVER_CONFIG" in result.stderr


def test_missing_default_config_suggests_init(cwd: Path) -> None:
    result = tokenserver("robot", "list", "--project", "p")
    assert result.returncode == 2
    assert f"config file {cwd / 'tokenserver.toml'} (the default" in result.stderr
    assert (
        "give the server's config file with --config FILE or TOKENSERVER_CONFIG, or run "
        "'tokenserver init' to create a new server here" in result.stderr
    )


def test_attack_the_suggested_init_command_survives_odd_file_names(tmp_path: Path) -> None:
    """The suggested command is quoted for the shell: pasted, it creates the file meant."""
    odd = tmp_path / "it's a dir; rm -rf x" / "token server.toml"
    result = tokenserver("registry-config", "--config", str(odd))
    assert result.returncode == 2
    suggested = result.stderr.strip().split("create it with: ", 1)[1]
    argv = shlex.split(suggested)
    assert argv == ["tokenserver", "init", "--config", str(odd)]
    assert tokenserver(*argv[1:]).returncode == 0
    assert odd.exists()


# ---- init's options name the option and the key ----------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "key", "shown"),
    [
        ("--realm", "registry.example.com/token", "server.realm", "'registry.example.com/token'"),
        ("--service", "my registry", "token.service", "'my registry'"),
        ("--issuer", "my\tissuer", "token.issuer", "'my\\tissuer'"),
        ("--listen", "local host:8080", "server.host", "'local host'"),
    ],
)
def test_init_option_errors_name_the_option_and_the_key(
    tmp_path: Path, option: str, value: str, key: str, shown: str
) -> None:
    """Before, `--realm registry.example.com/token` said only "must be an http:// or https://
    URL", naming neither the option nor the key."""
    result = call_cli(tmp_path / "tokenserver.toml", "init", option, value)
    assert result.returncode == 2
    assert f"tokenserver: {option} ({key}): " in result.stderr
    assert shown in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---- TOKENSERVER_ variables -----------------------------------------------------------------


def test_a_misspelt_variable_is_refused_with_the_name_meant(tmp_path: Path) -> None:
    """TOKENSERVER_TOKEN_LIFTIME=600 used to leave the lifetime at 1800, silently."""
    config = initialised(tmp_path / "tokenserver.toml")
    result = call_cli(config, "project", "list", env={"TOKENSERVER_TOKEN_LIFTIME": "600"})
    assert result.returncode == 2
    assert (
        "unknown environment variable TOKENSERVER_TOKEN_LIFTIME "
        "(did you mean TOKENSERVER_TOKEN_LIFETIME?)" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_init_refuses_a_misspelt_variable_before_writing_anything(tmp_path: Path) -> None:
    result = call_cli(
        tmp_path / "tokenserver.toml", "init", env={"TOKENSERVER_SERVER_PROT": "9000"}
    )
    assert result.returncode == 2
    assert "TOKENSERVER_SERVER_PROT (did you mean TOKENSERVER_SERVER_PORT?)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_variables_that_are_not_keys_are_accepted(tmp_path: Path) -> None:
    config = initialised(tmp_path / "tokenserver.toml")
    env = {"TOKENSERVER_CONFIG": str(config), "TOKENSERVER_ADMIN_PASSWORD": "Adm1nPassword"}
    result = tokenserver("project", "list", env=env)
    assert result.returncode == 0, result.stderr


def test_every_variable_the_scripts_and_docs_set_is_accepted() -> None:
    """The list of variables that are not keys is the one place to add a new one: whatever
    the README, the scripts and the end-to-end tests set must load."""
    used: set[str] = set()
    files = [ROOT / "README.md", *(ROOT / "scripts").iterdir(), *(ROOT / "tests" / "e2e").iterdir()]
    for path in files:
        if path.is_file():
            used |= set(re.findall(r"\bTOKENSERVER_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    deliberate_typos = {"TOKENSERVER_TOKEN_LIFTIME"}  # the README's example of a refused one
    known = set(environment_variables())
    assert "TOKENSERVER_DATABASE_URL" in used
    assert used - deliberate_typos <= known, used - deliberate_typos - known
    readme = (ROOT / "README.md").read_text()
    for name in OTHER_VARIABLES:
        assert f"| `{name}` |" in readme, f"README's table of variables lacks {name}"
