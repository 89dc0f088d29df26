"""Open-interest analytics of one expiry: put-call ratios, max pain, OI walls, OI change.

Inputs are plain arrays over the listed (or only the watched) strikes of one expiry: ``strikes``
sorted ascending and unique, and one OI or volume value per strike and side. A NaN OI or volume
(a missing leg) counts as zero, except in ``oi_change``, where it stays unknown.

Units cancel in every result except ``payout``: ratios are pure numbers and the rest are strikes,
so OI may be in lots (contracts) or in units (quantity) as long as both sides use the same one.
Definitions and sources: research/analytics.md §4.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from opchain.analytics.black76 import FloatArray


class PutCallRatios(NamedTuple):
    """Put-call ratios of several expiries, and of all of them pooled."""

    per_expiry: FloatArray  # one ratio per expiry, in the order given
    overall: float  # Σ puts of all expiries / Σ calls of all expiries (not a mean of ratios)


class Walls(NamedTuple):
    """OI walls: the strikes where open interest piles up, largest first."""

    resistance: FloatArray  # strikes at or above spot with the largest call OI
    resistance_oi: FloatArray  # their call OI
    support: FloatArray  # strikes at or below spot with the largest put OI
    support_oi: FloatArray  # their put OI


def put_call_ratio(put: ArrayLike, call: ArrayLike) -> float:
    """PCR = Σ put / Σ call, by OI or by volume (pass the matching columns).

    NaN, not inf, when the calls sum to zero.
    """
    puts = float(np.nansum(np.asarray(put, dtype=np.float64)))
    calls = float(np.nansum(np.asarray(call, dtype=np.float64)))
    return puts / calls if calls > 0 else np.nan


def put_call_ratios(puts: Sequence[ArrayLike], calls: Sequence[ArrayLike]) -> PutCallRatios:
    """PCR per expiry and across expiries: ``puts[i]`` and ``calls[i]`` are expiry i's columns.

    The overall ratio pools the sums (Sensibull's headline PCR pools the next three expiries);
    it is NaN when no expiry has any call OI (or volume).
    """
    if len(puts) != len(calls):
        raise ValueError(f"puts has {len(puts)} expiries but calls has {len(calls)}")
    put_sums = np.array([np.nansum(np.asarray(p, dtype=np.float64)) for p in puts])
    call_sums = np.array([np.nansum(np.asarray(c, dtype=np.float64)) for c in calls])
    with np.errstate(divide="ignore", invalid="ignore"):
        per_expiry = np.where(call_sums > 0, put_sums / call_sums, np.nan)
    total_calls = float(call_sums.sum())
    overall = float(put_sums.sum()) / total_calls if total_calls > 0 else np.nan
    return PutCallRatios(per_expiry.astype(np.float64), overall)


def payout(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> FloatArray:
    """Total intrinsic value owed to option holders if the expiry settles at each listed strike.

    payout[j] = Σ_i call_oi[i]·max(K[j] − K[i], 0) + put_oi[i]·max(K[i] − K[j], 0), in OI units
    × index points (multiply by the lot size when OI is in lots to get rupees). O(n) through
    cumulative sums; exact for integer strikes and OI (sums below 2**53).
    """
    k, c, p = _columns(strikes, call_oi, put_oi)
    # Calls below K[j] pay K[j]·ΣC − Σ C·K; puts above pay Σ P·K − K[j]·ΣP. The running sums
    # may include strike j itself: its own options pay nothing when it settles there.
    calls = k * np.cumsum(c) - np.cumsum(c * k)
    puts = _cumsum_from_right(p * k) - k * _cumsum_from_right(p)
    return np.asarray(calls + puts, dtype=np.float64)


def max_pain(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> float:
    """The listed strike at which option holders would be paid the least (see ``payout``).

    Compute it per expiry, never pooled. Ties go to the lowest such strike (ties are exact for
    integer strikes and OI). NaN when there are no strikes or no open interest at all.
    """
    k, c, p = _columns(strikes, call_oi, put_oi)
    if not (c.sum() > 0 or p.sum() > 0):
        return np.nan
    return float(k[np.argmin(payout(k, c, p))])


def oi_walls(
    strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike, spot: float, top: int = 3
) -> Walls:
    """Resistance (largest call OI at or above spot) and support (largest put OI at or below).

    Up to ``top`` strikes per side, largest OI first; equal OI goes to the strike nearer spot,
    then to the lower strike. Strikes with no OI are never walls.
    """
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    k, c, p = _columns(strikes, call_oi, put_oi)
    resistance = _largest(k, c, (k >= spot) & (c > 0), spot, top)
    support = _largest(k, p, (k <= spot) & (p > 0), spot, top)
    return Walls(k[resistance], c[resistance], k[support], p[support])


def oi_change(
    strikes: ArrayLike,
    oi: ArrayLike,
    previous_strikes: ArrayLike,
    previous_oi: ArrayLike,
    unseen: float = np.nan,
) -> FloatArray:
    """OI now minus OI at the previous close, per strike of ``strikes`` (positive = added).

    Strikes are matched exactly. A strike with no previous value gets ``unseen`` as its
    previous OI: NaN (unknown, e.g. outside yesterday's watched window) by default; pass 0.0
    when the previous data covered the full chain, so a strike listed today counts all its OI
    as added. Previous strikes missing today are ignored. NaN OI on either day gives NaN.
    """
    k = np.asarray(strikes, dtype=np.float64)
    now = np.asarray(oi, dtype=np.float64)
    before_k = np.asarray(previous_strikes, dtype=np.float64)
    before = np.asarray(previous_oi, dtype=np.float64)
    if k.shape != now.shape or before_k.shape != before.shape:
        raise ValueError("each oi column must have one value per strike")
    previous = np.full(k.shape, unseen, dtype=np.float64)
    if before_k.size:
        order = np.argsort(before_k, kind="stable")
        before_k, before = before_k[order], before[order]
        at = np.minimum(np.searchsorted(before_k, k), before_k.size - 1)
        found = before_k[at] == k
        previous[found] = before[at[found]]
    return np.asarray(now - previous, dtype=np.float64)


def _columns(strikes: ArrayLike, *columns: ArrayLike) -> tuple[FloatArray, ...]:
    """Strikes as float64 (checked sorted ascending and unique), then each column with NaN → 0."""
    k = np.asarray(strikes, dtype=np.float64)
    if k.ndim != 1:
        raise ValueError(f"strikes must be one-dimensional, got shape {k.shape}")
    if np.any(np.diff(k) <= 0) or np.isnan(k).any():
        raise ValueError("strikes must be sorted ascending and unique")
    out = [k]
    for column in columns:
        values = np.asarray(column, dtype=np.float64)
        if values.shape != k.shape:
            raise ValueError(f"a column has shape {values.shape}, strikes have {k.shape}")
        out.append(np.where(np.isnan(values), 0.0, values))  # cheaper than nan_to_num
    return tuple(out)


def _cumsum_from_right(x: FloatArray) -> FloatArray:
    return np.asarray(np.cumsum(x[::-1])[::-1], dtype=np.float64)


def _largest(
    k: FloatArray, oi: FloatArray, eligible: NDArray[np.bool_], spot: float, top: int
) -> NDArray[np.intp]:
    """Indices of the ``top`` eligible strikes by OI (desc), then distance to spot, then strike."""
    index = np.flatnonzero(eligible)
    order = np.lexsort((k[index], np.abs(k[index] - spot), -oi[index]))
    return index[order[:top]]
