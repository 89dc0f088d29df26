"""Reading an old OP data directory: every split, row and master exactly as written, every bad
file and line reported by number, the good rows around them kept, and nothing written."""

import os
from collections.abc import Callable
from datetime import date, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opchain.market.ist import IST, at
from opchain.store.opdata import (
    OpSplit,
    Premium,
    Problem,
    find_masters,
    find_splits,
    index_key,
    parse_ts,
    premium_paise,
    read_premiums,
    survey,
)

from .oplayout import DAMAGES, OFFSETS, OP_HEADER, VARIANTS, OpTruth, build_op_tree

DAYS = [date(2025, 8, 18), date(2025, 8, 19), date(2025, 8, 20)]
DAY = DAYS[-1]
files = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> OpTruth:
    return build_op_tree(tmp_path_factory.mktemp("op"), DAYS)


def test_the_fixture_holds_every_variant_offset_and_damage(op: OpTruth) -> None:
    """Guards the builder: the tests below only mean something if every case is in the tree."""
    splits = op.splits.values()
    assert {t.variant for t in splits} == set(VARIANTS)
    assert {t.damage for t in splits} == {None, "off-day", *DAMAGES}
    assert {t.offset for t in splits} == set(OFFSETS)
    assert {(t.index, t.bucket) for t in splits if t.index == "BANKNIFTY"} == {
        ("BANKNIFTY", "this_month"),
        ("BANKNIFTY", "next_month"),
    }
    assert any("NIFTY 50" in p.parts for p in op.splits)
    whole = next(t for t in splits if t.variant == "op" and t.damage is None)
    minutes = [p.ts.replace(second=0) for p in whole.premiums]
    assert len(minutes) == 750 and len(set(minutes)) == 375  # two rows a minute, as OP wrote
    one_leg = {t.variant for t in splits for p in t.premiums if p.paise is None}
    assert one_leg == set(VARIANTS)  # rows with a leg missing, in every dialect
    assert {m.kind for m in op.masters.values()} == {"adv", "bulk", "avg"}


def test_find_splits_lists_every_split_file_and_reports_the_rest(op: OpTruth) -> None:
    splits, problems = find_splits(op.root)
    assert {s.path: (s.index, s.bucket, s.offset, s.day) for s in splits} == {
        path: (t.index, t.bucket, t.offset, t.day) for path, t in op.splits.items()
    }
    assert [(p.path, p.line) for p in problems] == [(stray, None) for stray in op.strays]
    assert all(p.reason.startswith("not a split file name") for p in problems)
    assert splits == sorted(splits, key=lambda s: (s.index, s.bucket, s.offset, s.day, s.path))


@pytest.mark.parametrize("below", [(), ("data",), ("data", "csv_data")])
def test_the_root_may_be_the_project_its_data_or_csv_data(
    op: OpTruth, below: tuple[str, ...]
) -> None:
    assert find_splits(op.root.joinpath(*below)) == find_splits(op.root)


def test_every_row_reads_as_written(op: OpTruth) -> None:
    splits, _ = find_splits(op.root)
    assert splits
    for split in splits:
        truth = op.splits[split.path]
        premiums, problems = read_premiums(split)
        assert premiums == truth.premiums, split.path
        assert all(p.ts.tzinfo is IST for p in premiums)
        expected = set(truth.bad_lines) | {truth.off_day_line} - {None}
        if truth.damage == "empty":
            expected = {None}
        assert {p.line for p in problems} == expected, split.path
        assert len(problems) == len(expected)  # off-day rows: one report per file
        assert all(p.path == split.path and p.reason for p in problems)


def test_reasons_name_the_trouble(op: OpTruth) -> None:
    words = {"torn": "torn", "empty": "empty file", "off-day": "off the file's day"}
    for split in find_splits(op.root)[0]:
        damage = op.splits[split.path].damage
        if damage in words:
            (problem,) = read_premiums(split)[1]
            assert words[damage] in problem.reason


