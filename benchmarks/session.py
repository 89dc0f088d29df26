"""A full session at 1-second cadence (22,500 snapshots) through collect -> merge -> store.

Reports legs per second of the pipeline (time in the simulated broker is measured apart and
left out), wall time, and memory through the day. Then, side by side in this one process:
the pipeline with opchain's garbage-collector settings against the interpreter's defaults
(alternating runs, best of each), and the same session's split rows written OP's way (open,
append one row, close, for every row) against opchain's store.

    .venv/bin/python benchmarks/session.py [--date 2026-11-20] [--cadence 1] [--minutes 375]

``--write-path`` times only what a replay of the recorded day runs per cycle: ``merge_cycle``
and the split, overview and analytics writes, over snapshots collected beforehand (best of
``--rounds``), and a pyarrow CSV write of the same split rows in one go beside it. It uses
only interfaces older trees have too, so the same script times another checkout's code:
``PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/session.py --write-path``.
"""

import argparse
import asyncio
import contextlib
import csv
import gc
import hashlib
import math
import resource
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from opchain import pipeline
from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.rows import merge, merge_cycle
from opchain.merge.stats import History
from opchain.model import Quote, Snapshot, SplitRow
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.appendlog import FlushSchedule
from opchain.store.overview import OverviewStore
from opchain.store.splits import COLUMNS, SplitStore
from opchain.store.stats import StatsStore


class TimedBroker(SimBroker):
    """The simulator, with the time spent inside it counted so it can be left out."""

    seconds = 0.0

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        start = time.perf_counter()
        try:
            return await super().quote(keys)
        finally:
            self.seconds += time.perf_counter() - start


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_pipeline(day: date, cadence: float, minutes: int, folder: Path) -> float:
    settings = Settings(data_dir=folder, cadence_seconds=cadence, sim_glitch_rate=0.001)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = TimedBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    broker.market(day)  # build the day's market before the clock starts
    samples: list[tuple[str, float]] = []

    def progress(ts: object, done: int, total: int) -> None:
        if done % max(1, int(1800 / cadence)) == 1:
            samples.append((f"{ts:%H:%M}", rss_mb()))

    until = session.open + timedelta(minutes=minutes)
    start = time.perf_counter()
    report = asyncio.run(record_session(settings, broker, clock, day, progress, until))
    wall = time.perf_counter() - start
    busy = wall - broker.seconds
    print(f"snapshots {report.cycles:,}  legs {report.legs:,}  split rows {report.rows_added:,}")
    print(f"wall {wall:.1f} s = simulated broker {broker.seconds:.1f} s + pipeline {busy:.1f} s")
    print(f"pipeline throughput {report.legs / busy:,.0f} legs/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print("RSS through the day: " + ", ".join(f"{t} {mb:.0f} MB" for t, mb in samples))
    return busy


def gc_race(day: date, cadence: float, minutes: int, rounds: int = 2) -> None:
    """Time spent inside the garbage collector, and the pipeline's time, with
    ``pipeline.quiet_gc`` and with the interpreter's default collector."""
    quiet = pipeline.quiet_gc
    collecting = [0.0, 0.0]  # seconds inside the collector, start of the current pass

    def clock_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    best: dict[str, tuple[float, float]] = {}
    gc.callbacks.append(clock_gc)
    try:
        for _ in range(rounds):
            for name, settings in (("default", contextlib.nullcontext), ("quiet", quiet)):
                pipeline.quiet_gc = settings  # type: ignore[assignment]
                collecting[0] = 0.0
                with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(None):
                    seconds = run_pipeline(day, cadence, minutes, Path(tmp))
                best[name] = min(best.get(name, (seconds, collecting[0])), (seconds, collecting[0]))
    finally:
        pipeline.quiet_gc = quiet
        gc.callbacks.remove(clock_gc)
    print(f"garbage collector, first {minutes} min, best of {rounds} (pipeline s, in collector s):")
    for name, label in (("default", "interpreter defaults"), ("quiet", "opchain quiet_gc")):
        print(f"  {label + ':':26} {best[name][0]:.2f} s, {best[name][1]:.2f} s")


def store_race(day: date, cadence: float, minutes: int) -> None:
    """The same split rows written OP's way and opchain's way."""
    settings = Settings(cadence_seconds=cadence, sim_glitch_rate=0.0)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed)
    from opchain.collect.cycle import Collector
    from opchain.collect.watch import plan_watches

    async def rows() -> list[list[SplitRow]]:
        dump = await broker.instruments()
        watches, _ = plan_watches(dump, settings.indices, session.open)
        collector = Collector(broker, clock, watches, settings.strike_offsets)
        batches = []
        for k in range(int(minutes * 60 / cadence)):
            ts = session.open + timedelta(seconds=k * cadence)
            await clock.sleep_until(ts)
            snapshot = await collector.snapshot(ts)
            batches.append(merge(snapshot, settings.rate, settings.strike_offsets)[0])
        return batches

    batches = asyncio.run(rows())
    count = sum(len(b) for b in batches)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for batch in batches:
            for row in batch:  # market_app csv_daily_split_writer: one open/close per row
                path = Path(tmp, "op", row.index, row.expiry_code, row.strike_offset, f"{day}.csv")
                path.parent.mkdir(parents=True, exist_ok=True)
                new = not path.exists()
                with path.open("a", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=COLUMNS)
                    if new:
                        writer.writeheader()
                    writer.writerow(row._asdict())
        op = time.perf_counter() - start
        start = time.perf_counter()
        store = SplitStore(Path(tmp, "opchain"))
        for batch in batches:
            store.write(batch)
        store.close()
        ours = time.perf_counter() - start
    print(f"split CSV writes, {len(batches):,} snapshots, {count:,} rows:")
    print(f"  OP (open/append/close per row): {op:.2f} s = {count / op:,.0f} rows/s")
    print(f"  opchain SplitStore:             {ours:.2f} s = {count / ours:,.0f} rows/s")


