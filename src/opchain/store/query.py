"""Today against the profiles, with DuckDB over the files as they are (no database to load).

One row per session minute of a series: today's premium (the last tick of the minute) beside
the weekday master's and the DTE profile's mean, low and high for that minute. The API serves
this series; users can run the same SQL themselves.

A damaged file costs only its own rows: each file is read into its own table, the lines DuckDB
cannot read are left out (``ignore_errors``, with the rejected lines kept to be named), a file
it cannot read at all (no such columns, say) is left out whole, and a path that is not a
regular file inside its root (``store.regular``) is not read. Each file left out in whole or in
part is one sentence in ``skipped``. A minute whose profile row counts no day has no mean, low
or high.
"""

import logging
from datetime import date
from pathlib import Path
from typing import NamedTuple

import duckdb

from opchain.profiles.minutes import SESSION_MINUTES
from opchain.store.profiles import dte_path, weekday_path
from opchain.store.regular import regular_file
from opchain.store.splits import split_path

log = logging.getLogger(__name__)

_SPLIT_COLUMNS = "ts VARCHAR, total_premium VARCHAR, days_to_expiry VARCHAR"
_PROFILE_COLUMNS = {
    "time_bucket": "VARCHAR", "n_tot": "BIGINT", "sum_tot": "DOUBLE", "avg_tot": "DOUBLE",
    "min_tot": "DOUBLE", "max_tot": "DOUBLE", "last_updated": "VARCHAR",
}  # fmt: skip
_PROFILE_KEPT = "time_bucket VARCHAR, n_tot BIGINT, avg_tot DOUBLE, min_tot DOUBLE, max_tot DOUBLE"


class MinuteVsProfile(NamedTuple):
    minute: str  # IST HH:MM
    today: float | None  # the premium at the minute's last tick, rupees
    weekday_avg: float | None
    weekday_min: float | None
    weekday_max: float | None
    weekday_days: int | None
    dte_avg: float | None
    dte_min: float | None
    dte_max: float | None
    dte_days: int | None


def today_vs_profile(
    csv_root: Path,
    adv_root: Path,
    index: str,
    bucket: str,
    offset: str,
    day: date,
    skipped: list[str] | None = None,
) -> list[MinuteVsProfile]:
    """Every session minute of ``day`` for one series; None where a side has nothing. What
    could not be read is added to ``skipped`` (module docstring)."""
    notes = skipped if skipped is not None else []
    split = split_path(csv_root, index, bucket, offset, day)
    db = duckdb.connect()
    try:
        db.execute("CREATE TEMP TABLE minutes (minute VARCHAR)")
        db.executemany("INSERT INTO minutes VALUES (?)", [(m,) for m in SESSION_MINUTES])
        # ts is read as text: its "+05:30" offset IS the session's wall clock, and the minute
        # is characters 12-16 of the ISO string, with no timezone conversion to get wrong.
        _load(db, "split", _SPLIT_COLUMNS, split, csv_root, "all_varchar=true", notes)
        found = db.execute("SELECT max(TRY_CAST(days_to_expiry AS INTEGER)) FROM split").fetchone()
        dte = found[0] if found else None
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _PROFILE_COLUMNS.items()) + "}"
        profiles = {
            "weekday": weekday_path(adv_root, index, bucket, offset, day),
            "by_dte": dte_path(adv_root, index, bucket, offset, dte) if dte is not None else None,
        }
        for name, path in profiles.items():
            _load(db, name, _PROFILE_KEPT, path, adv_root, f"columns={columns}", notes)
        rows = db.execute("""
            SELECT m.minute, t.premium,
                   CASE WHEN w.n_tot > 0 THEN w.avg_tot END,
                   CASE WHEN w.n_tot > 0 THEN w.min_tot END,
                   CASE WHEN w.n_tot > 0 THEN w.max_tot END, w.n_tot,
                   CASE WHEN d.n_tot > 0 THEN d.avg_tot END,
                   CASE WHEN d.n_tot > 0 THEN d.min_tot END,
                   CASE WHEN d.n_tot > 0 THEN d.max_tot END, d.n_tot
            FROM minutes m
            LEFT JOIN (
                SELECT substr(ts, 12, 5) AS minute,
                       arg_max(TRY_CAST(total_premium AS DOUBLE), ts)
                           FILTER (WHERE total_premium <> '') AS premium
                FROM split GROUP BY 1
            ) t ON t.minute = m.minute
            LEFT JOIN weekday w ON w.time_bucket = m.minute
            LEFT JOIN by_dte d ON d.time_bucket = m.minute
            ORDER BY m.minute""").fetchall()
    finally:
        db.close()
    return [MinuteVsProfile(*row) for row in rows]


def _load(
    db: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    path: Path | None,
    root: Path,
    options: str,
    notes: list[str],
) -> None:
    """Table ``table`` with ``columns`` (names and types) from the CSV at ``path``: empty when
    there is none, without the lines DuckDB cannot read, empty when it cannot read the file."""
    db.execute(f"CREATE TEMP TABLE {table} ({columns})")
    if path is None or regular_file(path, root) is None:
        return
    names = ", ".join(column.split()[0] for column in columns.split(", "))
    rejects = f"{table}_rejects"
    source = (
        f"read_csv({_quote(path)}, header=true, delim=',', quote='\"', {options}, "
        f"ignore_errors=true, store_rejects=true, rejects_table='{rejects}', "
        f"rejects_scan='{table}_scans')"
    )  # the path quoted by _quote; no user text in the SQL
    where = f"{root.name}/{path.relative_to(root)}"
    try:
        db.execute(f"INSERT INTO {table} SELECT {names} FROM {source}")
        found = db.execute(f"SELECT DISTINCT line FROM {rejects} ORDER BY 1").fetchall()
        lines = [line for (line,) in found]
    except duckdb.Error as err:
        first = str(err).splitlines()[0].replace(str(path), where)
        note = f"{where}: not read ({first})"
        log.warning("%s", note)
        notes.append(note)
        return
    if lines:
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        note = f"{where}: {len(lines)} damaged line(s) left out (line {shown})"
        log.warning("%s", note)
        notes.append(note)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
