"""The simulated exchange's instruments dump for one trading date, listed by the real rules.

NIFTY and SENSEX list four weeklies and three monthlies, BANKNIFTY three monthlies (no weeklies
since Nov 2024); NSE expiries fall on Tuesday and BSE on Thursday (since Sep 2025), a monthly
is the last such weekday of its month, and an expiry on a holiday moves to the previous trading
day. Contracts are listed only as far as the published calendars reach: the simulator does not
invent holidays for a year that has no table.
"""

from dataclasses import dataclass
from datetime import date

from opchain.market import calendar
from opchain.market.expiry import monthly_nominal, nominal_weekly_expiries
from opchain.market.indices import INDIA_VIX, INDICES, IndexSpec
from opchain.market.instruments import future_symbol, option_symbol
from opchain.model import Instrument

# Kite's instrument_token is exchange_token << 8 | segment id (pykiteconnect EXCHANGE_MAP).
SEGMENT_IDS = {"NSE": 1, "NFO": 2, "BSE": 4, "BFO": 5, "INDICES": 9}

# Real tokens of the index rows, from public dumps (research/kite.md §3.1).
INDEX_TOKENS = {"NIFTY": 256265, "BANKNIFTY": 260105, "SENSEX": 265, "INDIAVIX": 264969}

WEEKLIES = {"NIFTY": 4, "BANKNIFTY": 0, "SENSEX": 4}
MONTHLIES = 3
STRIKE_SPAN = 0.10  # strikes listed within ±10 % of the reference level


@dataclass(frozen=True, slots=True)
class Expiry:
    day: date
    monthly: bool


def lot_size(index: str, expiry: date) -> int:
    """Lot sizes as revised for contracts expiring from 2026 (research/market.md §3.1)."""
    if index == "NIFTY":
        return 75 if expiry <= date(2025, 12, 30) else 65
    if index == "BANKNIFTY":
        return 35 if date(2025, 7, 31) <= expiry <= date(2025, 12, 30) else 30
    return 20


def listed_expiries(spec: IndexSpec, day: date) -> list[Expiry]:
    """The expiries the exchange lists on ``day`` for one index, nearest first."""
    exchange = spec.exchange
    monthlies: list[date] = []
    year, month = day.year, day.month
    try:
        while len(monthlies) < MONTHLIES:
            expiry = calendar.shift_expiry(exchange, monthly_nominal(exchange, year, month))
            if expiry >= day:
                monthlies.append(expiry)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    except calendar.CalendarUnavailable:
        pass  # the calendar ends here: list no further
    weeklies: list[date] = []
    try:
        for nominal in nominal_weekly_expiries(exchange, day, 10):
            expiry = calendar.shift_expiry(exchange, nominal)
            if expiry >= day and expiry not in monthlies and len(weeklies) < WEEKLIES[spec.key]:
                weeklies.append(expiry)
    except calendar.CalendarUnavailable:
        pass
    listed = [Expiry(d, False) for d in weeklies] + [Expiry(d, True) for d in monthlies]
    return sorted(listed, key=lambda e: e.day)


def strikes_around(level: float, step: int) -> list[float]:
    centre = round(level / step) * step
    count = int(level * STRIKE_SPAN / step)
    return [float(centre + k * step) for k in range(-count, count + 1)]


def build_listing(day: date, levels: dict[str, float]) -> list[Instrument]:
    """The whole dump: index rows, then per index its futures and options.

    ``levels`` (index key -> reference level, usually the previous close) centres the strikes.
    """
    rows = [_index_row(spec) for spec in (*INDICES.values(), INDIA_VIX)]
    for spec in INDICES.values():
        assert spec.options_exchange and spec.options_segment and spec.strike_step
        expiries = listed_expiries(spec, day)
        strikes = strikes_around(levels[spec.key], spec.strike_step)
        contracts: list[tuple[str, date, float, str, str]] = []
        for e in expiries:
            if e.monthly:
                contracts.append((future_symbol(spec.key, e.day), e.day, 0.0, "FUT", "FUT"))
            for strike in strikes:
                for kind in ("CE", "PE"):
                    symbol = option_symbol(spec.key, e.day, strike, kind, e.monthly)
                    contracts.append((symbol, e.day, strike, kind, "OPT"))
        base = _token_base(spec.key)
        segment_id = SEGMENT_IDS[spec.options_exchange]
        for n, (symbol, expiry, strike, kind, seg) in enumerate(contracts):
            exchange_token = base + n
            rows.append(
                Instrument(
                    instrument_token=exchange_token * 256 + segment_id,
                    exchange_token=str(exchange_token),
                    tradingsymbol=symbol,
                    name=spec.key,
                    last_price=0.0,
                    expiry=expiry,
                    strike=strike,
                    tick_size=0.05,
                    lot_size=lot_size(spec.key, expiry),
                    instrument_type=kind,
                    segment=f"{spec.options_exchange}-{seg}",
                    exchange=spec.options_exchange,
                )
            )
    return rows


def _token_base(index: str) -> int:
    return {"NIFTY": 40_000, "BANKNIFTY": 60_000, "SENSEX": 80_000}[index]


def _index_row(spec: IndexSpec) -> Instrument:
    token = INDEX_TOKENS[spec.key]
    exchange = spec.quote_key.split(":")[0]
    return Instrument(
        instrument_token=token,
        exchange_token=str(token >> 8),
        tradingsymbol=spec.display,
        name=spec.display,
        last_price=0.0,
        expiry=None,
        strike=0.0,
        tick_size=0.0,
        lot_size=0,
        instrument_type="EQ",
        segment="INDICES",
        exchange=exchange,
    )
