"""Black-Scholes on spot and the NSE-compatible IV (analytics.md §3.1, §3.4)."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from opchain.analytics.black76 import black76_price, implied_vol
from opchain.analytics.bs import (
    NSE_RATE,
    bs_implied_vol,
    bs_implied_vol_reasons,
    bs_price,
    nse_implied_vol,
    nse_implied_vol_reasons,
)

SPOT = 24_000.0


def reference_price(
    spot: float, strike: float, t: float, vol: float, is_call: bool, r: float, q: float = 0.0
) -> float:
    """Black-Scholes-Merton written out independently with the math module."""

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    s = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (r - q) * t + 0.5 * s * s) / s
    d2 = d1 - s
    spot_leg, strike_leg = spot * math.exp(-q * t), strike * math.exp(-r * t)
    if is_call:
        return spot_leg * cdf(d1) - strike_leg * cdf(d2)
    return strike_leg * cdf(-d2) - spot_leg * cdf(-d1)


def bounds(spot: float, strike: float, t: float, is_call: bool, r: float, q: float) -> tuple:
    """No-arbitrage bounds of a European option on spot: (lower, upper)."""
    spot_leg, strike_leg = spot * math.exp(-q * t), strike * math.exp(-r * t)
    if is_call:
        return max(spot_leg - strike_leg, 0.0), spot_leg
    return max(strike_leg - spot_leg, 0.0), strike_leg


moneyness = st.floats(0.8, 1.2)
days = st.floats(1.0, 90.0)
vols = st.floats(0.08, 0.6)
rates = st.floats(0.0, 0.12)
yields = st.floats(0.0, 0.03)


@settings(max_examples=300, deadline=None)
@given(moneyness, days, vols, st.booleans(), rates, yields)
def test_price_matches_the_reference_and_the_iv_round_trips(
    ratio: float, day_count: float, vol: float, is_call: bool, r: float, q: float
) -> None:
    strike, t = SPOT * ratio, day_count / 365
    expected = reference_price(SPOT, strike, t, vol, is_call, r, q)
    price = float(bs_price(SPOT, strike, t, vol, is_call, r, q))
    assert price == pytest.approx(expected, rel=1e-11, abs=1e-9)
    assume(price - bounds(SPOT, strike, t, is_call, r, q)[0] >= 0.05)  # one tick of time value

    iv = float(bs_implied_vol(price, SPOT, strike, t, is_call, r, q))

    assert abs(iv - vol) <= 1e-10
    repriced = float(bs_price(SPOT, strike, t, iv, is_call, r, q))
    assert abs(repriced - price) <= 1e-9 * max(1.0, price)
    assert bs_implied_vol_reasons(price, SPOT, strike, t, is_call, r, q) == ""


@given(st.floats(100.0, 100_000.0), st.floats(0.5, 2.0), st.floats(1e-3, 2.0), vols, rates, yields)
def test_put_call_parity(
    spot: float, ratio: float, t: float, vol: float, r: float, q: float
) -> None:
    strike = spot * ratio
    call = float(bs_price(spot, strike, t, vol, True, r, q))
    put = float(bs_price(spot, strike, t, vol, False, r, q))
    parity = spot * math.exp(-q * t) - strike * math.exp(-r * t)
    assert call - put == pytest.approx(parity, abs=1e-11 * (spot + strike))


@given(moneyness, st.floats(1e-3, 2.0), st.floats(0.01, 2.0), st.booleans(), rates, yields)
def test_price_lies_within_the_no_arbitrage_bounds(
    ratio: float, t: float, vol: float, is_call: bool, r: float, q: float
) -> None:
    strike = SPOT * ratio
    lower, upper = bounds(SPOT, strike, t, is_call, r, q)
    price = float(bs_price(SPOT, strike, t, vol, is_call, r, q))
    slack = 1e-12 * SPOT
    assert lower - slack <= price <= upper + slack


@given(st.floats(1e-3, 1.0), rates, yields)
def test_price_rises_with_vol_and_a_call_falls_with_strike(t: float, r: float, q: float) -> None:
    strikes = SPOT * np.linspace(0.9, 1.1, 41)
    vol = np.linspace(0.05, 1.0, 40)[:, None, None]
    is_call = np.array([True, False])[:, None]
    prices = bs_price(SPOT, strikes, t, vol, is_call, r, q)
    lower = np.maximum(
        np.where(is_call, 1.0, -1.0) * (SPOT * math.exp(-q * t) - strikes * math.exp(-r * t)), 0
    )
    rounding = 1e-11 * SPOT  # where the time value is below this, prices may tie or wobble
    resolved = prices - lower >= 0.05  # at least one tick of time value
    by_vol = np.diff(prices, axis=0)
    assert np.all(by_vol >= -rounding)
    assert np.all(by_vol[resolved[1:]] > 0)
    calls, puts = prices[:, 0], prices[:, 1]
    assert np.all(np.diff(calls, axis=-1) <= 0)
    assert np.all(np.diff(calls, axis=-1)[calls[:, :-1] >= 0.05] < 0)
    assert np.all(np.diff(puts, axis=-1) >= 0)
    assert np.all(np.diff(puts, axis=-1)[puts[:, 1:] >= 0.05] > 0)


@given(moneyness, days, st.booleans(), rates, st.floats(0.0, 1.0))
def test_prices_outside_the_bounds_give_nan_with_a_reason(
    ratio: float, day_count: float, is_call: bool, r: float, fraction: float
) -> None:
    strike, t = SPOT * ratio, day_count / 365
    lower, upper = bounds(SPOT, strike, t, is_call, r, 0.0)
    # Up to 1e-9 inside each bound: exactly at it, this test's rounding and the library's
    # (which works on the forward, S·e^(r·t)) may fall on different sides.
    below = lower * (1.0 - 1e-9) * fraction
    above = upper * (1.0 + 1e-9) * (1.0 + fraction)
    args = (SPOT, strike, t, is_call, r)
    if below > 0:
        assert np.isnan(bs_implied_vol(below, *args))
        assert bs_implied_vol_reasons(below, *args) == "below_intrinsic"
    assert np.isnan(bs_implied_vol(above, *args))
    assert bs_implied_vol_reasons(above, *args) == "above_upper_bound"


def test_black_scholes_is_black76_on_the_carried_forward() -> None:
    strikes = SPOT * np.linspace(0.8, 1.2, 9)
    t, r, q = 30 / 365, 0.065, 0.012
    forward, discount = SPOT * math.exp((r - q) * t), math.exp(-r * t)
    for is_call in (True, False):
        spot_price = bs_price(SPOT, strikes, t, 0.2, is_call, r, q)
        np.testing.assert_allclose(
            spot_price, black76_price(forward, strikes, t, 0.2, is_call, discount), rtol=1e-13
        )
        np.testing.assert_allclose(
            bs_implied_vol(spot_price, SPOT, strikes, t, is_call, r, q),
            implied_vol(spot_price, forward, strikes, t, is_call, discount),
            rtol=1e-13,
        )


def test_textbook_value() -> None:
    # Hull: S = 42, K = 40, r = 10%, sigma = 20%, T = 0.5 -> call 4.76, put 0.81.
    assert float(bs_price(42.0, 40.0, 0.5, 0.2, True, 0.1)) == pytest.approx(4.76, abs=0.005)
    assert float(bs_price(42.0, 40.0, 0.5, 0.2, False, 0.1)) == pytest.approx(0.81, abs=0.005)


def test_bad_rates_and_times_give_reasons_without_floating_point_errors() -> None:
    rate = np.array([math.nan, math.inf, 0.1, 0.1])
    t = np.array([0.1, 0.1, 0.0, -0.1])
    with np.errstate(all="raise"):
        iv = bs_implied_vol(100.0, SPOT, SPOT, t, True, rate)
        reasons = bs_implied_vol_reasons(100.0, SPOT, SPOT, t, True, rate)
        bs_price(SPOT, SPOT, t, 0.2, True, rate)
    assert np.isnan(iv).all()
    assert reasons.tolist() == [
        "invalid_input",
        "invalid_input",
        "non_positive_time",
        "non_positive_time",
    ]


# --- the NSE convention ------------------------------------------------------------------------


def test_nse_mode_is_black_scholes_on_spot_at_ten_percent() -> None:
    assert NSE_RATE == 0.10
    strikes = SPOT * np.array([0.95, 1.0, 1.05])
    t = 7 / 365
    prices = bs_price(SPOT, strikes, t, 0.14, [[True], [False]], NSE_RATE)
    np.testing.assert_allclose(nse_implied_vol(prices, SPOT, strikes, t, [[True], [False]]), 0.14)
    assert (nse_implied_vol_reasons(prices, SPOT, strikes, t, [[True], [False]]) == "").all()


def test_nse_mode_splits_call_and_put_ivs_when_the_carry_is_not_ten_percent() -> None:
    # analytics.md §3.4: prices from Black-76 with a 6% carry and 13% vol, inverted NSE-style.
    t = 30 / 365
    forward, discount = SPOT * math.exp(0.06 * t), math.exp(-0.06 * t)
    call = black76_price(forward, SPOT, t, 0.13, True, discount)
    put = black76_price(forward, SPOT, t, 0.13, False, discount)
    call_iv = float(nse_implied_vol(call, SPOT, SPOT, t, True))
    put_iv = float(nse_implied_vol(put, SPOT, SPOT, t, False))
    assert call_iv == pytest.approx(0.1134, abs=5e-4)
    assert put_iv == pytest.approx(0.1428, abs=5e-4)
    # Deep in the money on a 2-day call, the Black-76 price is below NSE's intrinsic value.
    short, strike = 2 / 365, 23_500.0
    forward_short = SPOT * math.exp(0.06 * short)
    price = black76_price(forward_short, strike, short, 0.13, True, math.exp(-0.06 * short))
    assert np.isnan(nse_implied_vol(price, SPOT, strike, short, True))
    assert nse_implied_vol_reasons(price, SPOT, strike, short, True) == "below_intrinsic"
