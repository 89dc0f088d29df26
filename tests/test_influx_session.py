"""The InfluxDB output over whole sessions, as a user runs them (issue 14's "must show"): every
point of a session reaches a real InfluxDB, through an outage, a SIGKILL of opchain and a
server that never answers, none lost and none twice; the v2 write path into VictoriaMetrics;
and a backfill run twice. InfluxDB's counts are checked against the files (tests/influx_counts.py),
never against the encoder."""

import asyncio
import csv
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opchain.brokers.sim import SimBroker
from opchain.cli.app import app
from opchain.health import state as health
from opchain.market import calendar
from opchain.market.clock import ScaledClock, VirtualClock
from opchain.market.indices import OVERVIEW
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle
from opchain.outputs.influx import output as influx_output
from opchain.outputs.influx import spool
from opchain.outputs.influx.points import timestamp_ns
from opchain.outputs.influx.writer import SINK, InfluxWriter
from opchain.pipeline import OnCycle, SessionReport, cycle_times, record_session
from opchain.settings import Settings
from opchain.store import layout

from .influx_counts import MARKET, during, file_counts, influx_counts, series, times
from .servers_health import influxd_server, silent_listener
from .servers_influx import influxd_at, ports, victoria_metrics, vm_export
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
            if layout.overview_path(data, key, DAY).exists()  # the indices recorded
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


def spooled(folder: Path) -> int:
    """Records (one a cycle) whole in the spool's segments, read without touching them: a
    Spool opened on them would cut a record the run is appending."""
    records = 0
    for path in sorted(folder.glob("*.seg")):
        body, at = path.read_bytes(), 0
        while at + spool.HEADER.size <= len(body):
            magic, length, _, _ = spool.HEADER.unpack_from(body, at)
            at += spool.HEADER.size + length
            if magic != spool.MAGIC or at > len(body):
                break
            records += 1
    return records


def record_with(
    data_dir: Path, until: datetime, on_cycle: OnCycle, **overrides: object
) -> SessionReport:
    """tests/sessions.record, with ``on_cycle`` told each cycle as it is stored."""
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    return asyncio.run(record_session(settings, broker, clock, DAY, until=until, on_cycle=on_cycle))


def said_down(data_dir: Path, seconds: float = 60) -> None:
    """Wait (bounded) until the writer reports the server not taking writes: its first try
    comes a flush interval (1 s of wall time) after the first point it holds."""
    pause = threading.Event()  # never set: a bounded wait between looks at the state file
    for _ in range(int(seconds * 100)):
        if "not taking writes" in health.read(data_dir)[SINK]["detail"]:
            return
        pause.wait(0.01)
    raise AssertionError(f"the writer never said InfluxDB was away: {health.read(data_dir)}")


OUTAGE = (datetime(2026, 11, 20, 9, 25, tzinfo=IST), datetime(2026, 11, 20, 9, 35, tzinfo=IST))


def test_influxd_away_ten_market_minutes_loses_nothing(tmp_path: Path) -> None:
    """Issue 14: influxd stopped for ten market minutes mid-session and started again: no
    point lost, none duplicated."""
    data, where = tmp_path / "data", ports()
    sink: list[str] = []  # the writer's health state after each cycle

    with ExitStack() as influxd:
        influxd.enter_context(influxd_at(tmp_path, where))

        def hook(cycle: Cycle) -> None:
            if cycle.snapshot.ts == OUTAGE[0]:
                influxd.close()  # SIGTERM, and wait for it to exit
            elif cycle.snapshot.ts == OUTAGE[1]:
                said_down(data)  # the writer has tried, and found nobody: a real outage
                influxd.enter_context(influxd_at(tmp_path, where))  # the same data, ports
            sink.append(health.read(data)[SINK]["detail"])

        report = record_with(data, UNTIL, hook, influxdb_url=where.url)
        assert report.cycles == 60
        assert any("not taking writes" in said for said in sink)  # the outage was seen
        assert "writing to" in sink[0]
        settings = Settings(data_dir=data, influxdb_url=where.url)
        late = InfluxWriter(settings, layout.influx_spool_dir(data) / "live")
        try:  # what closing the session had no time to send (the writer's backoff)
            assert late.drain(60)
        finally:
            late.close(5)
        assert influx_counts(where.url, DAY) == file_counts(data, DAY, OFFSETS, health=True)
        cycles = Counter(_ns(row["ts"]) for row in _rows(data / "overview/NIFTY/2026-11-20.csv"))
        assert times(where.url, "monitor_status", DAY) == cycles
        q = "SELECT max(spool_points) FROM influx_write_stats"
        ((_, rows),) = series(where.url, q)
        assert rows[0][1] > 0  # the writer said points waited


