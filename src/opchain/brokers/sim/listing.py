"""The simulated exchange's instruments dump for one trading date, listed by the real rules.

Each index lists its ``IndexSpec.weeklies`` weeklies (NIFTY and SENSEX four; the others none
since Nov 2024) and three monthlies; NSE expiries fall on Tuesday and BSE on Thursday (since
Sep 2025; before, by each index's row of ``expiry.EXPIRY_WEEKDAYS``), a monthly is the last
such weekday of its month, and an expiry on a holiday moves to the previous trading day. An
expiry in a year without a holiday table is listed on its nominal day, marked provisional (the
simulator invents no holidays), so three monthlies are listed in December too; a supplied
table for that year (OPCHAIN_HOLIDAYS_FILE) shifts them as the exchange would.

The simulated exchange lists the default indices always and the others when asked
(:func:`listed_indices`): the dump of a default run is the one it has always been.
"""

from collections.abc import Iterable
from datetime import date

from opchain.market import calendar
from opchain.market.expiry import RuleExpiry, rule_expiries
from opchain.market.indices import DEFAULT_INDICES, INDIA_VIX, INDICES, IndexSpec
from opchain.market.instruments import future_symbol, option_symbol
from opchain.model import Instrument

from .traits import TRAITS, lot_size

# Kite's instrument_token is exchange_token << 8 | segment id (pykiteconnect EXCHANGE_MAP).
SEGMENT_IDS = {"NSE": 1, "NFO": 2, "BSE": 4, "BFO": 5, "INDICES": 9}

MONTHLIES = 3
STRIKE_SPAN = 0.10  # strikes listed within ±10 % of the reference level

Expiry = RuleExpiry


def listed_indices(asked: Iterable[str] = ()) -> tuple[str, ...]:
    """The indices the simulated exchange lists, in the table's order: the default ones, and
    any other ``asked`` for (OPCHAIN_INDICES). Those of a default run are always there, so
    that asking for more changes nothing of theirs."""
    wanted = {*DEFAULT_INDICES, *asked}
    return tuple(k for k in INDICES if k in wanted)


def listed_expiries(
    spec: IndexSpec, day: date, tables: calendar.Tables | None = None
) -> list[Expiry]:
    """The expiries the exchange lists on ``day`` for one index, nearest first."""
    return rule_expiries(spec.exchange, day, spec.weeklies, MONTHLIES, tables, spec.expiry_rule)


def strikes_around(level: float, step: int) -> list[float]:
    centre = round(level / step) * step
    count = int(level * STRIKE_SPAN / step)
    return [float(centre + k * step) for k in range(-count, count + 1)]


def build_listing(
    day: date,
    levels: dict[str, float],
    tables: calendar.Tables | None = None,
    indices: Iterable[str] = DEFAULT_INDICES,
) -> list[Instrument]:
    """The whole dump: index rows; then per default index its futures and options, and the
    default indices' contracts of provisional expiries (years without a holiday table) after
    them, so that listing those leaves every other row where it was; then each other index
    asked for, its provisional contracts after its others. The default indices' contracts come
    first and in the same places whatever else is listed.

    ``levels`` (index key -> reference level, usually the previous close) centres the strikes;
    ``tables`` are the calendar's (default: the installed ones); ``indices`` those listed
    besides the default ones (:func:`listed_indices`).
    """
    specs = [INDICES[k] for k in listed_indices(indices)]
    rows = [_index_row(spec) for spec in (*specs, INDIA_VIX)]
    blocks = [[s for s in specs if s.default], *([s] for s in specs if not s.default)]
    for block in blocks:
        later: list[Instrument] = []
        for spec in block:
            settled, provisional = _contracts(spec, day, levels[spec.key], tables)
            rows += settled
            later += provisional
        rows += later
    return rows


def _contracts(
    spec: IndexSpec, day: date, level: float, tables: calendar.Tables | None
) -> tuple[list[Instrument], list[Instrument]]:
    """One index's futures and options: those of settled expiries, and of provisional ones."""
    assert spec.options_exchange and spec.options_segment and spec.strike_step
    expiries = listed_expiries(spec, day, tables)
    strikes = strikes_around(level, spec.strike_step)
    contracts: list[tuple[str, date, float, str, str]] = []
    provisional = {e.day for e in expiries if e.provisional}
    for e in expiries:
        if e.monthly:
            contracts.append((future_symbol(spec.key, e.day), e.day, 0.0, "FUT", "FUT"))
        for strike in strikes:
            for kind in ("CE", "PE"):
                symbol = option_symbol(spec.key, e.day, strike, kind, e.monthly)
                contracts.append((symbol, e.day, strike, kind, "OPT"))
    base = TRAITS[spec.key].token_base
    segment_id = SEGMENT_IDS[spec.options_exchange]
    settled: list[Instrument] = []
    later: list[Instrument] = []
    for n, (symbol, expiry, strike, kind, seg) in enumerate(contracts):
        exchange_token = base + n
        (later if expiry in provisional else settled).append(
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
    return settled, later


def _index_row(spec: IndexSpec) -> Instrument:
    token = TRAITS[spec.key].index_token
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
