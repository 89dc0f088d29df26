"""The index table: data, not code branches (SPEC §3.1, docs/calendar.md "Indices").

Everything one index differs from another in is a field here (or a row of a table keyed by
it: the expiry weekdays in :mod:`opchain.market.expiry`, the simulator's model in
``brokers/sim/traits``). Adding an index is adding a row.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexSpec:
    key: str  # NIFTY: the name in file paths and in the dump's ``name`` column
    display: str  # NIFTY 50: the overview name, also the index's tradingsymbol
    quote_key: str  # NSE:NIFTY 50
    exchange: str  # the exchange whose calendar governs the options: NSE or BSE
    options_exchange: str | None  # NFO / BFO; None for an index without options (INDIA VIX)
    options_segment: str | None  # NFO-OPT / BFO-OPT
    strike_step: int | None  # the usual listed-strike spacing near the money
    # The row of ``expiry.EXPIRY_WEEKDAYS`` its options expire by (the exchange's, unless the
    # index kept a weekday of its own before the exchanges' 2025 unifications).
    expiry_rule: str = ""
    weeklies: int = 0  # weekly expiries the exchange lists; 0: monthly only (since Nov 2024)
    default: bool = False  # in OPCHAIN_INDICES when that is not set


INDICES: dict[str, IndexSpec] = {
    spec.key: spec
    for spec in (
        IndexSpec(
            key="NIFTY", display="NIFTY 50", quote_key="NSE:NIFTY 50", exchange="NSE",
            options_exchange="NFO", options_segment="NFO-OPT", strike_step=50,
            expiry_rule="NSE", weeklies=4, default=True,
        ),
        IndexSpec(
            key="BANKNIFTY", display="NIFTY BANK", quote_key="NSE:NIFTY BANK", exchange="NSE",
            options_exchange="NFO", options_segment="NFO-OPT", strike_step=100,
            expiry_rule="NSE", weeklies=0, default=True,
        ),
        IndexSpec(
            key="SENSEX", display="SENSEX", quote_key="BSE:SENSEX", exchange="BSE",
            options_exchange="BFO", options_segment="BFO-OPT", strike_step=100,
            expiry_rule="BSE", weeklies=4, default=True,
        ),
        IndexSpec(
            key="FINNIFTY", display="NIFTY FIN SERVICE", quote_key="NSE:NIFTY FIN SERVICE",
            exchange="NSE", options_exchange="NFO", options_segment="NFO-OPT", strike_step=50,
            expiry_rule="FINNIFTY", weeklies=0,
        ),
        IndexSpec(
            key="MIDCPNIFTY", display="NIFTY MID SELECT", quote_key="NSE:NIFTY MID SELECT",
            exchange="NSE", options_exchange="NFO", options_segment="NFO-OPT", strike_step=25,
            expiry_rule="MIDCPNIFTY", weeklies=0,
        ),
        IndexSpec(
            key="BANKEX", display="BANKEX", quote_key="BSE:BANKEX", exchange="BSE",
            options_exchange="BFO", options_segment="BFO-OPT", strike_step=100,
            expiry_rule="BANKEX", weeklies=0,
        ),
    )
}  # fmt: skip

# OPCHAIN_INDICES when it is not set: the three opchain began with, in this order.
DEFAULT_INDICES: tuple[str, ...] = tuple(k for k, spec in INDICES.items() if spec.default)

# Collected for the overview only: it has no options of its own.
INDIA_VIX = IndexSpec(
    key="INDIAVIX", display="INDIA VIX", quote_key="NSE:INDIA VIX", exchange="NSE",
    options_exchange=None, options_segment=None, strike_step=None,
)  # fmt: skip

OVERVIEW: dict[str, IndexSpec] = {**INDICES, INDIA_VIX.key: INDIA_VIX}
