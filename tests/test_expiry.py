from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.brokers.sim.listing import build_listing, listed_expiries
from opchain.market import calendar
from opchain.market.expiry import check_expiries, expiry_buckets, index_options, monthly_nominal
from opchain.market.holiday_file import parse_holiday_file
from opchain.market.indices import INDICES
from opchain.market.instruments import option_symbol
from opchain.market.ist import IST
from opchain.model import Instrument

LEVELS = {"NIFTY": 26_000.0, "BANKNIFTY": 59_000.0, "SENSEX": 85_000.0, "INDIAVIX": 12.0}
LEVELS |= {"FINNIFTY": 27_000.0, "MIDCPNIFTY": 13_000.0, "BANKEX": 62_000.0}


def buckets(index: str, day: date, hour: int = 10) -> dict[str, date]:
    dump = build_listing(day, LEVELS, indices=[index])
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


@pytest.mark.parametrize("index", ["FINNIFTY", "MIDCPNIFTY"])
def test_nse_monthly_only_indices_expire_on_the_last_tuesday_holiday_shifted(index: str) -> None:
    # Last Tuesday 24 Nov 2026 is Guru Nanak Jayanti: the monthly moves to Mon 23, as NIFTY's.
    assert buckets(index, date(2026, 11, 20)) == {
        "this_month": date(2026, 11, 23),
        "next_month": date(2026, 12, 29),
    }


def test_bankex_is_monthly_only_on_the_last_thursday() -> None:
    assert buckets("BANKEX", date(2026, 11, 20)) == {
        "this_month": date(2026, 11, 26),
        "next_month": date(2026, 12, 31),
    }


@pytest.mark.parametrize(
    ("index", "month", "last"),
    [
        # 2024: each kept its own weekday (FINNIFTY Tue, MIDCPNIFTY Mon, BANKEX Mon)
        ("FINNIFTY", (2024, 10), date(2024, 10, 29)),
        ("MIDCPNIFTY", (2024, 10), date(2024, 10, 28)),
        ("BANKEX", (2024, 10), date(2024, 10, 28)),
        # from 1 Jan 2025: NSE's last Thursday, BSE's last Tuesday
        ("FINNIFTY", (2025, 3), date(2025, 3, 27)),
        ("MIDCPNIFTY", (2025, 3), date(2025, 3, 27)),
        ("BANKEX", (2025, 3), date(2025, 3, 25)),
        # from 1 Sep 2025: NSE on Tuesday, BSE on Thursday
        ("FINNIFTY", (2025, 9), date(2025, 9, 30)),
        ("MIDCPNIFTY", (2025, 9), date(2025, 9, 30)),
        ("BANKEX", (2025, 9), date(2025, 9, 25)),
        ("BANKNIFTY", (2025, 3), date(2025, 3, 27)),
        ("SENSEX", (2025, 3), date(2025, 3, 25)),
    ],
)
def test_monthly_weekday_by_regime(index: str, month: tuple[int, int], last: date) -> None:
    assert monthly_nominal(INDICES[index].expiry_rule, *month) == last


def test_the_default_listing_holds_the_default_indices_only() -> None:
    names = {i.name for i in build_listing(date(2026, 11, 20), LEVELS) if i.segment != "INDICES"}
    assert names == {"NIFTY", "BANKNIFTY", "SENSEX"}
    asked = build_listing(date(2026, 11, 20), LEVELS, indices=["BANKEX"])
    index_rows = [i.tradingsymbol for i in asked if i.segment == "INDICES"]
    assert index_rows == ["NIFTY 50", "NIFTY BANK", "SENSEX", "BANKEX", "INDIA VIX"]
    bankex = [i for i in asked if i.name == "BANKEX" and i.segment != "INDICES"]
    assert {(i.exchange, i.segment) for i in bankex} == {("BFO", "BFO-OPT"), ("BFO", "BFO-FUT")}
    assert {i.lot_size for i in bankex} == {30}
    assert {i.strike % 100 for i in bankex if i.instrument_type == "CE"} == {0}


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


