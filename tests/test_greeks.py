"""Greeks of both models against central finite differences of their prices (analytics.md §4).

First-order Greeks (delta, theta, vega, rho) are differenced from the price; second-order ones
(gamma, vanna, charm) from the analytic delta, which the delta test has already checked. Steps
are relative to the natural scale of each variable, and every comparison is relative to the
natural size of that Greek (an at-the-money value), so far out-of-the-money options are held to
the same absolute standard without dividing by numbers near zero.
"""

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.analytics.black76 import black76_price
from opchain.analytics.bs import bs_price
from opchain.analytics.greeks import Greeks, bs_greeks, gamma, greeks

TOLERANCE = 1e-6  # relative to each Greek's natural scale; the differences are good to ~1e-8

Pricer = Callable[[float, float, float, float], float]  # (underlying, tau, vol, rate) -> value


def central(fn: Callable[[float], float], x: float, h: float) -> float:
    return (fn(x + h) - fn(x - h)) / (2 * h)


def check_against_differences(
    underlying: float,
    t: float,
    vol: float,
    rate: float,
    price: Pricer,
    delta_of: Pricer,
    analytic: Greeks,
    discount: float,
) -> None:
    """Compare ``analytic`` with differences of ``price`` and ``delta_of`` at one point."""
    s = vol * math.sqrt(t)
    dx, dt, dv, dr = 1e-4 * underlying * s, 1e-4 * t, 1e-4 * vol, 1e-5
    numeric = {
        "delta": central(lambda x: price(x, t, vol, rate), underlying, dx),
        "theta": -central(lambda tau: price(underlying, tau, vol, rate), t, dt),
        "vega": central(lambda v: price(underlying, t, v, rate), vol, dv),
        "rho": central(lambda r: price(underlying, t, vol, r), rate, dr),
        "gamma": central(lambda x: delta_of(x, t, vol, rate), underlying, dx),
        "vanna": central(lambda v: delta_of(underlying, t, v, rate), vol, dv),
        "charm": -central(lambda tau: delta_of(underlying, tau, vol, rate), t, dt),
    }
    value_scale = underlying * s  # an at-the-money option is worth ~0.4 of this
    scale = {
        "delta": 1.0,
        "gamma": 1.0 / (underlying * s),
        "theta": value_scale / t,
        "vega": underlying * math.sqrt(t),
        "rho": t * underlying,
        "vanna": 1.0 / vol,
        "charm": (1.0 + abs(rate) * t) / t,
    }
    for name, value in numeric.items():
        exact = float(getattr(analytic, name))
        assert abs(exact - value) <= TOLERANCE * scale[name] * max(1.0, discount), name


domain = {
    "ratio": st.floats(0.7, 1.4),
    "t": st.floats(1 / 365, 2.0),
    "vol": st.floats(0.05, 1.0),
    "rate": st.floats(-0.02, 0.15),
    "is_call": st.booleans(),
}


@settings(max_examples=300, deadline=None)
@given(**domain)
def test_black76_greeks_match_finite_differences(
    ratio: float, t: float, vol: float, rate: float, is_call: bool
) -> None:
    forward, strike = 24_000.0, 24_000.0 * ratio

    def price(f: float, tau: float, v: float, r: float) -> float:
        return float(black76_price(f, strike, tau, v, is_call, math.exp(-r * tau)))

    def delta_of(f: float, tau: float, v: float, r: float) -> float:
        return float(greeks(f, strike, tau, v, is_call, math.exp(-r * tau)).delta)

    discount = math.exp(-rate * t)
    analytic = greeks(forward, strike, t, vol, is_call, discount)
    check_against_differences(forward, t, vol, rate, price, delta_of, analytic, discount)


@settings(max_examples=300, deadline=None)
@given(**domain, q=st.floats(0.0, 0.05))
def test_black_scholes_greeks_match_finite_differences(
    ratio: float, t: float, vol: float, rate: float, is_call: bool, q: float
) -> None:
    spot, strike = 24_000.0, 24_000.0 * ratio

    def price(x: float, tau: float, v: float, r: float) -> float:
        return float(bs_price(x, strike, tau, v, is_call, r, q))

    def delta_of(x: float, tau: float, v: float, r: float) -> float:
        return float(bs_greeks(x, strike, tau, v, is_call, r, q).delta)

    analytic = bs_greeks(spot, strike, t, vol, is_call, rate, q)
    check_against_differences(spot, t, vol, rate, price, delta_of, analytic, 1.0)


# --- known values and conventions --------------------------------------------------------------


