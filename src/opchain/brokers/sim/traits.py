"""The simulator's model of each index, as data: a row per index of the index table (and
INDIA VIX), so that no code in the simulator names an index (a test keeps the keys equal).

Levels are late-2026 orders of magnitude; vols are multiples of INDIA VIX's level (NIFTY 1.0;
the banking and financial indices a little more, as BANKNIFTY); the loading is each index's
share of the common market factor. Lot sizes are the exchanges' (research/market.md §3.1), by
the first expiry each applies to. The index tokens are Kite's (research/market.md §4; BANKEX's
is the one public code uses, not confirmed against a dump). ``token_base`` numbers the
simulated contracts of the index (exchange tokens from there up).
"""

from dataclasses import dataclass
from datetime import date

from opchain.market.indices import INDIA_VIX, INDICES


@dataclass(frozen=True, slots=True, kw_only=True)
class SimTraits:
    level: float  # the base level the previous close wanders around
    vol: float = 0.0  # the options' ATM vol and the index's noise, as a multiple of VIX
    loading: float = 0.0  # on the common market factor, 0..1
    index_token: int  # Kite's instrument_token of the index row
    token_base: int = 0  # the first exchange token of its contracts
    lot_sizes: tuple[tuple[date, int], ...] = ()  # (first expiry it applies to, lot size)


TRAITS: dict[str, SimTraits] = {
    "NIFTY": SimTraits(
        level=26_000.0, vol=1.0, loading=1.0, index_token=256265, token_base=40_000,
        lot_sizes=((date.min, 75), (date(2025, 12, 31), 65)),
    ),
    "BANKNIFTY": SimTraits(
        level=59_000.0, vol=1.2, loading=0.85, index_token=260105, token_base=60_000,
        lot_sizes=((date.min, 30), (date(2025, 7, 31), 35), (date(2025, 12, 31), 30)),
    ),
    "SENSEX": SimTraits(
        level=85_000.0, vol=0.97, loading=0.97, index_token=265, token_base=80_000,
        lot_sizes=((date.min, 20),),
    ),
    "FINNIFTY": SimTraits(
        level=27_000.0, vol=1.15, loading=0.9, index_token=257801, token_base=100_000,
        lot_sizes=((date.min, 65), (date(2025, 12, 31), 60)),
    ),
    "MIDCPNIFTY": SimTraits(
        level=13_000.0, vol=1.25, loading=0.8, index_token=288009, token_base=120_000,
        lot_sizes=((date.min, 120), (date(2025, 7, 31), 140), (date(2025, 12, 31), 120)),
    ),
    "BANKEX": SimTraits(
        level=62_000.0, vol=1.2, loading=0.85, index_token=274441, token_base=140_000,
        lot_sizes=((date.min, 30),),
    ),
    INDIA_VIX.key: SimTraits(level=12.0, index_token=264969),
}  # fmt: skip

assert set(TRAITS) == {*INDICES, INDIA_VIX.key}, "every index needs the simulator's traits"


def lot_size(index: str, expiry: date) -> int:
    """The index's lot size for contracts expiring on ``expiry``."""
    size = 0
    for since, lots in TRAITS[index].lot_sizes:
        if expiry >= since:
            size = lots
    return size
