"""What the API and the dashboard show of one snapshot: JSON-ready ``Live`` messages (docs/api.md).

Per index: the overview, and per bucket a ``Chain`` with one row per strike, the CE and PE side
by side, each with its Black-76 IV and Greeks on the slice's parity forward, its OI change
since the previous close, and per strike what the OI, GEX and smile panels draw (payout,
dealer gamma exposure, the out-of-the-money IV). Built only when someone asks (the API caches
it per snapshot), never on the collector's every cycle. Every number is finite or None, so the
result goes through ``json.dumps(..., allow_nan=False)`` as it is.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from opchain.analytics.expiry_time import years_to_expiry
from opchain.analytics.forward import otm_implied_vol
from opchain.analytics.gex import gamma_exposure
from opchain.analytics.oi import payout
from opchain.market.indices import INDIA_VIX, OVERVIEW
from opchain.market.ist import trading_date
from opchain.merge.cycle import Cycle, Solved
from opchain.merge.stats import OI_LOT, BucketStats, OiKey
from opchain.model import ChainSlice, Leg, Quote, Snapshot

Json = dict[str, Any]
DAYS_PER_YEAR = 365.0
VOL_POINT = 0.01


def number(value: float | None) -> float | None:
    """A float for JSON: None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def live_messages(
    cycle: Cycle, rate: float = 0.0, indices: Sequence[str] | None = None
) -> dict[str, Json]:
    """One ``Live`` message per index of the cycle's snapshot (or of ``indices``), from the IVs
    and Greeks ``merge`` solved for the cycle (no second solve); ``rate`` discounts the GEX."""
    snapshot, stats, previous = cycle.snapshot, cycle.stats, cycle.previous_oi
    wanted = [
        c
        for c in range(len(snapshot.chains))
        if indices is None or snapshot.chains[c].index in indices
    ]
    by_index: dict[str, list[Json]] = {}
    stats_of: dict[str, list[tuple[ChainSlice, BucketStats]]] = {}
    for c in wanted:
        chain = snapshot.chains[c]
        row = stats[c]
        view = chain_view(snapshot, chain, cycle.solved[c], row, rate, previous)
        by_index.setdefault(chain.index, []).append(view)
        stats_of.setdefault(chain.index, []).append((chain, row))
    vix = snapshot.indices.get(INDIA_VIX.key)
    ts = snapshot.ts.isoformat()
    out = {}
    for index, chains in by_index.items():
        quote = snapshot.indices.get(index)
        out[index] = {
            "type": "snapshot",
            "index": index,
            "ts": ts,
            "overview": overview(index, ts, quote, stats_of[index]),
            "vix": None if vix is None else overview(INDIA_VIX.key, ts, vix, []),
            "chains": chains,
        }
    return out


def overview(
    index: str, ts: str, quote: Quote | None, buckets: Sequence[tuple[ChainSlice, BucketStats]]
) -> Json:
    """An ``Overview``: the index's level, OHLC and change, and a line per bucket."""
    q = quote
    change = None if q is None or not q.close else q.last_price - q.close
    return {
        "index": index,
        "name": OVERVIEW[index].display if index in OVERVIEW else index,
        "ts": ts,
        "last_price": number(q and q.last_price),
        "open": number(q and q.open),
        "high": number(q and q.high),
        "low": number(q and q.low),
        "prev_close": number(q and q.close),
        "net_change": number(None if change is None else round(change, 2)),
        "net_change_pct": number(
            None if change is None or q is None else round(change / q.close * 100, 4)
        ),
        "buckets": [
            {
                "bucket": chain.bucket,
                "expiry": chain.expiry.isoformat(),
                "atm_strike": number(chain.atm_strike),
                "atm_iv": number(row.atm_iv),
                "pcr_oi": number(row.pcr_oi),
                "max_pain": number(row.max_pain),
                "straddle": number(row.straddle),
            }
            for chain, row in buckets
        ],
    }


def stats_json(row: BucketStats) -> Json:
    """Every column of the analytics file, NaN as None."""
    return {
        name: (number(value) if isinstance(value, float) else value)
        for name, value in zip(BucketStats._fields, row, strict=True)
    }


