"""The InfluxDB output: each cycle's points to the writer, the weekday masters when the day
closes, nothing when no InfluxDB URL is set."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pytest

from opchain.collect.watch import Watch
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle, LoopStats
from opchain.outputs.base import Output, Session
from opchain.outputs.influx import output
from opchain.outputs.influx.output import InfluxOutput, open_output, spool_dir, tags_for
from opchain.outputs.influx.points import Tags, cycle_lines
from opchain.settings import Settings
from opchain.store import layout

from .cycles import record_live
from .lineproto import parse
from .sessions import DAY

UNTIL = datetime(2026, 11, 20, 9, 17, 30, tzinfo=IST)  # two minutes and a cycle


@dataclass
class Stats:
    points_attempted: int = 0
    points_written: int = 0
    points_rejected: int = 0
    points_dropped: int = 0
    flush_latency_ms: float | None = None
    queue_points: int = 0
    spool_bytes: int = 0
    spool_points: int = 0
    state: str = "ok"


@dataclass
class FakeWriter:
    puts: list[list[str]] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)
    state: str = "ok"

    def put(self, lines: Sequence[str]) -> None:
        self.puts.append(list(lines))

    def stats(self) -> Stats:
        return Stats(points_attempted=sum(map(len, self.puts)), state=self.state)

    def drain(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        self.closed.append(timeout)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Cycle]]:
    data_dir = tmp_path_factory.mktemp("output")
    cycles = record_live(data_dir, until=UNTIL)
    settings = Settings(data_dir=data_dir)
    return settings, cycles


def _session(settings: Settings, cycle: Cycle) -> Session:
    watches = [Watch(c.index, c.bucket, c.expiry, (), {}) for c in cycle.snapshot.chains]
    return Session(settings, DAY, watches, settings.strike_offsets)


def test_no_url_no_output(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, influxdb_url=None)
    assert open_output(Session(settings, DAY, [], (0,))) is None


def test_each_cycle_goes_to_the_writer_whole(day: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = day
    writer = FakeWriter()
    tags = Tags(env="prod", host="box")
    influx: Output = InfluxOutput(_session(settings, cycles[0]), writer, tags)
    assert (influx.name, influx.durable, influx.reach()) == ("influxdb", False, None)
    for cycle in cycles:
        influx.write(replace(cycle, loop=LoopStats(legs=10, quote_calls=1)))
    assert writer.puts == []  # until the files are flushed (the next test)
    influx.close(day_over=False)
    assert len(writer.puts) == len(cycles)  # no masters mid-day
    for cycle, lines in zip(cycles, writer.puts, strict=True):
        found = Counter(parse(x).measurement for x in lines)
        market = cycle_lines(cycle, tags, settings.strike_offsets)
        assert lines[: len(market)] == market
        assert found["monitor_status"] == found["pipeline_tick"] == found["broker_health"] == 1
        assert found["influx_write_stats"] == 1
    assert writer.closed


def test_a_cycle_reaches_the_spool_only_after_its_rows_reach_the_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are flushed now and then (``flush_seconds`` of wall time; here never but
    at each minute); a point put before its cycle's rows reached the OS would be in the spool
    of a run killed then, whose rerun records the cycle again and writes it twice."""
    overview = layout.overview_path(tmp_path, "NIFTY", DAY)
    seen: list[tuple[int, int]] = []  # (cycles put so far, cycles in the file then)

    class Watching(FakeWriter):
        def put(self, lines: Sequence[str]) -> None:
            super().put(lines)
            on_disk = len(overview.read_text().splitlines()) - 1 if overview.exists() else 0
            seen.append((len(self.puts), on_disk))

    monkeypatch.setattr(output, "make_writer", lambda *_, **__: Watching())
    url = "http://127.0.0.1:9"  # never asked: the writer is the fake
    record_live(tmp_path, until=UNTIL, flush_seconds=3600, influxdb_url=url)
    assert seen and seen[-1][0] == 5  # five cycles, all put
    assert all(put <= on_disk for put, on_disk in seen), seen


def test_the_day_closes_with_its_weekday_masters(day: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = day
    writer = FakeWriter()
    influx = InfluxOutput(_session(settings, cycles[0]), writer, tags_for(settings))
    influx.close(day_over=True)
    (masters,) = writer.puts
    points = [parse(x) for x in masters]
    assert {p.measurement for p in points} == {"weekday_master_updates"}
    series = {(p.tags["index"], p.tags["expiry_code"], p.tags["strike_offset"]) for p in points}
    chains = {(c.index, c.bucket) for c in cycles[0].snapshot.chains}
    labels = {"atm", "atm_m1", "atm_m2", "atm_p1", "atm_p2", "atm_p1m1", "atm_p2m2"}
    assert series == {(i, b, label) for i, b in chains for label in labels}
    minutes = {p.ns for p in points}
    first = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp()) * 10**9
    assert first in minutes and {p.tags["weekday"] for p in points} == {"fri"}
    assert writer.closed


def test_spools_are_apart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert spool_dir(settings, "live") != spool_dir(settings, "backfill")
    assert spool_dir(settings, "live").is_relative_to(tmp_path)


def test_a_cycle_that_cannot_be_encoded_stops_nothing(
    day: tuple[Settings, list[Cycle]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, cycles = day
    writer = FakeWriter()
    influx = InfluxOutput(_session(settings, cycles[0]), writer, Tags(env="prod", host="box"))
    broken = replace(cycles[0], solved=cycles[0].solved[:1])  # not one per chain: a bug
    influx.write(broken)
    influx.write(broken)
    influx.write(cycles[1])
    influx.flush()
    assert len(writer.puts) == 1 and influx.failed == 2
    errors = [r for r in caplog.records if "not written to InfluxDB" in r.getMessage()]
    assert len(errors) == 2 and errors[0].exc_info and not errors[1].exc_info


@pytest.mark.parametrize(("state", "waits"), [("ok", 10.0), ("spooling", 10.0), ("down", 1.0)])
def test_closing_waits_long_only_for_a_server_that_takes_writes(
    tmp_path: Path, state: str, waits: float
) -> None:
    """A session's close waits for the writer to send what it holds, but not ten seconds for
    a server that is away: what it does not take waits in the spool for the next run."""
    writer = FakeWriter(state=state)
    influx = InfluxOutput(
        Session(Settings(data_dir=tmp_path), DAY, [], (0,)), writer, Tags(env="prod", host="box")
    )
    influx.close(day_over=False)
    assert writer.closed == [waits]
