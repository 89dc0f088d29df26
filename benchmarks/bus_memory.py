"""A bus worker's memory over whole sessions, against the embedded pipeline's, in one run.

    .venv/bin/python benchmarks/bus_memory.py [--cadence 15] [--days 2026-11-19,2026-11-20]

Both record the same simulated days (NIFTY, BANKNIFTY, SENSEX, the band), each in a process of
its own: the embedded pipeline through ``record_session``; the worker through ``Worker.handle``,
handed each entry as ``opchain collect``'s code publishes it (no Redis: its memory is not the
worker's; the collector's share of the process is the same at every moment of a day).
RSS is read from /proc after a full garbage collection, at each tenth of each day, and printed
as a table: what grows with the cycles of a day, and whether a second day starts again from
where the first began.
"""

import argparse
import asyncio
import gc
import math
import subprocess
import sys
import tempfile
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from opchain.brokers.sim import SimBroker
from opchain.bus.collector import Publishing
from opchain.bus.lease import Lease
from opchain.bus.worker import Partition, Worker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.redisconn import Keys
from opchain.settings import Settings

INDICES = ("NIFTY", "BANKNIFTY", "SENSEX")


def rss_mb() -> float:
    gc.collect()
    with Path("/proc/self/status").open() as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


class Handed:
    """A publisher that hands each entry straight to the worker, in order (nothing kept)."""

    state, detail = "ok", ""

    def __init__(self, job: Worker, parts: dict[str, Partition], total: int) -> None:
        self.job, self.parts, self.total, self.count = job, parts, total, 0
        self.seen: list[tuple[str, float]] = []

    async def publish(self, stream: str, entry_id: str, fields: dict[str, bytes]) -> None:
        given = {k.encode(): v for k, v in fields.items()}
        await self.job.handle(self.parts[stream.rsplit(":", 1)[1]], entry_id.encode(), given)
        self.count += 1


class NoRedis:
    async def hset(self, *args: Any, **kwargs: Any) -> None: ...

    async def hgetall(self, *args: Any) -> dict[bytes, bytes]:
        return {}


def opens(day: date) -> datetime:
    return datetime.combine(day, time(9, 15), tzinfo=IST)


async def embedded(settings: Settings, days: list[date]) -> list[tuple[str, float]]:
    seen = [("start", rss_mb())]
    for day in days:
        clock = VirtualClock(opens(day))

        def progress(ts: datetime, n: int, total: int, day: date = day) -> None:
            if n % (total // 10) == 0:
                seen.append((f"{day} {n * 10 // total}/10 of the day", rss_mb()))

        await record_session(settings, SimBroker(clock, 7, 0.0), clock, day, progress)
    return seen


async def worker(settings: Settings, days: list[date]) -> list[tuple[str, float]]:
    job = Worker(settings, NoRedis(), "bench")  # type: ignore[arg-type]
    job._kept = math.inf  # no leases to look after: nothing else competes here
    parts = {}
    for name in INDICES:
        fence = settings.data_dir / "bench-fence" / name
        fence.parent.mkdir(parents=True, exist_ok=True)
        fence.write_text("1\n")
        parts[name] = Partition(name, Lease(name, "bench", 1, math.inf, math.inf, fence))
    seen = [("start", rss_mb())]
    for day in days:
        clock = VirtualClock(opens(day))
        handed = Handed(job, parts, 0)
        recording = Publishing(handed, Keys())  # type: ignore[arg-type]

        def progress(ts: datetime, n: int, total: int, day: date = day) -> None:
            if n % (total // 10) == 0:
                seen.append((f"{day} {n * 10 // total}/10 of the day", rss_mb()))

        await recording(settings, SimBroker(clock, 7, 0.0), clock, day, progress)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cadence", type=float, default=15.0)
    parser.add_argument("--days", default="2026-11-19,2026-11-20")
    parser.add_argument("--mode", choices=["embedded", "worker"], help="(one process per mode)")
    args = parser.parse_args()
    if args.mode is None:  # each mode in a process of its own, side by side
        found = {}
        for mode in ("embedded", "worker"):
            argv = [sys.executable, __file__, "--mode", mode, "--cadence", str(args.cadence),
                    "--days", args.days]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            found[mode] = [line.split("\t") for line in done.stdout.splitlines()]
        print(f"cadence {args.cadence:g} s, {', '.join(INDICES)}, band; RSS MB after a full gc")
        print("| moment | embedded | worker |\n|---|---|---|")
        for (moment, a), (_, b) in zip(found["embedded"], found["worker"], strict=True):
            print(f"| {moment} | {float(a):.0f} | {float(b):.0f} |")
        return
    calendar.install(calendar.BUILT_IN)
    days = [date.fromisoformat(d) for d in args.days.split(",")]
    run = embedded if args.mode == "embedded" else worker
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), indices=INDICES, full_chain=False,
                            cadence_seconds=args.cadence)  # fmt: skip
        for moment, mb in asyncio.run(run(settings, days)):
            print(f"{moment}\t{mb}")


if __name__ == "__main__":
    main()
