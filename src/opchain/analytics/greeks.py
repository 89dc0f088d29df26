"""Greeks of European options, vectorized: Black-76 on a forward and Black-Scholes on spot.

Units, the same for both models (every value is for one unit of the underlying, long one option):

- ``delta``  ∂V/∂F (Black-76: with respect to the FORWARD) or ∂V/∂S (Black-Scholes: the SPOT).
- ``gamma``  ∂²V/∂F² or ∂²V/∂S², per unit of the underlying (not per 1%).
- ``theta``  ∂V/∂t, PER YEAR of calendar time (t = now, so theta = -∂V/∂τ with τ the time to
  expiry); divide by 365 for per calendar day. The forward (Black-76) or the spot (Black-Scholes)
  and the rates are held fixed as time passes; the discount factor follows exp(-r·τ).
- ``vega``   ∂V/∂σ, per 1.00 of volatility (σ = 0.15 for 15%); divide by 100 for per vol point.
- ``rho``    ∂V/∂r, per 1.00 of rate (r = 0.07 for 7%); divide by 100 for per 1% of rate.
  Black-76 holds the forward fixed, so only discounting moves: rho = -τ·V. Black-Scholes holds
  the spot fixed, so the forward e^((r-q)τ)·S moves too.
- ``vanna``  ∂Δ/∂σ = ∂vega/∂F (or ∂S), per 1.00 of volatility.
- ``charm``  -∂Δ/∂τ = ∂Δ/∂t, PER YEAR: how delta changes as calendar time passes, the
  underlying held fixed (the Haug/Wikipedia sign; some libraries return +∂Δ/∂τ).

Inputs as in ``black76``: ``t`` = τ in years, ``discount`` = exp(-r·τ) (the rate it implies,
r = -ln(discount)/τ, is what theta and charm hold fixed). Every argument broadcasts; every field
is a float64 array of the broadcast shape. A field is NaN where an input is NaN or infinite, where
the forward, strike or discount is not positive, or where τ ≤ 0 or σ ≤ 0 (no smooth Greeks there).
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from opchain.analytics.black76 import FloatArray

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


class Greeks(NamedTuple):
    """Sensitivities of one option on one unit of the underlying; units in the module docstring.
    "Underlying" is the forward for ``greeks`` (Black-76) and the spot for ``bs_greeks``."""

    delta: FloatArray  # ∂V/∂underlying
    gamma: FloatArray  # ∂²V/∂underlying²
    theta: FloatArray  # ∂V/∂t per YEAR of calendar time (/365 for per day)
    vega: FloatArray  # ∂V/∂σ per 1.00 of vol (/100 for per vol point)
    rho: FloatArray  # ∂V/∂r per 1.00 of rate (/100 for per 1%)
    vanna: FloatArray  # ∂delta/∂σ per 1.00 of vol
    charm: FloatArray  # -∂delta/∂τ = ∂delta/∂t per YEAR of calendar time


def greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    discount: ArrayLike = 1.0,
) -> Greeks:
    """Black-76 Greeks; delta, gamma, vanna and charm are with respect to the forward."""
    f, k, tt, sigma, df = (
        np.asarray(x, dtype=np.float64) for x in (forward, strike, t, vol, discount)
    )
    with np.errstate(all="ignore"):
        rate = -np.log(df) / tt
        return _black76_greeks(f, k, tt, sigma, is_call, df, rate)


def bs_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
) -> Greeks:
    """Black-Scholes Greeks on spot with continuous rate ``r`` and dividend yield ``q``; delta,
    gamma, vanna and charm are with respect to the spot.

    Derived from the Black-76 Greeks at F = S·e^((r-q)τ), D = e^(-rτ) by the chain rule, since
    ∂F/∂S = e^((r-q)τ), ∂F/∂τ = (r-q)·F and ∂F/∂r = τ·F.
    """
    s, k, tt, sigma, rr, qq = (
        np.asarray(x, dtype=np.float64) for x in (spot, strike, t, vol, r, q)
    )
    with np.errstate(all="ignore"):
        carry = rr - qq
        growth = np.exp(carry * tt)  # ∂F/∂S
        f = s * growth
        b = _black76_greeks(f, k, tt, sigma, is_call, np.exp(-rr * tt), rr)
        delta_f_times_f = b.delta * f
        return Greeks(
            delta=np.asarray(b.delta * growth, dtype=np.float64),
            gamma=np.asarray(b.gamma * growth * growth, dtype=np.float64),
            theta=np.asarray(b.theta - carry * delta_f_times_f, dtype=np.float64),
            vega=b.vega,
            rho=np.asarray(b.rho + tt * delta_f_times_f, dtype=np.float64),
            vanna=np.asarray(b.vanna * growth, dtype=np.float64),
            charm=np.asarray(
                growth * (b.charm - carry * (b.gamma * f + b.delta)), dtype=np.float64
            ),
        )


def gamma(
    forward: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike, discount: ArrayLike = 1.0
) -> FloatArray:
    """Black-76 gamma alone (the same for a call and a put), equal to ``greeks(...).gamma``.

    Gamma exposure re-evaluates gamma at hundreds of levels of the underlying for every strike;
    computing only this field there is several times cheaper than all seven Greeks.
    """
    f, k, tt, sigma, df = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (forward, strike, t, vol, discount))
    )
    with np.errstate(all="ignore"):
        valid = np.isfinite(f + k + tt + sigma + df)
        valid &= (f > 0) & (k > 0) & (df > 0) & (tt > 0) & (sigma > 0)
        s = sigma * np.sqrt(tt)
        d1 = np.log(f / k) / s + 0.5 * s
        value = df * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1) / (f * s)
    return np.asarray(np.where(valid, value, np.nan), dtype=np.float64)


def _black76_greeks(
    f: FloatArray,
    k: FloatArray,
    tt: FloatArray,
    sigma: FloatArray,
    is_call: ArrayLike,
    df: FloatArray,
    rate: FloatArray,
) -> Greeks:
    """The Black-76 Greeks, with ``rate`` the constant rate behind ``df`` (for theta and charm).
    Caller holds np.errstate."""
    f, k, tt, sigma, df, rate, sign = np.broadcast_arrays(
        f, k, tt, sigma, df, rate, np.where(is_call, 1.0, -1.0)
    )
    finite = np.isfinite(f + k + tt + sigma + df + rate)
    valid = finite & (f > 0) & (k > 0) & (df > 0) & (tt > 0) & (sigma > 0)
    sqrt_t = np.sqrt(tt)
    s = sigma * sqrt_t
    d1 = np.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    cdf1 = ndtr(sign * d1)
    pdf1 = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    df_pdf1 = df * pdf1
    delta = sign * df * cdf1
    value = delta * f - sign * df * k * ndtr(sign * d2)
    vega = df_pdf1 * f * sqrt_t
    half_over_t = 0.5 / tt
    fields = (
        delta,
        df_pdf1 / (f * s),  # gamma
        rate * value - vega * sigma * half_over_t,  # theta = -∂V/∂τ
        vega,
        -tt * value,  # rho at a fixed forward
        -df_pdf1 * d2 / sigma,  # vanna
        rate * delta + df_pdf1 * d2 * half_over_t,  # charm = -∂Δ/∂τ
    )
    return Greeks(*(np.asarray(np.where(valid, x, np.nan), dtype=np.float64) for x in fields))
