"""The NSE/BSE trading calendar against the published tables (market.md §1.3, §2)."""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.market.calendar import (
    BUILT_IN,
    EXCHANGES,
    CalendarUnavailable,
    Session,
    YearNotCovered,
    covered_years,
    heads_up,
    holidays,
    install,
    installed,
    is_trading_day,
    last_trading_day,
    next_trading_day,
    previous_trading_day,
    provisional_session,
    session,
    sessions_between,
    shift_expiry,
    source,
    upcoming_session,
    with_supplied,
)
from opchain.market.holiday_file import parse_holiday_file
from opchain.market.holidays import SPECIAL_SESSIONS
from opchain.market.ist import IST

exchanges = pytest.mark.parametrize("exchange", EXCHANGES)

# Far enough from the table edges that walking either way stays inside 2025–2026.
dates = st.dates(min_value=date(2025, 1, 8), max_value=date(2026, 12, 24))
exchange_names = st.sampled_from(EXCHANGES)


def trading_days_strictly_between(exchange: str, low: date, high: date) -> list[date]:
    days = (low + timedelta(days=n) for n in range(1, (high - low).days))
    return [day for day in days if is_trading_day(exchange, day)]


def weekday_holidays(exchange: str, year: int) -> dict[date, str]:
    return {day: name for day, name in holidays(exchange, year).items() if day.weekday() < 5}


# --- tables ---------------------------------------------------------------------------


@exchanges
def test_covered_years(exchange: str) -> None:
    assert covered_years(exchange) == (2025, 2026)


@exchanges
@pytest.mark.parametrize(("year", "count"), [(2025, 14), (2026, 16)])
def test_weekday_holiday_counts(exchange: str, year: int, count: int) -> None:
    assert len(weekday_holidays(exchange, year)) == count


@exchanges
def test_2026_weekend_holidays(exchange: str) -> None:
    weekend = {day for day in holidays(exchange, 2026) if day.weekday() >= 5}
    assert weekend == {date(2026, 2, 15), date(2026, 3, 21), date(2026, 8, 15), date(2026, 11, 8)}


@exchanges
def test_holidays_are_in_order_and_a_copy(exchange: str) -> None:
    table = holidays(exchange, 2026)
    assert list(table) == sorted(table)
    table.clear()
    assert len(holidays(exchange, 2026)) == 20


def test_nse_and_bse_agree_in_2025_and_2026() -> None:
    for year in (2025, 2026):
        assert holidays("NSE", year) == holidays("BSE", year)


# --- single days ----------------------------------------------------------------------


@exchanges
@pytest.mark.parametrize(
    ("day", "name_part"),
    [
        (date(2025, 2, 26), "Mahashivratri"),
        (date(2025, 8, 15), "Independence Day"),
        (date(2025, 12, 25), "Christmas"),
        (date(2026, 1, 15), "elections"),
        (date(2026, 1, 26), "Republic Day"),
        (date(2026, 3, 31), "Mahavir Jayanti"),
        (date(2026, 11, 24), "Guru Nanak"),
    ],
)
def test_known_holidays_are_closed_and_named(exchange: str, day: date, name_part: str) -> None:
    assert name_part in holidays(exchange, day.year)[day]
    assert session(exchange, day) is None
    assert not is_trading_day(exchange, day)


@exchanges
def test_ad_hoc_2026_01_15_is_closed(exchange: str) -> None:
    assert session(exchange, date(2026, 1, 15)) is None
    assert not is_trading_day(exchange, date(2026, 1, 15))


@exchanges
def test_ordinary_weekday_is_a_regular_session(exchange: str) -> None:
    day = date(2026, 11, 19)
    opens = datetime(2026, 11, 19, 9, 15, tzinfo=IST)
    closes = datetime(2026, 11, 19, 15, 30, tzinfo=IST)
    assert session(exchange, day) == Session(day, opens, closes, "regular", "")
    assert is_trading_day(exchange, day)


@exchanges
@pytest.mark.parametrize(
    "day", [date(2025, 1, 4), date(2025, 1, 5), date(2026, 6, 13), date(2026, 12, 27)]
)
def test_weekends_are_closed(exchange: str, day: date) -> None:
    assert session(exchange, day) is None
    assert not is_trading_day(exchange, day)


