"""The volatility smile of one expiry, the ATM term structure, 25-delta wings, expected move.

Inputs are arrays over the strikes of one expiry, sorted ascending; IVs are Black-76 implied
vols on the expiry's forward (``black76.implied_vol``), as fractions (0.15 for 15%), NaN where no
IV exists. Times are in years (``expiry_time.years_to_expiry``). Nothing is extrapolated: a
quantity that needs strikes beyond the ones given is NaN. Definitions and sources:
research/analytics.md §4.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from opchain.analytics.black76 import FloatArray, norm_cdf
from opchain.market.strikes import atm_strike


class Smile(NamedTuple):
    """One IV per strike, from the out-of-the-money side, against log-moneyness."""

    moneyness: FloatArray  # ln(K / F)
    iv: FloatArray  # put IV below the forward, call IV at or above it


class Wings(NamedTuple):
    """The smile at a pair of symmetric deltas (25 by default), in vol (0.01 = 1 vol point)."""

    call_iv: float  # IV where the call delta is +0.25
    put_iv: float  # IV where the put delta is -0.25
    atm_iv: float  # IV at the forward
    risk_reversal: float  # call_iv - put_iv (negative when puts are bid, as usual for indices)
    butterfly: float  # (call_iv + put_iv) / 2 - atm_iv


class ExpectedMove(NamedTuple):
    """The market's expected move to expiry, read off the ATM straddle."""

    strike: float  # the ATM strike: the listed strike nearest the forward
    straddle: float  # call + put price there, in index points (≈ E|S_T − F|)
    percent: float  # 100 · straddle / spot


def smile(strikes: ArrayLike, forward: float, call_iv: ArrayLike, put_iv: ArrayLike) -> Smile:
    """The OTM smile: the put's IV for strikes below the forward, the call's at or above.

    An out-of-the-money option is all time value and usually the more traded one, so its IV is
    the cleaner of the two. A strike whose OTM leg has no IV gets NaN (no fallback to the ITM leg).
    """
    k = np.asarray(strikes, dtype=np.float64)
    iv = np.where(k >= forward, np.asarray(call_iv, np.float64), np.asarray(put_iv, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        moneyness = np.log(k / forward)
    return Smile(np.asarray(moneyness, dtype=np.float64), np.asarray(iv, dtype=np.float64))


def atm_iv(strikes: ArrayLike, iv: ArrayLike, forward: float) -> float:
    """IV at the forward, interpolated linearly in ln K between the strikes around it.

    Strikes with NaN IV are skipped; NaN when the forward lies outside the strikes that have one.
    """
    k = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(iv, dtype=np.float64)
    ok = np.isfinite(v) & (k > 0)
    k, v = k[ok], v[ok]
    if k.size == 0 or not k[0] <= forward <= k[-1]:
        return np.nan
    return float(np.interp(np.log(forward), np.log(k), v))


def atm_term_structure(
    strikes: Sequence[ArrayLike], ivs: Sequence[ArrayLike], forwards: ArrayLike
) -> FloatArray:
    """ATM IV of each expiry (``atm_iv`` at that expiry's forward), nearest expiry first."""
    f = np.asarray(forwards, dtype=np.float64)
    if not len(strikes) == len(ivs) == f.size:
        raise ValueError("need one strike array, one IV array and one forward per expiry")
    return np.array([atm_iv(k, v, x) for k, v, x in zip(strikes, ivs, f, strict=True)])


def iv_at_maturity(t: ArrayLike, iv: ArrayLike, target: float) -> float:
    """Constant-maturity IV: the term structure at ``target`` years, interpolated linearly in
    total variance σ²·t between the two expiries around it (the series for IV rank when expiries
    roll). NaN outside the expiries given or when one of the two has no IV.
    """
    tt = np.asarray(t, dtype=np.float64)
    v = np.asarray(iv, dtype=np.float64)
    order = np.argsort(tt)
    tt, v = tt[order], v[order]
    if tt.size == 0 or not tt[0] <= target <= tt[-1] or target <= 0:
        return np.nan
    return float(np.sqrt(np.interp(target, tt, v * v * tt) / target))


def wings(
    strikes: ArrayLike, iv: ArrayLike, forward: float, t: float, delta: float = 0.25
) -> Wings:
    """Risk reversal and butterfly at ``delta`` (0.25: the 25-delta RR and BF).

    Delta is Black-76's forward delta without discounting: N(d1) for calls, N(d1) − 1 for puts,
    each strike with its own IV from ``iv`` (the OTM smile, ``smile(...).iv``). The call wing
    is found among strikes at or above the forward, the put wing among those at or below, by
    interpolating IV linearly in delta; a wing whose delta is not reached gives NaN. ATM is the
    forward (``atm_iv``). A flat smile gives RR = BF = 0.
    """
    if not 0 < delta < 0.5:
        raise ValueError(f"delta must lie in (0, 0.5), got {delta}")
    k = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(iv, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = v * np.sqrt(t)
        call_delta = norm_cdf(np.log(forward / k) / s + 0.5 * s)
    ok = np.isfinite(call_delta) & (s > 0)
    # The put at delta −d is the strike whose call delta is 1 − d (put-call parity on deltas).
    call = _iv_at_delta(call_delta, v, ok & (k >= forward), delta)
    put = _iv_at_delta(call_delta, v, ok & (k <= forward), 1.0 - delta)
    atm = atm_iv(k, v, forward)
    return Wings(call, put, atm, call - put, 0.5 * (call + put) - atm)


def expected_move(
    strikes: ArrayLike,
    call_price: ArrayLike,
    put_price: ArrayLike,
    spot: float,
    forward: float | None = None,
) -> ExpectedMove:
    """The ATM straddle as the expected move to expiry, in points and as a percent of spot.

    The ATM strike is the listed strike nearest the forward (spot when no forward is given;
    a tie goes up, as ``market.strikes.atm_strike``). An ATM-forward straddle is worth about
    √(2/π)·F·σ√T ≈ 0.8 of a one-sigma move: it prices the expected ABSOLUTE move E|S_T − F|, so
    a 1σ move is about 1.25 × straddle (research/analytics.md §4). This returns the straddle
    itself, NaN when either leg has no price.
    """
    k = np.asarray(strikes, dtype=np.float64)
    if k.size == 0:
        return ExpectedMove(np.nan, np.nan, np.nan)
    strike = atm_strike(k.tolist(), spot if forward is None else forward)
    at = int(np.searchsorted(k, strike))
    straddle = float(np.asarray(call_price, np.float64)[at] + np.asarray(put_price, np.float64)[at])
    return ExpectedMove(strike, straddle, 100.0 * straddle / spot)


def _iv_at_delta(
    call_delta: FloatArray, iv: FloatArray, eligible: NDArray[np.bool_], target: float
) -> float:
    x, y = call_delta[eligible], iv[eligible]
    if x.size == 0 or not x.min() <= target <= x.max():
        return np.nan
    order = np.argsort(x, kind="stable")
    return float(np.interp(target, x[order], y[order]))
