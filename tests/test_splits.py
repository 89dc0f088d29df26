"""The split CSV contract: rows read back exactly, crash-safe appends, no duplicates."""

import logging
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opchain.market.ist import IST
from opchain.model import SplitRow
from opchain.store.appendlog import AppendLog, FlushSchedule, repair_torn_tail
from opchain.store.splits import COLUMNS, SplitStore, format_row, read_split, split_path

START = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
CONTRACT = [
    "ts", "index", "expiry_code", "expiry", "strike_offset", "atm_strike", "spot", "call_strike",
    "put_strike", "call_last_price", "put_last_price", "call_iv", "put_iv", "call_volume",
    "put_volume", "call_oi", "put_oi", "total_premium", "days_to_expiry", "call_delta",
    "put_delta",
]  # fmt: skip

prices = st.one_of(st.none(), st.integers(1, 2_000_000).map(lambda p: round(p * 0.05, 2)))
sizes = st.one_of(st.none(), st.integers(0, 10**9))


@st.composite
def split_rows(draw: st.DrawFn) -> SplitRow:
    return SplitRow(
        ts=START + timedelta(seconds=draw(st.integers(0, 22_499))),
        index="NIFTY",
        expiry_code="this_week",
        expiry=date(2026, 11, 23),
        strike_offset="atm",
        atm_strike=float(draw(st.integers(400, 600)) * 50),
        spot=draw(st.floats(1, 100_000, allow_nan=False)),
        call_strike=draw(st.one_of(st.none(), st.floats(1, 1e5))),
        put_strike=draw(st.one_of(st.none(), st.floats(1, 1e5))),
        call_last_price=draw(prices),
        put_last_price=draw(prices),
        call_iv=draw(st.one_of(st.none(), st.floats(0.001, 5))),
        put_iv=draw(st.one_of(st.none(), st.floats(0.001, 5))),
        call_volume=draw(sizes),
        put_volume=draw(sizes),
        call_oi=draw(sizes),
        put_oi=draw(sizes),
        total_premium=draw(prices),
        days_to_expiry=draw(st.integers(0, 120)),
        call_delta=draw(st.one_of(st.none(), st.floats(0, 1))),
        put_delta=draw(st.one_of(st.none(), st.floats(-1, 0))),
    )


def test_columns_are_the_contract() -> None:
    assert list(COLUMNS) == CONTRACT


def test_files_without_the_delta_columns_still_read(tmp_path: Path) -> None:
    """OP's files, and opchain's before the deltas, end at days_to_expiry."""
    path = tmp_path / "old.csv"
    row = _row(0)
    path.write_text(",".join(CONTRACT[:-2]) + "\n" + format_row(row).rsplit(",", 2)[0] + "\n")
    assert list(read_split(path)) == [row]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.lists(split_rows(), min_size=1, max_size=30, unique_by=lambda r: r.ts))
def test_rows_read_back_exactly(tmp_path: Path, rows: list[SplitRow]) -> None:
    rows = sorted(rows, key=lambda r: r.ts)
    root = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh folder per Hypothesis example
    store = SplitStore(root)
    assert store.write(rows) == len(rows)
    store.close()
    path = split_path(root, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    assert list(read_split(path)) == rows
    assert path.read_text().splitlines()[0] == ",".join(CONTRACT)


def _row(seconds: int) -> SplitRow:
    return SplitRow(
        START + timedelta(seconds=seconds), "NIFTY", "this_week", date(2026, 11, 23), "atm",
        26000.0, 26012.35, 26000.0, 26000.0, 120.5, 98.05, 0.121, 0.119, 6500, 7150,
        650000, 715000, 218.55, 3,
    )  # fmt: skip


def test_ts_is_ist_iso_with_offset(tmp_path: Path) -> None:
    store = SplitStore(tmp_path)
    store.write([_row(30)])
    store.close()
    line = split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20)).read_text()
    assert line.splitlines()[1].startswith(
        "2026-11-20T09:15:30+05:30,NIFTY,this_week,2026-11-23,atm,"
    )


def test_file_date_is_the_ist_date(tmp_path: Path) -> None:
    # 20:00 UTC on the 19th is already 01:30 IST on the 20th: the file is the 20th's.
    late_utc = _row(0)._replace(ts=datetime(2026, 11, 19, 20, 0, tzinfo=UTC))
    store = SplitStore(tmp_path)
    store.write([late_utc])
    store.close()
    assert split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20)).exists()
    assert not split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 19)).exists()


