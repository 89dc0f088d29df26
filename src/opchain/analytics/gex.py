"""Dealer gamma exposure (GEX) of one expiry: per strike, in total, and the zero-gamma level.

Convention (SqueezeMetrics, SPEC §3.5, research/analytics.md §4): customers are assumed to sell
calls and buy puts, so dealers are long the calls and short the puts. Per strike and side

    GEX = Γ · OI · lot · F² · 0.01,   + for calls, − for puts,

in RUPEES OF DEALER DELTA CHANGE PER 1% MOVE of the underlying: a 1% move changes each option's
delta by Γ·F·0.01 units of the underlying, each worth F rupees. A positive total means dealers
are long gamma, so their hedging damps moves; negative means it feeds them. The sign is the
naive positioning heuristic, not a measurement.

Γ is the Black-76 gamma with respect to the forward F (``opchain.analytics.greeks``). The forward
moves in proportion to spot, so Γ_F·F² = Γ_S·S²: the number is the same as the spot form.
For OpenAlgo's raw scaling Γ·OI·lot (units of delta per index point), divide by 0.01·F².

``lot_size`` turns OI into units of the underlying: the lot size when OI counts lots
(contracts), 1 when the broker already reports OI in units. Strikes whose IV is NaN (no price)
or whose OI is NaN contribute nothing. Volatilities stay attached to their strikes when the
underlying is moved (sticky strike).
"""

from functools import partial
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from opchain.analytics.black76 import FloatArray
from opchain.analytics.greeks import gamma

ONE_PERCENT = 0.01


class GammaExposure(NamedTuple):
    """GEX per strike in rupees per 1% move (module docstring), in the order of the strikes."""

    call: FloatArray  # ≥ 0: dealers long the calls
    put: FloatArray  # ≤ 0: dealers short the puts
    net: FloatArray  # call + put
    total: float  # Σ net


def gamma_exposure(
    strikes: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    forward: float,
    t: float,
    call_vol: ArrayLike,
    put_vol: ArrayLike,
    lot_size: float,
    discount: float = 1.0,
) -> GammaExposure:
    """Gamma exposure per strike at the current forward, with each leg's own implied vol.

    ``t`` is the time to expiry in years and ``discount`` exp(-r·t), as in ``black76``.
    """
    call, put = dealer_legs(strikes, call_oi, put_oi, forward, t, call_vol, put_vol, discount)
    call, put = call * lot_size, put * lot_size
    net = call + put
    return GammaExposure(call, put, net, float(net.sum()))


def gamma_profile(
    strikes: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    forward: float,
    t: float,
    call_vol: ArrayLike,
    put_vol: ArrayLike,
    lot_size: float,
    levels: ArrayLike,
    discount: float = 1.0,
    spot: float | None = None,
) -> FloatArray:
    """Total GEX if the underlying stood at each of ``levels`` instead (vols, t, OI unchanged).

    ``levels`` are forwards, or spots when ``spot`` is given: the forward then moves with them
    in proportion, F' = level · forward / spot.
    """
    x = np.asarray(levels, dtype=np.float64)
    moved = x * (forward / spot) if spot is not None else x
    call, put = dealer_legs(
        strikes, call_oi, put_oi, moved[..., np.newaxis], t, call_vol, put_vol, discount
    )
    return np.asarray((call + put).sum(axis=-1) * lot_size, dtype=np.float64)


