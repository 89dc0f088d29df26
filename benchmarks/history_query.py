"""``opchain query`` over a month of the archive against DuckDB on the same files directly.

A month of simulated trading days (band, 60 s cadence, as ``opchain demo`` records them) is
recorded once into ``--cache`` (kept: a second run reuses it). Then, each ``--rounds`` times,
the median and the spread (min-max) of:

1. a ``raw`` aggregate (per index: legs, average last price) through
   ``opchain.history.query`` (``views_in``, ``connect``, ``run_select``: what the command runs,
   a fresh connection each time) against ``duckdb.sql`` over ``read_parquet(glob,
   hive_partitioning = true)``;
2. a ``splits`` aggregate (per index: rows, average total premium) likewise, against
   ``read_csv`` over the split files' glob;
3. the whole ``opchain query`` command as a subprocess (start-up included) against DuckDB in a
   fresh ``python -c``.

The answers are checked equal before anything is timed. Then the command's own cost is split
into its steps (finding the files, reading the CSV headers, making the views, the query).

    .venv/bin/python benchmarks/history_query.py [--days 21] [--rounds 7] [--cache DIR]
"""

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import duckdb

from opchain.brokers.sim import SimBroker
from opchain.history.query import Roots, _views, connect, run_select, views_in
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.pipeline import record_session
from opchain.settings import Settings

FIRST = date(2026, 11, 16)
CADENCE = 60.0
RAW_SQL = (
    'SELECT "index", count(*) AS legs, avg(last_price) AS price FROM raw '
    'GROUP BY "index" ORDER BY "index"'
)
SPLITS_SQL = (
    'SELECT "index", count(*) AS n, avg(total_premium) AS premium FROM splits '
    'GROUP BY "index" ORDER BY "index"'
)


def direct_raw(data_dir: Path) -> str:
    glob = data_dir / "raw" / "date=*" / "index=*" / "part-*.parquet"
    return (
        f"SELECT \"index\", count(*) AS legs, avg(last_price) AS price FROM read_parquet('{glob}',"
        ' hive_partitioning = true) GROUP BY "index" ORDER BY "index"'
    )


def direct_splits(data_dir: Path) -> str:
    glob = data_dir / "csv_data" / "*" / "*" / "*" / "*.csv"
    return (
        "SELECT string_split(filename, '/')[-4] AS \"index\", count(*) AS n, "
        f"avg(total_premium) AS premium FROM read_csv('{glob}', filename = true) "
        "GROUP BY 1 ORDER BY 1"
    )


