"""The InfluxDB output's cost to the collector, and the points per second it sustains.

The same 1-second-cadence simulated session (the first ``--minutes`` of 2026-11-20) is recorded
with the output off and on, to a throwaway Debian ``influxd`` 1.x started here, alternating
runs, best of ``--rounds``. Reported per run: the pipeline's own time (wall time less the time
inside the simulated broker, measured apart), the points handed to the writer, when the last
one reached InfluxDB (the writer sends on its own thread while the session runs; the session's
close waits for it) and so the points per second InfluxDB was given, sustained over the run.
The cost per cycle is (on - off) / cycles: encoding, the write-ahead spool, and what the
writer's thread takes from the collector's core. Then the writer alone: the points of the last
"on" run put again, a cycle's points a put, as fast as they come, into a fresh writer and
database; the time until InfluxDB has them all gives the points per second the sink sustains.

    .venv/bin/python benchmarks/influx_sink.py [--minutes 30] [--rounds 3] [--full-chain]
"""

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.outputs.influx import output
from opchain.outputs.influx.writer import InfluxWriter
from opchain.pipeline import record_session
from opchain.settings import Settings

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
from tests.servers_health import influxd_server  # noqa: E402

from session import TimedBroker  # noqa: E402  (benchmarks/session.py)

DAY = date(2026, 11, 20)
puts: list[list[str]] = []  # what the last run with the output on handed its writer


@dataclass
class Run:
    cycles: int
    pipeline: float  # seconds, the simulated broker left out
    wall: float  # seconds, from the first cycle to the session's return
    points: int = 0  # handed to the writer
    written: int = 0  # taken by InfluxDB
    rejected: int = 0


def run(minutes: int, full_chain: bool, folder: Path, url: str | None) -> Run:
    settings = Settings(
        data_dir=folder,
        cadence_seconds=1.0,
        full_chain=full_chain,
        influxdb_url=url,
        influxdb_db=f"bench{time.monotonic_ns()}",
    )
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = TimedBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    broker.market(DAY)  # the day's market is built before the clock starts
    writers: list[Any] = []
    puts.clear()
    make = output.make_writer

    def keep(*args: Any, **kwargs: Any) -> Any:
        writer = make(*args, **kwargs)
        put = writer.put

        def remember(lines: Any) -> None:
            puts.append(list(lines))
            put(lines)

        writer.put = remember
        writers.append(writer)
        return writer

    output.make_writer = keep  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        until = session.open + timedelta(minutes=minutes)
        report = asyncio.run(record_session(settings, broker, clock, DAY, until=until))
        wall = time.perf_counter() - start
    finally:
        output.make_writer = make  # type: ignore[assignment]
    result = Run(report.cycles, wall - broker.seconds, wall)
    if writers:
        stats = writers[0].stats()
        result.points, result.written = stats.points_attempted, stats.points_written
        result.rejected = stats.points_rejected
        assert stats.points_written + stats.points_rejected == stats.points_attempted, (
            f"InfluxDB did not take every point by the close: {stats}"
        )
        assert _stored(url, settings.influxdb_db) > 0
    return result


def sustained(url: str, folder: Path) -> tuple[int, float]:
    """Points, and seconds until InfluxDB took them all, of ``puts`` put again at once."""
    settings = Settings(data_dir=folder, influxdb_url=url, influxdb_db="sustained")
    writer = InfluxWriter(settings, folder / "spool")
    try:
        start = time.perf_counter()
        for lines in puts:
            writer.put(lines)
        assert writer.drain(600), writer.stats()
        seconds = time.perf_counter() - start
        stats = writer.stats()
    finally:
        writer.close(10)
    assert stats.points_written == stats.points_attempted == sum(map(len, puts)), stats
    return stats.points_written, seconds


def _stored(url: str | None, db: str) -> int:
    assert url is not None
    answer = httpx.get(
        f"{url}/query", params={"db": db, "q": 'SELECT count("pcr_oi") FROM "chain_analytics"'}
    ).json()
    return int(answer["results"][0]["series"][0]["values"][0][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-chain", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[Run]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp, influxd_server(Path(tmp)) as (url, _):
        for k in range(args.rounds):
            for name in ("off", "on"):
                with tempfile.TemporaryDirectory() as data:
                    got = run(
                        args.minutes, args.full_chain, Path(data), url if name == "on" else None
                    )
                runs[name].append(got)
                extra = ""
                if name == "on":
                    extra = f", {got.points:,} points, {got.written:,} written"
                said = (
                    f"{got.cycles:,} cycles, pipeline {got.pipeline:.2f} s, wall {got.wall:.2f} s"
                )
                print(f"round {k + 1} {name:>3}: {said}{extra}", flush=True)
        with tempfile.TemporaryDirectory() as data:
            points, seconds = sustained(url, Path(data))
    print(f"writer alone: {points:,} points in {len(puts):,} puts taken by InfluxDB in "
          f"{seconds:.2f} s = {points / seconds:,.0f} points/s")  # fmt: skip
    off = min(runs["off"], key=lambda r: r.pipeline)
    on = min(runs["on"], key=lambda r: r.pipeline)
    mode = "whole chain" if args.full_chain else "band"
    print(f"{mode}, {args.minutes} min at 1 s, best of {args.rounds}:")
    for label, best in (("off", off), ("on: ", on)):
        per = best.pipeline / best.cycles * 1e3
        print(f"  sink {label} pipeline {best.pipeline:.2f} s = {per:.2f} ms/cycle")
    print(f"  sink cost per cycle: {(on.pipeline - off.pipeline) / on.cycles * 1e3:.2f} ms; "
          f"{on.points / on.cycles:,.0f} points a cycle")  # fmt: skip


if __name__ == "__main__":
    main()
