"""The docs that describe the command line and the settings cannot drift from them: README's
command table against the typer app, both ways, and docs/configuration.md against the
generator's output and against what Settings really accepts."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from opchain.cli import app
from opchain.settings import Settings
from opchain.settings_doc import env_names, render

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION = ROOT / "docs" / "configuration.md"

OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")
CODE = re.compile(r"`([^`]+)`")
ENV = re.compile(r"\b(?:OPCHAIN|KITE|REDIS|INFLUXDB|CSV|ADV|LOGGER|SESSION)_[A-Z0-9_]+\b")


# The command line, from the typer app itself.


def _root() -> Any:
    return typer.main.get_command(app)


def _commands(group: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every command that runs something (not the groups), by its words after ``opchain``;
    hidden ones are for tests and are left out of the docs."""
    found: dict[tuple[str, ...], Any] = {}
    for name, command in group.commands.items():
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            found |= _commands(command, (*path, name))
        else:
            found[(*path, name)] = command
    return found


def _options(command: Any) -> set[str]:
    """Every name of every visible option (long and short, ``--x/--no-x`` both), not --help."""
    names: set[str] = set()
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help" and not param.hidden:
            names.update(param.opts, param.secondary_opts)
    return names


def _arguments(command: Any) -> list[str]:
    return [
        (p.metavar or p.name.upper()) for p in command.params if p.param_type_name == "argument"
    ]


COMMANDS = _commands(_root())
GLOBAL = _options(_root())
ANY = GLOBAL.union(*(_options(c) for c in COMMANDS.values()))  # (--help: every command)


# README's "## Commands" section.


def _section() -> str:
    return README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]


def _rows() -> list[list[str]]:
    """The table's rows, each split into cells (a ``\\|`` inside a cell is a literal bar)."""
    lines = [line for line in _section().splitlines() if line.startswith("| `opchain ")]
    return [_cells(line) for line in lines]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def _command_of(span: str) -> tuple[str, ...]:
    """The command a code span such as ``opchain influx backfill --from D`` names (the words
    that are commands and groups, after any global option), or ``()``."""
    words, path, node = span.split()[1:], (), _root()
    for word in words:
        if not path and word in GLOBAL:
            continue
        if not hasattr(node, "commands") or word not in node.commands:
            break
        path, node = (*path, word), node.commands[word]
    return path


def _row_command(row: list[str]) -> tuple[str, ...]:
    return _command_of(CODE.findall(row[0])[0])


def test_the_table_has_one_row_per_command_and_no_other() -> None:
    rows = [_row_command(row) for row in _rows()]
    assert len(rows) == len(set(rows)), f"a command has two rows: {rows}"
    missing = [" ".join(c) for c in COMMANDS if c not in rows]
    unknown = [row[0] for row in _rows() if _row_command(row) not in COMMANDS]
    assert not missing, f"commands without a row in README's command table: {missing}"
    assert not unknown, f"rows of README's command table for no command: {unknown}"


def test_every_option_and_argument_is_in_its_command_row() -> None:
    for row in _rows():
        command = _row_command(row)
        said = {o for span in CODE.findall(" | ".join(row)) for o in OPTION.findall(span)}
        missing = sorted(_options(COMMANDS[command]) - said)
        assert not missing, f"README's row of `opchain {' '.join(command)}` lacks {missing}"
        synopsis = CODE.findall(row[0])[0].split()
        for argument in _arguments(COMMANDS[command]):
            assert argument in synopsis, f"`opchain {' '.join(command)}`: argument {argument}"


def test_every_command_and_option_the_section_names_exists() -> None:
    """Each code span in the section that starts with ``opchain`` names a command, and each
    option in it is one of that command's; other spans in a row hold the row's own options."""
    for line in _section().splitlines():
        row_command = _row_command(_cells(line)) if line.startswith("| `opchain ") else None
        for span in CODE.findall(line):
            command = _command_of(span) if span.startswith("opchain ") else row_command
            if span.startswith("opchain ") and command not in COMMANDS:
                raise AssertionError(f"README names `{span}`: no such opchain command")
            # Prose outside the table: an option of some command.
            known = ANY if command is None else _options(COMMANDS[command]) | GLOBAL
            wrong = [o for o in OPTION.findall(span) if o not in known | {"--help"}]
            assert not wrong, f"README: `{span}`: {wrong} not an option of {command or 'any'}"


def test_the_global_options_are_said_once_before_the_table() -> None:
    prose = _section().split("\n|", 1)[0]
    said = {o for span in CODE.findall(prose) for o in OPTION.findall(span)}
    assert GLOBAL, "the opchain command has its global options (-v)"
    assert sorted(GLOBAL - said) == [], "README's Commands section: global options before the table"


def test_every_environment_name_in_the_table_is_a_setting() -> None:
    known = {e for name, f in Settings.model_fields.items() for e in env_names(name, f)}
    named = set(ENV.findall(_section()))
    assert named, "the table names settings (OPCHAIN_INDICES, ...)"
    assert named <= known, f"README's command table names unknown settings: {named - known}"


# docs/configuration.md


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not missing, f"settings without a description in src/opchain/settings.py: {missing}"


def test_configuration_md_is_what_the_generator_writes() -> None:
    assert CONFIGURATION.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: python -m opchain.settings_doc > "
        "docs/configuration.md"
    )


