"""``opchain config``: each setting's value and where it came from, secrets hidden."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opchain.cli.config import rows
from opchain.settings import Settings


def _rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dotenv: dict[str, str]) -> dict:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    return {name: (value, origin) for name, value, origin in rows(Settings(), os.environ, dotenv)}


def test_each_setting_says_its_value_and_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OPCHAIN_SIM_SEED", "OPCHAIN_REDIS_HOST", "REDIS_HOST", "OPCHAIN_RATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPCHAIN_SIM_SEED", "11")
    monkeypatch.setenv("LOGGER_LOOP_INTERVAL_SEC", "5")
    monkeypatch.setenv("opchain_rate", "0.07")
    shown = _rows(monkeypatch, tmp_path, {"OPCHAIN_SIM_SEED": "9", "REDIS_HOST": "cache"})
    assert len(shown) == len(Settings.model_fields)
    assert shown["OPCHAIN_SIM_SEED"] == ("11", "environment OPCHAIN_SIM_SEED")  # env over .env
    assert shown["OPCHAIN_CADENCE_SECONDS"] == ("5", "environment LOGGER_LOOP_INTERVAL_SEC")
    assert shown["OPCHAIN_RATE"] == ("0.07", "environment opchain_rate")
    assert shown["OPCHAIN_REDIS_HOST"] == ("cache", ".env REDIS_HOST")
    assert shown["OPCHAIN_STRIKE_WIDTH"] == ("2", "default")
    assert shown["OPCHAIN_OFFSETS"] == ("-", "default")


def test_secrets_and_passwords_in_urls_are_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KITE_API_SECRET", "s3cret")
    monkeypatch.setenv("OPCHAIN_API_KEYS", "k1,k2")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@cache:6379/0")
    shown = _rows(monkeypatch, tmp_path, {"OPCHAIN_INFLUXDB_TOKEN": "tok"})
    assert shown["KITE_API_SECRET"] == ("***", "environment KITE_API_SECRET")
    assert shown["OPCHAIN_API_KEYS"][0] == "***"
    assert shown["OPCHAIN_INFLUXDB_TOKEN"] == ("***", ".env OPCHAIN_INFLUXDB_TOKEN")
    assert shown["OPCHAIN_REDIS_URL"][0] == "redis://***@cache:6379/0"


def test_the_command_prints_a_line_per_setting_and_no_secret(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPCHAIN_REDIS_PASSWORD=hunter2\n")
    env = {**os.environ, "KITE_API_SECRET": "s3cret", "OPCHAIN_API_PORT": "9001"}
    done = subprocess.run(
        [sys.executable, "-m", "opchain", "config"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert len(lines) == len(Settings.model_fields)
    assert "s3cret" not in done.stdout and "hunter2" not in done.stdout
    assert any(line.split() == ["OPCHAIN_API_PORT", "9001", "(environment", "OPCHAIN_API_PORT)"]
               for line in lines)  # fmt: skip
    assert any(line.split() == ["OPCHAIN_REDIS_PASSWORD", "***", "(.env", "OPCHAIN_REDIS_PASSWORD)"]
               for line in lines)  # fmt: skip