def test_listing_runs_past_the_calendar_on_nominal_days_marked_provisional() -> None:
    expiries = listed_expiries(INDICES["NIFTY"], date(2026, 12, 10))
    monthly = [(e.day, e.provisional) for e in expiries if e.monthly]
    assert monthly == [
        (date(2026, 12, 29), False),
        (date(2027, 1, 26), True),  # nominal: Republic Day would move it, once 2027 is known
        (date(2027, 2, 23), True),
    ]
    weekly = [(e.day, e.provisional) for e in expiries if not e.monthly]
    assert weekly == [
        (date(2026, 12, 15), False),
        (date(2026, 12, 22), False),
        (date(2027, 1, 5), True),
        (date(2027, 1, 12), True),
    ]


def test_a_supplied_table_shifts_the_listing_beyond_the_built_in_years() -> None:
    supplied = calendar.with_supplied(
        parse_holiday_file("Date,Description\n26-Jan-2027,Republic Day\n", "nse.csv")
    )
    expiries = listed_expiries(INDICES["NIFTY"], date(2026, 12, 10), supplied)
    monthly = [(e.day, e.provisional) for e in expiries if e.monthly]
    assert monthly[1] == (date(2027, 1, 25), False)
    assert not any(e.provisional for e in expiries)


@pytest.mark.parametrize(
    ("index", "next_month"),
    [
        ("NIFTY", date(2027, 1, 26)),
        ("BANKNIFTY", date(2027, 1, 26)),
        ("SENSEX", date(2027, 1, 28)),
        ("FINNIFTY", date(2027, 1, 26)),
        ("MIDCPNIFTY", date(2027, 1, 26)),
        ("BANKEX", date(2027, 1, 28)),
    ],
)
def test_every_index_has_a_next_month_at_the_end_of_november(index: str, next_month: date) -> None:
    got = buckets(index, date(2026, 11, 30))
    assert got["next_month"] == next_month
    assert got["this_month"] in (date(2026, 12, 29), date(2026, 12, 31))


def test_rule_check_labels_a_provisional_expiry() -> None:
    [warning] = check_expiries("NSE", [date(2027, 1, 26)])
    assert warning.startswith("2027-01-26: provisional:") and "NSE holidays of 2027" in warning


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
        for n in range(date(2025, 1, 2).toordinal(), date(2027, 1, 1).toordinal())
    )
    if calendar.is_trading_day("NSE", d)
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TRADING_DAYS), st.sampled_from(list(INDICES)))
def test_bucket_invariants(day: date, index: str) -> None:
    got = buckets(index, day)
    exchange = INDICES[index].exchange
    for expiry in got.values():
        assert expiry >= day
        if calendar.is_covered(exchange, expiry.year):
            assert calendar.is_trading_day(exchange, expiry)
        else:  # provisional: the rule's weekday
            assert expiry.weekday() == (1 if exchange == "NSE" else 3)
    assert ("next_month" in got) and ("this_month" in got)
    if "this_week" in got and "next_week" in got:
        assert got["this_week"] < got["next_week"]
    if "next_month" in got:
        assert got["this_month"] < got["next_month"]
        assert (got["this_month"].year, got["this_month"].month) != (
            got["next_month"].year,
            got["next_month"].month,
        )
    assert ("this_week" in got) == (INDICES[index].weeklies > 0)
    if "this_week" in got and "this_month" in got:
        assert got["this_week"] <= got["this_month"]


@pytest.mark.parametrize("index", list(INDICES))
def test_rule_check_agrees_with_the_simulated_listing(index: str) -> None:
    spec = INDICES[index]
    expiries = [e.day for e in listed_expiries(spec, date(2026, 3, 2))]
    assert check_expiries(spec.exchange, expiries, rule=spec.expiry_rule) == []
