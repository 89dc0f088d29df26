"""The index table: data, not code branches (SPEC §3.1)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexSpec:
    key: str  # NIFTY: the name in file paths and in the dump's ``name`` column
    display: str  # NIFTY 50: the overview name, also the index's tradingsymbol
    quote_key: str  # NSE:NIFTY 50
    exchange: str  # the exchange whose calendar governs the options: NSE or BSE
    options_exchange: str | None  # NFO / BFO; None for an index without options (INDIA VIX)
    options_segment: str | None  # NFO-OPT / BFO-OPT
    strike_step: int | None  # the usual listed-strike spacing near the money


INDICES: dict[str, IndexSpec] = {
    spec.key: spec
    for spec in (
        IndexSpec("NIFTY", "NIFTY 50", "NSE:NIFTY 50", "NSE", "NFO", "NFO-OPT", 50),
        IndexSpec("BANKNIFTY", "NIFTY BANK", "NSE:NIFTY BANK", "NSE", "NFO", "NFO-OPT", 100),
        IndexSpec("SENSEX", "SENSEX", "BSE:SENSEX", "BSE", "BFO", "BFO-OPT", 100),
    )
}

# Collected for the overview only: it has no options of its own.
INDIA_VIX = IndexSpec("INDIAVIX", "INDIA VIX", "NSE:INDIA VIX", "NSE", None, None, None)

OVERVIEW: dict[str, IndexSpec] = {**INDICES, INDIA_VIX.key: INDIA_VIX}