def test_masters_read_as_written(op: OpTruth) -> None:
    masters, problems = find_masters(op.root)
    assert {
        m.path: (m.kind, m.index, m.bucket, m.offset, m.weekday, m.cells, m.ledger) for m in masters
    } == {
        path: (t.kind, t.index, t.bucket, t.offset, t.weekday, t.cells, t.ledger)
        for path, t in op.masters.items()
    }
    assert {(p.path, p.line) for p in problems} == op.master_problems
    avg = next(m for m in masters if m.kind == "avg")
    assert all(len(key) == 8 for key in avg.cells)  # HH:MM:SS
    assert max(c.n for c in avg.cells.values()) == 2  # both dates pooled per time of day


def test_survey_summarises_without_writing(tmp_path: Path) -> None:
    truth = build_op_tree(tmp_path, DAYS, seed=5)
    before = _snapshot(tmp_path)
    found = survey(tmp_path)
    for split in found.splits:
        read_premiums(split)
    find_masters(tmp_path)
    assert _snapshot(tmp_path) == before
    assert len(found.splits) == len(truth.splits)
    assert len(found.masters) == len(truth.masters)
    assert len(found.problems) == len(truth.strays) + len(truth.master_problems)
    lines = found.summary()
    first = min(t.day for t in truth.splits.values())
    assert lines[0] == f"{len(truth.splits)} split files, 4 days from {first} to {DAY}"
    nifty = sum(1 for t in truth.splits.values() if (t.index, t.bucket) == ("NIFTY", "this_week"))
    assert f"  NIFTY this_week: {nifty} files, 3 days from {DAYS[0]} to {DAY}" in lines
    assert "5 weekday masters: 3 adv, 1 bulk, 1 avg" in lines
    assert lines[-1] == f"{len(found.problems)} problems"


