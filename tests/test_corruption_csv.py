"""Damaged daily CSVs (split, analytics, overview) of today and of an earlier day (issue 13,
cases 1, 5 and 21): the recorder goes on, every reader skips a bad line with one warning
naming the file and the line, and nothing stored is lost."""

import asyncio
import logging
import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.model import SplitRow
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings
from opchain.store.appendlog import AppendLog
from opchain.store.masters import MasterStream
from opchain.store.splits import COLUMNS, SplitStore, format_row, read_split, split_path
from opchain.store.stats import iv30_closes, recent_cycles

from .sessions import DAY, tree_bytes

EARLIER = date(2026, 11, 19)
CRASH = datetime(2026, 11, 20, 10, 0, tzinfo=IST)  # today was recorded up to here
END = datetime(2026, 11, 20, 11, 0, tzinfo=IST)
FILES = {
    "split": "csv_data/NIFTY/this_week/atm/{day}.csv",  # resume state and profiles read it
    "analytics": "analytics/NIFTY/next_month/{day}.csv",  # iv30 closes, jump history
    "overview": "overview/NIFTY/{day}.csv",
}
KINDS = ("zero", "torn", "garbage", "columns", "nul", "nonutf8", "header", "extra")
WHERE = ("earlier", "today-inside", "today-last")


def record(data_dir: Path, day: date, until: datetime | None = None) -> SessionReport:
    settings = Settings(data_dir=data_dir, cadence_seconds=300)
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    return asyncio.run(record_session(settings, broker, clock, day, until=until))


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole earlier day, and today up to a crash at 10:00."""
    data = tmp_path_factory.mktemp("seed")
    record(data, EARLIER)
    record(data, DAY, until=CRASH)
    return data


@pytest.fixture(scope="module")
def clean(seed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What the undamaged directory holds once today is recorded to 11:00."""
    data = tmp_path_factory.mktemp("clean")
    shutil.copytree(seed, data, dirs_exist_ok=True)
    record(data, DAY, until=END)
    return tree_bytes(data)