def test_the_v2_write_path_into_victoriametrics(tmp_path: Path) -> None:
    """Issue 14: the 2.x write path against a real VictoriaMetrics (``/api/v2/write`` with
    bucket, org and token)."""
    data = tmp_path / "data"
    until = datetime(2026, 11, 20, 9, 17, tzinfo=IST)  # four cycles
    with victoria_metrics(tmp_path / "vm") as (url, _):
        v2 = {"influxdb_api": "v2", "influxdb_bucket": "b", "influxdb_org": "o"}
        report = record(data, until=until, influxdb_url=url, influxdb_token="t", **v2)
        assert report.cycles == 4
        cycles = [
            _ns(row["ts"]) // 1_000_000 for row in _rows(data / "overview/NIFTY/2026-11-20.csv")
        ]
        found = vm_export(url, "chain_analytics_pcr_oi")
        analytics = sorted(layout.analytics_root(data).glob("*/*/2026-11-20.csv"))
        assert len(found) == len(analytics) == 10
        for one in found:
            path = layout.analytics_path(data, one["metric"]["index"], one["metric"]["bucket"], DAY)
            rows = _rows(path)
            assert one["timestamps"] == cycles
            assert one["values"] == [float(row["pcr_oi"]) for row in rows]


def test_a_server_that_never_answers_costs_no_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a server that accepts connections and never answers: the session records
    every cycle on time (in real time, a cycle a second: no cycle missed, none lost), the
    writer says the server is away, and every point waits in the spool for the next writer."""
    # Closing waits for the writer at most this long (10 s in a run): the server never answers.
    monkeypatch.setattr(influx_output, "CLOSE_SECONDS", 1.0)
    data = tmp_path / "data"
    start = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
    until = start + timedelta(seconds=12)
    with silent_listener() as port:
        settings = Settings(
            data_dir=data,
            cadence_seconds=1,
            influxdb_url=f"http://127.0.0.1:{port}",
            influxdb_timeout_seconds=1,
        )
        clock = ScaledClock(start, 1)  # real time
        broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
        report = asyncio.run(record_session(settings, broker, clock, DAY, until=until))
    session = calendar.session("NSE", DAY)
    assert session is not None
    scheduled = [t for t in cycle_times(session, 1) if t < until]
    assert report.missed == 0 and not report.lost  # the pipeline's own "on time"
    assert report.cycles == len(scheduled) - report.before_start >= 8
    state = health.read(data)[SINK]
    assert "not taking writes" in state["detail"] and state["status"] == "degraded"
    with influxd_server(tmp_path) as (url, _):
        late = InfluxWriter(
            settings.model_copy(update={"influxdb_url": url}),
            layout.influx_spool_dir(data) / "live",
        )
        try:
            assert late.drain(60)
        finally:
            late.close(5)
        assert influx_counts(url, DAY) == file_counts(data, DAY, OFFSETS, health=True)
        cycles = Counter(_ns(row["ts"]) for row in _rows(data / "overview/NIFTY/2026-11-20.csv"))
        assert times(url, "monitor_status", DAY) == cycles
        assert len(cycles) == report.cycles


def test_opchain_killed_with_points_in_the_spool_loses_none(tmp_path: Path) -> None:
    """Issue 14: opchain SIGKILLed while points wait in the spool, then restarted: no point
    lost, none twice. The first run's InfluxDB is not there yet, so every point waits in the
    spool; the run is killed mid-session, influxd started, and the same command run again to
    the close: it resumes the files and sends the spool.

    Killed at any moment: a cycle reaches the spool only after its rows reached the OS
    (``InfluxOutput.flush``), so the rerun resumes after every spooled cycle and records none
    of them again (a second recording's ``monitor_status``, tagged with the writer's state
    then, would land beside the first's)."""
    data, where = tmp_path / "data", ports()
    command = [sys.executable, "-m", "opchain", "run", "--broker", "sim", "--no-api",
               "--sessions", "1", "--cadence", "30", "--speed", "60", "-d", str(data),
               "--start", "2026-11-20T15:24:00"]  # fmt: skip
    env = {**os.environ, "OPCHAIN_INFLUXDB_URL": where.url, "COLUMNS": "200"}
    folder = layout.influx_spool_dir(data) / "live"
    overview = layout.overview_path(data, "NIFTY", DAY)
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL) as run:
        try:
            pause = threading.Event()  # never set: a bounded wait between looks at the files
            for _ in range(6000):  # a minute at most
                assert run.poll() is None, "the run ended before it was killed"
                if spooled(folder) >= 4:
                    break
                pause.wait(0.01)
            else:
                raise AssertionError("the run recorded nothing in a minute")
        finally:
            run.send_signal(signal.SIGKILL)
    assert run.returncode == -signal.SIGKILL
    assert 4 <= spooled(folder) <= len(_rows(overview))  # the files hold every spooled cycle
    with influxd_at(tmp_path, where):
        again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert "already on disk" in again.stdout  # it resumed
        assert not list(folder.glob("*.seg"))  # everything sent
        assert influx_counts(where.url, DAY) == file_counts(data, DAY, OFFSETS, health=True)
        cycles = Counter(_ns(row["ts"]) for row in _rows(overview))
        assert times(where.url, "monitor_status", DAY) == cycles