def _snapshot(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file's bytes and mtime, and every folder, by path."""
    shot: dict[str, tuple[bytes, int] | None] = {}
    for folder, _, names in os.walk(root):
        shot[folder] = None
        for name in names:
            path = Path(folder, name)
            shot[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
    return shot


def test_a_bad_root_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for reader in (survey, find_splits, find_masters):
        with pytest.raises(FileNotFoundError, match="no such directory"):
            reader(tmp_path / "missing")
        with pytest.raises(NotADirectoryError, match="not a directory"):
            reader(tmp_path / "file")


def test_a_root_without_splits_says_so(tmp_path: Path) -> None:
    assert find_splits(tmp_path) == (
        [],
        [Problem(tmp_path, None, "no csv_data folder (looked in data/csv_data, csv_data)")],
    )
    assert survey(tmp_path).summary() == [
        "0 split files",
        "0 weekday masters: 0 adv, 0 bulk, 0 avg",
        "1 problems",
    ]


@pytest.mark.parametrize(
    ("name", "key"),
    [("NIFTY 50", "NIFTY"), ("NIFTY BANK", "BANKNIFTY"), ("nifty  bank", "BANKNIFTY"),
     ("SENSEX", "SENSEX"), ("BANKNIFTY", "BANKNIFTY"), ("finnifty", "FINNIFTY")],
)  # fmt: skip
def test_index_folders_map_to_opchain_keys(name: str, key: str) -> None:
    assert index_key(name) == key


@pytest.mark.parametrize(
    "text",
    ["2025-08-20T09:15:00+05:30", "2025-08-20 09:15:00+05:30", "2025-08-20T03:45:00Z",
     "2025-08-20T03:45:00+00:00", "2025-08-20 09:15:00", "2025-08-20T09:15:00",
     " 2025-08-20 09:15:00 "],
)  # fmt: skip
def test_timestamps_in_every_form_are_ist(text: str) -> None:
    moment = parse_ts(text)
    assert moment == at(DAY, time(9, 15)) and moment.tzinfo is IST


@pytest.mark.parametrize(
    "text", ["", "09:15", "2025-08-20T09:15:00+05:3x", "0001-01-01T00:00+09:00"]
)
def test_a_bad_timestamp_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="bad timestamp"):
        parse_ts(text)


def _split(path: Path, text: str) -> OpSplit:
    path.write_text(text)
    return OpSplit(path, "NIFTY", "this_week", "atm", DAY)


def test_a_missing_or_zero_leg_gives_no_premium(tmp_path: Path) -> None:
    """OP's tp_sum counted a missing leg as 0; that one-leg value must not pass as a premium."""
    head = ",NIFTY,this_week,atm,24500.0,24500.0"
    rows = [
        f"2025-08-20T09:15:00+05:30{head},101.25,99.5,,,1,1,1,1,200.75,this_week",
        f"2025-08-20T09:15:30+05:30{head},,99.5,,,1,1,1,1,99.5,this_week",
        f"2025-08-20T09:16:00+05:30{head},101.2,0.0,,,1,1,1,1,101.2,this_week",
        f"2025-08-20T09:16:30+05:30{head},0.0,0.0,,,1,1,1,1,0.0,this_week",
    ]
    premiums, problems = read_premiums(
        _split(tmp_path / "a.csv", "\n".join([OP_HEADER, *rows, ""]))
    )
    assert [p.paise for p in premiums] == [20075, None, None, None] and problems == []


@pytest.mark.parametrize(
    ("header", "row", "paise"),
    [
        ("ts,total_premium,tp_sum,call_last_price,put_last_price", "{ts},1.5,2.5,0.75,0.75", 150),
        ("ts,tp_sum,call_last_price,put_last_price", "{ts},2.5,1.25,1.25", 250),
        ("ts,call_last_price,put_last_price", "{ts},1.25,1.30", 255),
        ("ts_ist,ce_ltp,pe_ltp,total_premium", "{ts},1.000000,2.000000,3.000000", 300),
        ("ts_ist,ce_ltp,pe_ltp,total_premium", "{ts},,2.000000,", None),
        ("ts,total_premium", "{ts},", None),
        ("TIMESTAMP , TP_SUM", "{ts},7.35", 735),
        ("\ufefftimestamp,tp_sum", "{ts},7.35", 735),
    ],
)
def test_the_premium_column_by_priority(
    tmp_path: Path, header: str, row: str, paise: int | None
) -> None:
    text = f"{header}\n{row.format(ts='2025-08-20T09:15:00+05:30')}\n"
    premiums, problems = read_premiums(_split(tmp_path / "a.csv", text))
    assert premiums == [Premium(at(DAY, time(9, 15)), paise, None, None)] and problems == []


def test_expiry_and_days_to_expiry_come_from_their_columns(tmp_path: Path) -> None:
    text = "ts,expiry,days_to_expiry,total_premium\n2025-08-20T09:15:00+05:30,2025-08-26,6.0,9\n"
    premiums, _ = read_premiums(_split(tmp_path / "a.csv", text))
    assert premiums == [Premium(at(DAY, time(9, 15)), 900, date(2025, 8, 26), 6)]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("index,tp_sum", "missing column timestamp/ts/ts_ist"),
        ("timestamp,call_last_price", "missing column total_premium/tp_sum"),
    ],
)
def test_a_file_without_the_columns_is_one_problem(
    tmp_path: Path, header: str, reason: str
) -> None:
    split = _split(tmp_path / "a.csv", f"{header}\nx,1\n")
    (problem,) = read_premiums(split)[1]
    assert problem.line == 1 and problem.reason.startswith(reason)


