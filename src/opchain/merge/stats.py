"""Per-bucket chain analytics of a snapshot, beside its split rows: one row per index, bucket
and cycle with the parity forward, ATM IV, put-call ratios, max pain, the expected move, gamma
exposure, OI walls, OI change since the previous close, the 30-day IV against its history, and
jump flags.

Computed over the strikes the snapshot holds for the slice: the watched band (ATM ± the
offsets and a margin), or every listed strike in full-chain mode. PCR, max pain, GEX and walls
over a narrow band describe that band only; the ``strikes`` column says how many strikes they
saw. What a row is compared with (the previous close, earlier days, earlier cycles) comes in a
:class:`History` that the pipeline keeps and reloads on resume; nothing here does I/O.
"""

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np

from opchain.analytics.black76 import FloatArray
from opchain.analytics.expiry_time import years_to_expiry
from opchain.analytics.forward import otm_implied_vol
from opchain.analytics.gex import gamma_exposure, zero_gamma
from opchain.analytics.history import anomalies, iv_percentile, iv_rank
from opchain.analytics.oi import max_pain, oi_walls, put_call_ratio
from opchain.analytics.smile import atm_iv, expected_move, iv_at_maturity
from opchain.model import ChainSlice, Snapshot

IV30_YEARS = 30 / 365  # the constant maturity whose IV is ranked against its history
ANOMALY_WINDOW = 30  # earlier changes a jump is scored against (analytics.history.anomalies)
# Smallest scale of a change: one 0.05 tick for a premium, 0.1 vol point for an IV, so a series
# that sat still for the whole window is not flagged for its first small move.
_MIN_SCALE = {"atm_iv": 0.001, "straddle": 0.05}
_ROUND = {"atm_iv": 6, "straddle": 2}  # as written, so a reloaded history equals a kept one
# OI is reported in units of the underlying (Kite: shares, not lots), so GEX uses lot size 1.
OI_LOT = 1.0
# The gamma flip is a property of the whole chain: over the few strikes of a watched band it
# says little, and re-evaluating GEX at 72 levels costs more than the rest of the row. It is
# left blank below this many strikes (full-chain mode has 100 and more).
FLIP_MIN_STRIKES = 20

OiKey = tuple[str, date, float, str]  # index, expiry, strike, "CE"|"PE"


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
    gex: float  # dealer gamma exposure, rupees per 1% move (analytics.gex)
    zero_gamma: float  # level of the index where that total changes sign
    call_wall: float  # strike at or above spot with the largest call OI (resistance)
    put_wall: float  # strike at or below spot with the largest put OI (support)
    call_oi_change: float  # Σ call OI − its previous close, over strikes seen both times
    put_oi_change: float
    iv30: float  # the index's 30-day constant-maturity ATM IV (same in each of its buckets)
    iv_rank: float  # of iv30 against its daily closes, 0-100
    iv_percentile: float
    anomaly: str  # space-separated series whose latest change is a jump: atm_iv, straddle


@dataclass
class History:
    """What a snapshot's analytics are compared with, kept across cycles by the pipeline."""

    # Open interest at the previous session's close, per contract (empty: no earlier session).
    previous_oi: Mapping[OiKey, int] = field(default_factory=dict)
    # Each index's iv30 at the close of earlier sessions, oldest first (the IV rank window).
    iv30_closes: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # Each bucket's ATM IV and straddle at the earlier cycles of today, oldest first.
    recent: dict[tuple[str, str], deque[tuple[float, float]]] = field(default_factory=dict)

    def remember(self, rows: Iterable["BucketStats"]) -> None:
        """Add a cycle's rows to ``recent`` (only as many cycles as the jump score uses)."""
        for row in rows:
            key = (row.index, row.bucket)
            if key not in self.recent:
                self.recent[key] = deque(maxlen=ANOMALY_WINDOW + 1)
            self.recent[key].append((row.atm_iv, row.straddle))


def bucket_stats(
    snapshot: Snapshot,
    prices: Sequence[Sequence[float | None]],
    ivs: Sequence[Sequence[float | None]],
    forwards: Sequence[float | None],
    rate: float = 0.0,
    history: History | None = None,
) -> list[BucketStats]:
    """One row per slice; ``prices`` (the legs' usable prices), ``ivs`` and ``forwards`` as the
    merge computed them, slice by slice."""
    history = history or History()
    ts = snapshot.ts.isoformat()
    rows = [
        _stats(ts, chain, chain_prices, chain_ivs, forward,
               years_to_expiry(snapshot.ts, chain.expiry), rate, history.previous_oi)
        for chain, chain_prices, chain_ivs, forward in zip(
            snapshot.chains, prices, ivs, forwards, strict=True
        )
    ]  # fmt: skip
    return _with_history(rows, snapshot, history)


class _Columns(NamedTuple):
    """A slice's legs as one row per strike, ascending, NaN where a side is absent."""

    strikes: FloatArray
    call: FloatArray
    put: FloatArray
    call_iv: FloatArray
    put_iv: FloatArray
    call_oi: FloatArray
    put_oi: FloatArray
    call_volume: FloatArray
    put_volume: FloatArray
    call_oi_before: FloatArray
    put_oi_before: FloatArray


