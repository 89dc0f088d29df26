"""The command line and the settings it loads."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kiteconnect import KiteConnect

from opchain.settings import Settings
from opchain.store.splits import read_split

from .servers import fake_kite_process

OPCHAIN = [sys.executable, "-m", "opchain"]


def test_ops_variable_names_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGGER_OFFSETS", "-1,0,1")
    monkeypatch.setenv("LOGGER_LOOP_INTERVAL_SEC", "5")
    monkeypatch.setenv("CSV_SPLIT_ROOT", str(tmp_path / "splits"))
    monkeypatch.setenv("KITE_API_SECRET", "s3cret")
    settings = Settings()
    assert settings.strike_offsets == (-1, 0, 1)
    assert settings.cadence_seconds == 5.0
    assert settings.split_root == tmp_path / "splits"
    assert "s3cret" not in repr(settings)


def test_strike_width_sets_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPCHAIN_STRIKE_WIDTH", "10")
    assert Settings().strike_offsets == tuple(range(-10, 11))


def test_bad_settings_are_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "OPCHAIN_INDICES": "NIFTY,FOO"}
    done = subprocess.run(
        [*OPCHAIN, "demo", "--data-dir", str(tmp_path), "--date", "2026-11-20"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "unknown indices ['FOO']" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_lists_the_commands() -> None:
    done = subprocess.run([*OPCHAIN, "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "run", "version"):
        assert command in done.stdout


def test_run_records_on_an_accelerated_clock(tmp_path: Path) -> None:
    command = [*OPCHAIN, "run", "--broker", "sim", "--data-dir", str(tmp_path), "--cadence", "10"]
    command += ["--start", "2026-11-20T15:20:00", "--speed", "60", "--sessions", "1"]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    rows = list(read_split(tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"))
    assert [r.ts.strftime("%H:%M:%S") for r in rows][-1] == "15:29:50"
    # From wherever the clock had got to when collection began (start-up takes a few
    # simulated seconds at 60x), every 10 s to the close.
    assert 10 <= len(rows) <= 60
    assert "Session 2026-11-20" in done.stdout


def test_kite_broker_needs_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "KITE" not in k}
    done = subprocess.run(
        [*OPCHAIN, "run", "--broker", "kite", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 2
    assert "the kite broker needs KITE_API_KEY, and a login: run `opchain login`" in done.stderr


@pytest.mark.e2e
def test_run_with_the_kite_broker_against_the_fake_server(tmp_path: Path) -> None:
    start = ["--start", "2026-11-20T15:20:00", "--speed", "60"]  # 10 s of wall time
    with fake_kite_process(*start) as root:
        redirect = httpx.get(f"{root}/connect/login", params={"api_key": "k", "v": 3})
        token = parse_qs(urlsplit(redirect.headers["location"]).query)["request_token"][0]
        session = KiteConnect(api_key="k", root=root).generate_session(token, api_secret="s")
        env = os.environ | {
            "KITE_API_KEY": "k",
            "KITE_ACCESS_TOKEN": session["access_token"],
            "OPCHAIN_KITE_ROOT": root,
        }
        command = [*OPCHAIN, "run", "--broker", "kite", "--data-dir", str(tmp_path)]
        done = subprocess.run(
            [*command, "--cadence", "10", "--sessions", "1", *start],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    rows = list(read_split(tmp_path / "csv_data/NIFTY/this_week/atm/2026-11-20.csv"))
    assert rows and all(r.call_last_price for r in rows)
    assert (tmp_path / "cache/kite/2026-11-20-NFO.csv").exists()