def collect(day: date, cadence: float, minutes: int) -> list[Snapshot]:
    """The session's snapshots from the open, collected from the simulator (glitches on)."""
    settings = Settings(cadence_seconds=cadence, sim_glitch_rate=0.001)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    from opchain.collect.cycle import Collector
    from opchain.collect.watch import plan_watches

    async def take() -> list[Snapshot]:
        dump = await broker.instruments()
        watches, _ = plan_watches(dump, settings.indices, session.open)
        collector = Collector(broker, clock, watches, settings.strike_offsets)
        out = []
        for k in range(int(minutes * 60 / cadence)):
            ts = session.open + timedelta(seconds=k * cadence)
            await clock.sleep_until(ts)
            out.append(await collector.snapshot(ts))
        return out

    return asyncio.run(take())


def write_path(day: date, cadence: float, minutes: int, rounds: int) -> None:
    """merge_cycle + split/overview/analytics writes over pre-collected snapshots, per stage
    (CPU seconds of this process: the machine is shared), best total of ``rounds``."""
    snapshots = collect(day, cadence, minutes)
    settings = Settings(cadence_seconds=cadence)
    best: dict[str, float] = {}
    rows: list[SplitRow] = []
    digest = ""
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp, pipeline.quiet_gc():
            root = Path(tmp)
            flushes = FlushSchedule(settings.flush_seconds)  # as record_session's
            splits = SplitStore(root / "splits", flushes=flushes)
            overview = OverviewStore(root / "overview", flushes=flushes)
            analytics = StatsStore(root / "analytics", flushes=flushes)
            history = History()
            took = dict.fromkeys(("merge", "splits", "overview", "analytics"), 0.0)
            clock = time.process_time
            for snapshot in snapshots:
                start = clock()
                cycle = merge_cycle(snapshot, settings.rate, settings.strike_offsets, history)
                history.remember(cycle.stats)
                merged = clock()
                splits.write(cycle.rows)
                split = clock()
                overview.write(snapshot)
                over = clock()
                analytics.write(snapshot.ts, cycle.stats)
                took["merge"] += merged - start
                took["splits"] += split - merged
                took["overview"] += over - split
                took["analytics"] += clock() - over
                if not best:  # the first round's rows, for pyarrow below (not timed)
                    rows += cycle.rows
            for store in (splits, overview, analytics):
                store.close()
            files = sorted(p for p in root.rglob("*.csv"))
            digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:12]
            split_bytes = sum(p.stat().st_size for p in (root / "splits").rglob("*.csv"))
        if sum(took.values()) < sum(best.values() or [math.inf]):
            best = took
    total = sum(best.values())
    print(f"merge+write path, {len(snapshots):,} snapshots, best of {rounds} (CPU s), "
          f"files sha256 {digest}:")  # fmt: skip
    for stage, seconds in best.items():
        print(f"  {stage + ':':10} {seconds:6.2f} s")
    print(f"  {'total:':10} {total:6.2f} s = {total / len(snapshots) * 1000:.2f} ms a snapshot")
    arrow_csv(rows, split_bytes)


def arrow_csv(rows: list[SplitRow], split_bytes: int) -> None:
    """The same split rows written by pyarrow as one CSV in one go (the issue's yardstick)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            name: [str(v) for v in column] if name in ("ts", "expiry") else list(column)
            for name, column in zip(COLUMNS, columns, strict=True)
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.process_time()
        pacsv.write_csv(table, Path(tmp, "all.csv"))
        seconds = time.process_time() - start
        size = Path(tmp, "all.csv").stat().st_size
    mb = 2**20
    print(f"pyarrow write_csv of the same {len(rows):,} split rows in one file: {seconds:.2f} s "
          f"({size / mb:.0f} MB; opchain's split files {split_bytes / mb:.0f} MB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 20))
    parser.add_argument("--cadence", type=float, default=1.0)
    parser.add_argument("--minutes", type=int, default=375, help="session minutes to run")
    parser.add_argument("--race-minutes", type=int, default=30, help="minutes for the races")
    parser.add_argument("--write-path", action="store_true", help="time merge+write alone")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --write-path")
    args = parser.parse_args()
    if args.write_path:
        write_path(args.date, args.cadence, args.minutes, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_pipeline(args.date, args.cadence, args.minutes, Path(tmp))
    gc_race(args.date, args.cadence, args.race_minutes)
    store_race(args.date, args.cadence, args.race_minutes)


if __name__ == "__main__":
    main()
