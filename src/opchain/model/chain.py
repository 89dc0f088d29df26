from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, NamedTuple

from opchain.model.instrument import Instrument
from opchain.model.quote import Quote

Side = Literal["CE", "PE"]


class Leg(NamedTuple):
    """One option of the watched chain at one cycle: where it sits and what the broker said.

    ``offset`` counts listed strikes from the ATM strike (negative below). ``flag`` is None for a
    good quote, else the validation reason (``missing``, ``no_trade``, ``crossed_book``, ...).
    """

    index: str  # type: ignore[assignment]  # shadows tuple.index; the name is the contract
    bucket: str
    expiry: date
    offset: int
    side: Side
    strike: float | None  # None when the offset lies past the listed strikes
    instrument: Instrument | None
    quote: Quote | None
    flag: str | None = None

    @property
    def price(self) -> float | None:
        """The last price when it can be used, None when the flag makes it unusable."""
        if self.quote is None or self.flag in UNUSABLE_FLAGS:
            return None
        return self.quote.last_price


# Flags after which a leg's last price is not a price at all (others only warn).
UNUSABLE_FLAGS = frozenset({"missing", "not_listed", "nan_price", "negative_price", "no_trade"})


@dataclass(frozen=True, slots=True)
class ChainSlice:
    """The watched strikes of one index and expiry bucket at one cycle."""

    index: str
    bucket: str
    expiry: date
    spot: float
    atm_strike: float
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything collected in one cycle: index overview quotes and the chain slices.

    ``ts`` is the cycle's scheduled time and ``received_at`` when the broker's answer arrived,
    both IST-aware. ``indices`` is keyed by index key (``NIFTY``, ..., ``INDIAVIX``).
    """

    ts: datetime
    received_at: datetime
    indices: dict[str, Quote]
    chains: tuple[ChainSlice, ...]


class SplitRow(NamedTuple):
    """One row of a daily split CSV: the CE and PE legs of one offset (or pair) side by side.

    Field order is the file's column order. ``None`` is written as an empty cell.
    """

    ts: datetime
    index: str  # type: ignore[assignment]  # shadows tuple.index; the name is the contract
    expiry_code: str
    expiry: date
    strike_offset: str
    atm_strike: float
    spot: float
    call_strike: float | None
    put_strike: float | None
    call_last_price: float | None
    put_last_price: float | None
    call_iv: float | None
    put_iv: float | None
    call_volume: int | None
    put_volume: int | None
    call_oi: int | None
    put_oi: int | None
    total_premium: float | None
    days_to_expiry: int
    call_delta: float | None = None  # Black-76 delta on the slice's forward (beyond OP)
    put_delta: float | None = None
