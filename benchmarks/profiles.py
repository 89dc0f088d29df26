"""Weekday masters and DTE profiles: the cost of a live update early and late in the day, and
a rebuild from 250 days of split files.

Streaming: one recorded simulated day (2026-11-20, 30 s cadence, 70 series) is replayed into
fresh split files minute by minute, onto profiles that already hold 20 earlier Fridays. After
each minute, opchain's ``MasterStream.update`` reads what the files gained and adds the
finished minute to every weekday master and DTE profile, saving them (as live). Beside it,
OP's way: re-read each day file from the start and recompute the day's minutes. Each is timed
at minutes 6-15 and 366-375 of the session.

Rebuild: that day's split files copied to 250 weekdays, then ``opchain rebuild-masters``'
work (``build`` + save) over all of them.

    .venv/bin/python benchmarks/profiles.py [--days 250]
"""

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.pipeline import record_session
from opchain.profiles.minutes import last_per_minute, paise
from opchain.settings import Settings
from opchain.store.masters import MasterStream, build
from opchain.store.opdata import find_splits
from opchain.store.profiles import ProfileBook

DAY = date(2026, 11, 20)


def record(folder: Path) -> Path:
    settings = Settings(data_dir=folder, sim_glitch_rate=0.0)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed)
    asyncio.run(record_session(settings, broker, clock, DAY))
    return settings.split_root


def weekdays_before(day: date, count: int) -> list[date]:
    """``count`` weekdays before ``day``, oldest first (holidays do not matter here)."""
    days: list[date] = []
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def copy_days(source: Path, target: Path, dates: list[date]) -> None:
    """The recorded day's split files again under other dates."""
    for f in source.glob(f"*/*/*/{DAY}.csv"):
        text = f.read_text()
        for d in dates:
            path = target / f.relative_to(source).parent / f"{d}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace(f"{DAY}T", f"{d}T"))


def streaming(source: Path, work: Path) -> dict[str, list[float]]:
    """Live updates on profiles that already hold 20 earlier Fridays (as they will after a
    month: full 375-row files from the first minute on)."""
    history = [d for d in weekdays_before(DAY, 100) if d.weekday() == 4][-20:]
    copy_days(source, work / "history", history)
    book = ProfileBook(fresh=True)
    build(book, work / "adv", find_splits(work / "history")[0])
    book.save()
    files = sorted(source.glob(f"*/*/*/{DAY}.csv"))
    lines = {f: f.read_text().splitlines(keepends=True) for f in files}
    series = [tuple(f.relative_to(source).parts[:3]) for f in files]
    stream = MasterStream(work / "csv", work / "adv", DAY, save_every=0.0)
    targets = {f: work / "csv" / f.relative_to(source) for f in files}
    for f, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(lines[f][0])
    times: dict[str, list[float]] = {"opchain": [], "OP rescan": []}
    start = datetime.fromisoformat(f"{DAY}T09:15:00+05:30")
    for minute in range(375):
        stamp = (start + timedelta(minutes=minute)).strftime("T%H:%M")
        for f, target in targets.items():
            with target.open("a") as out:
                out.writelines(line for line in lines[f][1:] if stamp in line[:17])
        now = start + timedelta(minutes=minute + 1)
        t0 = time.perf_counter()
        stream.update(series, now=now)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        for target in targets.values():  # OP: every file read and every minute redone
            rows = [line.split(",") for line in target.read_text().splitlines()[1:]]
            last_per_minute(
                (datetime.fromisoformat(r[0]), paise(float(r[17])) if r[17] else None) for r in rows
            )
        t2 = time.perf_counter()
        if 5 <= minute < 15 or minute >= 365:
            times["opchain"].append(t1 - t0)
            times["OP rescan"].append(t2 - t1)
    return times


def rebuild(source: Path, work: Path, days: int) -> tuple[float, int, int]:
    copy_days(source, work / "csv", weekdays_before(DAY, days))
    t0 = time.perf_counter()
    splits, _ = find_splits(work / "csv")
    book = ProfileBook(fresh=True)
    build(book, work / "adv", splits)
    written = book.save()
    return time.perf_counter() - t0, len(splits), written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = record(Path(tmp, "day"))
        times = streaming(source, Path(tmp, "stream"))
        print("live update per minute, 70 series (median of 10 minutes, ms):")
        for name, values in times.items():
            early, late = statistics.median(values[:10]), statistics.median(values[10:])
            print(f"  {name:10} minute 6-15: {early * 1e3:7.2f}   minute 366-375: "
                  f"{late * 1e3:7.2f}   ratio {late / early:5.2f}")  # fmt: skip
        shutil.rmtree(Path(tmp, "stream"))
        seconds, files, written = rebuild(source, Path(tmp, "rebuild"), args.days)
        rate = files / seconds
        print(f"rebuild: {files:,} split files ({args.days} days x 70 series) -> "
              f"{written:,} profiles in {seconds:.1f} s ({rate:,.0f} files/s)")  # fmt: skip


if __name__ == "__main__":
    main()
