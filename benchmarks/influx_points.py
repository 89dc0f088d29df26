"""How long encoding a cycle as InfluxDB line protocol takes, and rebuilding a recorded one.

A few cycles of the simulated session are recorded (the band of watched offsets, then the
whole chain), then ``cycle_lines`` (every market measurement of a cycle) and ``health_lines``
are timed on one of them, best of several repeats; and ``recorded_cycles`` (the backfill's
reading of the files, IVs and Greeks solved again) per cycle.

    .venv/bin/python benchmarks/influx_points.py [--repeat 7]
"""

import argparse
import asyncio
import tempfile
import time
import timeit
from datetime import datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle, LoopStats
from opchain.merge.rows import merge
from opchain.merge.stats import BucketStats
from opchain.model import Snapshot
from opchain.outputs.influx.backfill import recorded_cycles, solve
from opchain.outputs.influx.points import Tags, cycle_lines, health_lines
from opchain.pipeline import record_session
from opchain.settings import Settings

DAY = datetime(2026, 11, 20, tzinfo=IST).date()
UNTIL = datetime(2026, 11, 20, 9, 20, tzinfo=IST)  # ten cycles


def record(data_dir: Path, full_chain: bool) -> tuple[Settings, list[Cycle]]:
    settings = Settings(data_dir=data_dir, full_chain=full_chain)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    seen: list[tuple[Snapshot, list[BucketStats]]] = []
    asyncio.run(
        record_session(
            settings, broker, clock, DAY, until=UNTIL, on_cycle=lambda s, b: seen.append((s, b))
        )
    )
    cycles = []
    for snapshot, stats in seen:
        rows, _ = merge(snapshot, settings.rate, settings.strike_offsets)
        loop = LoopStats(collect_ms=50.0, quote_calls=1, legs=10)
        cycles.append(Cycle(snapshot, rows, stats, solve(snapshot, settings.rate), loop=loop))
    return settings, cycles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tags = Tags(env="prod", host="bench")
    with tempfile.TemporaryDirectory() as folder:
        for full in (False, True):
            settings, cycles = record(Path(folder) / str(full), full)
            cycle = cycles[len(cycles) // 2]
            legs = sum(len(c.legs) for c in cycle.snapshot.chains)
            points = len(cycle_lines(cycle, tags, settings.strike_offsets))

            def encode(c: Cycle = cycle, s: Settings = settings) -> None:
                cycle_lines(c, tags, s.strike_offsets)
                health_lines(c, None, "sim", tags)

            best = min(timeit.repeat(encode, number=10, repeat=args.repeat)) / 10
            start = time.perf_counter()
            rebuilt = list(recorded_cycles(settings, DAY))
            per_cycle = (time.perf_counter() - start) / len(rebuilt)
            print(
                f"{'full chain' if full else 'band'}: {legs} legs, {points} points: "
                f"encode {best * 1e6:.0f} µs a cycle ({best * 1e9 / points:.0f} ns a point); "
                f"rebuilt from the files in {per_cycle * 1e3:.1f} ms a cycle"
            )


if __name__ == "__main__":
    main()