def _columns(
    chain: ChainSlice,
    prices: Sequence[float | None],
    ivs: Sequence[float | None],
    previous_oi: Mapping[OiKey, int],
) -> _Columns:
    nan = math.nan
    by_strike: dict[float, list[float]] = {}  # strike -> [call price, put price, call iv, ...]
    index, expiry = chain.index, chain.expiry
    for leg, price, iv in zip(chain.legs, prices, ivs, strict=True):
        q, strike = leg.quote, leg.strike
        if strike is None or q is None:
            continue
        cells = by_strike.get(strike)
        if cells is None:
            cells = by_strike[strike] = [nan] * 10
        side = leg.side == "PE"
        cells[side] = nan if price is None else price
        cells[2 + side] = nan if iv is None else iv
        cells[4 + side] = q.oi
        cells[6 + side] = q.volume
        before = previous_oi.get((index, expiry, strike, leg.side)) if previous_oi else None
        cells[8 + side] = nan if before is None else before
    strikes = sorted(by_strike)
    table = np.array([by_strike[k] for k in strikes], dtype=np.float64).reshape(-1, 10)
    return _Columns(np.array(strikes, dtype=np.float64), *table.T)


def _stats(
    ts: str,
    chain: ChainSlice,
    prices: Sequence[float | None],
    ivs: Sequence[float | None],
    forward: float | None,
    t: float,
    rate: float,
    previous_oi: Mapping[OiKey, int],
) -> BucketStats:
    nan = math.nan
    c = _columns(chain, prices, ivs, previous_oi)
    f = nan if forward is None else forward
    head = (ts, chain.index, chain.bucket, chain.expiry.isoformat(), len(c.strikes), chain.spot)
    if len(c.strikes) == 0:
        return BucketStats._make([*head, f, *[nan] * 15, ""])
    call_oi, put_oi = c.call_oi, c.put_oi  # NaN where a side is absent: counted as no OI
    smile = otm_implied_vol(c.strikes, f, c.call_iv, c.put_iv)
    move = expected_move(c.strikes, c.call, c.put, chain.spot, forward)
    walls = oi_walls(c.strikes, call_oi, put_oi, chain.spot, top=1)
    gex = flip = nan
    if forward is not None and t > 0:
        discount = math.exp(-rate * t)
        gex = gamma_exposure(
            c.strikes, call_oi, put_oi, f, t, c.call_iv, c.put_iv, OI_LOT, discount
        ).total
        if len(c.strikes) >= FLIP_MIN_STRIKES:
            flip = zero_gamma(
                c.strikes, call_oi, put_oi, f, t, c.call_iv, c.put_iv, OI_LOT, discount,
                spot=chain.spot,
            )  # fmt: skip
    return BucketStats(
        *head, f,
        round(atm_iv(c.strikes, smile, f), _ROUND["atm_iv"]) if forward is not None else nan,
        put_call_ratio(put_oi, call_oi),
        put_call_ratio(c.put_volume, c.call_volume),
        max_pain(c.strikes, call_oi, put_oi),
        round(move.straddle, _ROUND["straddle"]), move.percent,
        gex, flip,
        float(walls.resistance[0]) if walls.resistance.size else nan,
        float(walls.support[0]) if walls.support.size else nan,
        _change(c.call_oi, c.call_oi_before), _change(c.put_oi, c.put_oi_before),
        nan, nan, nan, "",
    )  # fmt: skip


def _change(now: FloatArray, before: FloatArray) -> float:
    """Σ (OI now − OI at the previous close) over strikes known both times; NaN if none."""
    seen = np.isfinite(now) & np.isfinite(before)
    return float((now[seen] - before[seen]).sum()) if seen.any() else math.nan


def _with_history(
    rows: list[BucketStats], snapshot: Snapshot, history: History
) -> list[BucketStats]:
    """Fill in each index's iv30 with its rank and percentile, and each bucket's jump flags."""
    by_index: dict[str, list[tuple[float, float]]] = {}
    for row, chain in zip(rows, snapshot.chains, strict=True):
        t = years_to_expiry(snapshot.ts, chain.expiry)
        by_index.setdefault(row.index, []).append((t, row.atm_iv))
    iv30 = {}
    for index, points in by_index.items():
        t, iv = np.array(points).T
        known = np.isfinite(iv) & (t > 0)
        iv30[index] = round(iv_at_maturity(t[known], iv[known], IV30_YEARS), _ROUND["atm_iv"])
    flags = _jumps([history.recent.get((r.index, r.bucket), ()) for r in rows], rows)
    out = []
    for row, flagged in zip(rows, flags, strict=True):
        current = iv30[row.index]
        closes = history.iv30_closes.get(row.index, ())
        out.append(
            row._replace(
                iv30=current,
                iv_rank=iv_rank(current, closes),
                iv_percentile=iv_percentile(current, closes),
                anomaly=flagged,
            )
        )
    return out


def _jumps(
    earlier: Sequence[Iterable[tuple[float, float]]], rows: Sequence[BucketStats]
) -> list[str]:
    """Each row's flags: which of its series (ATM IV, straddle) just jumped, scored for all
    rows in one call per series (their histories padded to one length with NaN)."""
    series = [
        [*before, (row.atm_iv, row.straddle)] for before, row in zip(earlier, rows, strict=True)
    ]
    width = max((len(s) for s in series), default=0)
    table = np.full((len(series), width, 2), np.nan)
    for i, values in enumerate(series):
        table[i, width - len(values) :] = values
    names = ("atm_iv", "straddle")
    flagged = [
        anomalies(table[..., k], window=ANOMALY_WINDOW, min_scale=_MIN_SCALE[name]).flagged
        for k, name in enumerate(names)
    ]
    return [
        " ".join(name for name, column in zip(names, flagged, strict=True) if column[i])
        for i in range(len(rows))
    ]