def bad_line(kind: str, lines: list[bytes]) -> bytes:
    """One damaged line, made from the file's own lines where the damage is to a row."""
    row = lines[len(lines) // 2]
    cells = row.rstrip(b"\n").split(b",")
    return {
        "torn": row[: len(row) // 2],  # no newline: a write cut short
        "garbage": b"@@@ not a row @@@\n",
        "columns": b",".join(cells[:-3]) + b"\n",  # a row that lost cells
        "nul": b"\x00" * 48 + b"\n",  # what a power cut leaves
        "nonutf8": b"\xff\xfe caf\xe9\n",
        "header": lines[0],
        "extra": row.rstrip(b"\n") + b",1,2\n",  # its timestamp is a real, earlier one
    }[kind]


def damage(path: Path, kind: str, where: str) -> tuple[bytes, int | None]:
    """Damage a file; returns its bytes before and the damaged line's number (None: the
    damage is the whole file)."""
    data = path.read_bytes()
    if kind == "zero":
        path.write_bytes(b"")
        return data, None
    lines = data.splitlines(keepends=True)
    at = len(lines) // 2 if where == "today-inside" else len(lines)
    path.write_bytes(b"".join(lines[:at]) + bad_line(kind, lines) + b"".join(lines[at:]))
    return data, at + 1


def cases() -> list[tuple[str, str]]:
    return [
        (kind, where)
        for kind in KINDS
        for where in WHERE
        if not (where == "today-inside" and kind in ("torn", "zero"))  # a torn line is last
    ]


def warned_line(what: str, kind: str, where: str, line: int | None) -> str | None:
    """What the one warning about the damaged file says, when a reader meets the damage:
    ``:N`` (its line), or the file's whole trouble when it is empty."""
    if kind == "zero":
        # Today's empty file is simply started again; an earlier day's empty analytics file
        # has no close to read.
        return ": empty file" if (where, what) == ("earlier", "analytics") else None
    if where == "earlier":  # the recorder reads an earlier day's analytics' last line only
        return f":{line}" if what == "analytics" else None
    if where == "today-last":  # the writer looks for the last row it wrote
        return None if kind == "torn" else f":{line}"  # a torn line is cut, as always
    return None if what == "overview" else f":{line}"  # resume state, profiles


@pytest.mark.parametrize(("kind", "where"), cases())
def test_recording_goes_on_over_a_damaged_file(
    kind: str,
    where: str,
    seed: Path,
    clean: dict[str, bytes],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each kind of damage in a split, an analytics and an overview file at once, of an
    earlier day or of today (inside the file or as its last line), then the rest of the
    session: every file of today reaches 11:00 with exactly the clean run's rows, the
    damaged bytes are all still there, and each damaged file met by a reader gets one
    warning naming it and the line."""
    shutil.copytree(seed, tmp_path, dirs_exist_ok=True)
    day = EARLIER if where == "earlier" else DAY
    damaged = {}
    for what, pattern in FILES.items():
        path = tmp_path / pattern.format(day=day)
        damaged[what] = (path, *damage(path, kind, where))
    caplog.set_level(logging.WARNING)

    report = record(tmp_path, DAY, until=END)

    assert report.cycles >= 12  # 10:00 to 10:55 (from the open when a file was emptied)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    after = tree_bytes(tmp_path)
    assert after.keys() == clean.keys()
    for what, (path, before, line) in damaged.items():
        name = str(path.relative_to(tmp_path))
        now = after.pop(name)
        if where == "earlier":
            assert now == path.read_bytes() and now != before  # left as it was found
        elif kind in ("zero", "torn"):
            assert now == clean[name]  # started again / the torn piece cut, as ever
        else:  # today's rows all there, the bad line where it was, the rest after it
            assert line is not None
            lines = before.splitlines(keepends=True)
            bad = bad_line(kind, lines)
            kept = b"".join(lines[: line - 1])
            assert now == kept + bad + clean[name][len(kept) :]
        said = [m for m in warnings if m.startswith(f"{path}:")]
        expected = warned_line(what, kind, where, line)
        assert len(said) == (expected is not None), said
        if expected is not None:
            assert said[0].startswith(f"{path}{expected}")
    damaged_paths = [f"{path}:" for path, _, _ in damaged.values()]
    assert [m for m in warnings if not m.startswith(tuple(damaged_paths))] == []
    blank_rank = (kind, where) == ("zero", "earlier")  # no close of the earlier day: no rank
    for name, data in after.items():
        if blank_rank and name.startswith("analytics/NIFTY/") and str(DAY) in name:
            assert _without_rank(data, blank=True) == _without_rank(clean[name])
        else:
            assert data == clean[name], name


def _without_rank(data: bytes, blank: bool = False) -> list[list[bytes]]:
    lines = [line.split(b",") for line in data.splitlines()]
    rank, percentile = (lines[0].index(c) for c in (b"iv_rank", b"iv_percentile"))
    if blank:
        assert all(cells[rank] == cells[percentile] == b"" for cells in lines[1:])
    return [cells[:rank] + cells[percentile + 1 :] for cells in lines]


# The writer's last line ------------------------------------------------------------------


def _row(seconds: int) -> SplitRow:
    return SplitRow(
        ts=CRASH + timedelta(seconds=seconds),
        index="NIFTY",
        expiry_code="this_week",
        expiry=date(2026, 11, 23),
        strike_offset="atm",
        atm_strike=26000.0,
        spot=26012.35,
        call_strike=26000.0,
        put_strike=26000.0,
        call_last_price=120.5,
        put_last_price=98.05,
        call_iv=0.121,
        put_iv=0.119,
        call_volume=6500,
        put_volume=7150,
        call_oi=650000,
        put_oi=715000,
        total_premium=218.55,
        days_to_expiry=3,
    )


@pytest.mark.parametrize("kind", ["garbage", "columns", "nul", "nonutf8", "header", "extra"])
def test_writer_resumes_after_the_last_good_row(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad last line neither stops the writer nor makes it write rows it has again (a
    repeated header or a row with extra cells as the last line did, on main: 4 rows twice)."""
    rows = [_row(30 * k) for k in range(8)]
    store = SplitStore(tmp_path)
    store.write(rows[:6])
    store.close()
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", DAY)
    lines = path.read_bytes().splitlines(keepends=True)
    bad = bad_line(kind, lines[:5])  # a row from the middle: its timestamp is not the last
    path.write_bytes(b"".join(lines) + bad)
    again = SplitStore(tmp_path)
    assert again.write(rows) == 2
    again.close()
    assert path.read_bytes() == b"".join(lines) + bad + b"".join(
        format_row(r).encode() + b"\n" for r in rows[6:]
    )
    assert read_split(path) == rows
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{path}:8: ")


def test_a_file_of_only_damage_is_written_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"ts,a\n\x00\x00\x00\nnonsense\n")
    log = AppendLog(path, ["ts", "a"])
    assert log.last_ts is None
    log.append(datetime(2026, 11, 20, 9, 15, tzinfo=IST), "2026-11-20T09:15:00+05:30,1")
    log.close()
    assert path.read_bytes() == b"ts,a\n\x00\x00\x00\nnonsense\n2026-11-20T09:15:00+05:30,1\n"


def test_a_naive_timestamp_is_not_a_row(tmp_path: Path) -> None:
    """A last row without its UTC offset cannot be compared with the session's times."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"ts,a\n2026-11-20T09:15:00+05:30,1\n2026-11-20T09:20:00,2\n")
    log = AppendLog(path, ["ts", "a"])
    log.close()
    assert log.last_ts == datetime(2026, 11, 20, 9, 15, tzinfo=IST)


# Readers ----------------------------------------------------------------------------------


def test_one_warning_per_file_however_often_it_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many bad lines, read by every reader of today's split file: one warning in all."""
    rows = [_row(30 * k) for k in range(40)]
    store = SplitStore(tmp_path)
    store.write(rows)
    store.close()
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", DAY)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(line + b"\xff\n" * (k % 3 == 1) for k, line in enumerate(lines)))
    caplog.set_level(logging.DEBUG)
    assert read_split(path) == rows
    assert read_split(path) == rows
    stream = MasterStream(tmp_path, tmp_path / "adv", DAY)
    assert stream.update([("NIFTY", "this_week", "atm")], final=True) > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}:3: not UTF-8 text; skipped (13 more bad lines skipped too)"]
    assert len(caplog.records) == 1 + 14 + 14  # the rest, read twice more, at debug level


def test_every_kind_of_bad_line_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SplitStore(tmp_path)
    store.write([_row(0), _row(30)])
    store.close()
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", DAY)
    header, first, second = path.read_bytes().splitlines(keepends=True)
    junk = [b"\x00\n", b"\xff\n", b"a,b\n", first.rstrip(b"\n") + b",x\n", header, b"\n"]
    junk.append(first.replace(b"+05:30", b"", 1))  # a time without its offset
    path.write_bytes(header + first + b"".join(junk) + second)
    caplog.set_level(logging.DEBUG)
    assert read_split(path) == [_row(0), _row(30)]
    said = [r.getMessage().removeprefix(f"{path}:") for r in caplog.records]
    assert said == [
        "3: a NUL byte (a write lost in a crash?); skipped (6 more bad lines skipped too)"
    ]


def test_resume_state_skips_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The jump history a resumed run reloads leaves a bad line out instead of stopping."""
    analytics = tmp_path / "analytics"
    path = analytics / "NIFTY" / "this_week" / f"{DAY}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        b"ts,index,atm_iv,straddle,forward\n"
        b"2026-11-20T09:15:00+05:30,NIFTY,0.12,200.5,26010.5\n"
        b"\xff\xfe\n"
        b"2026-11-20T09:15:30+05:30,NIFTY,x,201,26011\n"
        b"2026-11-20T09:16:00+05:30,NIFTY,0.13,,26012\n"
    )
    kept = recent_cycles(analytics, "NIFTY", "this_week", DAY, END)
    assert kept[0] == (0.12, 200.5, 26010.5)
    assert len(kept) == 2 and kept[1][0] == 0.13
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{path}:3: not UTF-8 text; skipped (1 more")


@pytest.mark.parametrize(
    ("tail", "close", "said"),
    [
        (b"\xff\n", 0.14, ":3: not UTF-8 text"),
        (b"2026-11-19T15:29:30+05:30,NIFTY,0.1,9\n", 0.14, ":3: 4 cells where"),
        (b"ts,index,iv30\n", 0.14, ":3: the header again"),
        (b"2026-11-19T15:29:30+05:30,NIFTY,", 0.14, ":3: torn last line"),
        (b"2026-11-19T15:29:30+05:30,NIFTY,\n", None, None),  # no iv30 at the close
    ],
)
def test_iv30_close_of_a_damaged_day(
    tail: bytes,
    close: float | None,
    said: str | None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The close is the last good row; a warning names the bad line; today goes on."""
    path = tmp_path / "NIFTY" / "this_week" / f"{EARLIER}.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"ts,index,iv30\n2026-11-19T15:29:00+05:30,NIFTY,0.14\n" + tail)
    assert iv30_closes(tmp_path, "NIFTY", DAY) == ([close] if close is not None else [])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == (said is not None)
    if said is not None:
        assert messages[0].startswith(f"{path}{said}")


def test_iv30_close_of_an_empty_or_odd_day_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "NIFTY" / "this_week"
    folder.mkdir(parents=True)
    (folder / "2026-11-17.csv").write_bytes(b"ts,index,iv30\n2026-11-17T15:29:00+05:30,N,0.2\n")
    (folder / "2026-11-18.csv").write_bytes(b"")
    (folder / "2026-11-19.csv").mkdir()  # a folder by a file's name
    assert iv30_closes(tmp_path, "NIFTY", DAY) == [0.2]
    said = sorted(r.getMessage() for r in caplog.records)
    assert said == [
        f"{folder}/2026-11-18.csv: empty file (no header, no rows)",
        f"{folder}/2026-11-19.csv: not a regular file; not read",
    ]


def test_a_fifo_by_a_files_name_is_not_waited_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Opened to be read, a FIFO waits for a writer: on main, the session never started."""
    folder = tmp_path / "NIFTY" / "this_week"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "2026-11-19.csv")
    assert iv30_closes(tmp_path, "NIFTY", DAY) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder}/2026-11-19.csv: not a regular file; not read"
    ]


# Case 21: a file started by another version of the format ---------------------------------


def test_a_file_of_the_previous_version_goes_on_in_its_own_columns(tmp_path: Path) -> None:
    """Split files before call_delta,put_delta: appended to without them, read back."""
    path = split_path(tmp_path, "NIFTY", "this_week", "atm", DAY)
    path.parent.mkdir(parents=True)
    old = [_row(0), _row(30)]
    path.write_text(
        ",".join(COLUMNS[:-2])
        + "\n"
        + "".join(",".join(format_row(r).split(",")[:-2]) + "\n" for r in old)
    )
    before = path.read_bytes()
    new = [_row(60)._replace(call_delta=0.51, put_delta=-0.49)]
    store = SplitStore(tmp_path)
    assert store.write(old + new) == 1
    store.close()
    assert (
        path.read_bytes() == before + ",".join(format_row(new[0]).split(",")[:-2]).encode() + b"\n"
    )
    assert read_split(path) == [*old, new[0]._replace(call_delta=None, put_delta=None)]


def test_a_file_of_a_later_version_gets_empty_cells_for_what_this_one_lacks(
    tmp_path: Path,
) -> None:
    """Downgraded mid-day: rows keep the file's width, the unknown column left empty."""
    path = tmp_path / "f.csv"
    path.write_bytes(b"ts,a,b,future\n2026-11-20T09:15:00+05:30,1,2,3\n")
    log = AppendLog(path, ["ts", "a", "b"])
    assert log.append(datetime(2026, 11, 20, 9, 16, tzinfo=IST), "2026-11-20T09:16:00+05:30,4,5")
    log.close()
    assert path.read_bytes().endswith(b"\n2026-11-20T09:16:00+05:30,4,5,\n")


def test_a_session_goes_on_in_files_of_the_previous_version(tmp_path: Path) -> None:
    """Upgrading during the day: today's split and analytics files were started by the
    version before the deltas and before iv30; the session appends to them as they are."""
    record(tmp_path, DAY, until=CRASH)
    split = tmp_path / FILES["split"].format(day=DAY)
    stats = tmp_path / "analytics/NIFTY/this_week" / f"{DAY}.csv"
    for path, width in ((split, 19), (stats, 13)):
        path.write_bytes(
            b"".join(
                b",".join(line.split(b",")[:width]) + b"\n"
                for line in path.read_bytes().splitlines()
            )
        )
    before = {p: p.read_bytes() for p in (split, stats)}
    report = record(tmp_path, DAY, until=END)
    assert report.cycles == 12 and report.skipped == 9
    for path, data in before.items():
        now = path.read_bytes()
        assert now.startswith(data) and len(now.splitlines()) == len(data.splitlines()) + 12
        assert {len(line.split(b",")) for line in now.splitlines()} == {19 if path == split else 13}
    rows = read_split(split)
    assert len(rows) == 21 and rows[-1].ts == END - timedelta(minutes=5)
    assert all(r.call_delta is None for r in rows)