def test_replayed_rows_are_not_written_twice(tmp_path: Path) -> None:
    rows = [_row(30 * k) for k in range(10)]
    store = SplitStore(tmp_path)
    store.write(rows[:6])
    store.close()
    again = SplitStore(tmp_path)
    assert again.write(rows) == 4
    again.close()
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    assert list(read_split(path)) == rows


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.data())
def test_any_torn_tail_is_repaired_and_resumed(tmp_path: Path, data: st.DataObject) -> None:
    """Cut the file at any byte, as a kill -9 mid-write can, then resume: same file as whole."""
    rows = [_row(30 * k) for k in range(8)]
    whole_root = Path(tempfile.mkdtemp(dir=tmp_path))
    store = SplitStore(whole_root)
    store.write(rows)
    store.close()
    path = split_path(whole_root, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    whole = path.read_bytes()

    cut = data.draw(st.integers(0, len(whole)))
    torn_root = Path(tempfile.mkdtemp(dir=tmp_path))
    torn = split_path(torn_root, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    torn.parent.mkdir(parents=True)
    torn.write_bytes(whole[:cut])
    resumed = SplitStore(torn_root)
    resumed.write(rows)
    resumed.close()
    assert torn.read_bytes() == whole


def test_repair_reports_cut_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"ts,a\n2026-11-20T09:15:00+05:30,1\n2026-11-20T09:1")
    assert repair_torn_tail(path) == len("2026-11-20T09:1")
    assert path.read_bytes() == b"ts,a\n2026-11-20T09:15:00+05:30,1\n"


def test_foreign_header_is_set_aside_with_the_file_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file whose header is no version of the format is neither appended to nor lost."""
    path = tmp_path / "old.csv"
    foreign = b"timestamp,index,tp_sum\n2026-11-20T09:15:00+05:30,NIFTY,200\n"
    path.write_bytes(foreign)
    log = AppendLog(path, CONTRACT)
    log.close()
    assert (tmp_path / "old.csv.set-aside").read_bytes() == foreign
    assert path.read_text() == ",".join(CONTRACT) + "\n"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "old.csv:1: header 'timestamp,index,tp_sum'" in warning.getMessage()
    assert "old.csv.set-aside" in warning.getMessage()


def test_reader_accepts_ops_old_column_names(tmp_path: Path) -> None:
    path = tmp_path / "op.csv"
    header = ",".join(
        "timestamp" if c == "ts" else "tp_sum" if c == "total_premium" else c for c in CONTRACT
    )
    store = SplitStore(tmp_path / "new")
    store.write([_row(0)])
    store.close()
    body = split_path(tmp_path / "new", "NIFTY", "this_week", "atm", date(2026, 11, 20)).read_text()
    path.write_text(header + "\n" + body.splitlines()[1] + "\n")
    assert list(read_split(path)) == [_row(0)]


def test_bad_cell_is_skipped_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SplitStore(tmp_path)
    store.write([_row(0), _row(30)])
    store.close()
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    path.write_text(path.read_text().replace("6500", "lots", 1))
    assert read_split(path) == [_row(30)]
    (warning,) = caplog.records
    assert warning.getMessage().endswith("2026-11-20.csv:2: bad call_volume 'lots'; skipped")


def test_rows_reach_the_file_on_the_flush_schedule(tmp_path: Path) -> None:
    now = [100.0]
    store = SplitStore(tmp_path, flushes=FlushSchedule(every=1.0, now=lambda: now[0]))
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20))

    def on_disk() -> int:
        return len(path.read_text().splitlines()[1:])  # rows after the header

    store.write([_row(0)])
    now[0] += 0.5
    store.write([_row(1)])
    assert on_disk() == 0  # held: less than a second of wall time since the last flush
    now[0] += 0.5
    store.write([_row(2)])
    assert on_disk() == 3
    store.write([_row(3)])
    assert on_disk() == 3
    store.close()
    assert on_disk() == 4


def test_every_write_reaches_the_file_with_a_zero_interval(tmp_path: Path) -> None:
    store = SplitStore(tmp_path, flushes=FlushSchedule(every=0.0))
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", date(2026, 11, 20))
    for k in range(3):
        store.write([_row(k)])
        assert len(path.read_text().splitlines()) == k + 2
    store.close()
