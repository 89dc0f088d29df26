from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.brokers.sim.listing import build_listing, listed_expiries
from opchain.market import calendar
from opchain.market.expiry import check_expiries, expiry_buckets, index_options
from opchain.market.indices import INDICES
from opchain.market.instruments import option_symbol
from opchain.market.ist import IST
from opchain.model import Instrument

LEVELS = {"NIFTY": 26_000.0, "BANKNIFTY": 59_000.0, "SENSEX": 85_000.0, "INDIAVIX": 12.0}


def buckets(index: str, day: date, hour: int = 10) -> dict[str, date]:
    dump = build_listing(day, LEVELS)
    spec = INDICES[index]
    assert spec.options_segment
    now = datetime(day.year, day.month, day.day, hour, tzinfo=IST)
    return expiry_buckets(index_options(dump, index, spec.options_segment), now)


def test_nifty_on_2026_11_20_holiday_shifted_monthly() -> None:
    # Tue 24 Nov 2026 is Guru Nanak Jayanti: the weekly that is also the monthly moves to Mon 23.
    assert buckets("NIFTY", date(2026, 11, 20)) == {
        "this_week": date(2026, 11, 23),
        "next_week": date(2026, 12, 1),
        "this_month": date(2026, 11, 23),
        "next_month": date(2026, 12, 29),
    }


def test_banknifty_has_no_weeklies() -> None:
    assert buckets("BANKNIFTY", date(2026, 11, 20)) == {
        "this_month": date(2026, 11, 23),
        "next_month": date(2026, 12, 29),
    }


def test_sensex_expires_on_thursdays() -> None:
    assert buckets("SENSEX", date(2026, 11, 20)) == {
        "this_week": date(2026, 11, 26),
        "next_week": date(2026, 12, 3),
        "this_month": date(2026, 11, 26),
        "next_month": date(2026, 12, 31),
    }


def test_expiry_rolls_at_the_close_of_expiry_day() -> None:
    before = buckets("NIFTY", date(2026, 11, 17), hour=15)
    assert before["this_week"] == date(2026, 11, 17)
    after = buckets("NIFTY", date(2026, 11, 17), hour=16)
    assert after["this_week"] == date(2026, 11, 23)


def test_name_column_not_symbol_substring() -> None:
    # A BANKNIFTY contract contains "NIFTY" in its symbol; it must never count for NIFTY.
    dump = build_listing(date(2026, 11, 20), LEVELS)
    nifty = index_options(dump, "NIFTY", "NFO-OPT")
    assert nifty and all(
        o.name == "NIFTY" and not o.tradingsymbol.startswith("BANK") for o in nifty
    )


def test_listing_stops_where_the_calendar_ends() -> None:
    expiries = listed_expiries(INDICES["NIFTY"], date(2026, 12, 10))
    assert expiries and all(e.day.year == 2026 for e in expiries)


def test_monthly_falls_back_to_last_expiry_of_month_when_symbol_is_silent() -> None:
    def row(expiry: date, n: int) -> Instrument:
        return Instrument(
            n, str(n), f"X{n}", "NIFTY", 0, expiry, 100, 0.05, 65, "CE", "NFO-OPT", "NFO"
        )

    rows = [row(date(2026, 12, 1), 1), row(date(2026, 12, 29), 2), row(date(2027, 1, 5), 3)]
    now = datetime(2026, 11, 30, 10, tzinfo=IST)
    assert expiry_buckets(rows, now) == {
        "this_week": date(2026, 12, 1),
        "next_week": date(2026, 12, 29),
        "this_month": date(2026, 12, 29),
        "next_month": date(2027, 1, 5),
    }


def test_rule_check_flags_an_odd_expiry_but_accepts_holiday_shifts() -> None:
    assert check_expiries("NSE", [date(2026, 11, 23), date(2026, 12, 1)]) == []
    warnings = check_expiries("NSE", [date(2026, 12, 3)])
    assert len(warnings) == 1 and "expected 2026-12-08" in warnings[0]


def test_symbols_in_listing_use_monthly_format_for_monthlies() -> None:
    dump = build_listing(date(2026, 11, 20), LEVELS)
    symbols = {o.tradingsymbol for o in dump}
    assert option_symbol("NIFTY", date(2026, 11, 23), 26000, "CE", monthly=True) in symbols
    assert "NIFTY26D0126000CE" in symbols


TRADING_DAYS = [
    d
    for d in (
        date.fromordinal(n)
        for n in range(date(2025, 1, 2).toordinal(), date(2026, 11, 30).toordinal())
    )
    if calendar.is_trading_day("NSE", d)
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TRADING_DAYS), st.sampled_from(["NIFTY", "BANKNIFTY", "SENSEX"]))
def test_bucket_invariants(day: date, index: str) -> None:
    got = buckets(index, day)
    exchange = INDICES[index].exchange
    for expiry in got.values():
        assert expiry >= day
        assert calendar.is_trading_day(exchange, expiry)
    if "this_week" in got and "next_week" in got:
        assert got["this_week"] < got["next_week"]
    if "next_month" in got:
        assert got["this_month"] < got["next_month"]
        assert (got["this_month"].year, got["this_month"].month) != (
            got["next_month"].year,
            got["next_month"].month,
        )
    assert ("this_week" in got) == (index != "BANKNIFTY")
    if "this_week" in got and "this_month" in got:
        assert got["this_week"] <= got["this_month"]


@pytest.mark.parametrize("index", ["NIFTY", "SENSEX", "BANKNIFTY"])
def test_rule_check_agrees_with_the_simulated_listing(index: str) -> None:
    spec = INDICES[index]
    expiries = [e.day for e in listed_expiries(spec, date(2026, 3, 2))]
    assert check_expiries(spec.exchange, expiries) == []
