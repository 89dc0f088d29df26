"""Per-bucket chain analytics of a snapshot, beside its split rows: one row per index, bucket
and cycle with the parity forward, ATM IV, put-call ratios, max pain and the expected move.

Computed over the strikes the snapshot holds for the slice: the watched band (ATM ± the
offsets and a margin), or every listed strike in full-chain mode. PCR and max pain over a
narrow band describe that band only; the ``strikes`` column says how many strikes they saw.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from opchain.analytics.forward import otm_implied_vol
from opchain.analytics.oi import max_pain, put_call_ratio
from opchain.analytics.smile import atm_iv, expected_move
from opchain.model import ChainSlice, Snapshot


class BucketStats(NamedTuple):
    """Field order is the file's column order; NaN is written as an empty cell."""

    ts: str
    index: str  # type: ignore[assignment]  # shadows tuple.index; the name is the contract
    bucket: str
    expiry: str
    strikes: int  # strikes with a quote on either side
    spot: float
    forward: float
    atm_iv: float
    pcr_oi: float
    pcr_volume: float
    max_pain: float
    straddle: float  # ATM call + put
    expected_move_pct: float  # straddle / spot × 100


def bucket_stats(
    snapshot: Snapshot,
    ivs: Sequence[Sequence[float | None]],
    forwards: Sequence[float | None],
) -> list[BucketStats]:
    """One row per slice; ``ivs`` and ``forwards`` as the merge computed them, slice by slice."""
    ts = snapshot.ts.isoformat()
    return [
        _stats(ts, chain, chain_ivs, forward)
        for chain, chain_ivs, forward in zip(snapshot.chains, ivs, forwards, strict=True)
    ]


def _stats(
    ts: str, chain: ChainSlice, ivs: Sequence[float | None], forward: float | None
) -> BucketStats:
    nan = math.nan
    by_strike: dict[float, list[float]] = {}  # strike -> [call price, put price, call iv, ...]
    for leg, iv in zip(chain.legs, ivs, strict=True):
        if leg.strike is None or leg.quote is None:
            continue
        cells = by_strike.setdefault(leg.strike, [nan] * 8)
        side = 0 if leg.side == "CE" else 1
        price = leg.price
        q = leg.quote
        cells[side] = nan if price is None else price
        cells[2 + side] = nan if iv is None else iv
        cells[4 + side] = float(q.oi)
        cells[6 + side] = float(q.volume)
    strikes = np.array(sorted(by_strike))
    if len(strikes) == 0:
        return BucketStats(ts, chain.index, chain.bucket, chain.expiry.isoformat(), 0,
                           chain.spot, nan, nan, nan, nan, nan, nan, nan)  # fmt: skip
    cols = np.array([by_strike[k] for k in strikes.tolist()]).T
    call, put, call_iv, put_iv, call_oi, put_oi, call_vol, put_vol = cols
    f = nan if forward is None else forward
    smile = otm_implied_vol(strikes, f, call_iv, put_iv)
    move = expected_move(strikes, call, put, chain.spot, None if forward is None else f)
    return BucketStats(
        ts, chain.index, chain.bucket, chain.expiry.isoformat(), len(strikes), chain.spot, f,
        atm_iv(strikes, smile, f) if forward is not None else nan,
        put_call_ratio(np.nan_to_num(put_oi), np.nan_to_num(call_oi)),
        put_call_ratio(np.nan_to_num(put_vol), np.nan_to_num(call_vol)),
        max_pain(strikes, np.nan_to_num(call_oi), np.nan_to_num(put_oi)),
        move.straddle, move.percent,
    )  # fmt: skip
