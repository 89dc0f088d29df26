"""Today against the days before it (``store.query.compare``, what ``/profiles`` serves), with
250 days of history.

The simulated NIFTY this_week ``atm`` series of 2026-11-20 is copied to the 250 weekdays before
it, each with its days to the next Monday (so the Friday master holds 50 days, and so does
each DTE profile), and the profiles are built from them; then the first 200 minutes of the day
itself are added live, as ``opchain run`` does. Timed: the comparison as the dashboard asks for
it during the session (the profile as it was before today is kept, so two small files are read
whatever the history), the same with that copy gone (the earlier days rebuilt from their split
files), and an earlier Friday (its earlier days rebuilt likewise).

    .venv/bin/python benchmarks/query.py [--days 250]
"""

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.masters import MasterStream, build
from opchain.store.opdata import find_splits
from opchain.store.profiles import ProfileBook, earlier_path, weekday_path
from opchain.store.query import compare
from opchain.store.splits import COLUMNS

DAY = date(2026, 11, 20)
SERIES = ("NIFTY", "this_week", "atm")


def timed(work: Callable[[], object], rounds: int = 10) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "day", indices=("NIFTY",), durable_writes=False)
        session = calendar.session("NSE", DAY)
        assert session is not None
        clock = VirtualClock(session.open)
        asyncio.run(record_session(settings, SimBroker(clock), clock, DAY))
        source = settings.split_root.joinpath(*SERIES, f"{DAY}.csv")
        csv_root, adv = root / "csv", root / "adv"
        folder = csv_root.joinpath(*SERIES)
        folder.mkdir(parents=True)
        days: list[date] = []
        day = DAY
        while len(days) < args.days:
            day -= timedelta(days=1)
            if day.weekday() < 5:
                days.append(day)
        lines = source.read_text().splitlines()
        dte = COLUMNS.index("days_to_expiry")
        for d in days:
            to_monday = str(-d.weekday() % 7)  # the Friday's this_week expires on Monday
            rows = [lines[0]]
            for line in lines[1:]:
                cells = line.replace(f"{DAY}T", f"{d}T").split(",")
                cells[dte] = to_monday
                rows.append(",".join(cells))
            (folder / f"{d}.csv").write_text("\n".join(rows) + "\n")
        book = ProfileBook(fresh=True, durable=False)
        build(book, adv, find_splits(csv_root)[0])
        book.save()
        shutil.copy(source, folder / f"{DAY}.csv")
        stream = MasterStream(csv_root, adv, DAY, save_every=0.0)
        stream.update([SERIES], now=datetime.combine(DAY, session.open.time(), IST) + timedelta(
            minutes=200))  # fmt: skip

        found = compare(csv_root, adv, *SERIES, DAY)
        live = timed(lambda: compare(csv_root, adv, *SERIES, DAY))
        kept = earlier_path(weekday_path(adv, *SERIES, DAY))
        assert kept is not None
        kept.unlink()
        rebuilt = timed(lambda: compare(csv_root, adv, *SERIES, DAY), rounds=3)
        friday = max(d for d in days if d.weekday() == 4)
        past = timed(lambda: compare(csv_root, adv, *SERIES, friday), rounds=3)
    print(f"{args.days} days of history: the Friday master holds {found.weekday_days} earlier "
          f"days, the DTE {found.dte} profile {found.dte_days}")  # fmt: skip
    print(f"today, during the session (the kept copy):       {live:7.1f} ms")
    print(f"today, the kept copy gone (rebuilt from splits): {rebuilt:7.1f} ms")
    print(f"an earlier Friday (rebuilt from splits):         {past:7.1f} ms")


if __name__ == "__main__":
    main()