@exchanges
@pytest.mark.parametrize("day", [date(2025, 2, 1), date(2026, 2, 1)])
def test_budget_weekend_is_a_special_normal_hours_session(exchange: str, day: date) -> None:
    held = session(exchange, day)
    assert held is not None
    assert held.kind == "special"
    assert "Budget" in held.note
    assert (held.open.time(), held.close.time()) == (time(9, 15), time(15, 30))
    assert held.open.utcoffset() == timedelta(hours=5, minutes=30)
    assert is_trading_day(exchange, day)


@exchanges
def test_muhurat_2025_is_a_session_but_not_a_trading_day(exchange: str) -> None:
    day = date(2025, 10, 21)
    held = session(exchange, day)
    assert held is not None
    assert held.kind == "muhurat"
    assert held.open == datetime(2025, 10, 21, 13, 45, tzinfo=IST)
    assert held.close == datetime(2025, 10, 21, 14, 45, tzinfo=IST)
    assert day in holidays(exchange, 2025)
    assert not is_trading_day(exchange, day)


@exchanges
def test_muhurat_2026_without_published_times_raises(exchange: str) -> None:
    with pytest.raises(
        CalendarUnavailable, match=r"Muhurat timings for 2026-11-08 are not published"
    ):
        session(exchange, date(2026, 11, 8))
    assert not is_trading_day(exchange, date(2026, 11, 8))
    with pytest.raises(CalendarUnavailable, match="not published"):
        sessions_between(exchange, date(2026, 11, 2), date(2026, 11, 13))


# --- uncovered years and bad input ----------------------------------------------------


@exchanges
@pytest.mark.parametrize("year", [2024, 2027])
def test_uncovered_years_raise(exchange: str, year: int) -> None:
    message = (
        f"^no {exchange} trading calendar for {year}: the holiday tables cover 2025, 2026 only; "
        f"give NSE's published holiday list for {year} in OPCHAIN_HOLIDAYS_FILE "
        r"\(see `opchain calendar`\)$"
    )
    day = date(year, 6, 15)  # a Tuesday in 2027, a Saturday in 2024: neither is assumed
    for query in (
        lambda: holidays(exchange, year),
        lambda: session(exchange, day),
        lambda: is_trading_day(exchange, day),
        lambda: shift_expiry(exchange, day),
        lambda: sessions_between(exchange, day, day),
    ):
        with pytest.raises(YearNotCovered, match=message) as raised:
            query()
        assert (raised.value.exchange, raised.value.year) == (exchange, year)


@exchanges
def test_walking_out_of_the_tables_raises(exchange: str) -> None:
    with pytest.raises(CalendarUnavailable, match="for 2024"):
        previous_trading_day(exchange, date(2025, 1, 1))
    with pytest.raises(CalendarUnavailable, match="for 2027"):
        next_trading_day(exchange, date(2026, 12, 31))
    assert previous_trading_day(exchange, date(2025, 1, 2)) == date(2025, 1, 1)
    assert next_trading_day(exchange, date(2026, 12, 30)) == date(2026, 12, 31)


def test_calendar_unavailable_is_a_value_error() -> None:
    assert issubclass(CalendarUnavailable, ValueError)


def test_unknown_exchange_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'MCX'.*NSE, BSE") as raised:
        is_trading_day("MCX", date(2026, 1, 5))
    assert not isinstance(raised.value, CalendarUnavailable)
    with pytest.raises(ValueError, match="NSE, BSE"):
        covered_years("MCX")


def test_a_datetime_is_not_a_date() -> None:
    with pytest.raises(TypeError, match="datetime"):
        is_trading_day("NSE", datetime(2026, 1, 15, 10, 0, tzinfo=IST))


# --- ranges ---------------------------------------------------------------------------


@exchanges
def test_sessions_in_2025(exchange: str) -> None:
    sessions = sessions_between(exchange, date(2025, 1, 1), date(2025, 12, 31))
    kinds = [held.kind for held in sessions]
    # 261 weekdays - 14 weekday holidays = 247 regular, plus the Budget Saturday and Muhurat.
    assert (kinds.count("regular"), kinds.count("special"), kinds.count("muhurat")) == (247, 1, 1)
    assert [held.day for held in sessions] == sorted(held.day for held in sessions)
    assert all(held.open.tzinfo is not None and held.open < held.close for held in sessions)


