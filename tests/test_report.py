"""A session's summary says what happened, and nothing that did not (issue 13, case 15)."""

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

from opchain.brokers.sim import SimBroker
from opchain.cli.report import print_report
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings

from .sessions import DAY

SESSION = calendar.session("NSE", DAY)
assert SESSION is not None


def shown(report: SessionReport, settings: Settings) -> str:
    console = Console(record=True, width=300)
    print_report(console, report, settings)
    return console.export_text()


def test_a_mid_session_start_is_not_a_miss(tmp_path: Path) -> None:
    """Started at 14:05:10, a 30 s cadence: the 581 cycles before are not "missed" (the run
    was not there), and 14:05:00, already past, is not recorded late under its time."""
    settings = Settings(data_dir=tmp_path)
    start = datetime(2026, 11, 20, 14, 5, 10, tzinfo=IST)
    clock = VirtualClock(start)
    until = start + timedelta(minutes=2)
    report = asyncio.run(record_session(settings, SimBroker(clock), clock, DAY, until=until))
    assert (report.cycles, report.before_start, report.missed) == (4, 581, 0)
    text = shown(report, settings)
    assert "4 snapshots recorded every 30 s, 0 already on disk, 581 before this run started, " in (
        text
    )
    assert "0 missed;" in text and "missed; " in text
    assert "Quotes in 0.00 s after the cycle time (median; 0.00 s at most, over 4 cycles)" in text


def test_tick_mode_makes_no_quote_calls(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    report = SessionReport(day=DAY, session=SESSION, cycles=60, legs=6828, quote_calls=60)
    report.streamed = True
    assert "6,828 legs from the tick stream" in shown(report, settings)
    assert "quote calls" not in shown(report, settings)


def test_cycles_lost_to_the_broker_are_counted_by_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    report = SessionReport(day=DAY, session=SESSION, cycles=50, legs=5000, quote_calls=90)
    report.lost = Counter({"rate limited (HTTP 429)": 7, "timed out": 3})
    text = shown(report, settings)
    assert "50 snapshots recorded, 0 already on disk, 0 missed, 10 lost to the broker" in text
    assert (
        "Lost to the broker: 10 cycles whose quotes it did not give in time (rate limited "
        "(HTTP 429) 7, timed out 3); each is a gap of one cycle." in text
    )
