"""What the raw store costs a cycle: each snapshot's legs journaled (an Arrow batch per index,
handed to the operating system before the cycle's split rows) and each window folded into its
zstd Parquet part on a background thread, at band size (the default offsets) and at full-chain
size (``OPCHAIN_FULL_CHAIN``).

    .venv/bin/python benchmarks/raw.py [--date 2026-11-20] [--cadence 1] [--minutes 30]

The snapshots are collected from the simulator first (not timed), then added to a
:class:`RawStore` one by one, timing each ``add``; ``close`` folds the last window. The resident
memory is sampled after each window; the snapshots themselves are held throughout, so only its
growth while adding is the store's. The script uses only ``RawStore.add`` and ``close``, so the
same file times an older tree's store (``PYTHONPATH=<tree>/src``).
"""

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.collect.cycle import Collector
from opchain.collect.watch import plan_watches
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.model import Snapshot
from opchain.settings import Settings
from opchain.store.raw import RawStore


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def snapshots(day: date, cadence: float, minutes: int, full_chain: bool) -> list[Snapshot]:
    settings = Settings(cadence_seconds=cadence)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)

    async def collect() -> list[Snapshot]:
        dump = await broker.instruments()
        watches, _ = plan_watches(dump, settings.indices, session.open)
        offsets = settings.strike_offsets
        collector = Collector(broker, clock, watches, offsets, full_chain=full_chain)
        out = []
        for k in range(int(minutes * 60 / cadence)):
            ts = session.open + timedelta(seconds=k * cadence)
            await clock.sleep_until(ts)
            out.append(await collector.snapshot(ts))
        return out

    return asyncio.run(collect())


def measure(label: str, taken: list[Snapshot], window: int, cadence: float) -> None:
    legs = sum(len(c.legs) for s in taken for c in s.chains)
    per_window = int(window * 60 / cadence)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "raw")
        store = RawStore(root, timedelta(minutes=window))
        before, peak, times, journal = rss_mb(), 0.0, [], 0
        for n, snapshot in enumerate(taken, start=1):
            start = time.perf_counter()
            store.add(snapshot)
            times.append(time.perf_counter() - start)
            if n % max(1, per_window // 4) == 0:
                peak = max(peak, rss_mb() - before)
            if n == per_window:  # a whole window journaled, not yet folded
                journal = sum(p.stat().st_size for p in root.rglob("_journal-*"))
        start = time.perf_counter()
        store.close()
        closing = time.perf_counter() - start
        parts = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    cycles = len(taken)
    ms = sorted(t * 1000 for t in times)
    print(f"{label}: {cycles:,} snapshots, {legs / cycles:,.0f} legs each, window {window} min")
    print(
        f"  add per cycle: median {statistics.median(ms):.2f} ms, p99 {ms[int(0.99 * cycles)]:.2f}"
        f" ms, max {ms[-1]:.1f} ms; total {sum(times):.2f} s; close {closing:.2f} s"
    )
    print(
        f"  journal {journal / per_window / 1024:.1f} KiB a cycle; parts {parts / 2**20:.1f} MiB"
        f" ({parts / cycles / 1024:.1f} KiB a cycle); RSS growth while adding {peak:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 20))
    parser.add_argument("--cadence", type=float, default=1.0)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--window", type=int, default=15, help="raw window, minutes")
    args = parser.parse_args()
    for label, full in (("band", False), ("full chain", True)):
        taken = snapshots(args.date, args.cadence, args.minutes, full)
        measure(label, taken, args.window, args.cadence)


if __name__ == "__main__":
    main()
