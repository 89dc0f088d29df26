"""The InfluxDB output over whole sessions, as a user runs them (issue 14's "must show"): every
point of a session reaches a real InfluxDB, through an outage, a SIGKILL of opchain and a
server that never answers, none lost and none twice; the v2 write path into VictoriaMetrics;
and a backfill run twice. InfluxDB's counts are checked against the files (tests/influx_counts.py),
never against the encoder."""

import csv
import random
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opchain.cli.app import app
from opchain.market.indices import OVERVIEW
from opchain.market.ist import IST
from opchain.outputs.influx.points import timestamp_ns
from opchain.settings import Settings
from opchain.store import layout

from .influx_counts import MARKET, during, file_counts, influx_counts, series, times
from .servers_health import influxd_server
from .sessions import DAY, record

OFFSETS = Settings().strike_offsets
UNTIL = datetime(2026, 11, 20, 9, 45, tzinfo=IST)  # the first 30 minutes: 60 cycles


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _ns(cell: str) -> int:
    return timestamp_ns(datetime.fromisoformat(cell))


def _number(cell: str) -> float | None:
    return float(cell) if cell else None


def test_a_session_has_every_point_in_influxdb(tmp_path: Path) -> None:
    """Issue 14: against a real influxd 1.x, a simulated session through the sink has every
    point there: counts per measurement and index equal what the files hold, and a sample of
    values equal the files'."""
    data = tmp_path / "data"
    with influxd_server(tmp_path) as (url, _):
        report = record(data, until=UNTIL, influxdb_url=url)
        assert report.cycles == 60
        wanted = file_counts(data, DAY, OFFSETS, health=True)
        assert {m for m, _ in wanted} == {*MARKET, "monitor_status", "pipeline_tick"}
        assert influx_counts(url, DAY) == wanted
        cycles = Counter(_ns(row["ts"]) for row in _rows(data / "overview/NIFTY/2026-11-20.csv"))
        assert times(url, "monitor_status", DAY) == cycles  # one point a cycle
        assert len(cycles) == report.cycles

        pick = random.Random(14)
        q = 'SELECT pcr_oi, max_pain, atm_iv FROM chain_analytics GROUP BY "index", bucket'
        held = {
            (tags["index"], tags["bucket"], row[0]): row[1:] for tags, rows in series(url, q)
            for row in rows
        }  # fmt: skip
        analytics = [
            row
            for path in sorted(layout.analytics_root(data).glob("*/*/2026-11-20.csv"))
            for row in _rows(path)
        ]
        for row in pick.sample(analytics, 20):
            cells = [_number(row[name]) for name in ("pcr_oi", "max_pain", "atm_iv")]
            assert held[row["index"], row["bucket"], _ns(row["ts"])] == cells, row

        q = (
            "SELECT last_price FROM atm_option_quote WHERE option_type = 'CE' AND "
            """strike_offset = 'atm' GROUP BY "index", bucket, strike"""
        )
        held = {
            (tags["index"], tags["bucket"], int(tags["strike"]), row[0]): row[1:]
            for tags, rows in series(url, q)
            for row in rows
        }
        splits = [
            row
            for path in sorted(Settings(data_dir=data).split_root.glob("*/*/atm/2026-11-20.csv"))
            for row in _rows(path)
            if row["call_last_price"]
        ]
        for row in pick.sample(splits, 20):
            key = (row["index"], row["expiry_code"], round(float(row["atm_strike"])))
            assert held[*key, _ns(row["ts"])] == [float(row["call_last_price"])], row

        q = 'SELECT last_price FROM index_overview GROUP BY "index"'
        held = {(tags["index"], row[0]): row[1] for tags, rows in series(url, q) for row in rows}
        overview = [
            (spec.display, row)
            for key, spec in OVERVIEW.items()
            for row in _rows(layout.overview_path(data, key, DAY))
        ]
        for name, row in pick.sample(overview, 20):
            assert held[name, _ns(row["ts"])] == float(row["last_price"]), row


DAYS = (date(2026, 11, 19), date(2026, 11, 20))


def test_a_backfill_run_twice_leaves_one_point_per_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: ``opchain influx backfill`` of two recorded days, run twice, leaves exactly one
    point per cycle."""
    data = tmp_path / "data"
    for day in DAYS:
        until = datetime(day.year, day.month, day.day, 9, 30, tzinfo=IST)
        assert record(data, until=until, day=day).cycles == 30
    monkeypatch.chdir(tmp_path)  # no .env of the machine's
    with influxd_server(tmp_path) as (url, _):
        monkeypatch.setenv("OPCHAIN_INFLUXDB_URL", url)
        wanted = {day: file_counts(data, day, OFFSETS, health=False) for day in DAYS}
        for _ in range(2):
            done = CliRunner().invoke(app, ["influx", "backfill", "-d", str(data)])
            assert done.exit_code == 0, done.output
            assert "2 days, 60 cycles" in done.output
            for day in DAYS:
                assert influx_counts(url, day, MARKET) == wanted[day]
                per_cycle = Counter(_ns(row["ts"]) for row in _rows(
                    layout.analytics_path(data, "NIFTY", "this_week", day)))  # fmt: skip
                q = "SELECT strikes FROM chain_analytics WHERE \"index\" = 'NIFTY' AND "
                q += f"bucket = 'this_week' AND {during(day)}"
                assert Counter(row[0] for _, rows in series(url, q) for row in rows) == per_cycle
