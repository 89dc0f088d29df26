"""The embedded pipeline in-process: layout, contract, determinism, crash and resume."""

import random
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from opchain.market.ist import IST
from opchain.store.splits import read_split, split_path

from .sessions import DAY, record, tree_bytes

CSV = "csv_data"


def test_layout_and_contract(tmp_path: Path, session_open) -> None:
    report = record(tmp_path, until=session_open + timedelta(minutes=30))
    root = tmp_path / CSV
    atm = split_path(root, "NIFTY", "this_week", "atm", DAY)
    rows = list(read_split(atm))
    assert len(rows) == 60  # 30 minutes at 30 s
    assert {r.ts.minute for r in rows} == set(range(15, 45))
    assert all(r.ts.utcoffset() == timedelta(hours=5, minutes=30) for r in rows)
    assert {r.expiry for r in rows} == {date(2026, 11, 23)}  # Tue 24 Nov is a holiday
    assert not (root / "BANKNIFTY" / "this_week").exists()
    assert (root / "SENSEX" / "this_week" / "atm_p1m1" / f"{DAY}.csv").exists()
    offsets = {p.name for p in (root / "NIFTY" / "this_week").iterdir()}
    assert offsets == {"atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2", "atm_p1m1", "atm_p2m2"}
    assert report.cycles == 60 and report.missed == 0 and report.skipped == 0
    assert report.quote_calls == 61  # one call per cycle, two on the first


def test_pair_rows_are_call_up_put_down(tmp_path: Path, session_open) -> None:
    record(tmp_path, until=session_open + timedelta(minutes=5))
    root = tmp_path / CSV
    p1 = {r.ts: r for r in read_split(split_path(root, "NIFTY", "next_week", "atm_p1", DAY))}
    m1 = {r.ts: r for r in read_split(split_path(root, "NIFTY", "next_week", "atm_m1", DAY))}
    for pair in read_split(split_path(root, "NIFTY", "next_week", "atm_p1m1", DAY)):
        assert pair.call_strike == p1[pair.ts].call_strike
        assert pair.put_strike == m1[pair.ts].put_strike
        assert pair.call_last_price == p1[pair.ts].call_last_price
        assert pair.put_last_price == m1[pair.ts].put_last_price
        assert pair.call_last_price is not None and pair.put_last_price is not None
        assert pair.total_premium == round(pair.call_last_price + pair.put_last_price, 2)


def test_rows_are_sane(tmp_path: Path, session_open) -> None:
    record(tmp_path, until=session_open + timedelta(minutes=10))
    for path in (tmp_path / CSV).rglob("*.csv"):
        for r in read_split(path):
            assert r.atm_strike > 0 and r.spot > 0
            if r.strike_offset == "atm":
                assert r.call_strike == r.put_strike == r.atm_strike
                assert abs(r.spot - r.atm_strike) <= 100  # the nearest listed strike
            for iv in (r.call_iv, r.put_iv):
                assert iv is None or 0.03 < iv < 1.5
            assert r.days_to_expiry == (r.expiry - DAY).days


def test_same_seed_same_bytes(tmp_path: Path, session_open) -> None:
    until = session_open + timedelta(minutes=20)
    record(tmp_path / "a", until=until)
    record(tmp_path / "b", until=until)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    record(tmp_path / "c", until=until, sim_seed=8)
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")


def test_crash_anywhere_then_resume_equals_uninterrupted(tmp_path: Path, session_open) -> None:
    """Stop at a random cycle, tear a random line in every file as a kill -9 can, resume."""
    end = session_open + timedelta(minutes=40)
    record(tmp_path / "whole", until=end, raw_window_minutes=5)
    rng = random.Random(20261120)
    for trial in range(3):
        crashed = tmp_path / f"crashed{trial}"
        stop = session_open + timedelta(seconds=30 * rng.randrange(1, 80))
        record(crashed, until=stop, raw_window_minutes=5)
        for path in crashed.rglob("*.csv"):
            if "instruments" in path.parts or "data_adv" in path.parts:
                continue  # written whole through a rename: a kill cannot tear them
            data = path.read_bytes()
            path.write_bytes(data[: rng.randrange(len(data) // 2, len(data) + 1)])
        parts = sorted(crashed.rglob("*.parquet"))
        if parts:  # the newest window part never made it to disk
            parts[-1].unlink()
        report = record(crashed, until=end, raw_window_minutes=5)
        assert report.skipped > 0 or stop < session_open + timedelta(minutes=6)
        assert tree_bytes(crashed) == tree_bytes(tmp_path / "whole")
        assert _raw(crashed) == _raw(tmp_path / "whole")


def _raw(root: Path) -> list[dict[str, object]]:
    table = pq.read_table(root / "raw", partitioning="hive")
    return table.sort_by([("ts", "ascending"), ("tradingsymbol", "ascending")]).to_pylist()


def test_raw_legs_are_partitioned_parquet(tmp_path: Path, session_open) -> None:
    record(tmp_path, until=session_open + timedelta(minutes=20))
    parts = sorted((tmp_path / "raw").rglob("*.parquet"))
    assert [p.relative_to(tmp_path / "raw").parts[:2] for p in parts[:2]] == [
        (f"date={DAY}", "index=BANKNIFTY"),
        (f"date={DAY}", "index=BANKNIFTY"),
    ]
    table = pq.read_table(parts[0])
    assert pq.ParquetFile(parts[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert "index" not in table.column_names  # it is in the path
    whole = pq.read_table(tmp_path / "raw", partitioning="hive")
    assert set(whole.column("index").to_pylist()) == {"NIFTY", "BANKNIFTY", "SENSEX"}
    first = table.to_pylist()[0]
    assert first["ts"] == session_open.astimezone(IST)
    assert first["tradingsymbol"].startswith("BANKNIFTY26NOV")
    assert first["exchange_ts"] is not None
