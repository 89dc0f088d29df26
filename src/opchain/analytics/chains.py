"""Chain analytics of many expiries at once: one row per expiry, strikes on the last axis.

The functions of ``oi``, ``smile`` and ``gex`` define each quantity for one expiry. A snapshot
holds ten or so expiries of a dozen strikes each, and calling those functions once per expiry
costs far more in call overhead than in arithmetic (benchmarks/session.py). These compute the
same numbers for every expiry in one pass over a padded table, and the property tests in
tests/test_chains.py hold them equal to the one-expiry definitions.

Layout: ``strikes`` has shape (expiries, n), each row ascending and unique over its first
strikes, then NaN padding; every other column has the same shape, NaN where a strike or side
has no value. Per-expiry inputs (spot, forward, t) have shape (expiries,).
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from opchain.analytics.along import take_last
from opchain.analytics.black76 import FloatArray
from opchain.analytics.gex import dealer_legs


class Straddles(NamedTuple):
    strike: FloatArray  # the listed strike nearest the forward (a tie goes up)
    straddle: FloatArray  # call + put there; NaN when either has no price


def put_call_ratios(put: FloatArray, call: FloatArray) -> FloatArray:
    """``oi.put_call_ratio`` per row: Σ put / Σ call, NaN when the calls sum to zero."""
    return ratios(np.nansum(put, axis=-1), np.nansum(call, axis=-1))


def ratios(puts: FloatArray, calls: FloatArray) -> FloatArray:
    """:func:`put_call_ratios` of the rows' sums (NaN counted as 0 in them)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(calls > 0, puts / calls, np.nan), dtype=np.float64)


def max_pains(strikes: FloatArray, call_oi: FloatArray, put_oi: FloatArray) -> FloatArray:
    """``oi.max_pain`` per row: the strike where holders would be paid least (ties: lowest)."""
    if strikes.shape[-1] == 0:
        return _nans(strikes)
    k, c, p = _padded(strikes, call_oi, put_oi)
    calls = k * np.cumsum(c, axis=-1) - np.cumsum(c * k, axis=-1)
    puts = _from_right(p * k) - k * _from_right(p)
    # Padding repeats the last strike with no OI: it ties with that strike and loses the tie.
    at = np.argmin(calls + puts, axis=-1)
    best = take_last(k, at[:, None])[:, 0]
    some = (c.sum(axis=-1) > 0) | (p.sum(axis=-1) > 0)
    return np.asarray(np.where(some, best, np.nan), dtype=np.float64)


def walls(
    strikes: FloatArray, call_oi: FloatArray, put_oi: FloatArray, spot: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``oi.oi_walls(..., top=1)`` per row: (resistance, support) strikes, NaN where none."""
    if strikes.shape[-1] == 0:
        return _nans(strikes), _nans(strikes)
    s = spot[:, None]
    with np.errstate(invalid="ignore"):
        resistance = _largest(strikes, call_oi, (strikes >= s) & (call_oi > 0), s)
        support = _largest(strikes, put_oi, (strikes <= s) & (put_oi > 0), s)
    return resistance, support


def atm_ivs(strikes: FloatArray, iv: FloatArray, forward: FloatArray) -> FloatArray:
    """``smile.atm_iv`` per row: IV at the forward, linear in ln K between the strikes around
    it that have an IV; NaN when the forward lies outside them."""
    if strikes.shape[-1] == 0:
        return _nans(strikes)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(iv) & (strikes > 0)
        x = np.log(forward)[:, None]
        logk = np.where(ok, np.log(np.where(ok, strikes, 1.0)), np.nan)
        # np.interp's rule: the knot j at or below x with x < knot j+1 (x at the last knot: it).
        below = ok & (logk <= x)
        above = ok & (logk > x)
    n = strikes.shape[-1]
    j = np.where(below.any(axis=-1), n - 1 - np.argmax(below[:, ::-1], axis=-1), -1)
    j1 = np.where(above.any(axis=-1), np.argmax(above, axis=-1), -1)
    rows = np.arange(strikes.shape[0])
    x0, y0 = logk[rows, j], iv[rows, j]
    x1, y1 = logk[rows, j1], iv[rows, j1]
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = (y1 - y0) / (x1 - x0) * (x[:, 0] - x0) + y0
    at_last = (j >= 0) & (j1 < 0) & (x[:, 0] == x0)  # exactly on the highest strike
    value = np.where((j >= 0) & (j1 >= 0), inside, np.where(at_last, y0, np.nan))
    return np.asarray(value, dtype=np.float64)


def straddles(strikes: FloatArray, call: FloatArray, put: FloatArray, at: FloatArray) -> Straddles:
    """``smile.expected_move``'s strike and straddle per row: the strike nearest ``at`` (the
    forward, or spot without one; a tie goes up, as ``market.strikes.atm_strike``)."""
    if strikes.shape[-1] == 0:
        return Straddles(_nans(strikes), _nans(strikes))
    count = np.count_nonzero(np.isfinite(strikes), axis=-1)
    with np.errstate(invalid="ignore"):
        i = np.count_nonzero(strikes < at[:, None], axis=-1)  # bisect_left
    rows = np.arange(strikes.shape[0])
    upper = np.minimum(i, np.maximum(count - 1, 0))
    lower = np.maximum(i - 1, 0)
    ku, kl = strikes[rows, upper], strikes[rows, lower]
    take_upper = (i == 0) | ((i < count) & (ku - at <= at - kl))
    chosen = np.where(take_upper, upper, lower)
    strike = np.where(count > 0, strikes[rows, chosen], np.nan)
    straddle = np.where(count > 0, call[rows, chosen] + put[rows, chosen], np.nan)
    return Straddles(np.asarray(strike, np.float64), np.asarray(straddle, np.float64))


def gex_totals(
    strikes: FloatArray,
    call_oi: FloatArray,
    put_oi: FloatArray,
    forward: FloatArray,
    t: FloatArray,
    call_vol: FloatArray,
    put_vol: FloatArray,
    lot_size: float,
    discount: FloatArray,
) -> FloatArray:
    """``gex.gamma_exposure(...).total`` per row (rupees per 1% move)."""
    terms = gex_terms(strikes, call_oi, put_oi, forward, t, call_vol, put_vol, lot_size, discount)
    return np.asarray(terms.sum(axis=-1), dtype=np.float64)


def gex_terms(
    strikes: FloatArray,
    call_oi: FloatArray,
    put_oi: FloatArray,
    forward: FloatArray,
    t: FloatArray,
    call_vol: FloatArray,
    put_vol: FloatArray,
    lot_size: float,
    discount: FloatArray,
) -> FloatArray:
    """What :func:`gex_totals` sums per row: each strike's share (0 where there is none)."""
    call, put = dealer_legs(
        strikes, call_oi, put_oi, forward[:, None], t[:, None], call_vol, put_vol,
        discount[:, None],
    )  # fmt: skip
    return np.asarray(call * lot_size + put * lot_size, dtype=np.float64)