def chain_view(
    snapshot: Snapshot,
    chain: ChainSlice,
    solved: Solved,
    row: BucketStats,
    rate: float = 0.0,
    previous_oi: Mapping[OiKey, int] | None = None,
) -> Json:
    """A ``Chain``: the slice's strikes ascending, each with its call and put side (IV and
    Greeks as ``merge`` solved them) and the per-strike analytics (payout at settlement there,
    GEX per side, OTM IV)."""
    t = years_to_expiry(snapshot.ts, chain.expiry)
    discount = math.exp(-rate * t)
    forward = solved.forward
    f = math.nan if forward is None else forward
    sides: dict[float, dict[str, Json]] = {}
    previous = previous_oi or {}
    legs = zip(
        chain.legs, solved.iv, solved.delta, solved.gamma, solved.theta, solved.vega, strict=True
    )
    for leg, iv, delta, gamma, theta, vega in legs:
        if leg.strike is None:
            continue
        before = previous.get((leg.index, leg.expiry, leg.strike, leg.side))
        sides.setdefault(leg.strike, {})[leg.side] = _side(
            leg, iv, before, delta, gamma, theta, vega
        )
    strikes = sorted(sides)
    per_strike = _per_strike(strikes, sides, f, t, discount)
    rows = [
        {"strike": k, "call": sides[k].get("CE"), "put": sides[k].get("PE"), **extra}
        for k, extra in zip(strikes, per_strike, strict=True)
    ]
    return {
        "index": chain.index,
        "bucket": chain.bucket,
        "expiry": chain.expiry.isoformat(),
        "ts": snapshot.ts.isoformat(),
        "spot": number(chain.spot),
        "forward": number(forward),
        "atm_strike": number(chain.atm_strike),
        "dte": (chain.expiry - trading_date(snapshot.ts)).days,
        "years": t,
        "stats": stats_json(row),
        "rows": rows,
    }


def _side(
    leg: Leg,
    iv: float | None,
    oi_before: int | None,
    delta: float | None,
    gamma: float | None,
    theta: float | None,
    vega: float | None,
) -> Json:
    q = leg.quote
    if q is None:
        return dict.fromkeys(_SIDE_FIELDS) | {"flag": leg.flag}
    bid_qty = q.bids[0].quantity if q.bids else None
    ask_qty = q.asks[0].quantity if q.asks else None
    return {
        "last_price": number(q.last_price),
        "bid": number(q.bid),
        "ask": number(q.ask),
        "bid_qty": bid_qty,
        "ask_qty": ask_qty,
        "volume": q.volume,
        "oi": q.oi,
        "oi_change": None if oi_before is None else q.oi - oi_before,
        "iv": number(iv),
        "delta": number(delta),
        "gamma": number(gamma),
        "theta": number(None if theta is None else theta / DAYS_PER_YEAR),
        "vega": number(None if vega is None else vega * VOL_POINT),
        "flag": leg.flag,
    }


_SIDE_FIELDS = (
    "last_price", "bid", "ask", "bid_qty", "ask_qty", "volume", "oi", "oi_change",
    "iv", "delta", "gamma", "theta", "vega", "flag",
)  # fmt: skip


def _per_strike(
    strikes: list[float], sides: Mapping[float, Mapping[str, Json]], f: float, t: float, df: float
) -> list[Json]:
    """Payout, GEX (call, put, net) and the OTM IV at each strike, through the analytics."""
    if not strikes:
        return []

    def column(side: str, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        values = [(sides[k].get(side) or {}).get(name) for k in strikes]
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)

    k = np.array(strikes, dtype=np.float64)
    call_oi, put_oi = column("CE", "oi"), column("PE", "oi")
    call_iv, put_iv = column("CE", "iv"), column("PE", "iv")
    owed = payout(k, call_oi, put_oi)
    nan = np.full(k.shape, np.nan)
    gex_call, gex_put, gex_net = nan, nan, nan
    if math.isfinite(f) and t > 0:
        gex = gamma_exposure(k, call_oi, put_oi, f, t, call_iv, put_iv, OI_LOT, df)
        gex_call, gex_put, gex_net = gex.call, gex.put, gex.net
    otm = otm_implied_vol(k, f, call_iv, put_iv)
    return [
        {
            "payout": number(a),
            "gex_call": number(b),
            "gex_put": number(c),
            "gex_net": number(d),
            "otm_iv": number(e),
        }
        for a, b, c, d, e in zip(
            owed.tolist(),
            gex_call.tolist(),
            gex_put.tolist(),
            gex_net.tolist(),
            otm.tolist(),
            strict=True,
        )
    ]
