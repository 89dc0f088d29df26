"""The minute's work against the minute's snapshot: this code beside the code of a base commit
(default f67b79c, before issue 13 case 23), in one run.

A simulated session (2026-11-20, 30 s cadence, 70 series, the simulator at full speed) is
recorded from the open to 11:15 onto profiles that already hold 20 earlier Fridays (as after a
month: full 375-row files from the first minute). Profiles are saved at every minute, as live
(at full speed a run saves every 5 wall seconds otherwise). For every cycle it times, in wall
time, the path from the cycle's start (its time reached) to ``on_cycle``, where the API hands the
snapshot to WebSocket clients; cycles on a minute boundary (when the profiles are updated) and
the others apart. It also times each live profile update (``MasterStream.update``: read what
the split files gained, add the finished minute to 140 profiles, save them).

The base commit's ``src`` is taken with ``git archive`` into a temporary folder and run in a
subprocess with it first on ``PYTHONPATH``; this checkout's runs the same way.

    .venv/bin/python benchmarks/minute_work.py [--base f67b79c] [--until 11:15]
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import date, datetime, timedelta
from io import BytesIO
from pathlib import Path

DAY = date(2026, 11, 20)
HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def measure(data_dir: Path, until: str) -> dict[str, list[float]]:
    """Record DAY into ``data_dir`` to ``until`` with the opchain on ``sys.path``; the times."""
    from opchain.brokers.sim import SimBroker
    from opchain.market import calendar
    from opchain.market.clock import VirtualClock
    from opchain.pipeline import record_session
    from opchain.settings import Settings
    from opchain.store.masters import MasterStream

    settings = Settings(data_dir=data_dir, sim_glitch_rate=0.0, cadence_seconds=30)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed)
    times: dict[str, list[float]] = {"boundary": [], "other": [], "update": []}
    started: list[tuple[datetime, float]] = []
    sleep_until = clock.sleep_until

    async def timed_sleep(moment: datetime) -> None:
        await sleep_until(moment)
        started.append((moment, time.perf_counter()))

    clock.sleep_until = timed_sleep  # type: ignore[method-assign]
    update = MasterStream.update

    def timed_update(self: MasterStream, *args: object, **kwargs: object) -> int:
        self.save_every = 0.0  # live, a minute lasts longer than save_every: every one saves
        t0 = time.perf_counter()
        try:
            return update(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            if kwargs.get("now") is not None:
                times["update"].append(time.perf_counter() - t0)

    MasterStream.update = timed_update  # type: ignore[method-assign]

    def on_cycle(cycle: object) -> None:
        ts, t0 = started[-1]
        kind = "boundary" if ts.second == 0 and ts != session.open else "other"
        times[kind].append(time.perf_counter() - t0)

    end = datetime.fromisoformat(f"{DAY}T{until}:00+05:30")
    asyncio.run(record_session(settings, broker, clock, DAY, until=end, on_cycle=on_cycle))
    return times


def history(work: Path) -> Path:
    """A data directory whose profiles hold 20 earlier Fridays, made with this checkout."""
    from opchain.brokers.sim import SimBroker
    from opchain.market import calendar
    from opchain.market.clock import VirtualClock
    from opchain.pipeline import record_session
    from opchain.settings import Settings
    from opchain.store.masters import build
    from opchain.store.opdata import find_splits
    from opchain.store.profiles import ProfileBook

    day_dir = work / "day"
    settings = Settings(data_dir=day_dir, sim_glitch_rate=0.0)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    asyncio.run(record_session(settings, SimBroker(clock, settings.sim_seed), clock, DAY))
    fridays = [DAY - timedelta(days=7 * k) for k in range(20, 0, -1)]
    csv = work / "history_csv"
    for f in settings.split_root.glob(f"*/*/*/{DAY}.csv"):
        text = f.read_text()
        for d in fridays:
            path = csv / f.relative_to(settings.split_root).parent / f"{d}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace(f"{DAY}T", f"{d}T"))
    seeded = work / "seeded"
    book = ProfileBook(fresh=True)
    build(book, seeded / "data_adv", find_splits(csv)[0])
    book.save()
    return seeded


def base_source(commit: str, into: Path) -> Path:
    """The ``src`` folder of ``commit``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run(src: Path, seeded: Path, work: Path, until: str) -> dict[str, list[float]]:
    data = work / "data"
    shutil.copytree(seeded, data)
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--measure", str(data), "--until", until]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="f67b79c")
    parser.add_argument("--until", default="11:15")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.until)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seeded = history(work)
        base = base_source(args.base, work / "base")
        results = {
            f"base {args.base}": run(base, seeded, work / "b", args.until),
            "this checkout": run(REPO / "src", seeded, work / "c", args.until),
        }
    print(f"2026-11-20 09:15-{args.until}, 30 s cadence, 70 series, 20 Fridays of history; "
          "wall ms, median (95th percentile)")  # fmt: skip
    print(f"{'':22} {'boundary cycle':>18} {'other cycle':>18} {'profile update':>18}")
    for name, times in results.items():
        cells = [_shown(times[k]) for k in ("boundary", "other", "update")]
        print(f"{name:22} {cells[0]:>18} {cells[1]:>18} {cells[2]:>18}")


def _shown(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{statistics.median(values) * 1e3:.1f} ({p95 * 1e3:.1f})"


if __name__ == "__main__":
    main()