def test_the_command_the_file_names_writes_it() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    named = re.search(r"Generated by `python -m ([\w.]+) > docs/configuration.md`", text)
    assert named, "docs/configuration.md says at its top how it is generated"
    done = subprocess.run(
        [sys.executable, "-m", named[1]], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout == text


def _documented() -> dict[str, list[str]]:
    """Setting -> its environment names, read from docs/configuration.md."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    found = {}
    for part in text.split("\n## ")[1:]:
        name = part.split("\n", 1)[0].strip()
        line = next(line for line in part.splitlines() if line.startswith("- environment: "))
        found[name] = CODE.findall(line)
    return found


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert list(_documented()) == list(Settings.model_fields)


# A value for every setting that is not its default, and what Settings makes of it: written by
# hand, so that a wrong name in the generator cannot pass unseen.
SAMPLES: dict[str, tuple[str, object]] = {
    "data_dir": ("/srv/opchain", Path("/srv/opchain")),
    "csv_split_root": ("/srv/splits", Path("/srv/splits")),
    "adv_root": ("/srv/adv", Path("/srv/adv")),
    "broker": ("kite", "kite"),
    "indices": ("SENSEX,NIFTY", ("SENSEX", "NIFTY")),
    "cadence_seconds": ("5", 5.0),
    "strike_width": ("7", 7),
    "offsets": ("-1,0,1", (-1, 0, 1)),
    "full_chain": ("false", False),
    "rate": ("0.065", 0.065),
    "sim_seed": ("11", 11),
    "sim_glitch_rate": ("0.5", 0.5),
    "raw_window_minutes": ("30", 30),
    "durable_writes": ("true", True),
    "flush_seconds": ("0", 0.0),
    "holidays_file": ("/srv/holidays.csv", Path("/srv/holidays.csv")),
    "kite_api_key": ("key1", "key1"),
    "kite_api_secret": ("secret1", "secret1"),
    "kite_access_token": ("token1", "token1"),
    "kite_root": ("http://127.0.0.1:5010", "http://127.0.0.1:5010"),
    "kite_login_url": ("http://login", "http://login"),
    "kite_ticker_url": ("ws://ticker", "ws://ticker"),
    "kite_redirect_url": ("http://127.0.0.1:9/cb", "http://127.0.0.1:9/cb"),
    "kite_token_file": ("/srv/token.json", Path("/srv/token.json")),
    "kite_ticks": ("true", True),
    "api_host": ("0.0.0.0", "0.0.0.0"),
    "api_port": ("8001", 8001),
    "metrics_port": ("9464", 9464),
    "api_keys": ("k1,k2", ("k1", "k2")),
    "api_rate": ("5", 5.0),
    "api_burst": ("9", 9),
    "api_trusted_proxies": ("10.0.0.0/24", ("10.0.0.0/24",)),
    "influxdb_url": ("http://influx:8086", "http://influx:8086"),
    "influxdb_api": ("v2", "v2"),
    "influxdb_db": ("other", "other"),
    "influxdb_bucket": ("bucket1", "bucket1"),
    "influxdb_org": ("org1", "org1"),
    "influxdb_token": ("token2", "token2"),
    "influxdb_env": ("test", "test"),
    "influxdb_batch_points": ("10", 10),
    "influxdb_flush_seconds": ("2", 2.0),
    "influxdb_spool_mb": ("64", 64.0),
    "influxdb_timeout_seconds": ("3", 3.0),
    "redis_url": ("redis://r:6379/1", "redis://r:6379/1"),
    "redis_host": ("r", "r"),
    "redis_port": ("6380", 6380),
    "redis_password": ("pw", "pw"),
    "redis_tls_ca": ("/srv/ca.pem", Path("/srv/ca.pem")),
    "bus_prefix": ("test.1", "test.1"),
    "bus_lease_seconds": ("3", 3.0),
    "alert_webhook_url": ("http://hook", "http://hook"),
    "alert_smtp_host": ("mail", "mail"),
    "alert_smtp_port": ("587", 587),
    "alert_smtp_user": ("me", "me"),
    "alert_smtp_password": ("pw2", "pw2"),
    "alert_smtp_tls": ("true", True),
    "alert_email_from": ("a@b.c", "a@b.c"),
    "participants_url": ("http://127.0.0.1:8080/nsccl", "http://127.0.0.1:8080/nsccl"),
    "alert_email_to": ("x@y.z,u@v.w", ("x@y.z", "u@v.w")),
    "alert_repeat_minutes": ("5", 5.0),
    "stale_seconds": ("30", 30.0),
    "disk_min_free_gb": ("1", 1.0),
}


def _plain(value: object) -> object:
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def test_every_documented_environment_name_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    documented = _documented()
    everything = {e for names in documented.values() for e in names}
    assert sorted(set(Settings.model_fields) - set(SAMPLES)) == [], "a sample for each setting"
    for name, names in documented.items():
        raw, expected = SAMPLES[name]
        assert _plain(Settings.model_fields[name].default) != expected, f"{name}: not a default"
        for env in names:
            for other in everything:
                monkeypatch.delenv(other, raising=False)
            monkeypatch.setenv(env, raw)
            got = _plain(getattr(Settings(), name))
            assert got == expected, f"{env}={raw} gave {name} = {got!r}"


def test_the_readme_links_the_configuration_reference() -> None:
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    assert "(docs/configuration.md)" in section
