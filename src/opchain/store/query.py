"""Today against the profiles, with DuckDB over the files as they are (no database to load).

One row per session minute of a series: today's premium (the last tick of the minute) beside
the weekday master's and the DTE profile's mean, low and high for that minute. The API serves
this series; users can run the same SQL themselves.
"""

from datetime import date
from pathlib import Path
from typing import NamedTuple

import duckdb

from opchain.profiles.minutes import SESSION_MINUTES
from opchain.store.profiles import dte_path, weekday_path
from opchain.store.splits import split_path

_PROFILE = "read_csv({path}, header=true, columns={columns})"
_PROFILE_COLUMNS = {
    "time_bucket": "VARCHAR", "n_tot": "BIGINT", "sum_tot": "DOUBLE", "avg_tot": "DOUBLE",
    "min_tot": "DOUBLE", "max_tot": "DOUBLE", "last_updated": "VARCHAR",
}  # fmt: skip


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
    csv_root: Path, adv_root: Path, index: str, bucket: str, offset: str, day: date
) -> list[MinuteVsProfile]:
    """Every session minute of ``day`` for one series; None where a side has nothing."""
    split = split_path(csv_root, index, bucket, offset, day)
    db = duckdb.connect()
    db.execute("CREATE TEMP TABLE minutes (minute VARCHAR)")
    db.executemany("INSERT INTO minutes VALUES (?)", [(m,) for m in SESSION_MINUTES])
    dte = None
    today = "SELECT NULL::VARCHAR AS minute, NULL::DOUBLE AS premium WHERE false"
    if split.exists():
        # ts is read as text: its "+05:30" offset IS the session's wall clock, and the minute
        # is characters 12-16 of the ISO string, with no timezone conversion to get wrong.
        source = f"read_csv({_quote(split)}, header=true, all_varchar=true)"
        today = f"""
            SELECT substr(ts, 12, 5) AS minute,
                   arg_max(TRY_CAST(total_premium AS DOUBLE), ts)
                       FILTER (WHERE total_premium <> '') AS premium
            FROM {source} GROUP BY 1"""
        row = db.execute(f"SELECT max(days_to_expiry::INTEGER) FROM {source}").fetchone()
        dte = row[0] if row else None
    weekday = _profile(weekday_path(adv_root, index, bucket, offset, day))
    by_dte = _profile(dte_path(adv_root, index, bucket, offset, dte) if dte is not None else None)
    rows = db.execute(f"""
        SELECT m.minute, t.premium, w.avg_tot, w.min_tot, w.max_tot, w.n_tot,
               d.avg_tot, d.min_tot, d.max_tot, d.n_tot
        FROM minutes m
        LEFT JOIN ({today}) t ON t.minute = m.minute
        LEFT JOIN ({weekday}) w ON w.time_bucket = m.minute
        LEFT JOIN ({by_dte}) d ON d.time_bucket = m.minute
        ORDER BY m.minute""").fetchall()  # paths quoted by _quote; no user text in the SQL
    db.close()
    return [MinuteVsProfile(*row) for row in rows]


def _profile(path: Path | None) -> str:
    if path is None or not path.exists():
        return (
            "SELECT NULL::VARCHAR AS time_bucket, NULL::DOUBLE AS avg_tot, "
            "NULL::DOUBLE AS min_tot, NULL::DOUBLE AS max_tot, NULL::BIGINT AS n_tot WHERE false"
        )
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _PROFILE_COLUMNS.items()) + "}"
    return f"SELECT * FROM {_PROFILE.format(path=_quote(path), columns=columns)}"


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
