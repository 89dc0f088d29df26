"""The forward implied by put-call parity, and one implied volatility per strike.

Black-76 needs a forward per expiry. Weekly index expiries have no future of their own, so the
pipeline takes the forward the options themselves imply (analytics.md §3.4): by put-call parity
C - P = D·(F - K), so each strike with both legs quoted gives F = K + (C - P)/D. Deep strikes are
noisy (one leg is almost all intrinsic value, the other a tick or two), so only the strikes where
|C - P| is smallest, i.e. nearest the forward, are used, combined by their median.

Arrays are laid out with strikes on the last axis and, optionally, expiries on the leading axes
(pad a shorter expiry with NaN prices). Prices are whatever the caller trusts as the option's
value, typically mid quotes or last trade prices of the same minute.
"""

import numpy as np
from numpy.typing import ArrayLike

from opchain.analytics.along import take_last
from opchain.analytics.black76 import FloatArray

NEAREST_STRIKES = 3  # strikes with the smallest |C - P| that vote for the forward


def parity_forward(
    strike: ArrayLike,
    call: ArrayLike,
    put: ArrayLike,
    discount: ArrayLike = 1.0,
    nearest: int = NEAREST_STRIKES,
) -> FloatArray:
    """Forward per expiry from put-call parity: the median of K + (C - P)/D over the ``nearest``
    usable strikes with the smallest |C - P|.

    ``strike``, ``call`` and ``put`` broadcast together, strikes on the last axis; ``discount``
    (e^(-r·t)) is a scalar or one per expiry, of the leading shape. A strike is usable when its
    strike and both prices are finite and positive. The result has the leading shape (a 0-d
    array for one expiry) and is NaN for an expiry with no usable strike, or a non-positive or
    non-finite discount. With fewer usable strikes than ``nearest``, the median is over those.
    """
    if nearest < 1:
        raise ValueError(f"nearest must be at least 1, received {nearest}")
    k, c, p = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (strike, call, put)))
    df = np.expand_dims(np.asarray(discount, dtype=np.float64), -1)
    with np.errstate(all="ignore"):
        usable = (k > 0) & (c > 0) & (p > 0) & (df > 0) & np.isfinite(k + c + p + df)
        difference = c - p
        candidate = np.where(usable, k + difference / df, np.nan)
        distance = np.where(usable, np.abs(difference), np.inf)
    k, candidate, distance = np.broadcast_arrays(k, candidate, distance)
    if k.shape[-1] == 0:
        return np.asarray(np.full(k.shape[:-1], np.nan))
    order = np.argsort(distance, axis=-1, kind="stable")[..., :nearest]
    # NaN (unusable) candidates sort last, so the first `count` of each row are the usable ones.
    votes = np.sort(take_last(candidate, order), axis=-1)
    count = np.count_nonzero(np.isfinite(votes), axis=-1)[..., None]
    middle = np.maximum(count - 1, 0)
    lower = take_last(votes, middle // 2)
    upper = take_last(votes, count // 2)
    with np.errstate(invalid="ignore"):
        median = np.where(count > 0, 0.5 * (lower + upper), np.nan)[..., 0]
    return np.asarray(median, dtype=np.float64)


def otm_implied_vol(
    strike: ArrayLike, forward: ArrayLike, call_iv: ArrayLike, put_iv: ArrayLike
) -> FloatArray:
    """One implied volatility per strike, from the out-of-the-money leg: the put's below the
    forward, the call's at or above it.

    The out-of-the-money leg is all time value, so its IV is the better determined one; an
    in-the-money leg is mostly intrinsic value, wider quoted and thinly traded. There is no
    fallback to the other leg: NaN where the out-of-the-money IV is NaN, or the forward is.
    ``forward`` broadcasts against the strikes (shape (..., 1) for one per expiry).
    """
    k, f, c, p = (np.asarray(x, dtype=np.float64) for x in (strike, forward, call_iv, put_iv))
    chosen = np.where(k < f, p, np.where(k >= f, c, np.nan))  # a NaN forward chooses neither
    return np.asarray(chosen, dtype=np.float64)
