"""Recording through a year without a holiday table (issue 13, case 10).

A live broker goes on: weekday sessions at regular hours, marked provisional, a loud warning each
day (log, the ``calendar`` health state, the session's report), and a weekday holiday recognised
from the exchange's own timestamps: nothing is recorded for it. The simulator refuses the year
with one line that says how to supply its table. The fake Kite here plays an exchange that knows
its 2027 holidays (an example list in NSE's format); the recorder has only its built-in tables.
"""

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
import typer
from rich.console import Console

from opchain.brokers.kite.broker import KiteBroker
from opchain.brokers.kite.client import KiteClient
from opchain.brokers.kite.fake import FakeKite
from opchain.brokers.sim import SimBroker
from opchain.cli.report import print_report
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.holiday_file import parse_holiday_file
from opchain.market.ist import IST
from opchain.pipeline import SessionReport, record_session, run_sessions
from opchain.settings import Settings

from .servers import serve_in_thread

# An example in NSE's CSV format (fixed-date holidays of 2027), not the published 2027 list.
EXAMPLE_2027 = """Sr. No,Date,Day,Description
1,26-Jan-2027,Tuesday,Republic Day
2,14-Apr-2027,Wednesday,Dr. Baba Saheb Ambedkar Jayanti
3,01-May-2027,Saturday,Maharashtra Day
4,15-Aug-2027,Sunday,Independence Day
5,02-Oct-2027,Saturday,Mahatma Gandhi Jayanti
6,25-Dec-2027,Saturday,Christmas
"""
EXCHANGE_2027 = calendar.with_supplied(parse_holiday_file(EXAMPLE_2027, "example-2027.csv"))
OPCHAIN = [sys.executable, "-m", "opchain"]


@pytest.fixture(autouse=True)
def built_in_tables() -> Iterator[None]:
    calendar.install(calendar.BUILT_IN)
    yield
    calendar.install(calendar.BUILT_IN)


def run_live(data_dir: Path, start: datetime, sessions: int) -> list[SessionReport]:
    """``run_sessions`` against the fake Kite from ``start``, one clock for both ends; an
    hourly cadence keeps a day to six cycles."""
    clock = VirtualClock(start)
    fake = FakeKite(clock, tables=EXCHANGE_2027)
    reports: list[SessionReport] = []
    with serve_in_thread(fake.app()) as root:
        token = fake.issue_access_token(expires=start + timedelta(days=30))  # no daily login
        client = KiteClient(fake.api_key, token, root, clock, seed=3)
        broker = KiteBroker(client, cache_dir=data_dir / "cache")
        settings = Settings(data_dir=data_dir, cadence_seconds=3600)

        async def run() -> None:
            try:
                await run_sessions(settings, broker, clock, sessions, on_session=reports.append)
            finally:
                await broker.close()

        asyncio.run(run())
    return reports


def days_written(data_dir: Path) -> set[str]:
    return {p.stem for p in (data_dir / "csv_data").rglob("*.csv")}


def test_a_live_run_goes_on_into_a_year_without_a_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="opchain.pipeline"):
        reports = run_live(tmp_path, datetime(2026, 12, 31, 16, 0, tzinfo=IST), sessions=1)
    [report] = reports
    assert report.day == date(2027, 1, 1) and report.session.kind == "provisional"
    assert report.cycles == 6 and report.missed == 0 and not report.closed
    assert days_written(tmp_path) == {"2027-01-01"}
    assert any("provisional" in w and "OPCHAIN_HOLIDAYS_FILE" in w for w in report.warnings)
    # Warned before the night's wait (the run's first lines) and again at the open.
    warned = [r for r in caplog.records if "no NSE holiday table for 2027" in r.getMessage()]
    assert len(warned) == 2
    state = json.loads((tmp_path / "health" / "calendar.json").read_text())
    assert state["status"] == "degraded" and "2027-01-01" in state["detail"]