def test_black_scholes_textbook_values() -> None:
    # Hull, Options, Futures and Other Derivatives: S = 49, K = 50, r = 5%, sigma = 20%,
    # T = 20 weeks, call: delta 0.522, gamma 0.066, vega 12.1 (per 1.00), theta -4.31 per year,
    # rho 8.91 (per 1.00).
    g = bs_greeks(49.0, 50.0, 0.3846, 0.20, True, 0.05)
    assert float(g.delta) == pytest.approx(0.522, abs=5e-4)
    assert float(g.gamma) == pytest.approx(0.066, abs=5e-4)
    assert float(g.vega) == pytest.approx(12.1, abs=0.05)
    assert float(g.theta) == pytest.approx(-4.31, abs=0.005)
    assert float(g.rho) == pytest.approx(8.91, abs=0.005)


def test_put_and_call_greeks_differ_as_parity_says() -> None:
    # C - P = D·(F - K): the difference is linear in F and free of sigma.
    strikes = np.linspace(20_000.0, 28_000.0, 9)
    t, discount = 30 / 365, math.exp(-0.07 * 30 / 365)
    call = greeks(24_000.0, strikes, t, 0.2, True, discount)
    put = greeks(24_000.0, strikes, t, 0.2, False, discount)
    np.testing.assert_allclose(call.delta - put.delta, discount, rtol=1e-12)
    for name in ("gamma", "vega", "vanna"):
        np.testing.assert_allclose(getattr(call, name), getattr(put, name), rtol=1e-12)
    np.testing.assert_allclose(call.charm - put.charm, 0.07 * discount, rtol=1e-9)


def test_charm_is_the_change_of_delta_as_calendar_time_passes() -> None:
    # An out-of-the-money call loses delta as expiry nears: charm < 0 (opengreeks has +).
    g = greeks(24_000.0, 25_000.0, 10 / 365, 0.15, True)
    later = greeks(24_000.0, 25_000.0, 9 / 365, 0.15, True)
    assert float(g.charm) < 0
    assert float(later.delta - g.delta) == pytest.approx(float(g.charm) / 365, rel=0.05)


def test_fields_broadcast_to_one_shape() -> None:
    strikes = np.array([23_000.0, 24_000.0, 25_000.0])
    is_call = np.array([[True], [False]])
    for result in (
        greeks(24_000.0, strikes, 7 / 365, 0.15, is_call),
        bs_greeks(24_000.0, strikes, 7 / 365, 0.15, is_call, 0.1),
    ):
        assert isinstance(result, Greeks)
        for field in result:
            assert field.shape == (2, 3)
            assert field.dtype == np.float64
            assert np.isfinite(field).all()


UNDEFINED = [
    # forward, strike, t, vol, discount
    (24_000.0, 24_000.0, 0.0, 0.2, 1.0),
    (24_000.0, 24_000.0, -0.1, 0.2, 1.0),
    (24_000.0, 24_000.0, 0.1, 0.0, 1.0),
    (-1.0, 24_000.0, 0.1, 0.2, 1.0),
    (24_000.0, 0.0, 0.1, 0.2, 1.0),
    (24_000.0, 24_000.0, 0.1, 0.2, 0.0),
    (24_000.0, 24_000.0, 0.1, math.nan, 1.0),
    (24_000.0, math.inf, 0.1, 0.2, 1.0),
]


def test_greeks_are_nan_where_undefined_without_floating_point_errors() -> None:
    forward, strike, t, vol, discount = (
        np.array(column) for column in zip(*UNDEFINED, strict=True)
    )
    with np.errstate(all="raise"):
        result = greeks(forward, strike, t, vol, True, discount)
        rate = np.where(discount > 0, 0.05, np.inf)  # an infinite rate discounts to zero
        spot_result = bs_greeks(forward, strike, t, vol, False, rate)
    for field in (*result, *spot_result):
        assert np.isnan(field).all()


def test_scalars_give_zero_dimensional_arrays() -> None:
    for field in greeks(24_000.0, 24_000.0, 7 / 365, 0.13, True):
        assert isinstance(field, np.ndarray)
        assert field.shape == ()


@settings(max_examples=200, deadline=None)
@given(**domain)
def test_gamma_alone_equals_the_gamma_of_all_greeks(
    ratio: float, t: float, vol: float, rate: float, is_call: bool
) -> None:
    discount = math.exp(-rate * t)
    full = greeks(24_000.0, 24_000.0 * ratio, t, vol, is_call, discount).gamma
    alone = gamma(24_000.0, 24_000.0 * ratio, t, vol, discount)
    assert alone.shape == full.shape == ()
    assert alone == pytest.approx(full, rel=1e-13, abs=0.0)


def test_gamma_alone_is_nan_where_undefined() -> None:
    forward, strike, t, vol, discount = (
        np.array(column) for column in zip(*UNDEFINED, strict=True)
    )
    with np.errstate(all="raise"):
        assert np.isnan(gamma(forward, strike, t, vol, discount)).all()
