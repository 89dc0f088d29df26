"""Today against the profiles: only the days before today count, however far the live update
has gone, and the numbers equal a rebuild over just those days."""

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from opchain.market.ist import IST
from opchain.model import SplitRow
from opchain.profiles.minutes import SESSION_MINUTES
from opchain.store import eod
from opchain.store.masters import MasterStream, build
from opchain.store.opdata import OpSplit
from opchain.store.profiles import ProfileBook, dte_path, earlier_path, load, save, weekday_path
from opchain.store.query import MinuteVsProfile, compare
from opchain.store.splits import COLUMNS, format_row

SERIES = ("NIFTY", "this_week", "atm")
FRIDAYS = [date(2026, 10, 30), date(2026, 11, 6), date(2026, 11, 13)]  # earlier days
TODAY = date(2026, 11, 20)  # a Friday too
DTE = {FRIDAYS[0]: 4, FRIDAYS[1]: 3, FRIDAYS[2]: 6, TODAY: 3}  # only one earlier day at dte 3


def write_day(csv_root: Path, day: date, premiums: list[float], minutes: int) -> Path:
    """The split file of ``day`` for SERIES: two rows a minute, the first ``minutes`` minutes."""
    open_ = datetime.combine(day, time(9, 15), IST)
    lines = [",".join(COLUMNS)]
    for k in range(minutes):
        for second, shift in ((0, -0.05), (30, 0.0)):
            total = round(premiums[k] + shift, 2)
            row = SplitRow(
                open_ + timedelta(minutes=k, seconds=second), "NIFTY", "this_week", day, "atm",
                26_000.0, 26_000.0, 26_000.0, 26_000.0, round(total / 2, 2),
                round(total - round(total / 2, 2), 2), None, None, 1, 1, 1, 1, total, DTE[day],
            )  # fmt: skip
            lines.append(format_row(row))
    path = csv_root.joinpath(*SERIES, f"{day}.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def premiums(seed: int, level: float) -> list[float]:
    rng = random.Random(seed)
    values, value = [], level
    for _ in SESSION_MINUTES:
        value = max(5.0, value + rng.choice([-1.5, -0.5, 0.0, 0.5, 1.5]))
        values.append(round(value, 2))
    return values


@pytest.fixture()
def history(tmp_path: Path) -> tuple[Path, Path]:
    """Three earlier Fridays closed in the profiles; today's split file holds its first hour.
    Today runs above every earlier day for the first half hour and below them after, so it is
    the high, then the low, of many minutes."""
    csv_root, adv = tmp_path / "csv_data", tmp_path / "data_adv"
    for n, day in enumerate(FRIDAYS):
        write_day(csv_root, day, premiums(n, 280.0 + 5 * n), len(SESSION_MINUTES))
        eod.reconcile(csv_root, adv, day, durable=False)
    today = [v + 60.0 if k < 30 else max(5.0, v - 60.0) for k, v in enumerate(premiums(9, 285))]
    write_day(csv_root, TODAY, today, 60)
    return csv_root, adv


def stream_today(csv_root: Path, adv: Path, through_minute: int) -> None:
    """The live update, as the recorder runs it: the minutes before ``through_minute``."""
    stream = MasterStream(csv_root, adv, TODAY, save_every=0.0)
    now = datetime.combine(TODAY, time(9, 15), IST) + timedelta(minutes=through_minute)
    stream.update([SERIES], now=now)


def rebuilt_over(csv_root: Path, adv: Path, days: list[date]) -> ProfileBook:
    book = ProfileBook(fresh=True)
    folder = csv_root.joinpath(*SERIES)
    build(book, adv, [OpSplit(folder / f"{d}.csv", *SERIES, d) for d in days])
    return book


def assert_earlier_only(rows: list[MinuteVsProfile], csv_root: Path, adv: Path) -> None:
    book = rebuilt_over(csv_root, adv, FRIDAYS)
    weekday, _ = book[weekday_path(adv, *SERIES, TODAY)]
    by_dte, _ = book[dte_path(adv, *SERIES, 3)]
    assert len(rows) == len(SESSION_MINUTES)
    for row in rows:
        cell, dte_cell = weekday[row.minute], by_dte[row.minute]
        assert row.weekday_days == cell.n == len(FRIDAYS)
        assert row.weekday_avg == round(cell.total / cell.n / 100, 6)
        assert (row.weekday_min, row.weekday_max) == (cell.low / 100, cell.high / 100)
        assert row.dte_days == dte_cell.n == 1
        assert (row.dte_avg, row.dte_min, row.dte_max) == (dte_cell.total / 100,) * 3


@pytest.mark.parametrize("streamed", [0, 1, 45, 60])
def test_today_is_compared_with_the_days_before_it_only(
    history: tuple[Path, Path], streamed: int
) -> None:
    """Whether the live update has added none, one, most or all of today's finished minutes,
    the profiles count the three earlier Fridays only (one earlier day at 3 days to expiry),
    and their mean, low and high are a rebuild's over those days."""
    csv_root, adv = history
    if streamed:
        stream_today(csv_root, adv, streamed)
    found = compare(csv_root, adv, *SERIES, TODAY)
    assert (found.weekday_days, found.dte_days, found.dte) == (len(FRIDAYS), 1, 3)
    assert_earlier_only(found.minutes, csv_root, adv)
    assert sum(r.today is not None for r in found.minutes) == 60


def test_without_the_kept_copy_the_earlier_days_are_rebuilt(history: tuple[Path, Path]) -> None:
    """The profile as it was before today is kept when today is first added; without it (say
    the profiles were rebuilt since), or with a stale one, the split files of the earlier days
    give the same numbers."""
    csv_root, adv = history
    stream_today(csv_root, adv, 40)
    kept = earlier_path(weekday_path(adv, *SERIES, TODAY))
    assert kept is not None and kept.exists()
    kept.unlink()
    assert_earlier_only(compare(csv_root, adv, *SERIES, TODAY).minutes, csv_root, adv)

    # a stale copy, whole and with the right days, one of whose values is not the day's now
    stream_today(csv_root, adv, 41)  # no new day: nothing is kept again
    assert not kept.exists()
    dte_kept = earlier_path(dte_path(adv, *SERIES, 3))
    assert dte_kept is not None
    profile, ledger = load(dte_kept)
    cell = profile["09:20"]
    profile["09:20"] = cell._replace(total=cell.total + 5, low=cell.low + 5, high=cell.high + 5)
    save(dte_kept, profile, ledger, durable=False)
    assert_earlier_only(compare(csv_root, adv, *SERIES, TODAY).minutes, csv_root, adv)


def test_an_earlier_day_is_compared_with_the_days_before_it(history: tuple[Path, Path]) -> None:
    """Asked about the second Friday, with today already in: only the first Friday counts."""
    csv_root, adv = history
    stream_today(csv_root, adv, 30)
    found = compare(csv_root, adv, *SERIES, FRIDAYS[1])
    assert (found.weekday_days, found.dte_days) == (1, 0)
    book = rebuilt_over(csv_root, adv, FRIDAYS[:1])
    weekday, _ = book[weekday_path(adv, *SERIES, TODAY)]
    for row in found.minutes:
        assert row.weekday_days == 1 and row.weekday_avg == weekday[row.minute].total / 100
        assert row.dte_avg is None and row.dte_days is None


def test_a_first_day_has_nothing_before_it(tmp_path: Path) -> None:
    csv_root, adv = tmp_path / "csv_data", tmp_path / "data_adv"
    write_day(csv_root, TODAY, premiums(1, 200.0), 30)
    stream_today(csv_root, adv, 20)
    found = compare(csv_root, adv, *SERIES, TODAY)
    assert (found.weekday_days, found.dte_days) == (0, 0)
    assert all(r.weekday_avg is None and r.dte_days is None for r in found.minutes)
