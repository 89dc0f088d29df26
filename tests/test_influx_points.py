"""The InfluxDB encoder: line protocol as docs/influxdb.md says, checked against a parser and a
real InfluxDB 1.6."""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from opchain.market.indices import OVERVIEW
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle, LoopStats
from opchain.model import Quote, Snapshot
from opchain.outputs.influx.points import (
    Tags,
    analytics_lines,
    cycle_lines,
    escape_key,
    escape_measurement,
    fl,
    health_lines,
    it,
    line,
    master_lines,
    st,
    string_field,
    timestamp_ns,
)
from opchain.profiles.master import Cell
from opchain.settings import Settings
from opchain.store.stats import stats_path

from .cycles import record_live
from .lineproto import Point, count, create_database, parse, query, write
from .servers_health import influxd_server
from .sessions import DAY

TAGS = Tags(env="test env", host="box,1")
UNTIL = datetime(2026, 11, 20, 9, 16, 30, tzinfo=IST)  # three cycles


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Cycle]]:
    """Three cycles of a full-chain simulated session: its files and its live cycles."""
    data_dir = tmp_path_factory.mktemp("points")
    cycles = record_live(data_dir, until=UNTIL, full_chain=True)
    settings = Settings(data_dir=data_dir, full_chain=True)
    return settings, cycles


@dataclass
class FakeStats:
    points_attempted: int = 120
    points_written: int = 100
    points_rejected: int = 2
    points_dropped: int = 0
    flush_latency_ms: float | None = 12.5
    queue_points: int = 3
    spool_bytes: int = 4096
    spool_points: int = 18
    state: str = "ok"


def test_escaping_follows_line_protocol() -> None:
    assert escape_key("NIFTY 50") == r"NIFTY\ 50"
    assert escape_key("a,b=c d") == r"a\,b\=c\ d"
    assert escape_measurement("my measure,x=y") == r"my\ measure\,x=y"
    assert string_field('say "hi" \\ there') == r'"say \"hi\" \\ there"'
    point = parse(line("m x", f",index={escape_key('NIFTY 50')}", [st("s", 'a "b" c')], 7) or "")
    assert point == Point("m x", {"index": "NIFTY 50"}, {"s": 'a "b" c'}, 7)


def test_types_and_missing_values() -> None:
    assert fl("x", 1.5) == "x=1.5"
    assert fl("x", 1e-07) == "x=1e-07"
    assert fl("x", 3) == "x=3.0"
    assert fl("x", None) is fl("x", math.nan) is fl("x", math.inf) is fl("x", -math.inf) is None
    assert it("n", 42) == "n=42i"
    assert it("n", None) is None
    assert st("s", "") is None
    assert line("m", ",t=1", [None, None], 5) is None  # no field: no point
    assert line("m", "", [None, "x=1.0"], 5) == "m x=1.0 5"


def test_timestamps_are_the_cycle_time_in_utc_nanoseconds() -> None:
    ts = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    assert timestamp_ns(ts) == int(datetime(2026, 11, 20, 3, 45, tzinfo=UTC).timestamp()) * 10**9
    assert timestamp_ns(ts) == 1_795_146_300_000_000_000


