"""Merge: the CE and PE legs of each offset side by side, one split row each (SPEC §3.3).

Symmetric rows put CALL and PUT of the same offset together (``atm``, ``atm_p1``, ...). Pair rows
are the one-step-out strangles: ``atm_p1m1`` = CALL at ``atm_p1`` + PUT at ``atm_m1``,
``atm_p2m2`` likewise. ``total_premium`` = call + put last price, empty when either is unusable.

Each leg also gets its Black-76 implied volatility, on the slice's forward implied by put-call
parity (the median of ``K + e^{rT}(C - P)`` over the strikes where both sides are usable).
"""

import math
import statistics
from collections.abc import Sequence

import numpy as np

from opchain.analytics.black76 import implied_vol
from opchain.analytics.expiry_time import years_to_expiry
from opchain.market.ist import trading_date
from opchain.market.strikes import offset_label, pair_label
from opchain.model import ChainSlice, Snapshot, SplitRow

IV_DECIMALS = 6

# One side of a row: strike, usable price, implied vol, volume, open interest.
_Half = tuple[float | None, float | None, float | None, int | None, int | None]
_ABSENT: _Half = (None, None, None, None, None)


def split_rows(snapshot: Snapshot, rate: float = 0.0) -> list[SplitRow]:
    """All split rows of one snapshot, slice by slice, offsets ascending, then pairs."""
    ts = snapshot.ts
    day = trading_date(ts)
    prices = [[leg.price for leg in chain.legs] for chain in snapshot.chains]
    ivs = implied_vols(snapshot, prices, rate)
    rows = []
    for chain, chain_prices, chain_ivs in zip(snapshot.chains, prices, ivs, strict=True):
        halves: dict[tuple[int, str], _Half] = {}
        for leg, price, iv in zip(chain.legs, chain_prices, chain_ivs, strict=True):
            q = leg.quote
            halves[leg.offset, leg.side] = (leg.strike, price, iv, q and q.volume, q and q.oi)
        head = (ts, chain.index, chain.bucket, chain.expiry)
        where = (chain.atm_strike, chain.spot)
        dte = (chain.expiry - day).days
        offsets = sorted({offset for offset, _ in halves})
        pairs = [(offset_label(o), (o, "CE"), (o, "PE")) for o in offsets]
        pairs += [
            (pair_label(s), (s, "CE"), (-s, "PE"))
            for s in range(1, max(offsets, default=0) + 1)
            if (s, "CE") in halves and (-s, "PE") in halves
        ]
        for label, call_at, put_at in pairs:
            c, p = halves.get(call_at, _ABSENT), halves.get(put_at, _ABSENT)
            total = None if c[1] is None or p[1] is None else round(c[1] + p[1], 2)
            rows.append(
                SplitRow(
                    *head, label, *where,
                    c[0], p[0], c[1], p[1], c[2], p[2], c[3], p[3], c[4], p[4],
                    total, dte,
                )
            )  # fmt: skip
    return rows


def parity_forward(
    chain: ChainSlice, t: float, rate: float, prices: Sequence[float | None] | None = None
) -> float | None:
    """The forward implied by put-call parity, or None without a strike priced on both sides.

    ``prices`` are the legs' usable prices when the caller has them already.
    """
    if prices is None:
        prices = [leg.price for leg in chain.legs]
    calls = {
        leg.strike: price
        for leg, price in zip(chain.legs, prices, strict=True)
        if leg.side == "CE" and price is not None
    }
    growth = math.exp(rate * t)
    estimates = [
        strike + growth * (c - p)
        for leg, p in zip(chain.legs, prices, strict=True)
        if leg.side == "PE"
        and p is not None
        and (strike := leg.strike) is not None
        and (c := calls.get(strike)) is not None
    ]
    return statistics.median(estimates) if estimates else None


def implied_vols(
    snapshot: Snapshot, prices: Sequence[Sequence[float | None]], rate: float
) -> list[list[float | None]]:
    """Implied vol of every leg, chain by chain (None where no vol fits), in one vectorized
    solve for the whole snapshot. ``prices`` are the legs' usable prices, chain by chain."""
    out: list[list[float | None]] = [[None] * len(chain.legs) for chain in snapshot.chains]
    at, price, forward, strike, years, is_call = [], [], [], [], [], []
    for c, (chain, chain_prices) in enumerate(zip(snapshot.chains, prices, strict=True)):
        t = years_to_expiry(snapshot.ts, chain.expiry)
        f = parity_forward(chain, t, rate, chain_prices) if t > 0 else None
        if f is None:
            continue
        for n, (leg, p) in enumerate(zip(chain.legs, chain_prices, strict=True)):
            if p is not None and leg.strike is not None:
                at.append((c, n))
                price.append(p)
                forward.append(f)
                strike.append(leg.strike)
                years.append(t)
                is_call.append(leg.side == "CE")
    if not at:
        return out
    t_arr = np.array(years)
    vols = implied_vol(
        np.array(price),
        np.array(forward),
        np.array(strike),
        t_arr,
        np.array(is_call),
        np.exp(-rate * t_arr),
    )
    for (c, n), v in zip(at, vols.tolist(), strict=True):
        if math.isfinite(v):
            out[c][n] = round(v, IV_DECIMALS)
    return out
