"""A value against its own history: IV rank, IV percentile, and jump (anomaly) flags.

IV rank and percentile (research/analytics.md §4; ig.com, tastytrade, Deribit) compare today's
IV with a look-back window, usually 52 weeks of daily ATM or constant-maturity IV
(``smile.iv_at_maturity``). Rank is driven by the window's extremes, percentile is not.

Anomaly flags score the latest change of a series (an IV, a premium) against its recent changes
with a robust z-score, so one earlier spike cannot hide the next one the way it would inflate a
standard deviation. NaN history values (missing minutes) are skipped everywhere. A robust z
alone flags moves that are large only against a quiet window (two rupees on a 290 straddle
after a calm quarter hour), and moves the index explains: :func:`straddle_move_bound` is the
most a straddle can move with the forward alone, and callers pass a ``min_scale`` tied to the
series' level (``merge.stats``, ``store.eod``; measured in ``benchmarks/anomaly.py``).
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from opchain.analytics.along import take_last
from opchain.analytics.black76 import FloatArray

MAD_TO_SIGMA = 1.4826  # 1/Φ⁻¹(3/4): MAD × this estimates σ for normal data
# A jump moves its series by at least this share of its level, however quiet its recent
# changes were: 4.35 rupees on a 290 straddle, 0.22 vol point on a 14.6 % IV. Chosen with
# benchmarks/anomaly.py (BENCHMARKS.md): a two-rupee move is no jump, a 2 % IV jump is one.
MIN_JUMP = 0.015
MEAN_AD_TO_SIGMA = 1.2533  # √(π/2): mean absolute deviation × this estimates σ


class Anomalies(NamedTuple):
    """Robust z-score of each series' latest change, and whether it crossed the threshold."""

    score: FloatArray  # NaN when the history is too short or the latest value is missing
    flagged: NDArray[np.bool_]  # |score| > threshold; never True when score is NaN


def iv_rank(current: float, history: ArrayLike) -> float:
    """IVR = 100 · (IV_now − min) / (max − min), in [0, 100].

    Min and max run over the history and the current value together (the window includes
    today). NaN when the history is empty, the current value is NaN, or the window is flat.
    """
    h = _finite(history)
    if h.size == 0 or np.isnan(current):
        return np.nan
    low, high = min(float(h.min()), current), max(float(h.max()), current)
    return 100.0 * ((current - low) / (high - low)) if high > low else np.nan


def iv_percentile(current: float, history: ArrayLike) -> float:
    """IVP = 100 · (number of history values strictly below IV_now) / (number of values).

    NaN when the history is empty or the current value is NaN.
    """
    h = _finite(history)
    if h.size == 0 or np.isnan(current):
        return np.nan
    return 100.0 * np.count_nonzero(h < current) / h.size


