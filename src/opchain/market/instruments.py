"""Kite's instruments dump: the CSV text <-> :class:`Instrument` rows, with no I/O.

Header (exact): instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,
tick_size,lot_size,instrument_type,segment,exchange
"""

import csv
import io
from collections.abc import Iterable
from datetime import date

from opchain.model import Instrument

COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


class DumpError(ValueError):
    """An instruments dump that cannot be read; the message names the line and the field."""


def parse_dump(text: str, source: str = "instruments dump") -> list[Instrument]:
    """Parse a dump, failing with the line number and field of the first bad value."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise DumpError(f"{source}: line 1: expected header {','.join(COLUMNS)}, got {header}")
    rows = []
    for line_no, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(COLUMNS):
            raise DumpError(f"{source}: line {line_no}: {len(fields)} fields, expected 12")
        rows.append(_row(fields, source, line_no))
    return rows


def _row(fields: list[str], source: str, line_no: int) -> Instrument:
    column = "instrument_token"
    try:
        token = int(fields[0])
        column = "last_price"
        last_price = float(fields[4] or 0)
        column = "expiry"
        expiry = date.fromisoformat(fields[5]) if fields[5] else None
        column = "strike"
        strike = float(fields[6] or 0)
        column = "tick_size"
        tick = float(fields[7] or 0)
        column = "lot_size"
        lot = int(float(fields[8] or 0))
    except ValueError:
        value = fields[COLUMNS.index(column)]
        raise DumpError(f"{source}: line {line_no}: bad {column} {value!r}") from None
    return Instrument(
        instrument_token=token,
        exchange_token=fields[1],
        tradingsymbol=fields[2],
        name=fields[3],
        last_price=last_price,
        expiry=expiry,
        strike=strike,
        tick_size=tick,
        lot_size=lot,
        instrument_type=fields[9],
        segment=fields[10],
        exchange=fields[11],
    )


def format_dump(rows: Iterable[Instrument]) -> str:
    """Render rows as Kite renders its dump (``name`` quoted, as in modern dumps)."""
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    for r in rows:
        out.write(
            f'{r.instrument_token},{r.exchange_token},{r.tradingsymbol},"{r.name}",'
            f"{_num(r.last_price)},{r.expiry.isoformat() if r.expiry else ''},{_num(r.strike)},"
            f"{_num(r.tick_size)},{r.lot_size},{r.instrument_type},{r.segment},{r.exchange}\n"
        )
    return out.getvalue()


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Weekly symbols carry the month as one character: 1-9 for Jan-Sep, O, N, D for Oct-Dec.
_WEEKLY_MONTH = "123456789OND"


def option_symbol(name: str, expiry: date, strike: float, kind: str, monthly: bool) -> str:
    """Kite's tradingsymbol: monthly ``NIFTY25NOV24000CE``, weekly ``NIFTY25N0424000CE``."""
    yy = f"{expiry.year % 100:02d}"
    strike_text = _num(strike)
    if monthly:
        return f"{name}{yy}{_MONTHS[expiry.month - 1]}{strike_text}{kind}"
    return f"{name}{yy}{_WEEKLY_MONTH[expiry.month - 1]}{expiry.day:02d}{strike_text}{kind}"


def future_symbol(name: str, expiry: date) -> str:
    return f"{name}{expiry.year % 100:02d}{_MONTHS[expiry.month - 1]}FUT"


def is_monthly_symbol(tradingsymbol: str, name: str) -> bool | None:
    """True for the monthly symbol format, False for the weekly one, None if neither matches."""
    if not tradingsymbol.startswith(name):
        return None
    rest = tradingsymbol[len(name) :]
    if len(rest) < 5 or not rest[:2].isdigit():
        return None
    if rest[2:5] in _MONTHS:
        return True
    if rest[2] in _WEEKLY_MONTH and rest[3:5].isdigit():
        return False
    return None
