"""Black-Scholes on spot, and the NSE-compatible implied volatility.

Black-Scholes with a continuous rate ``r`` and dividend yield ``q`` is Black-76 on the forward
F = S·e^((r-q)·t) with discount factor e^(-r·t), so every function here maps its inputs and calls
the Black-76 function of the same name: one solver, one set of edge cases. Rates are per year,
continuously compounded; ``t`` is in years (``expiry_time.years_to_expiry``). Every argument
broadcasts. Greeks on spot are ``greeks.bs_greeks``.

NSE's option chain publishes IVs from Black-Scholes on the index spot ("Underlying Value") with a
fixed 10% rate and no dividend yield (analytics.md §3.1). ``nse_implied_vol`` reproduces that
convention for reconciling with NSE; it splits call and put IVs wherever the market's carry is not
10% (analytics.md §3.4), so the pipeline's default is Black-76 on a parity-implied forward.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray

from opchain.analytics.black76 import FloatArray, black76_price, implied_vol, implied_vol_reasons

NSE_RATE = 0.10  # the fixed rate behind NSE's published IVs; q = 0


def bs_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
) -> FloatArray:
    """Black-Scholes price of a European option on spot (zero vol or time: discounted intrinsic
    value of the forward, max(±(S·e^(-q·t) - K·e^(-r·t)), 0); negative vol or time: NaN)."""
    forward, discount = _forward_and_discount(spot, t, r, q)
    return black76_price(forward, strike, t, vol, is_call, discount)


def bs_implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
) -> FloatArray:
    """Black-Scholes implied volatility on spot; NaN where none fits, for the reason that
    ``bs_implied_vol_reasons`` gives."""
    forward, discount = _forward_and_discount(spot, t, r, q)
    return implied_vol(price, forward, strike, t, is_call, discount)


def bs_implied_vol_reasons(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    is_call: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
) -> NDArray[np.str_]:
    """Why ``bs_implied_vol`` is NaN, with the codes of ``black76.implied_vol_reasons``; there
    "below_intrinsic" means at or below max(±(S·e^(-q·t) - K·e^(-r·t)), 0), "above_upper_bound" at
    or above S·e^(-q·t) for a call and K·e^(-r·t) for a put, and a NaN or infinite rate or yield
    is "invalid_input"."""
    forward, discount = _forward_and_discount(spot, t, r, q)
    return implied_vol_reasons(price, forward, strike, t, is_call, discount)


def nse_implied_vol(
    price: ArrayLike, spot: ArrayLike, strike: ArrayLike, t: ArrayLike, is_call: ArrayLike
) -> FloatArray:
    """Implied volatility the way NSE's option chain computes it: Black-Scholes on the spot with
    r = ``NSE_RATE`` (10%) and q = 0. Reasons for NaN: ``nse_implied_vol_reasons``."""
    return bs_implied_vol(price, spot, strike, t, is_call, NSE_RATE)


def nse_implied_vol_reasons(
    price: ArrayLike, spot: ArrayLike, strike: ArrayLike, t: ArrayLike, is_call: ArrayLike
) -> NDArray[np.str_]:
    """Why ``nse_implied_vol`` is NaN (see ``bs_implied_vol_reasons``)."""
    return bs_implied_vol_reasons(price, spot, strike, t, is_call, NSE_RATE)


def _forward_and_discount(
    spot: ArrayLike, t: ArrayLike, r: ArrayLike, q: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """F = S·e^((r-q)·t) and D = e^(-r·t). A NaN rate or yield gives a NaN forward and discount,
    which the Black-76 functions treat as invalid input."""
    s, tt, rr, qq = (np.asarray(x, dtype=np.float64) for x in (spot, t, r, q))
    with np.errstate(all="ignore"):
        return s * np.exp((rr - qq) * tt), np.exp(-rr * tt)