def trading_days(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if calendar.session("NSE", day) is not None:
            days.append(day)
        day += timedelta(days=1)
    return days


def build(cache: Path, days: Sequence[date]) -> None:
    """Record each day not yet in the cache (a ``.done-<day>`` mark after a whole session)."""
    settings = Settings(
        data_dir=cache, cadence_seconds=CADENCE, full_chain=False, durable_writes=False
    )
    for day in days:
        mark = cache / f".done-{day}"
        if mark.exists():
            continue
        start = time.perf_counter()
        session = calendar.session("NSE", day)
        assert session is not None
        clock = VirtualClock(session.open)
        broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
        asyncio.run(record_session(settings, broker, clock, day))
        mark.touch()
        print(f"  recorded {day} in {time.perf_counter() - start:.1f} s", flush=True)


def timed(work: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return times


def cell(times: list[float]) -> str:
    return f"{statistics.median(times):,.0f} ({min(times):,.0f}–{max(times):,.0f})"


def same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def spawn(command: list[str], env: dict[str, str]) -> Callable[[], object]:
    return lambda: subprocess.run(command, check=True, capture_output=True, env=env)


def through_opchain(roots: Roots, sql: str) -> list[tuple[object, ...]]:
    con = connect(roots, None, views_in(sql))
    try:
        return run_select(con, sql, 100).first
    finally:
        con.close()


def direct(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(":memory:")
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/opchain-bench-history-query"))
    args = parser.parse_args()
    cache: Path = args.cache.resolve()
    days = trading_days(FIRST, args.days)
    print(f"{len(days)} trading days {days[0]}..{days[-1]}, {CADENCE:.0f} s cadence, in {cache}")
    build(cache, days)
    roots = Roots(data_dir=cache, split_root=cache / "csv_data", profiles_root=cache / "data_adv")
    parts = list((cache / "raw").glob("date=*/index=*/part-*.parquet"))
    splits = list((cache / "csv_data").glob("*/*/*/*.csv"))
    mb = sum(p.stat().st_size for p in parts) / 2**20
    smb = sum(p.stat().st_size for p in splits) / 2**20
    print(f"raw: {len(parts)} parts, {mb:.1f} MiB; splits: {len(splits)} files, {smb:.1f} MiB")

    pairs = (("raw", RAW_SQL, direct_raw(cache)), ("splits", SPLITS_SQL, direct_splits(cache)))
    for name, ours, theirs in pairs:
        a, b = through_opchain(roots, ours), direct(theirs)
        assert same(a, b), f"{name}: the answers differ:\n{a}\n{b}"
        print(f"{name}: answers equal: {a}")

    rows: list[tuple[str, list[float], list[float]]] = []
    for name, ours, theirs in pairs:
        ms_ours = timed(lambda s=ours: through_opchain(roots, s), args.rounds)
        ms_theirs = timed(lambda s=theirs: direct(s), args.rounds)
        rows.append((f"`{name}` aggregate, in-process", ms_ours, ms_theirs))

    env = {**os.environ, "OPCHAIN_DATA_DIR": str(cache), "COLUMNS": "200"}
    opchain = Path(sys.executable).with_name("opchain")
    for name, ours, theirs in pairs:
        command = [str(opchain), "query", "--data-dir", str(cache), ours]
        script = f"import duckdb; print(duckdb.sql({theirs!r}).fetchall())"
        python = [sys.executable, "-c", script]
        for run in (command, python):  # a first run each, untimed: answers and page cache
            spawn(run, env)()
        ms_ours = timed(spawn(command, env), args.rounds)
        ms_theirs = timed(spawn(python, env), args.rounds)
        rows.append((f"`{name}` aggregate, a fresh process", ms_ours, ms_theirs))

    print()
    print(f"| {len(days)} days, ms: median (min–max) of {args.rounds} | `opchain query` | DuckDB "
          "directly | ratio |")  # fmt: skip
    print("|---|---:|---:|---:|")
    for label, ms_ours, ms_theirs in rows:
        ratio = statistics.median(ms_ours) / statistics.median(ms_theirs)
        print(f"| {label} | {cell(ms_ours)} | {cell(ms_theirs)} | {ratio:.2f} |")

    print()
    print("Where the command's time goes (medians, ms):")
    imports = [sys.executable, "-c", "import duckdb"]
    bare = [sys.executable, "-c", "pass"]
    helps = [str(opchain), "--help"]
    for label, run in (
        ("python -c pass", bare),
        ("python -c 'import duckdb'", imports),
        ("opchain --help", helps),
    ):
        ms = timed(spawn(run, env), args.rounds)
        print(f"  {label:38s} {cell(ms)}")
    for name, ours, _ in pairs:
        wanted = views_in(ours)
        steps = {
            "views_in (parse the statement)": lambda s=ours: views_in(s),
            "list the files and read CSV headers": lambda w=wanted: _views(roots, w),
            "connect (the above, views made)": lambda w=wanted: connect(roots, None, w).close(),
        }
        for label, work in steps.items():
            print(f"  {name}: {label:32s} {cell(timed(work, args.rounds))}")
        con = connect(roots, None, wanted)
        ms = timed(lambda c=con, s=ours: run_select(c, s, 100), args.rounds)
        con.close()
        print(f"  {name}: {'run_select only (views made)':32s} {cell(ms)}")
    # the raw view reads every part's footer (union_by_name: an older part has fewer columns)
    unioned = direct_raw(cache).replace("hive_partitioning = true", "hive_partitioning = true, "
                                        "union_by_name = true")  # fmt: skip
    ms = timed(lambda: direct(unioned), args.rounds)
    print(f"  raw: DuckDB directly, union_by_name = true  {cell(ms)}")


if __name__ == "__main__":
    main()
