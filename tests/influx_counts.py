"""What a data directory's files say InfluxDB must hold for a day, and what a real InfluxDB 1.x
holds, in the same shape: points per (measurement, index tag), and the times of the points
that must be one per cycle. The session tests of tests/test_influx_session.py compare the two:
equal counts mean no point lost and none written twice (InfluxDB keeps one point per series and
time, so a point written twice on the same series is one; on another series it would count)."""

import csv
from collections import Counter
from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from opchain.market.indices import OVERVIEW
from opchain.market.ist import IST
from opchain.outputs.influx.points import timestamp_ns
from opchain.store import layout

DB = "opchain"
Key = tuple[str, str]  # (measurement, index tag; "" for the health measurements)

# A field each point of the measurement always has (docs/influxdb.md): what is counted.
ALWAYS = {
    "atm_option_quote": "atm_strike_val",
    "index_overview": "last_price",
    "chain_analytics": "strikes",
    "chain_strike": "strike",
    "monitor_status": "legs_count",
    "pipeline_tick": "records_written_index_overview",
}
MARKET = ("atm_option_quote", "index_overview", "chain_analytics", "chain_strike")


def file_counts(data_dir: Path, day: date, offsets: Collection[int], health: bool) -> Counter[Key]:
    """Points per (measurement, index) the day's files call for: an analytics row is a
    ``chain_analytics`` point, an overview row an ``index_overview`` point (display names), a
    watched leg with a quote in the raw legs an ``atm_option_quote`` point, a strike with a
    quote on either side a ``chain_strike`` point; with ``health``, a cycle one
    ``monitor_status`` and one ``pipeline_tick`` point."""
    found: Counter[Key] = Counter()
    for path in layout.analytics_root(data_dir).glob(f"*/*/{day.isoformat()}.csv"):
        found["chain_analytics", path.parents[1].name] += len(_csv(path))
    for key, spec in OVERVIEW.items():
        path = layout.overview_path(data_dir, key, day)
        if path.exists():
            found["index_overview", spec.display] += len(_csv(path))
    raw = layout.raw_root(data_dir) / f"date={day.isoformat()}"
    assert not list(raw.glob("*/_journal-*")), "journals left: the session did not close"
    watched = ",".join(str(o) for o in offsets)
    query = f"""
        SELECT "index",
               count(*) FILTER (WHERE "offset" IN ({watched})),
               count(DISTINCT (ts, bucket, "offset"))
        FROM read_parquet('{raw}/*/*.parquet', hive_partitioning = true)
        WHERE last_price IS NOT NULL AND strike IS NOT NULL
        GROUP BY "index"
    """
    with duckdb.connect() as con:
        for index, quotes, strikes in con.execute(query).fetchall():
            found["atm_option_quote", index] = quotes
            found["chain_strike", index] = strikes
    if health:
        cycles = len(cycle_times(data_dir, day))
        found["monitor_status", ""] = found["pipeline_tick", ""] = cycles
    return +found


def cycle_times(data_dir: Path, day: date) -> list[int]:
    """The day's recorded cycles (rows of the NIFTY overview), as InfluxDB times."""
    rows = _csv(layout.overview_path(data_dir, "NIFTY", day))
    return [timestamp_ns(datetime.fromisoformat(row["ts"])) for row in rows]


def influx_counts(
    url: str, day: date, measurements: Collection[str] = tuple(ALWAYS)
) -> Counter[Key]:
    """Points per (measurement, index) InfluxDB holds for ``day``."""
    found: Counter[Key] = Counter()
    for measurement in measurements:
        q = f'SELECT COUNT("{ALWAYS[measurement]}") FROM "{measurement}" WHERE {during(day)}'
        if measurement in MARKET:
            q += ' GROUP BY "index"'
        for tags, rows in series(url, q):
            found[measurement, tags.get("index", "")] += int(rows[0][1])
    return +found


def times(url: str, measurement: str, day: date) -> Counter[int]:
    """How many points of ``measurement`` InfluxDB holds at each time of ``day``, over all its
    series (``monitor_status`` has a series per status)."""
    q = f'SELECT "{ALWAYS[measurement]}" FROM "{measurement}" WHERE {during(day)}'
    return Counter(row[0] for _, rows in series(url, q) for row in rows)


def during(day: date) -> str:
    start = datetime.combine(day, time(0), IST)
    return f"time >= {timestamp_ns(start)} AND time < {timestamp_ns(start + timedelta(days=1))}"


def series(url: str, q: str) -> list[tuple[dict[str, str], list[list[Any]]]]:
    """Each series of the query's answer: its tags and rows (times in nanoseconds)."""
    answer = httpx.get(f"{url}/query", params={"db": DB, "q": q, "epoch": "ns"}, timeout=30)
    answer.raise_for_status()
    result = answer.json()["results"][0]
    assert "error" not in result, result
    return [(s.get("tags", {}), s["values"]) for s in result.get("series", [])]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
