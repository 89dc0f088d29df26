"""Raw legs in Parquet: every leg as the broker gave it, including the awkward ones; every
leg of a cycle on disk before the cycle's split rows, whatever kills the process; a damaged
part costs at most what it feeds."""

import contextlib
import logging
import os
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opchain.market.ist import IST
from opchain.model import ChainSlice, DepthLevel, Instrument, Leg, Quote, Snapshot
from opchain.store import raw, rawparts
from opchain.store.appendlog import AppendLog, FlushSchedule
from opchain.store.raw import RawStore

from .sessions import DAY, record

TS = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
EXPIRY = date(2026, 11, 23)
INSTRUMENT = Instrument(
    instrument_token=12345, exchange_token="48", tradingsymbol="NIFTY26N2326000CE",
    name="NIFTY", last_price=0.0, expiry=EXPIRY, strike=26000.0, tick_size=0.05, lot_size=65,
    instrument_type="CE", segment="NFO-OPT", exchange="NFO",
)  # fmt: skip


def quote(bids: tuple[DepthLevel, ...], asks: tuple[DepthLevel, ...]) -> Quote:
    return Quote(
        12345, TS - timedelta(seconds=1), TS - timedelta(seconds=3), 120.5, 65, 119.8, 6500,
        1300, 1235, 650000, 660000, 640000, 110.0, 125.0, 105.0, 118.0, bids, asks,
    )  # fmt: skip


def snapshot(ts: datetime, legs: tuple[Leg, ...]) -> Snapshot:
    chain = ChainSlice("NIFTY", "this_week", EXPIRY, 26010.5, 26000.0, legs)
    return Snapshot(ts, ts + timedelta(milliseconds=250), {}, (chain,))


def leg(offset: int, q: Quote | None, flag: str | None, listed: bool = True) -> Leg:
    strike = 26000.0 + 50 * offset if listed else None
    inst = INSTRUMENT if listed else None
    return Leg("NIFTY", "this_week", EXPIRY, offset, "CE", strike, inst, q, flag)


LEGS = (
    leg(0, quote((DepthLevel(120.4, 650, 3),), (DepthLevel(120.6, 130, 1),)), None),
    leg(1, quote((DepthLevel(0.0, 0, 0),), (DepthLevel(120.6, 130, 1),)), "missing_side"),
    leg(2, quote((), ()), "missing_side"),
    leg(-1, None, "missing"),
    leg(-9, None, "not_listed", listed=False),
)


def read(root: Path) -> list[dict[str, object]]:
    return pq.read_table(root, partitioning="hive").sort_by("offset").to_pylist()