def zero_gamma(
    strikes: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    forward: float,
    t: float,
    call_vol: ArrayLike,
    put_vol: ArrayLike,
    lot_size: float,
    discount: float = 1.0,
    spot: float | None = None,
    grid: ArrayLike | None = None,
) -> float:
    """The level of the underlying at which total GEX changes sign (the gamma flip).

    Total GEX is re-evaluated (``gamma_profile``) on ``grid`` and the sign change is
    interpolated linearly between the two grid levels around it; levels where GEX is exactly 0
    (gamma underflows far from every strike) are skipped. With several sign changes the one
    nearest the current level wins; NaN when there is none on the grid. Levels and the result
    are forwards, or spots when ``spot`` is given.

    By default the grid is 31 levels from 15% below to 15% above the current one (1% apart),
    then 41 levels across the bracket found (0.025% apart): the precision of a 1,201-level grid
    for the cost of 72 levels, which matters on a full chain every snapshot. Two sign changes
    closer together than 1% may then be missed (both: they cancel on the coarse grid).
    """
    here = forward if spot is None else spot
    columns = [
        np.asarray(x, dtype=np.float64) for x in (strikes, call_oi, put_oi, call_vol, put_vol)
    ]
    k, c_oi, p_oi, c_vol, p_vol = columns
    if k.ndim == 1 and all(x.shape == k.shape for x in columns):  # else gamma_profile says why
        # Strikes that add nothing at any level (no OI or no IV on either side) are left out.
        live = ((c_oi != 0) & np.isfinite(c_oi) & np.isfinite(c_vol)) | (
            (p_oi != 0) & np.isfinite(p_oi) & np.isfinite(p_vol)
        )
        k, c_oi, p_oi, c_vol, p_vol = (x[live] for x in columns)
    profile = partial(
        gamma_profile, k, c_oi, p_oi, forward, t, c_vol, p_vol, lot_size,
        discount=discount, spot=spot,
    )  # fmt: skip
    if grid is not None:
        levels = np.sort(np.asarray(grid, dtype=np.float64))
        return _nearest(_crossings(levels, profile(levels))[0], here)
    coarse = here * np.linspace(0.85, 1.15, 31)
    crossings, low, high = _crossings(coarse, profile(coarse))
    if crossings.size == 0:
        return np.nan
    at = int(np.argmin(np.abs(crossings - here)))
    fine = np.linspace(low[at], high[at], 41)
    refined = _crossings(fine, profile(fine))[0]
    return _nearest(refined, here) if refined.size else float(crossings[at])


def _crossings(levels: FloatArray, total: FloatArray) -> tuple[FloatArray, ...]:
    """Each sign change of ``total`` between neighbouring levels where it is non-zero: the
    level interpolated linearly, and the two levels around it."""
    live = np.flatnonzero((total != 0) & np.isfinite(total))
    below, above = live[:-1], live[1:]
    flips = np.sign(total[below]) != np.sign(total[above])
    below, above = below[flips], above[flips]
    weight = total[below] / (total[below] - total[above])
    crossings = levels[below] + weight * (levels[above] - levels[below])
    return crossings, levels[below], levels[above]


def _nearest(crossings: FloatArray, here: float) -> float:
    return float(crossings[np.argmin(np.abs(crossings - here))]) if crossings.size else np.nan


def dealer_legs(
    strikes: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    forward: ArrayLike,
    t: ArrayLike,
    call_vol: ArrayLike,
    put_vol: ArrayLike,
    discount: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Signed Γ·OI·F²·0.01 of the calls and of the puts, per strike (last axis) and per forward
    (the leading axes of ``forward``); NaN OI or gamma counts as zero. Strikes may have leading
    axes too (one row per expiry, ``analytics.chains``), with t and discount broadcasting."""
    k = np.asarray(strikes, dtype=np.float64)
    columns = [np.asarray(x, dtype=np.float64) for x in (call_oi, put_oi, call_vol, put_vol)]
    if any(column.shape != k.shape for column in columns) or k.ndim == 0:
        raise ValueError("strikes, OI and vols must be of equal length (and one shape)")
    c_oi, p_oi, c_vol, p_vol = columns
    f = np.asarray(forward, dtype=np.float64)
    # Black-76 gamma is the same for a call and a put; each leg keeps its own vol.
    call_gamma = gamma(f, k, t, c_vol, discount)
    put_gamma = gamma(f, k, t, p_vol, discount)
    dollar = ONE_PERCENT * f * f
    call, put = call_gamma * c_oi, put_gamma * p_oi
    call = np.where(np.isnan(call), 0.0, call) * dollar  # np.where: cheaper than nan_to_num
    put = -np.where(np.isnan(put), 0.0, put) * dollar
    return np.asarray(call, dtype=np.float64), np.asarray(put, dtype=np.float64)