def oi_changes(now: FloatArray, before: FloatArray) -> FloatArray:
    """Σ (OI now − OI at the previous close) per row, over strikes known both times; NaN if
    there are none."""
    terms, seen = oi_change_terms(now, before)
    return oi_change_totals(terms.sum(axis=-1), seen)


def oi_change_terms(now: FloatArray, before: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """What :func:`oi_changes` sums per row (0 where a strike is not known both times), and
    whether the row knows any strike both times."""
    seen = np.isfinite(now) & np.isfinite(before)
    terms = np.where(seen, now - np.where(seen, before, 0.0), 0.0)
    return np.asarray(terms, dtype=np.float64), np.asarray(seen.any(axis=-1))


def oi_change_totals(totals: FloatArray, seen: NDArray[np.bool_]) -> FloatArray:
    """:func:`oi_changes` from the rows' sums of :func:`oi_change_terms`."""
    return np.asarray(np.where(seen, totals, np.nan), dtype=np.float64)


def _nans(strikes: FloatArray) -> FloatArray:
    """One NaN per row: the answer for rows that have no strikes at all."""
    return np.full(strikes.shape[0], np.nan)


def _padded(strikes: FloatArray, *columns: FloatArray) -> tuple[FloatArray, ...]:
    """Padding strikes repeat each row's last strike; NaN values become 0 (no OI)."""
    valid = np.isfinite(strikes)
    last = np.maximum(np.count_nonzero(valid, axis=-1) - 1, 0)
    fill = take_last(strikes, last[:, None])
    k = np.where(valid, strikes, fill)
    k = np.where(np.isnan(k), 0.0, k)  # a row with no strikes at all
    return (k, *(np.where(np.isnan(c) | ~valid, 0.0, c) for c in columns))


def _from_right(x: FloatArray) -> FloatArray:
    return np.asarray(np.cumsum(x[:, ::-1], axis=-1)[:, ::-1], dtype=np.float64)


def _largest(
    strikes: FloatArray, oi: FloatArray, eligible: NDArray[np.bool_], spot: FloatArray
) -> FloatArray:
    """The eligible strike with the largest OI; ties to the one nearer spot, then the lower."""
    top = np.max(np.where(eligible, oi, -np.inf), axis=-1, keepdims=True)
    pick = eligible & (oi == top)
    distance = np.where(pick, np.abs(strikes - spot), np.inf)
    pick &= distance == distance.min(axis=-1, keepdims=True)
    first = np.argmax(pick, axis=-1)  # strikes ascend: the first is the lowest
    found = pick.any(axis=-1)
    value = take_last(strikes, first[:, None])[:, 0]
    return np.asarray(np.where(found, value, np.nan), dtype=np.float64)