@exchanges
def test_sessions_between_is_inclusive(exchange: str) -> None:
    days = [held.day for held in sessions_between(exchange, date(2026, 1, 30), date(2026, 2, 2))]
    assert days == [date(2026, 1, 30), date(2026, 2, 1), date(2026, 2, 2)]
    assert sessions_between(exchange, date(2026, 2, 2), date(2026, 1, 30)) == []


# --- expiries (market.md §1.3) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "nominal", "actual"),
    [
        ("NSE", date(2026, 11, 24), date(2026, 11, 23)),
        ("NSE", date(2026, 3, 31), date(2026, 3, 30)),
        ("NSE", date(2025, 10, 21), date(2025, 10, 20)),
        ("NSE", date(2026, 3, 3), date(2026, 3, 2)),
        ("NSE", date(2026, 11, 10), date(2026, 11, 9)),
        ("NSE", date(2025, 4, 10), date(2025, 4, 9)),
        ("BSE", date(2026, 1, 15), date(2026, 1, 14)),
        ("BSE", date(2025, 12, 25), date(2025, 12, 24)),
        ("BSE", date(2025, 10, 2), date(2025, 10, 1)),
        ("BSE", date(2026, 5, 28), date(2026, 5, 27)),
        ("NSE", date(2026, 11, 17), date(2026, 11, 17)),  # an ordinary Tuesday
        ("BSE", date(2026, 11, 26), date(2026, 11, 26)),  # an ordinary Thursday
    ],
)
def test_shift_expiry_examples(exchange: str, nominal: date, actual: date) -> None:
    assert shift_expiry(exchange, nominal) == actual


# --- properties -----------------------------------------------------------------------


@given(exchange_names, dates)
def test_previous_trading_day_is_the_nearest_one_before(exchange: str, day: date) -> None:
    previous = previous_trading_day(exchange, day)
    assert previous < day
    assert is_trading_day(exchange, previous)
    assert trading_days_strictly_between(exchange, previous, day) == []


@given(exchange_names, dates)
def test_next_trading_day_is_the_nearest_one_after(exchange: str, day: date) -> None:
    following = next_trading_day(exchange, day)
    assert following > day
    assert is_trading_day(exchange, following)
    assert trading_days_strictly_between(exchange, day, following) == []


@given(exchange_names, dates)
def test_shift_expiry_is_the_nearest_trading_day_on_or_before(exchange: str, day: date) -> None:
    actual = shift_expiry(exchange, day)
    assert actual <= day
    assert is_trading_day(exchange, actual)
    assert (actual == day) == is_trading_day(exchange, day)
    assert trading_days_strictly_between(exchange, actual, day) == []


@given(exchange_names, dates)
def test_last_trading_day_is_consistent(exchange: str, day: date) -> None:
    last = last_trading_day(exchange, day)
    expected = day if is_trading_day(exchange, day) else previous_trading_day(exchange, day)
    assert last == expected == shift_expiry(exchange, day)
    assert previous_trading_day(exchange, next_trading_day(exchange, last)) == last


@given(exchange_names, dates)
def test_trading_days_are_exactly_normal_hours_sessions(exchange: str, day: date) -> None:
    if day == date(2026, 11, 8):  # Muhurat without published times
        return
    held = session(exchange, day)
    normal_hours = held is not None and held.kind in ("regular", "special")
    assert is_trading_day(exchange, day) == normal_hours
    if held is not None:
        assert held.day == day
        assert held.open.tzinfo is IST and held.close.tzinfo is IST
        assert (held.note == "") == (held.kind == "regular")


@exchanges
def test_every_special_session_lies_in_a_covered_year(exchange: str) -> None:
    for special in SPECIAL_SESSIONS[exchange]:
        assert special.day.year in covered_years(exchange)
        assert special.kind in ("special", "muhurat")


# --- supplied years, provisional sessions, the next session (issue 13, case 10) -------------

# An example in NSE's CSV format (fixed-date holidays of 2027), not the published 2027 list;
# its 2026 row disagrees with the built-in table on purpose.
EXAMPLE = """Sr. No,Date,Day,Description
1,26-Jan-2027,Tuesday,Republic Day
2,14-Apr-2027,Wednesday,Dr. Baba Saheb Ambedkar Jayanti
3,15-Aug-2027,Sunday,Independence Day
4,31-Dec-2026,Thursday,Not a holiday in the built-in table
"""
SUPPLIED = with_supplied(parse_holiday_file(EXAMPLE, "nse-2027.csv"))