def test_every_leg_is_stored_as_given(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    store.add(snapshot(TS, LEGS))
    store.close()
    rows = {r["offset"]: r for r in read(tmp_path)}
    good = rows[0]
    assert good["ts"] == TS and good["received_at"] == TS + timedelta(milliseconds=250)
    assert good["exchange_ts"] == TS - timedelta(seconds=1)
    assert good["last_trade_time"] == TS - timedelta(seconds=3)
    assert (good["bid"], good["ask"], good["bid_qty"], good["ask_qty"]) == (120.4, 120.6, 650, 130)
    assert (good["tradingsymbol"], good["instrument_token"]) == ("NIFTY26N2326000CE", 12345)
    assert (good["last_price"], good["volume"], good["oi"], good["close"]) == (
        120.5, 6500, 650000, 118.0,
    )  # fmt: skip
    assert (good["spot"], good["atm_strike"], good["index"]) == (26010.5, 26000.0, "NIFTY")
    assert good["flag"] is None
    # An empty side of the book: no price; its quantity as the broker said.
    assert (rows[1]["bid"], rows[1]["bid_qty"], rows[1]["ask"]) == (None, 0, 120.6)
    assert (rows[2]["bid"], rows[2]["bid_qty"], rows[2]["ask"]) == (None, None, None)
    # No quote at all, and no contract at all: the leg is still there, with its reason.
    assert rows[-1]["last_price"] is None and rows[-1]["flag"] == "missing"
    assert rows[-1]["tradingsymbol"] == "NIFTY26N2326000CE"
    assert rows[-9]["tradingsymbol"] is None and rows[-9]["strike"] is None
    assert rows[-9]["flag"] == "not_listed"


def test_windows_and_row_groups_do_not_change_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots = [snapshot(TS + timedelta(seconds=30 * k), LEGS) for k in range(40)]
    whole = RawStore(tmp_path / "whole", window=timedelta(hours=1))
    for s in snapshots:
        whole.add(s)
    whole.close()
    monkeypatch.setattr(rawparts, "ROW_GROUP_ROWS", 7)  # a row group every snapshot or two
    pieces = RawStore(tmp_path / "pieces", window=timedelta(minutes=5))
    for s in snapshots:
        pieces.add(s)
    pieces.close()
    assert pieces.parts_written == 4 and whole.parts_written == 1
    assert pq.ParquetFile(next((tmp_path / "pieces").rglob("part-0915.parquet"))).num_row_groups > 1
    tables = [_rows(tmp_path / n) for n in ("whole", "pieces")]
    assert tables[0] == tables[1]


def test_a_failed_write_is_reported_not_lost_silently(tmp_path: Path) -> None:
    (tmp_path / "date=2026-11-20").write_text("a file where a folder must go")
    store = RawStore(tmp_path, window=timedelta(minutes=5))
    with pytest.raises(OSError):
        store.add(snapshot(TS, LEGS))
    store.close()


# A kill at any moment.

SNAPSHOTS = [snapshot(TS + timedelta(seconds=30 * k), LEGS) for k in range(25)]  # to 09:27:00


def killed(store: RawStore) -> None:
    """Leave a store as a SIGKILL would after its last ``add`` returned (a fold it started may
    have finished or not: the next writer folds again either way)."""
    with contextlib.suppress(Exception):
        store._wait()
    for _, journal in store._open.values():
        os.close(journal._fileno())  # what the kernel does: nothing more reaches the file
    store._writer.shutdown()


def test_every_cycle_added_is_on_disk_after_a_kill(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    for s in SNAPSHOTS:  # windows 09:15 and 09:20 are folded, 09:25 is in its journal
        store.add(s)
    killed(store)
    journals = sorted((tmp_path / "raw").rglob("_journal-*"))
    assert [p.name for p in journals] == ["_journal-0925.arrows"]
    half_written = journals[0].with_name(".part-0925.parquet.tmp")  # a fold the kill cut short
    half_written.write_bytes(b"PAR1")
    # The journal alone is an Arrow IPC stream any reader reads, a batch per cycle.
    assert pa.ipc.open_stream(journals[0]).read_all().num_rows == 5 * len(LEGS)
    # Readers of the folder see parts only, the journal never.
    assert len(pq.read_table(tmp_path / "raw", partitioning="hive")) == 20 * len(LEGS)
    assert _duckdb_rows(tmp_path / "raw") == 20 * len(LEGS)

    after = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    assert after.cursor(DAY, "NIFTY") == SNAPSHOTS[-1].ts  # the journal was folded first
    after.close()
    assert not list((tmp_path / "raw").rglob("_journal-*")) and not half_written.exists()
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", SNAPSHOTS)


def test_a_part_half_written_at_a_kill_is_removed_and_hidden_meanwhile(tmp_path: Path) -> None:
    """A part is written under a hidden name, so a kill in the middle leaves nothing readers
    trip over; one an older opchain left (``part-HHMM.parquet.tmp``) goes at the next start."""
    store = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    for s in SNAPSHOTS[:11]:
        store.add(s)
    store.close()
    folder = tmp_path / "raw" / "date=2026-11-20" / "index=NIFTY"
    torn = (folder / "part-0915.parquet").read_bytes()[:500]
    (folder / "part-0925.parquet.tmp").write_bytes(torn)  # an older opchain's, killed
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(tmp_path / "raw", partitioning="hive")
    writer = RawStore(tmp_path / "raw")
    writer.cursor(DAY, "NIFTY")  # a writer starts
    writer.close()
    assert sorted(p.name for p in folder.iterdir()) == ["part-0915.parquet", "part-0920.parquet"]
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", SNAPSHOTS[:11])


def test_a_writer_folds_the_journals_of_every_day_a_killed_run_left(tmp_path: Path) -> None:
    yesterday = [snapshot(s.ts - timedelta(days=1), LEGS) for s in SNAPSHOTS[:3]]
    store = RawStore(tmp_path / "raw")
    for s in yesterday:
        store.add(s)
    killed(store)
    # A reader (the API beside a recorder) reads the journal, and leaves it as it is.
    closing = RawStore(tmp_path / "raw").closing_oi("NIFTY", DAY)
    assert closing == {("NIFTY", EXPIRY, 26000.0 + 50 * k, "CE"): 650000 for k in (0, 1, 2)}
    assert list((tmp_path / "raw").rglob("_journal-*"))
    writer = RawStore(tmp_path / "raw")
    writer.recover()
    writer.close()
    assert not list((tmp_path / "raw").rglob("_journal-*"))
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", yesterday)


def test_a_torn_journal_tail_is_cut_to_the_last_whole_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    for s in SNAPSHOTS[:3]:
        store.add(s)
    killed(store)
    journal = next((tmp_path / "raw").rglob("_journal-*"))
    whole = journal.read_bytes()
    journal.write_bytes(whole + whole[-100:-40])  # the kill came in the middle of a write
    with caplog.at_level(logging.INFO):
        after = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
        assert after.cursor(DAY, "NIFTY") == SNAPSHOTS[2].ts
        after.close()
    assert "cut 60 bytes of a torn last batch" in caplog.text
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", SNAPSHOTS[:3])


@pytest.mark.parametrize("keep", [0, 100])
def test_a_journal_killed_before_its_first_batch_is_whole_is_removed(
    tmp_path: Path, keep: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "raw" / "date=2026-11-20" / "index=NIFTY"
    folder.mkdir(parents=True)
    (folder / "_journal-0915.arrows").write_bytes(raw.FILE_SCHEMA.serialize().to_pybytes()[:keep])
    store = RawStore(tmp_path / "raw")
    assert store.cursor(DAY, "NIFTY") is None
    store.close()
    assert not list(folder.iterdir()) and "WARNING" not in caplog.text


def test_a_journal_that_is_not_one_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "raw" / "date=2026-11-20" / "index=NIFTY"
    folder.mkdir(parents=True)
    (folder / "_journal-0915.arrows").write_bytes(b"garbage" * 30)
    store = RawStore(tmp_path / "raw")
    store.add(snapshot(TS, LEGS))
    store.close()
    assert (folder / "_journal-0915.arrows.damaged").read_bytes() == b"garbage" * 30
    assert caplog.text.count("WARNING") == 1 and "_journal-0915.arrows" in caplog.text
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", [snapshot(TS, LEGS)])


def test_journals_are_synced_before_the_split_files_and_parts_before_their_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Durable writes: at each flush the journals reach the disk before the split files do;
    a part is synced before it is renamed into place, and its folder after."""
    synced: list[str] = []  # the recorder's thread
    folded: list[str] = []  # the thread that folds closed windows into parts
    fsync = os.fsync

    def spy(fd: int) -> None:
        into = folded if threading.current_thread().name.startswith("raw-") else synced
        into.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    flushes = FlushSchedule(every=0)
    store = RawStore(tmp_path / "raw", timedelta(minutes=5), durable=True, flushes=flushes)
    split = AppendLog(tmp_path / "split.csv", ["ts", "x"], durable=True)
    for s in SNAPSHOTS[:11]:  # the window of 09:15 closes at 09:20
        store.add(s)  # first in a cycle, as in the pipeline
        split.append(s.ts, f"{s.ts.isoformat()},1")
        flushes.wrote(split)
        flushes.tick()
    store.close()
    split.close()
    folder = str(tmp_path / "raw" / "date=2026-11-20" / "index=NIFTY")
    journal = f"{folder}/_journal-0915.arrows"
    # The new folders' names, the journal's name, then its first batch, then the split file.
    assert synced.index(str(tmp_path / "raw")) < synced.index(folder) < synced.index(journal)
    assert synced.index(journal) < synced.index(str(tmp_path / "split.csv"))
    # Folded: the part synced under its temporary name, renamed, the rename made durable.
    tmp = [f"{folder}/.part-{start}.parquet.tmp" for start in ("0915", "0920")]
    assert folded == [tmp[0], folder, tmp[1], folder]


# Damage.

DAMAGE = {
    "zero-byte": lambda data: b"",
    "torn": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"PAR1 not a parquet file at all",
    "another schema": lambda data: _parquet(pa.table({"ts": ["09:15"], "oi": ["many"]})),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_part_of_an_earlier_day_costs_only_the_previous_close_oi(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture, session_open: datetime
) -> None:
    yesterday = tmp_path / "raw" / "date=2026-11-19" / "index=NIFTY"
    yesterday.mkdir(parents=True)
    (yesterday / "part-1500.parquet").write_bytes(_parquet(pa.table({"x": [1]})))
    part = yesterday / "part-1515.parquet"
    part.write_bytes(DAMAGE[damage](_parquet(pa.table({"x": list(range(100))}))))
    before = part.read_bytes()
    assert RawStore(tmp_path / "raw").closing_oi("NIFTY", DAY) == {}
    assert caplog.text.count("WARNING") == 1 and str(part) in caplog.text
    caplog.clear()
    report = record(tmp_path, until=session_open + timedelta(minutes=3))  # the recorder goes on
    assert report.cycles == 6 and report.rows_added > 0
    assert caplog.text.count(str(part)) == 1 and "previous close OI of NIFTY" in caplog.text
    assert part.read_bytes() == before  # another day's file is read, never changed


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_part_of_today_is_kept_aside_and_recording_goes_on(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture, session_open: datetime
) -> None:
    end = session_open + timedelta(minutes=12)
    record(tmp_path / "whole", until=end, raw_window_minutes=5)
    data = tmp_path / "damaged"
    record(data, until=session_open + timedelta(minutes=8), raw_window_minutes=5)
    part = data / "raw" / "date=2026-11-20" / "index=NIFTY" / "part-0920.parquet"
    part.write_bytes(DAMAGE[damage](part.read_bytes()))
    kept = part.read_bytes()
    report = record(data, until=end, raw_window_minutes=5)
    aside = part.with_name("_part-0920.parquet.damaged")
    assert aside.read_bytes() == kept  # nothing stored is lost
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(part) in warnings[0].getMessage()
    assert "moved aside to _part-0920.parquet.damaged" in warnings[0].getMessage()
    # The recorder went on; the simulator could give the damaged window again, so it is whole.
    assert report.cycles > 0
    assert _rows(data / "raw") == _rows(tmp_path / "whole" / "raw")


def test_the_journal_rebuilds_a_damaged_part_of_its_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    for s in SNAPSHOTS[:4]:
        first.add(s)
    first.close()  # a clean stop: part-0915 holds 09:15:00-09:16:30
    second = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    for s in SNAPSHOTS[4:8]:  # the window goes on, in a journal
        second.add(s)
    killed(second)
    part = tmp_path / "raw" / "date=2026-11-20" / "index=NIFTY" / "part-0915.parquet"
    part.write_bytes(b"")
    third = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    assert third.cursor(DAY, "NIFTY") == SNAPSHOTS[7].ts
    third.close()
    assert part.with_name("_part-0915.parquet.damaged").read_bytes() == b""
    assert _rows(tmp_path / "raw") == _rows_of(tmp_path / "clean", SNAPSHOTS[4:8])
    assert caplog.text.count("WARNING") == 1


def test_a_part_of_an_older_opchain_goes_on_with_its_later_columns_empty(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    store.add(SNAPSHOTS[0])
    store.close()
    part = next((tmp_path / "raw").rglob("part-*.parquet"))
    pq.write_table(pq.read_table(part).drop_columns("flag"), part)  # as a version before "flag"
    store = RawStore(tmp_path / "raw", window=timedelta(minutes=5))
    store.add(SNAPSHOTS[1])
    store.close()
    flags = pq.read_table(part).sort_by("ts").column("flag").to_pylist()
    assert flags == [None] * len(LEGS) + [leg.flag for leg in LEGS]


def _rows(root: Path) -> list[dict[str, object]]:
    table = pq.read_table(root, partitioning="hive")
    order = [("ts", "ascending"), ("offset", "ascending"), ("bucket", "ascending")]
    return table.drop_columns("index").sort_by(order).to_pylist()


def _rows_of(root: Path, snapshots: list[Snapshot]) -> list[dict[str, object]]:
    """The rows a store that is never killed writes of these snapshots."""
    store = RawStore(root)
    for s in snapshots:
        store.add(s)
    store.close()
    return _rows(root)


def _duckdb_rows(root: Path) -> int:
    with contextlib.closing(duckdb.connect()) as db:
        pattern = f"{root}/*/*/*.parquet"
        query = f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning=true)"
        [(count,)] = db.sql(query).fetchall()
    return int(count)


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
