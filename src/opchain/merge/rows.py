"""Merge: the CE and PE legs of each offset side by side, one split row each (SPEC §3.3).

Symmetric rows put CALL and PUT of the same offset together (``atm``, ``atm_p1``, ...). Pair rows
are the one-step-out strangles: ``atm_p1m1`` = CALL at ``atm_p1`` + PUT at ``atm_m1``,
``atm_p2m2`` likewise. ``total_premium`` = call + put last price, empty when either is unusable.

Each leg also gets its Black-76 implied volatility, on the slice's forward implied by put-call
parity (the median of ``K + e^{rT}(C - P)`` over the strikes where both sides are usable).
"""

import math
import statistics
from datetime import datetime

import numpy as np

from opchain.analytics.black76 import implied_vol
from opchain.analytics.expiry_time import years_to_expiry
from opchain.market.ist import trading_date
from opchain.market.strikes import offset_label, pair_label
from opchain.model import ChainSlice, Leg, Snapshot, SplitRow

IV_DECIMALS = 6


def split_rows(snapshot: Snapshot, rate: float = 0.0) -> list[SplitRow]:
    """All split rows of one snapshot, slice by slice, offsets ascending, then pairs."""
    ivs = leg_ivs(snapshot, rate)
    day = trading_date(snapshot.ts)
    rows = []
    for chain in snapshot.chains:
        legs = {(leg.offset, leg.side): leg for leg in chain.legs}
        dte = (chain.expiry - day).days

        def row(label: str, call: Leg | None, put: Leg | None) -> SplitRow:
            return _row(snapshot.ts, chain, label, call, put, ivs, dte)  # noqa: B023

        offsets = sorted({leg.offset for leg in chain.legs})
        for offset in offsets:
            rows.append(
                row(offset_label(offset), legs.get((offset, "CE")), legs.get((offset, "PE")))
            )
        for step in range(1, max(offsets, default=0) + 1):
            if (step, "CE") in legs and (-step, "PE") in legs:
                rows.append(row(pair_label(step), legs[(step, "CE")], legs[(-step, "PE")]))
    return rows


def _row(
    ts: datetime,
    chain: ChainSlice,
    label: str,
    call: Leg | None,
    put: Leg | None,
    ivs: dict[int, float],
    dte: int,
) -> SplitRow:
    call_price = call.price if call else None
    put_price = put.price if put else None
    total = None
    if call_price is not None and put_price is not None:
        total = round(call_price + put_price, 2)
    return SplitRow(
        ts=ts,
        index=chain.index,
        expiry_code=chain.bucket,
        expiry=chain.expiry,
        strike_offset=label,
        atm_strike=chain.atm_strike,
        spot=chain.spot,
        call_strike=call.strike if call else None,
        put_strike=put.strike if put else None,
        call_last_price=call_price,
        put_last_price=put_price,
        call_iv=ivs.get(id(call)) if call else None,
        put_iv=ivs.get(id(put)) if put else None,
        call_volume=call.quote.volume if call and call.quote else None,
        put_volume=put.quote.volume if put and put.quote else None,
        call_oi=call.quote.oi if call and call.quote else None,
        put_oi=put.quote.oi if put and put.quote else None,
        total_premium=total,
        days_to_expiry=dte,
    )


def parity_forward(chain: ChainSlice, t: float, rate: float) -> float | None:
    """The forward implied by put-call parity, or None without a strike priced on both sides."""
    calls = {leg.strike: leg.price for leg in chain.legs if leg.side == "CE"}
    estimates = [
        strike + math.exp(rate * t) * (c - p)
        for leg in chain.legs
        if leg.side == "PE"
        and (strike := leg.strike) is not None
        and (p := leg.price) is not None
        and (c := calls.get(strike)) is not None
    ]
    return statistics.median(estimates) if estimates else None


def leg_ivs(snapshot: Snapshot, rate: float) -> dict[int, float]:
    """Implied vol per usable leg (keyed by ``id(leg)``), in one vectorized solve per snapshot."""
    legs, prices, forwards, strikes, times, calls = [], [], [], [], [], []
    for chain in snapshot.chains:
        t = years_to_expiry(snapshot.ts, chain.expiry)
        forward = parity_forward(chain, t, rate)
        if forward is None or t <= 0:
            continue
        for leg in chain.legs:
            if leg.price is not None and leg.strike is not None:
                legs.append(leg)
                prices.append(leg.price)
                forwards.append(forward)
                strikes.append(leg.strike)
                times.append(t)
                calls.append(leg.side == "CE")
    if not legs:
        return {}
    t_arr = np.array(times)
    vols = implied_vol(
        np.array(prices),
        np.array(forwards),
        np.array(strikes),
        t_arr,
        np.array(calls),
        np.exp(-rate * t_arr),
    )
    return {
        id(leg): round(float(v), IV_DECIMALS)
        for leg, v in zip(legs, vols, strict=True)
        if math.isfinite(v)
    }