def test_counts_per_measurement(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    watched = set(settings.strike_offsets)
    for cycle in cycles:
        points = [parse(x) for x in cycle_lines(cycle, TAGS, watched)]
        found = Counter(p.measurement for p in points)
        chains = cycle.snapshot.chains
        legs = [leg for c in chains for leg in c.legs if leg.quote and leg.strike is not None]
        assert found["atm_option_quote"] == sum(leg.offset in watched for leg in legs)
        assert found["index_overview"] == len(cycle.snapshot.indices) == 4
        assert found["chain_analytics"] == len(cycle.stats) == len(chains)
        strikes = {(leg.index, leg.bucket, leg.offset) for leg in legs}
        assert found["chain_strike"] == len(strikes)
        assert len(legs) > 1000  # a full chain
        assert {p.ns for p in points} == {timestamp_ns(cycle.snapshot.ts)}


def test_default_offsets_are_the_split_rows(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    assert cycle_lines(cycles[0], TAGS) == cycle_lines(cycles[0], TAGS, settings.strike_offsets)


def test_atm_option_quote_is_ops_point(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    cycle = cycles[-1]
    points = [parse(x) for x in cycle_lines(cycle, TAGS, settings.strike_offsets)]
    quotes = [p for p in points if p.measurement == "atm_option_quote"]
    labels = {p.tags["strike_offset"] for p in quotes}
    assert labels == {"atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2"}
    chain = cycle.snapshot.chains[0]
    leg = next(x for x in chain.legs if x.offset == 1 and x.side == "PE")
    assert leg.quote is not None
    p = next(
        p
        for p in quotes
        if p.tags["index"] == chain.index
        and p.tags["bucket"] == chain.bucket
        and p.tags["strike_offset"] == "atm_p1"
        and p.tags["option_type"] == "PE"
    )
    assert p.tags["strike"] == str(round(chain.atm_strike))
    assert p.tags["expiration"] == chain.expiry.isoformat()
    assert p.fields["strike_val"] == leg.strike
    assert p.fields["atm_strike_val"] == round(chain.atm_strike)
    assert p.fields["last_price"] == leg.quote.last_price
    assert p.fields["volume"] == leg.quote.volume
    assert p.fields["oi"] == leg.quote.oi
    assert p.fields["days_to_expiry"] == (chain.expiry - DAY).days
    assert p.fields["net_change"] == round(leg.quote.last_price - leg.quote.close, 2)
    row = next(
        r
        for r in cycle.rows
        if r.index == chain.index and r.expiry_code == chain.bucket and r.strike_offset == "atm_p1"
    )
    assert p.fields["iv"] == row.put_iv  # the split file's IV, to its 6 places
    assert "oi_change" not in p.fields  # no earlier session: no previous close OI


def test_chain_analytics_equal_the_analytics_file(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    root = settings.data_dir / "analytics"
    for cycle in cycles:
        stamp = cycle.snapshot.ts.isoformat()
        for p in map(parse, analytics_lines(cycle.stats, timestamp_ns(cycle.snapshot.ts))):
            path = stats_path(root, p.tags["index"], p.tags["bucket"], DAY)
            header, *rows = path.read_text().splitlines()
            cells = dict(
                zip(
                    header.split(","),
                    next(r for r in rows if r.startswith(stamp)).split(","),
                    strict=True,
                )
            )
            wanted = {k: v for k, v in cells.items() if v and k not in ("ts", "index", "bucket")}
            assert set(p.fields) == set(wanted)  # empty cells left out
            for name, cell in wanted.items():
                value = p.fields[name]
                assert value == (cell if isinstance(value, str) else float(cell)), name
            assert isinstance(p.fields["strikes"], int)


def test_index_overview(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    cycle = cycles[-1]
    points = [parse(x) for x in cycle_lines(cycle, TAGS, settings.strike_offsets)]
    overview = {p.tags["index"]: p for p in points if p.measurement == "index_overview"}
    assert set(overview) == {"NIFTY 50", "NIFTY BANK", "SENSEX", "INDIA VIX"}
    vix = overview["INDIA VIX"].fields
    assert not any(name.endswith("_TP") for name in vix) and "atm_strike" not in vix
    nifty = overview["NIFTY 50"].fields
    chains = [c for c in cycle.snapshot.chains if c.index == "NIFTY"]
    stats = {s.bucket: s for s in cycle.stats if s.index == "NIFTY"}
    for chain in chains:
        upper, lower = chain.bucket.upper(), chain.bucket
        row = next(
            r
            for r in cycle.rows
            if r.index == "NIFTY" and r.expiry_code == lower and r.strike_offset == "atm"
        )
        assert nifty[f"{upper}_TP"] == row.total_premium
        assert nifty[f"{upper}_OI_CALL"] == float(row.call_oi or 0)
        assert nifty[f"{upper}_OI_PUT"] == float(row.put_oi or 0)
        assert nifty[f"pcr_{lower}"] == round((row.put_oi or 0) / (row.call_oi or 1), 4)
        assert nifty[f"{lower}_atm_iv"] == stats[lower].atm_iv
        assert nifty[f"{lower}_days_to_expiry"] == (chain.expiry - DAY).days
    nearest = min(chains, key=lambda c: c.expiry)
    assert nifty["atm_strike"] == round(nearest.atm_strike)
    q = cycle.snapshot.indices["NIFTY"]
    assert nifty["last_price"] == q.last_price
    assert nifty["day_width"] == round(q.high - q.low, 2)
    assert OVERVIEW["NIFTY"].display == "NIFTY 50"


def test_chain_strike_greeks(recorded: tuple[Settings, list[Cycle]]) -> None:
    settings, cycles = recorded
    cycle = cycles[-1]
    chain, solved = cycle.snapshot.chains[0], cycle.solved[0]
    points = [parse(x) for x in cycle_lines(cycle, TAGS, settings.strike_offsets)]
    atm = next(
        p
        for p in points
        if p.measurement == "chain_strike"
        and p.tags == {"index": chain.index, "bucket": chain.bucket, "offset": "0"}
    )
    n = next(i for i, leg in enumerate(chain.legs) if leg.offset == 0 and leg.side == "CE")
    theta, vega, gamma = solved.theta[n], solved.vega[n], solved.gamma[n]
    assert theta is not None and vega is not None and gamma is not None
    assert atm.fields["strike"] == chain.atm_strike == atm.fields["atm_strike"]
    assert atm.fields["call_theta"] == theta / 365
    assert atm.fields["call_vega"] == vega / 100
    assert atm.fields["call_gamma"] == gamma
    assert 0.3 < atm.fields["call_delta"] < 0.7
    assert solved.forward is not None and atm.fields["forward"] == round(solved.forward, 2)
    for name in ("call_volume", "call_oi", "put_volume", "put_oi"):
        assert isinstance(atm.fields[name], int)


def test_deterministic(recorded: tuple[Settings, list[Cycle]]) -> None:
    _, cycles = recorded
    assert cycle_lines(cycles[1], TAGS) == cycle_lines(cycles[1], TAGS)
    assert cycle_lines(cycles[1], TAGS) != cycle_lines(cycles[2], TAGS)


def test_nan_and_missing_values_are_left_out(recorded: tuple[Settings, list[Cycle]]) -> None:
    _, cycles = recorded
    cycle = cycles[0]
    blank = cycle.stats[0]._replace(
        gex=math.nan, zero_gamma=math.nan, iv_rank=math.nan, atm_iv=math.nan, anomaly=""
    )
    (point,) = map(parse, analytics_lines([blank], 1))
    assert not {"gex", "zero_gamma", "iv_rank", "atm_iv", "anomaly"} & set(point.fields)
    flagged = blank._replace(anomaly="atm_iv straddle")
    (point,) = map(parse, analytics_lines([flagged], 1))
    assert point.fields["anomaly"] == "atm_iv straddle"
    # an index quote without a previous close or open: no change fields
    q = cycle.snapshot.indices["NIFTY"]._replace(close=0.0, open=0.0)
    snapshot = cycle.snapshot
    changed = Cycle(
        Snapshot(snapshot.ts, snapshot.received_at, {"NIFTY": q}, snapshot.chains),
        cycle.rows,
        cycle.stats,
        cycle.solved,
    )
    (nifty,) = (
        p for p in map(parse, cycle_lines(changed, TAGS)) if p.measurement == "index_overview"
    )
    assert not {"net_change", "net_change_percent", "day_change", "day_width_percent"} & set(
        nifty.fields
    )


def test_health_lines() -> None:
    ts = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
    quote = Quote(1, None, None, 100.0, 0, 0.0, 0, 0, 0, 0, 0, 0, 99.0, 101.0, 98.0, 97.0)
    loop = LoopStats(collect_ms=80.0, merge_ms=20.0, quote_calls=2, legs=300, flagged=3,
                     lag_s=0.25, cycles=10, requests=40, rate_limited=1, failed=2)  # fmt: skip
    snapshot = _snapshot(ts, {"NIFTY": quote})
    cycle = Cycle(snapshot, [], [], [], loop=loop)
    points = {p.measurement: p for p in map(parse, health_lines(cycle, FakeStats(), "kite", TAGS))}
    assert set(points) == {"monitor_status", "pipeline_tick", "broker_health", "influx_write_stats"}
    monitor = points["monitor_status"]
    assert monitor.tags == {"app": "opchain", "env": "test env", "host": "box,1", "status": "ok"}
    assert monitor.fields["loop_duration_ms"] == 100.0
    assert monitor.fields["legs_count"] == 300
    assert monitor.fields["kite_429_count"] == 1
    assert monitor.fields["influx_points_written"] == 100
    assert points["broker_health"].tags == {"api": "kite", "env": "test env", "host": "box,1"}
    assert points["broker_health"].fields["error_rate_percent"] == 5.0
    assert points["broker_health"].fields["quote_latency_ms"] == 40.0
    stats = points["influx_write_stats"]
    assert stats.tags == {"env": "test env", "host": "box,1", "measurement": "all"}
    assert stats.fields == {
        "points_attempted": 120, "points_written": 100, "points_rejected": 2,
        "flush_latency_ms": 12.5, "batch_queue_depth": 3, "spool_bytes": 4096, "spool_points": 18,
    }  # fmt: skip
    assert points["pipeline_tick"].fields["kite_batch_size_avg"] == 150.5
    assert {p.ns for p in points.values()} == {timestamp_ns(ts)}
    # no writer: no write stats; a lost cycle or a writer in trouble: degraded
    lost = Cycle(snapshot, [], [], [], loop=loop._replace(lost=1))
    found = {p.measurement: p for p in map(parse, health_lines(lost, None, "sim", TAGS))}
    assert "influx_write_stats" not in found
    assert found["monitor_status"].tags["status"] == "degraded"
    spooling = FakeStats(state="spooling")
    found = {p.measurement: p for p in map(parse, health_lines(cycle, spooling, "sim", TAGS))}
    assert found["monitor_status"].tags["status"] == "degraded"


def test_master_lines() -> None:
    day = date(2026, 11, 20)  # a Friday
    stamp = datetime(2026, 11, 20, 9, 16, tzinfo=IST)
    cells = {"09:15": Cell(3, 30001, 9000, 11001, stamp), "09:16": Cell(0, 0, 0, 0, stamp)}
    points = [parse(x) for x in master_lines([(("NIFTY", "this_week", "atm"), cells)], day, TAGS)]
    assert len(points) == 1  # a minute of no day is left out
    (p,) = points
    assert p.measurement == "weekday_master_updates"
    assert p.tags == {
        "app": "opchain", "env": "test env", "host": "box,1", "index": "NIFTY",
        "expiry_code": "this_week", "strike_offset": "atm", "weekday": "fri",
    }  # fmt: skip
    assert p.fields == {"avg_tot": 100.003333, "min_tot": 90.0, "max_tot": 110.01, "n_tot": 3}
    assert p.ns == timestamp_ns(datetime(2026, 11, 20, 9, 15, tzinfo=IST))


def _snapshot(ts: datetime, indices: dict[str, Quote]) -> Snapshot:
    return Snapshot(ts, ts + timedelta(milliseconds=200), indices, ())


def test_a_real_influxdb_takes_every_point(
    recorded: tuple[Settings, list[Cycle]], tmp_path: Path
) -> None:
    settings, cycles = recorded
    expected: Counter[str] = Counter()
    with influxd_server(tmp_path) as (url, _):
        create_database(url, "opchain")
        for cycle in cycles:
            lines = cycle_lines(cycle, TAGS, settings.strike_offsets)
            lines += health_lines(cycle, FakeStats(), "sim", TAGS)
            expected.update(parse(x).measurement for x in lines)
            write(url, "opchain", lines)
            write(url, "opchain", lines)  # again: the same points, nothing added
        cells = {"09:15": Cell(2, 20000, 9000, 11000, datetime(2026, 11, 20, 9, 15, tzinfo=IST))}
        write(url, "opchain", master_lines([(("NIFTY", "this_week", "atm"), cells)], DAY, TAGS))
        expected["weekday_master_updates"] = 1
        always = {
            "atm_option_quote": "days_to_expiry", "index_overview": "last_price",
            "chain_analytics": "strikes", "chain_strike": "strike",
            "monitor_status": "legs_count", "pipeline_tick": "loop_duration_ms",
            "broker_health": "http_429_count", "influx_write_stats": "points_written",
            "weekday_master_updates": "n_tot",
        }  # fmt: skip
        for measurement, field in always.items():
            assert count(url, "opchain", measurement, field) == expected[measurement], measurement
        types = {
            name: kind
            for name, kind in query(url, "opchain", 'SHOW FIELD KEYS FROM "atm_option_quote"')[0][
                "values"
            ]
        }
        assert types["volume"] == types["oi"] == types["days_to_expiry"] == "integer"
        assert types["iv"] == types["last_price"] == types["strike_val"] == "float"
        tags = query(url, "opchain", 'SHOW TAG VALUES FROM "index_overview" WITH KEY = "index"')
        assert {v[1] for v in tags[0]["values"]} == {
            "NIFTY 50",
            "NIFTY BANK",
            "SENSEX",
            "INDIA VIX",
        }