def test_bad_cells_are_reported_with_their_line(tmp_path: Path) -> None:
    text = (
        "ts,expiry,days_to_expiry,total_premium\n"
        "2025-08-20T09:15:00+05:30,2025-08-26,6,abc\n"
        "2025-08-20T09:15:00+05:30,2025-13-26,6,1\n"
        "2025-08-20T09:15:00+05:30,2025-08-26,6.5,1\n"
        "2025-08-20T09:15:00+05:30,2025-08-26,6,1,\n"
        "2025-08-20T09:16:00+05:30,2025-08-26,6,nan\n"
    )
    premiums, problems = read_premiums(_split(tmp_path / "a.csv", text))
    assert premiums == [Premium(at(DAY, time(9, 16)), None, date(2025, 8, 26), 6)]
    assert [(p.line, p.reason) for p in problems] == [
        (2, "bad price 'abc'"),
        (3, "bad expiry '2025-13-26'"),
        (4, "bad days_to_expiry '6.5'"),
        (5, "5 cells where the header has 4"),
    ]


def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    folder = tmp_path / "2025-08-20.csv"
    folder.mkdir()
    (problem,) = read_premiums(OpSplit(folder, "NIFTY", "this_week", "atm", DAY))[1]
    assert problem.line is None and problem.reason == "not a regular file; not read"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("NIFTY", "this_week", "atm.csv"), "expected <INDEX>"),
        (("NIFTY", "weekly", "atm", "2025-08-20.csv"), "'weekly' is not a bucket"),
        (("NIFTY", "this_week", "+1", "2025-08-20.csv"), "'+1' is not an offset"),
        (("NIFTY", "this_week", "atm", "2025-08-20.txt"), "is not <YYYY-MM-DD>.csv"),
        (("NIFTY", "this_week", "atm", "2025-02-30.csv"), "is not <YYYY-MM-DD>.csv"),
        (("NIFTY", "this_week", "atm", "20250820_091500.csv"), "is not <YYYY-MM-DD>.csv"),
    ],
)
def test_misnamed_files_are_reported(tmp_path: Path, parts: tuple[str, ...], reason: str) -> None:
    csv_root = tmp_path / "csv_data"
    good = csv_root / "SENSEX" / "next_week" / "atm_p2m2" / "2025-08-20.csv"
    for path in (good, csv_root.joinpath(*parts)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("ts,total_premium\n")
    splits, problems = find_splits(tmp_path)
    assert splits == [OpSplit(good, "SENSEX", "next_week", "atm_p2m2", DAY)]
    (problem,) = problems
    assert problem.path == csv_root.joinpath(*parts) and reason in problem.reason


def test_weekend_and_misnamed_masters(tmp_path: Path) -> None:
    adv = tmp_path / "data_adv" / "weekday_masters" / "NIFTY BANK" / "this_month" / "atm"
    adv.mkdir(parents=True)
    (adv / "sun.csv").write_text("time_bucket,n_tot,sum_tot,avg_tot,min_tot,max_tot\n")
    (adv / "sunday.csv").write_text("x\n")
    (tmp_path / "WEEKDAY_NIFTY_weekly_atm_MASTER.csv").write_text("x\n")
    (tmp_path / "Funday").mkdir()
    (tmp_path / "Funday" / "NIFTY_this_week_master_avg.csv").write_text("x\n")
    masters, problems = find_masters(tmp_path)
    assert [(m.kind, m.index, m.weekday, m.cells) for m in masters] == [
        ("adv", "BANKNIFTY", "sun", {})
    ]
    assert sorted(p.path.name for p in problems) == [
        "NIFTY_this_week_master_avg.csv",
        "WEEKDAY_NIFTY_weekly_atm_MASTER.csv",
        "sunday.csv",
    ]


def test_bad_master_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "WEEKDAY_NIFTY_this_week_atm_MASTER.csv"
    path.write_text(
        "HH:MM, HIST_AVG, COUNTER, LAST_UPDATED\n09:15,1.5,2,x\n9:16,1.5,2,x\n09:17,inf,2,x\n"
        "09:18,1.5,-1,x\n09:15,2.5,3,x\n09:19,1.0,0,x\n"
    )
    ((master,), problems) = find_masters(tmp_path)
    assert master.cells == {"09:15": (3, 2.5, None, None, None)}
    assert [(p.line, p.reason) for p in problems] == [
        (3, "bad HH:MM '9:16'"),
        (4, "bad HIST_AVG 'inf'"),
        (5, "bad COUNTER '-1'"),
        (6, "repeats time 09:15; the later row counts"),
    ]


# A price as OP and opchain wrote it: str(float), %.6f (the advanced split), or 2 decimals.
FORMS: tuple[Callable[[float], str], ...] = (
    repr,
    lambda rupees: f"{rupees:.6f}",
    lambda rupees: f"{rupees:.2f}",
)


@given(
    st.integers(1, 10**8),
    st.integers(1, 10**8),
    st.sampled_from(FORMS),
    st.sampled_from(FORMS),
)
def test_two_decimal_prices_give_exact_paise(
    call: int, put: int, fc: Callable[[float], str], fp: Callable[[float], str]
) -> None:
    c, p = fc(call / 100), fp(put / 100)
    assert premium_paise(None, c, p) == call + put
    assert premium_paise(repr(call / 100 + put / 100), c, p) == call + put  # OP's tp_sum
    assert premium_paise(f"{call / 100 + put / 100:.6f}", None, None) == call + put


@files
@given(st.binary(max_size=3000))
def test_the_reader_never_raises_on_junk(tmp_path: Path, junk: bytes) -> None:
    path = tmp_path / "2025-08-20.csv"
    path.write_bytes(OP_HEADER.encode() + b"\r\n" + junk)
    premiums, problems = read_premiums(OpSplit(path, "NIFTY", "this_week", "atm", DAY))
    lines = junk.count(b"\n") + 2
    assert all(p.path == path and p.reason for p in problems)
    assert all(p.line is None or 1 <= p.line <= lines for p in problems)
    assert len(premiums) <= lines - 1


# Junk: no newline in it, and not 16 cells (a row of empty cells after a timestamp would be a row).
JUNK = st.binary(max_size=80).filter(lambda b: b"\n" not in b and b.count(b",") != 15)
ROWS = [
    f"{(at(DAY, time(9, 15)) + timedelta(seconds=30 * k)).isoformat()},NIFTY,this_week,atm,"
    f"24500.0,24500.0,{100 + k / 20!r},{90 + k / 10!r},,,1,2,3,4,{190 + k * 0.15!r},this_week"
    for k in range(12)
]


@files
@given(
    st.lists(
        st.tuples(st.integers(0, len(ROWS)), JUNK),
        max_size=6,
    )
)
def test_junk_lines_cost_only_themselves(tmp_path: Path, junk: list[tuple[int, bytes]]) -> None:
    lines = [row.encode() for row in ROWS]
    for where, line in sorted(junk, key=lambda j: j[0], reverse=True):
        lines.insert(where, line)
    path = tmp_path / "2025-08-20.csv"
    path.write_bytes(b"\r\n".join([OP_HEADER.encode(), *lines, b""]))
    premiums, problems = read_premiums(OpSplit(path, "NIFTY", "this_week", "atm", DAY))
    good = [i + 2 for i, line in enumerate(lines) if line.decode("latin-1") in ROWS]
    start = at(DAY, time(9, 15))
    assert [p.ts for p in premiums] == [start + timedelta(seconds=30 * k) for k in range(12)]
    assert [p.paise for p in premiums] == [19000 + 15 * k for k in range(12)]
    assert not {p.line for p in problems} & set(good)


def test_a_file_named_off_its_rows_keeps_them(tmp_path: Path) -> None:
    text = f"{OP_HEADER}\n{ROWS[0]}\n{ROWS[1]}\n"
    split = _split(tmp_path / "a.csv", text)
    split = OpSplit(split.path, "NIFTY", "this_week", "atm", DAY - timedelta(days=1))
    premiums, problems = read_premiums(split)
    assert len(premiums) == 2
    reason = "2 rows dated off the file's day 2025-08-19, the first 2025-08-20 (kept)"
    assert problems == [Problem(split.path, 2, reason)]
