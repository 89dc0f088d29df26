"""The rebuild's fast path (``store.splitfast``): a clean split file of opchain's is read by it,
and any file, however damaged, gives what the tolerant line-by-line reader gives (the same
minutes, premiums, times, days to expiry and problems), because the fast path refuses every
file it is not sure of."""

from datetime import date
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opchain.store.opdata import OpSplit, read_premiums
from opchain.store.splitfast import Day, from_premiums, read_days, read_fast
from opchain.store.splits import COLUMNS

DAY = date(2026, 11, 20)
HEADER = ",".join(COLUMNS)
files = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def row(
    seconds: int, call: str, put: str, total: str, dte: str = "3", ts: str | None = None
) -> str:
    """A split row as opchain writes it, at ``seconds`` after midnight IST."""
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    stamp = ts if ts is not None else f"{DAY}T{h:02d}:{m:02d}:{s:02d}+05:30"
    cells = dict.fromkeys(COLUMNS, "")
    cells.update(ts=stamp, index="NIFTY", expiry_code="this_week", expiry="2026-11-24",
                 strike_offset="atm", atm_strike="26000.0", spot="26012.5", call_strike="26000.0",
                 put_strike="26000.0", call_last_price=call, put_last_price=put,
                 total_premium=total, days_to_expiry=dte)  # fmt: skip
    return ",".join(cells[c] for c in COLUMNS)


PRICE = st.one_of(
    st.integers(1, 500_000).map(lambda p: f"{p // 100}.{p % 100:02d}"),
    st.integers(1, 500_000).map(lambda p: f"{p / 100}"),
    st.sampled_from(["", "0", "0.0", "120"]),
)
ROWS = st.lists(
    st.tuples(st.integers(9 * 3600, 15 * 3600 + 40 * 60), PRICE, PRICE, PRICE),
    min_size=1,
    max_size=40,
).map(lambda found: [row(s, c, p, t) for s, c, p, t in sorted(found)])
JUNK = st.sampled_from(
    [
        row(34_000, "12.345", "10.00", "22.35"),  # three decimals
        row(34_000, "abc", "10.00", "22.35"),
        row(34_000, "-5.00", "10.00", "22.35"),
        row(34_000, "1e3", "10.00", "22.35"),
        row(34_000, "nan", "10.00", "22.35"),
        row(34_000, " 12.30", "10.00", "22.30"),
        row(34_000, ".5", "10.00", "10.50"),
        row(34_000, "5.", "10.00", "15.00"),
        row(34_000, "12.30", "10.00", "22.30", dte=""),
        row(34_000, "12.30", "10.00", "22.30", dte="3.0"),
        row(34_000, "12.30", "10.00", "22.30", dte="-1"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-20T09:26:40"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-20T09:26:40Z"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-20 09:26:40+05:30"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-19T09:26:40+05:30"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-20T09:26:61+05:30"),
        row(34_000, "12.30", "10.00", "22.30", ts="2026-11-20T09:26:40.5+05:30"),
        row(34_000, "12.30", "10.00", "22.30").replace("2026-11-24", "2026-02-30"),
        row(34_000, "12.30", "10.00", "22.30").replace("2026-11-24", "2026-11-25"),
        row(34_000, "12.30", "10.00", "22.30") + ",extra",
        row(34_000, "12.30", "10.00", "22.30").rsplit(",", 3)[0],
        row(34_000, "12.30", "10.00", '"22.30"'),
        row(34_000, "12.30", "10.00", "22.30") + "\r",
        row(34_000, "12.30", "10.00", "2" * 14),
        HEADER,
        "",
        ",".join([""] * len(COLUMNS)),
        "\x00" * 30,
        "caf\u00e9",
    ]
)


def slow(split: OpSplit) -> tuple[Day, list[object]]:
    premiums, problems = read_premiums(split)
    return from_premiums(premiums, split.day, bool(premiums) or not problems), list(problems)


def same(a: Day, b: Day) -> bool:
    arrays = all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3], strict=True))
    return arrays and a[3:] == b[3:]


def write(path: Path, text: str) -> OpSplit:
    path.write_bytes(text.encode("utf-8"))
    return OpSplit(path, "NIFTY", "this_week", "atm", DAY)


@files
@given(rows=ROWS)
def test_a_clean_file_is_read_by_the_fast_path_as_the_tolerant_reader_reads_it(
    tmp_path: Path, rows: list[str]
) -> None:
    split = write(tmp_path / f"{DAY}.csv", "\n".join([HEADER, *rows, ""]))
    fast = read_fast([(split.path.read_bytes(), DAY)])[0]
    assert fast is not None  # the fast path took it
    assert same(fast, slow(split)[0])


@files
@given(rows=ROWS, junk=st.lists(st.tuples(st.integers(0, 40), JUNK), min_size=1, max_size=3),
       torn=st.booleans())  # fmt: skip
def test_any_damage_gives_what_the_tolerant_reader_gives(
    tmp_path: Path, rows: list[str], junk: list[tuple[int, str]], torn: bool
) -> None:
    for where, line in sorted(junk, reverse=True):
        rows.insert(min(where, len(rows)), line)
    text = "\n".join([HEADER, *rows]) + ("" if torn else "\n")
    damaged = write(tmp_path / f"{DAY}.csv", text)
    clean = write(
        tmp_path / "2026-11-20x.csv", "\n".join([HEADER, row(40_000, "1.00", "2.00", "3.00"), ""])
    )
    clean = OpSplit(clean.path, "NIFTY", "this_week", "atm_p1", DAY)
    got = read_days([clean, damaged])  # read together: the clean one still fast, both right
    for split, (day, problems) in zip([clean, damaged], got, strict=True):
        want, found = slow(split)
        assert same(day, want)
        assert problems == found


def test_files_of_other_headers_and_days_are_read_together(tmp_path: Path) -> None:
    """OP's dialect beside opchain's: the tolerant reader for it, the fast path for the rest,
    each file with its own day."""
    op = tmp_path / "op.csv"
    op.write_text("timestamp,ce_ltp,pe_ltp,tp_sum\n2026-11-19 09:15:00,1.5,2.5,4.0\n")
    splits = [
        write(tmp_path / "a.csv", "\n".join([HEADER, row(40_000, "1.00", "2.00", "3.00"), ""])),
        OpSplit(op, "NIFTY", "this_week", "atm", date(2026, 11, 19)),
    ]
    other = tmp_path / "b.csv"
    other.write_text(
        "\n".join([HEADER, row(40_000, "1.00", "2.00", "3.00").replace(str(DAY), "2026-11-19"), ""])
    )
    splits.append(OpSplit(other, "NIFTY", "this_week", "atm", date(2026, 11, 19)))
    got = read_days(splits)
    assert [day.paise.tolist() for day, _ in got] == [[300], [400], [300]]
    for split, (day, problems) in zip(splits, got, strict=True):
        assert same(day, slow(split)[0]) and problems == slow(split)[1]
    fast = read_fast([(s.path.read_bytes(), s.day) for s in splits])
    assert [f is not None for f in fast] == [True, False, True]