@pytest.fixture(autouse=True)
def built_in_tables() -> Iterator[None]:
    install(BUILT_IN)
    yield
    install(BUILT_IN)


@exchanges
def test_a_supplied_year_is_covered_for_both_exchanges(exchange: str) -> None:
    assert covered_years(exchange, SUPPLIED) == (2025, 2026, 2027)
    assert source(exchange, 2027, SUPPLIED) == "nse-2027.csv"
    assert source(exchange, 2026, SUPPLIED).startswith("built in")
    assert session(exchange, date(2027, 1, 26), SUPPLIED) is None
    assert shift_expiry(exchange, date(2027, 1, 26), SUPPLIED) == date(2027, 1, 25)
    assert next_trading_day(exchange, date(2026, 12, 31), SUPPLIED) == date(2027, 1, 1)
    assert holidays(exchange, 2027, SUPPLIED)[date(2027, 8, 15)] == "Independence Day"
    with pytest.raises(YearNotCovered):  # passing tables changes nothing installed
        session(exchange, date(2027, 1, 26))


@exchanges
def test_a_supplied_year_overrides_no_built_in_one(exchange: str) -> None:
    assert holidays(exchange, 2026, SUPPLIED) == holidays(exchange, 2026, BUILT_IN)
    assert is_trading_day(exchange, date(2026, 12, 31), SUPPLIED)


def test_installed_tables_answer_by_default() -> None:
    install(SUPPLIED)
    assert installed() is SUPPLIED
    assert session("NSE", date(2027, 1, 26)) is None
    assert is_trading_day("NSE", date(2027, 1, 27))


@exchanges
def test_provisional_sessions_are_weekdays_beyond_the_tables(exchange: str) -> None:
    tuesday = provisional_session(exchange, date(2027, 1, 26))
    assert tuesday is not None and tuesday.kind == "provisional"
    assert (tuesday.open, tuesday.close) == (
        datetime(2027, 1, 26, 9, 15, tzinfo=IST),
        datetime(2027, 1, 26, 15, 30, tzinfo=IST),
    )
    assert "no " + exchange + " holiday table for 2027" in tuesday.note
    assert provisional_session(exchange, date(2027, 1, 30)) is None  # a Saturday
    assert provisional_session(exchange, date(2026, 12, 25)) is None  # covered: Christmas
    assert provisional_session(exchange, date(2027, 1, 26), SUPPLIED) is None


def test_the_next_session_runs_into_an_uncovered_year_only_provisionally() -> None:
    evening = datetime(2026, 12, 31, 16, 0, tzinfo=IST)
    with pytest.raises(YearNotCovered, match="for 2027"):
        upcoming_session("NSE", evening)
    following = upcoming_session("NSE", evening, provisional=True)
    assert (following.day, following.kind) == (date(2027, 1, 1), "provisional")
    assert upcoming_session("NSE", evening, tables=SUPPLIED).kind == "regular"


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 11, 20, 8, 0, tzinfo=IST), date(2026, 11, 20)),  # before the open
        (datetime(2026, 11, 20, 15, 29, 59, tzinfo=IST), date(2026, 11, 20)),  # in session
        (datetime(2026, 11, 20, 15, 30, tzinfo=IST), date(2026, 11, 23)),  # closed: Monday's
        (datetime(2026, 11, 23, 16, 0, tzinfo=IST), date(2026, 11, 25)),  # Tue 24 a holiday
        (datetime(2026, 11, 6, 16, 0, tzinfo=IST), date(2026, 11, 9)),  # past a Muhurat Sunday
        (datetime(2026, 1, 31, 16, 0, tzinfo=IST), date(2026, 2, 1)),  # the Budget Sunday
    ],
)
def test_the_upcoming_session(now: datetime, day: date) -> None:
    assert upcoming_session("NSE", now).day == day
    assert upcoming_session("NSE", now, provisional=True).day == day


def test_heads_up_before_and_after_the_tables_end() -> None:
    assert heads_up("NSE", date(2026, 6, 1)) == ""
    soon = heads_up("NSE", date(2026, 11, 30))
    assert "end on 2026-12-31, in 31 days" in soon and "OPCHAIN_HOLIDAYS_FILE" in soon
    assert heads_up("NSE", date(2026, 11, 30), SUPPLIED) == ""
    assert "no NSE holiday table for 2027" in heads_up("NSE", date(2027, 1, 4))