def test_a_weekday_holiday_is_known_by_the_exchange_timestamps(tmp_path: Path) -> None:
    reports = run_live(tmp_path, datetime(2027, 1, 25, 9, 0, tzinfo=IST), sessions=2)
    assert [(r.day, r.cycles) for r in reports] == [
        (date(2027, 1, 25), 6),
        (date(2027, 1, 26), 0),
        (date(2027, 1, 27), 6),
    ]
    closed = reports[1]
    assert "did not trade" in closed.closed and "2027-01-25 15:30" in closed.closed
    assert days_written(tmp_path) == {"2027-01-25", "2027-01-27"}
    assert not (tmp_path / "instruments" / "2027-01-26.csv").exists()
    assert not (tmp_path / "raw" / "date=2027-01-26").exists()
    state = json.loads((tmp_path / "health" / "calendar.json").read_text())
    assert state["status"] == "degraded" and "2027-01-27" in state["detail"]
    shown = io.StringIO()
    print_report(Console(file=shown, width=300), closed, Settings(data_dir=tmp_path))
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith("Session 2027-01-26: closed; the market did not trade")
    assert lines[0].endswith("Nothing recorded.") and "split" not in shown.getvalue()


def test_a_closed_day_is_reported_closed_in_the_health_state(tmp_path: Path) -> None:
    """Right after the holiday's grace, before the next day's warning replaces it."""
    clock = VirtualClock(datetime(2027, 1, 26, 9, 0, tzinfo=IST))
    fake = FakeKite(clock, tables=EXCHANGE_2027)
    with serve_in_thread(fake.app()) as root:
        client = KiteClient(fake.api_key, fake.issue_access_token(), root, clock, seed=3)
        broker = KiteBroker(client, cache_dir=tmp_path / "cache")
        settings = Settings(data_dir=tmp_path)

        async def one_day() -> SessionReport:
            try:
                return await record_session(settings, broker, clock, date(2027, 1, 26))
            finally:
                await broker.close()

        report = asyncio.run(one_day())
    assert report.closed and report.cycles == 0
    assert clock.now() <= datetime(2027, 1, 26, 9, 20, 30, tzinfo=IST)  # gave up after the grace
    state = json.loads((tmp_path / "health" / "calendar.json").read_text())
    assert state["detail"].startswith("2027-01-26: closed (the market did not trade")
    quotes = [r for r in fake.requests if r.path == "/quote"]
    assert len(quotes) == 11 and {r.status for r in quotes} == {200}  # one look every 30 s


def test_the_simulator_refuses_a_year_without_a_table_saying_how_to_add_it(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPCHAIN_HOLIDAYS_FILE"}
    for command in (
        ["demo", "--data-dir", str(tmp_path), "--date", "2027-01-04"],
        ["run", "--broker", "sim", "--data-dir", str(tmp_path), "--no-api",
         "--start", "2026-12-31T16:00:00", "--speed", "60"],
    ):  # fmt: skip
        done = subprocess.run(
            [*OPCHAIN, *command], capture_output=True, text=True, check=False, env=env
        )
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert "no NSE trading calendar for 2027" in line
        assert "OPCHAIN_HOLIDAYS_FILE" in line and "opchain calendar" in line


def test_with_the_table_supplied_the_simulator_trades_the_year(tmp_path: Path) -> None:
    calendar.install(EXCHANGE_2027)
    day = date(2027, 1, 25)
    session = calendar.session("NSE", day)
    assert session is not None and session.kind == "regular"
    clock = VirtualClock(session.open)
    broker = SimBroker(clock)
    settings = Settings(data_dir=tmp_path)
    until = session.open + timedelta(minutes=5)
    report = asyncio.run(record_session(settings, broker, clock, day, until=until))
    assert report.cycles == 10 and not report.warnings
    expiries = {w.bucket: w.expiry for w in report.watches if w.index == "NIFTY"}
    assert expiries["this_month"] == date(2027, 1, 25)  # Tue 26 Jan is Republic Day
    with pytest.raises(calendar.YearNotCovered):
        calendar.session("NSE", day, calendar.BUILT_IN)


def test_eod_past_the_tables_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``opchain eod`` without --date looks for the last trading day: in 2027 it cannot."""
    from opchain.cli import profiles

    class January2027(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> "January2027":
            return cls(2027, 1, 5, 18, 0, tzinfo=IST)

    monkeypatch.setattr(profiles, "datetime", January2027)
    monkeypatch.delenv("OPCHAIN_HOLIDAYS_FILE", raising=False)
    with pytest.raises(typer.Exit) as done:
        profiles.eod(data_dir=tmp_path, day=None)
    assert done.value.exit_code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no NSE trading calendar for 2027" in line and line.endswith("or pass --date")
