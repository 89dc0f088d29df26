"""Rebuilding the weekday masters and DTE profiles of 250 days: opchain against one DuckDB query.

The simulated session of 2026-11-20 (30 s cadence, 70 series) is recorded once and its split
files copied to 250 weekdays (17,500 files), as ``benchmarks/profiles.py`` does, into
``--cache`` (kept: a second run reuses them). Then ``--rounds`` times, in alternating order:

(a) opchain: what ``opchain rebuild-masters`` does, through the same functions
    (``find_splits``, then ``store.rebuild.rebuild`` into an empty profiles folder: read every
    split file, add, save every profile with its ledger);
(b) DuckDB: one query over the same files computing every cell of every profile: per file and
    session minute the last row's total premium in paise (both legs and the total above 0), its
    time, the file's days to expiry; then per series and weekday, and per series and days to
    expiry, and minute: how many days, their sum, low, high and newest time.

Every cell of (b) is checked equal to the profiles (a) wrote (read back with
``parse_profile``); a mismatch fails the benchmark. Medians and the spread are printed.

    .venv/bin/python benchmarks/profiles_rebuild.py [--days 250] [--rounds 5] [--cache DIR]
"""

import argparse
import shutil
import statistics
import sys
import time
from datetime import UTC
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from opchain.profiles.master import parse_profile
from opchain.store.opdata import find_splits
from opchain.store.profiles import stored_profiles
from opchain.store.rebuild import rebuild
from profiles import DAY, copy_days, record, weekdays_before

Key = tuple[str, str]  # profile (relative path), minute
Cells = dict[Key, tuple[int, int, int, int, int]]  # n, sum, low, high (paise), newest (s)

TYPES = {"call_last_price": "DOUBLE", "put_last_price": "DOUBLE", "total_premium": "DOUBLE",
         "days_to_expiry": "INTEGER"}  # fmt: skip
SQL = """
WITH r AS (
    SELECT filename AS f, substr(ts, 12, 5) AS minute,
           epoch(CAST(ts AS TIMESTAMPTZ))::BIGINT AS s, days_to_expiry AS dte,
           CASE WHEN call_last_price > 0 AND put_last_price > 0 AND total_premium > 0
                THEN CAST(round(total_premium * 100) AS BIGINT) END AS paise
    FROM read_csv(?, header = true, filename = true, auto_detect = false, columns = {columns})
), m AS (
    SELECT f, minute, arg_max(paise, s) FILTER (paise IS NOT NULL) AS paise,
           max(s) FILTER (paise IS NOT NULL) AS s, arg_min(dte, s) AS dte, min(s) AS first
    FROM r GROUP BY f, minute
), d AS (
    SELECT *, arg_min(dte, first) OVER (PARTITION BY f) AS fdte,
           string_split(f, '/') AS parts
    FROM m
), k AS (
    SELECT parts[-4] || '/' || parts[-3] || '/' || parts[-2] AS series,
           lower(strftime(CAST(replace(parts[-1], '.csv', '') AS DATE), '%a')) AS wd,
           fdte, minute, paise, s
    FROM d WHERE paise IS NOT NULL AND minute >= '09:15' AND minute < '15:30'
)
SELECT 'weekday_masters/' || series || '/' || wd || '.csv' AS profile, minute,
       count(*), sum(paise)::BIGINT, min(paise), max(paise), max(s)
FROM k GROUP BY ALL
UNION ALL
SELECT 'dte_profiles/' || series || '/dte' || lpad(fdte::VARCHAR, 2, '0') || '.csv', minute,
       count(*), sum(paise)::BIGINT, min(paise), max(paise), max(s)
FROM k WHERE fdte >= 0 GROUP BY ALL
"""


def prepare(cache: Path, days: int) -> Path:
    """The split files of ``days`` weekdays under ``cache``/csv (made once)."""
    source = cache / "day" / "csv_data"
    if not source.is_dir():
        record(cache / "day")
    target = cache / f"csv-{days}"
    if not (target / "done").exists():
        shutil.rmtree(target, ignore_errors=True)
        copy_days(source, target, weekdays_before(DAY, days))
        (target / "done").write_text("")
    return target


def opchain_rebuild(csv: Path, adv: Path) -> tuple[float, int]:
    shutil.rmtree(adv, ignore_errors=True)
    t0 = time.perf_counter()
    splits, _ = find_splits(csv)
    done = rebuild(adv, splits)
    seconds = time.perf_counter() - t0
    assert not done.problems, done.problems[:3]
    return seconds, done.written


def duckdb_cells(csv: Path) -> tuple[float, Cells]:
    """The cells by one query; its columns given (DuckDB's sniffing of each of 17,500 files
    would cost it more than the query itself)."""
    files = sorted(str(p) for p in csv.glob("*/*/*/*.csv"))
    header = Path(files[0]).read_text().split("\n", 1)[0].split(",")
    columns = ", ".join(f"'{c}': '{TYPES.get(c, 'VARCHAR')}'" for c in header)
    t0 = time.perf_counter()
    rows = duckdb.connect().execute(SQL.replace("{columns}", f"{{{columns}}}"), [files]).fetchall()
    seconds = time.perf_counter() - t0
    return seconds, {(p, m): (n, total, low, high, s) for p, m, n, total, low, high, s in rows}


def opchain_cells(adv: Path) -> Cells:
    cells: Cells = {}
    for path in stored_profiles(adv):
        name = path.relative_to(adv).as_posix()
        for minute, c in parse_profile(path.read_text(), str(path)).items():
            newest = int(c.updated.astimezone(UTC).timestamp())
            cells[(name, minute)] = (c.n, c.total, c.low, c.high, newest)
    return cells


def compare(mine: Cells, theirs: Cells) -> None:
    if mine != theirs:
        keys = sorted(mine.keys() ^ theirs.keys())[:3]
        diff = sorted(k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])[:3]
        print(f"MISMATCH: {len(mine)} cells against {len(theirs)}; only on one side {keys}; "
              f"different {[(k, mine[k], theirs[k]) for k in diff]}")  # fmt: skip
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/opchain-bench-profiles-rebuild"))
    args = parser.parse_args()
    csv = prepare(args.cache, args.days)
    adv = args.cache / "adv"
    files = len(list(csv.glob("*/*/*/*.csv")))
    times: dict[str, list[float]] = {"opchain": [], "duckdb": []}
    for n in range(args.rounds):
        for name in ("opchain", "duckdb") if n % 2 == 0 else ("duckdb", "opchain"):
            if name == "opchain":
                seconds, written = opchain_rebuild(csv, adv)
                mine = opchain_cells(adv)
            else:
                seconds, theirs = duckdb_cells(csv)
            times[name].append(seconds)
            print(f"round {n + 1}: {name:8} {seconds:7.2f} s", flush=True)
        compare(mine, theirs)
    print(f"{files:,} split files, {written} profiles, {len(mine):,} cells, all equal")
    for name, values in times.items():
        print(f"{name:8} median {statistics.median(values):6.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)")  # fmt: skip
    ratio = statistics.median(times["opchain"]) / statistics.median(times["duckdb"])
    print(f"opchain / duckdb: {ratio:.2f}")


if __name__ == "__main__":
    main()