def anomalies(
    values: ArrayLike,
    window: int = 30,
    threshold: float = 5.0,
    min_changes: int = 10,
    min_scale: ArrayLike = 0.0,
    differenced: bool = False,
) -> Anomalies:
    """Flag series whose latest change is a robust outlier among their recent changes.

    ``values`` holds one series per row along its LAST axis, oldest first, latest last (e.g. a
    strike's IV or premium, minute by minute; leading axes are strikes, sides, ...). With
    changes d = diff(values), the latest change d[-1] is scored against the ``window`` changes
    before it:

        score = (d[-1] − median) / (1.4826 · MAD),   MAD = median |d − median|.

    1.4826·MAD estimates the standard deviation of normal changes, so the default
    ``threshold`` 5 means a five-sigma jump: about 1 in 1.7 million by chance for normal
    changes, so few false flags over a few thousand strikes a minute even allowing for the
    fatter tails of real changes.
    When more than half the changes are equal (MAD = 0, common for a premium that ticks
    rarely) the scale falls back to 1.2533 · mean |d − median| (Iglewicz and Hoaglin); it
    never goes below ``min_scale`` (pass the 0.05 tick for premiums, so a quote that was stale
    for the whole window is not flagged for moving one tick; one per series broadcasts against
    the leading axes). A zero scale gives ±inf for any
    move. Fewer than ``min_changes`` finite changes in the window: score NaN, no flag.
    ``differenced``: ``values`` are the changes already (a change known to be no jump, such
    as a strike roll, can then be left out as NaN).
    """
    if window < 1 or min_changes < 1:
        raise ValueError(f"window and min_changes must be >= 1, got {window}, {min_changes}")
    x = np.asarray(values, dtype=np.float64)
    needed = min_changes + 1 + (not differenced)  # the latest change and min_changes before
    if x.ndim == 0 or x.shape[-1] < needed:
        shape = x.shape[:-1] if x.ndim else ()
        return Anomalies(np.full(shape, np.nan), np.zeros(shape, dtype=bool))
    changes = x if differenced else np.diff(x, axis=-1)
    latest = changes[..., -1]
    recent = changes[..., max(changes.shape[-1] - 1 - window, 0) : -1]
    enough = np.count_nonzero(np.isfinite(recent), axis=-1) >= min_changes
    # Rows without enough data get a dummy window, so no all-NaN slice reaches nanmedian.
    recent = np.where(enough[..., np.newaxis], recent, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        center = _nanmedian(recent)
        deviation = np.abs(recent - center[..., np.newaxis])
        scale = MAD_TO_SIGMA * _nanmedian(deviation)
        fallback = MEAN_AD_TO_SIGMA * _nanmean(deviation)
        scale = np.maximum(np.where(scale > 0, scale, fallback), min_scale)
        gap = latest - center
        score = np.where(gap == 0, 0.0, gap / scale)
    score = np.where(enough & np.isfinite(latest), score, np.nan)
    flagged = np.abs(score) > threshold  # NaN compares False: no nan_to_num pass needed
    return Anomalies(np.asarray(score, dtype=np.float64), np.asarray(flagged, dtype=bool))


def straddle_move_bound(
    forward_change: ArrayLike,
    forward: ArrayLike,
    vol: ArrayLike,
    years: ArrayLike,
    strike_step: ArrayLike,
) -> FloatArray:
    """The largest change of an ATM straddle (call + put at the strike nearest the forward)
    that a move of the forward by ``forward_change`` can cause by itself, vol unchanged:

        |Δ|·ΔF + ½·Γ·ΔF²,   Δ = 2·N(d) − 1,   d = (step / 2F) / (σ√T) + σ√T / 2,
                                Γ = 2·φ(0) / (F·σ√T),

    the straddle's delta with the forward half a strike step from the strike (the farthest
    it can be) and its gamma at the money (the largest), undiscounted. Days from expiry this
    is a small share of the move (under a rupee for a 10-point move of NIFTY, a weekly
    straddle three days out); in the last hour it is most of it, as the straddle turns into
    its intrinsic value. NaN where the vol or the time is unknown.
    """
    move, f, sigma, t, step = (
        np.asarray(x, dtype=np.float64) for x in (forward_change, forward, vol, years, strike_step)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        root = sigma * np.sqrt(t)
        d = (step / 2 / f) / root + root / 2
        delta = 2 * ndtr(d) - 1
        gamma = 2 * _PHI0 / (f * root)
        bound = delta * np.abs(move) + 0.5 * gamma * move * move
    return np.asarray(np.where((root > 0) & (f > 0), bound, np.nan), dtype=np.float64)


_PHI0 = 0.3989422804014327  # φ(0) = 1/√(2π)


def _nanmedian(x: FloatArray) -> FloatArray:
    """np.nanmedian along the last axis, by sorting (NaN sorts last): the same numbers, without
    the masked-array path that makes nanmedian ten times slower on the small windows scored
    every cycle."""
    ordered = np.sort(x, axis=-1)
    count = np.count_nonzero(~np.isnan(ordered), axis=-1)[..., np.newaxis]
    low = take_last(ordered, np.maximum(count - 1, 0) // 2)
    high = take_last(ordered, count // 2)
    return np.asarray(np.where(count > 0, (low + high) / 2, np.nan)[..., 0], dtype=np.float64)


def _nanmean(x: FloatArray) -> FloatArray:
    """np.nanmean along the last axis (the same sum over NaN-zeroed values, divided)."""
    present = ~np.isnan(x)
    total = np.where(present, x, 0.0).sum(axis=-1)
    return np.asarray(total / np.count_nonzero(present, axis=-1), dtype=np.float64)


def _finite(history: ArrayLike) -> FloatArray:
    h = np.asarray(history, dtype=np.float64).ravel()
    return h[np.isfinite(h)]
