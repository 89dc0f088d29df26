from datetime import date
from pathlib import Path

import pytest

from opchain.market.instruments import (
    DumpError,
    format_dump,
    is_monthly_symbol,
    option_symbol,
    parse_dump,
)

MOCKS = Path(__file__).parent / "captures" / "kite"  # Zerodha's official sample payloads


def test_parses_the_official_mock_dump() -> None:
    rows = parse_dump((MOCKS / "instruments_all.csv").read_text())
    assert len(rows) == 99
    option = next(r for r in rows if r.tradingsymbol == "BANKNIFTY18JAN23500CE")
    assert option.instrument_token == 12073986
    assert option.expiry == date(2018, 1, 25)
    assert option.strike == 23500.0
    assert option.lot_size == 40
    assert option.segment == "NFO-OPT"
    assert option.key == "NFO:BANKNIFTY18JAN23500CE"


def test_format_then_parse_is_identity() -> None:
    rows = parse_dump((MOCKS / "instruments_all.csv").read_text())
    assert parse_dump(format_dump(rows)) == rows


def test_bad_field_names_line_and_column() -> None:
    text = (MOCKS / "instruments_all.csv").read_text().splitlines()
    fields = text[3].split(",")
    fields[7] = "abc"  # tick_size
    text[3] = ",".join(fields)
    with pytest.raises(DumpError, match=r"line 4: bad tick_size 'abc'"):
        parse_dump("\n".join(text))


def test_bad_header() -> None:
    with pytest.raises(DumpError, match="line 1: expected header"):
        parse_dump("token,symbol\n1,X\n")


def test_symbols_follow_kite_conventions() -> None:
    assert (
        option_symbol("NIFTY", date(2025, 11, 4), 24000, "CE", monthly=False) == "NIFTY25N0424000CE"
    )
    assert (
        option_symbol("NIFTY", date(2025, 11, 25), 24000, "CE", monthly=True) == "NIFTY25NOV24000CE"
    )
    assert (
        option_symbol("NIFTY", date(2020, 12, 17), 13600, "CE", monthly=False)
        == "NIFTY20D1713600CE"
    )
    assert (
        option_symbol("SENSEX", date(2026, 9, 15), 80000, "CE", monthly=False)
        == "SENSEX2691580000CE"
    )
    assert (
        option_symbol("BANKNIFTY", date(2020, 2, 6), 30900, "CE", monthly=False)
        == "BANKNIFTY2020630900CE"
    )


def test_monthly_symbol_detection() -> None:
    assert is_monthly_symbol("NIFTY25NOV24000CE", "NIFTY") is True
    assert is_monthly_symbol("NIFTY25N0424000CE", "NIFTY") is False
    assert is_monthly_symbol("NIFTY15DECFUT", "NIFTY") is True
    assert is_monthly_symbol("BANKNIFTY25NOV24000CE", "NIFTY") is None
