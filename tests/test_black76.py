"""Black-76 prices, implied volatility and time to expiry (analytics.md §2.2, §3)."""

import math
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from opchain.analytics.black76 import (
    black76_price,
    implied_vol,
    implied_vol_reasons,
    norm_cdf,
)
from opchain.analytics.expiry_time import years_to_expiry
from opchain.market.ist import IST

FORWARD = 24_000.0
YEAR_SECONDS = 365 * 24 * 3600


def reference_price(
    forward: float, strike: float, t: float, vol: float, is_call: bool, discount: float = 1.0
) -> float:
    """Black-76 written out independently with the math module."""

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    s = vol * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s
    d2 = d1 - s
    if is_call:
        return discount * (forward * cdf(d1) - strike * cdf(d2))
    return discount * (strike * cdf(-d2) - forward * cdf(-d1))


def intrinsic(forward: float, strike: float, is_call: bool, discount: float = 1.0) -> float:
    return discount * max(forward - strike if is_call else strike - forward, 0.0)


# --- the pipeline's domain: forward 24,000, strikes 0.8–1.2×, 1–90 days, vols 8–60% -------------

moneyness = st.floats(0.8, 1.2)
days = st.floats(1.0, 90.0)
vols = st.floats(0.08, 0.6)
rates = st.floats(0.0, 0.10)


@settings(max_examples=500)
@given(moneyness, days, vols, st.booleans(), rates)
def test_implied_vol_round_trips_over_the_domain(
    ratio: float, day_count: float, vol: float, is_call: bool, rate: float
) -> None:
    strike, t = FORWARD * ratio, day_count / 365
    discount = math.exp(-rate * t)
    price = float(black76_price(FORWARD, strike, t, vol, is_call, discount))
    assume(price - intrinsic(FORWARD, strike, is_call, discount) >= 0.05)

    iv = float(implied_vol(price, FORWARD, strike, t, is_call, discount))

    repriced = float(black76_price(FORWARD, strike, t, iv, is_call, discount))
    assert abs(repriced - price) <= 1e-9 * max(1.0, price)
    assert abs(iv - vol) <= 1e-10


def test_implied_vol_round_trips_on_a_large_random_sample() -> None:
    rng = np.random.default_rng(20261120)
    n = 200_000
    strike = FORWARD * rng.uniform(0.8, 1.2, n)
    t = rng.uniform(1, 90, n) / 365
    vol = rng.uniform(0.08, 0.6, n)
    is_call = rng.random(n) < 0.5
    discount = np.exp(-rng.uniform(0.0, 0.1, n) * t)
    price = black76_price(FORWARD, strike, t, vol, is_call, discount)
    time_value = price - discount * np.maximum(
        np.where(is_call, FORWARD - strike, strike - FORWARD), 0
    )
    tradeable = time_value >= 0.05

    iv = implied_vol(price, FORWARD, strike, t, is_call, discount)

    repriced = black76_price(FORWARD, strike, t, iv, is_call, discount)
    assert tradeable.mean() > 0.8
    assert not np.isnan(iv[tradeable]).any()
    assert np.max(np.abs(repriced - price)[tradeable] / np.maximum(1.0, price[tradeable])) <= 1e-9
    assert np.max(np.abs(iv - vol)[tradeable]) <= 1e-10


# --- known values against the independent closed form ----------------------------------------

KNOWN = [
    # forward, strike, t, vol, is_call, discount
    (24_000.0, 24_000.0, 7 / 365, 0.13, True, 1.0),
    (24_000.0, 24_000.0, 7 / 365, 0.13, False, 1.0),
    (24_000.0, 23_500.0, 2 / 365, 0.13, True, math.exp(-0.06 * 2 / 365)),
    (24_000.0, 23_500.0, 2 / 365, 0.13, False, math.exp(-0.06 * 2 / 365)),
    (24_000.0, 24_500.0, 30 / 365, 0.18, True, math.exp(-0.065 * 30 / 365)),
    (24_000.0, 19_200.0, 90 / 365, 0.45, False, 1.0),
    (24_000.0, 28_800.0, 60 / 365, 0.35, True, 1.0),
    (51_000.0, 50_000.0, 1 / 365, 0.60, False, 1.0),
    (100.0, 80.0, 1.0, 0.25, True, math.exp(-0.05)),
]


@pytest.mark.parametrize(("forward", "strike", "t", "vol", "is_call", "discount"), KNOWN)
def test_price_matches_the_reference_and_inverts(
    forward: float, strike: float, t: float, vol: float, is_call: bool, discount: float
) -> None:
    expected = reference_price(forward, strike, t, vol, is_call, discount)

    price = float(black76_price(forward, strike, t, vol, is_call, discount))
    iv = float(implied_vol(expected, forward, strike, t, is_call, discount))

    assert price == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert iv == pytest.approx(vol, abs=1e-10)


def test_textbook_value() -> None:
    # Hull's put on a futures price: F = K = 20, r = 9%, T = 4 months, vol 25% -> 1.12.
    price = float(black76_price(20.0, 20.0, 4 / 12, 0.25, False, math.exp(-0.09 * 4 / 12)))
    assert price == pytest.approx(1.12, abs=0.005)


def test_norm_cdf() -> None:
    x = np.array([-40.0, -5.0, -1.0, 0.0, 1.96, 8.0])
    expected = [0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x]
    assert norm_cdf(x) == pytest.approx(expected, rel=1e-14, abs=0)
    assert float(norm_cdf(0.0)) == 0.5


# --- properties of the price -------------------------------------------------------------------

positive = st.floats(100.0, 100_000.0)


@given(positive, st.floats(0.5, 2.0), st.floats(1e-3, 2.0), st.floats(0.01, 2.0), rates)
def test_put_call_parity(forward: float, ratio: float, t: float, vol: float, rate: float) -> None:
    strike, discount = forward * ratio, math.exp(-rate * t)
    call = float(black76_price(forward, strike, t, vol, True, discount))
    put = float(black76_price(forward, strike, t, vol, False, discount))
    assert call - put == pytest.approx(
        discount * (forward - strike), abs=1e-11 * (forward + strike)
    )


def test_price_increases_with_vol() -> None:
    strikes = FORWARD * np.linspace(0.95, 1.05, 21)
    vol = np.linspace(0.05, 1.0, 60)[:, None, None]
    is_call = np.array([True, False])[:, None]
    prices = black76_price(FORWARD, strikes, 30 / 365, vol, is_call)
    assert prices.shape == (60, 2, 21)
    assert np.all(np.diff(prices, axis=0) > 0)


@given(
    positive, st.floats(0.5, 2.0), st.floats(1e-3, 2.0), st.floats(0.01, 2.0), st.booleans(), rates
)
def test_price_lies_between_intrinsic_and_the_upper_bound(
    forward: float, ratio: float, t: float, vol: float, is_call: bool, rate: float
) -> None:
    strike, discount = forward * ratio, math.exp(-rate * t)
    price = float(black76_price(forward, strike, t, vol, is_call, discount))
    upper = discount * (forward if is_call else strike)
    slack = 1e-12 * (forward + strike)
    assert intrinsic(forward, strike, is_call, discount) - slack <= price <= upper + slack


@given(st.floats(1e-3, 1.0), st.floats(0.05, 1.0), rates)
def test_a_call_falls_and_a_put_rises_with_strike(t: float, vol: float, rate: float) -> None:
    strikes = FORWARD * np.linspace(0.8, 1.2, 81)
    discount = math.exp(-rate * t)
    calls = black76_price(FORWARD, strikes, t, vol, True, discount)
    puts = black76_price(FORWARD, strikes, t, vol, False, discount)
    # Strictly wherever the price is at least a tick; far out of the money it may round to 0.
    assert np.all(np.diff(calls) <= 0)
    assert np.all(np.diff(calls)[calls[:-1] >= 0.05] < 0)
    assert np.all(np.diff(puts) >= 0)
    assert np.all(np.diff(puts)[puts[1:] >= 0.05] > 0)


@given(moneyness, days, st.booleans(), rates, st.floats(0.0, 1.0))
def test_prices_outside_the_bounds_give_nan_with_a_reason(
    ratio: float, day_count: float, is_call: bool, rate: float, fraction: float
) -> None:
    strike, t = FORWARD * ratio, day_count / 365
    discount = math.exp(-rate * t)
    # From 1e-9 beyond each bound: exactly at it, discount·(F - K) / discount may round up.
    below = intrinsic(FORWARD, strike, is_call, discount) * (1.0 - 1e-9) * fraction
    above = discount * (FORWARD if is_call else strike) * (1.0 + 1e-9) * (1.0 + fraction)
    args = (FORWARD, strike, t, is_call, discount)
    if below > 0:
        assert np.isnan(implied_vol(below, *args))
        assert implied_vol_reasons(below, *args) == "below_intrinsic"
    assert np.isnan(implied_vol(above, *args))
    assert implied_vol_reasons(above, *args) == "above_upper_bound"


def test_zero_vol_or_time_prices_at_discounted_intrinsic() -> None:
    strikes = np.array([23_000.0, 24_000.0, 25_000.0])
    np.testing.assert_array_equal(
        black76_price(FORWARD, strikes, 0.1, 0.0, True, 0.5), [500.0, 0.0, 0.0]
    )
    np.testing.assert_array_equal(
        black76_price(FORWARD, strikes, 0.0, 0.2, False), [0.0, 0.0, 1000.0]
    )
    assert np.isnan(black76_price(FORWARD, strikes, -0.1, 0.2, True)).all()


# --- where no volatility fits ------------------------------------------------------------------

NO_VOL = [
    # price, forward, strike, t, is_call, discount, reason
    (900.0, 24_000.0, 23_000.0, 0.02, True, 1.0, "below_intrinsic"),
    (1_000.0, 24_000.0, 23_000.0, 0.02, True, 1.0, "below_intrinsic"),  # exactly intrinsic
    (989.9, 24_000.0, 23_000.0, 0.02, True, 0.99, "below_intrinsic"),  # discounted intrinsic 990
    (450.0, 24_000.0, 24_500.0, 0.02, False, 1.0, "below_intrinsic"),
    (24_000.0, 24_000.0, 23_000.0, 0.02, True, 1.0, "above_upper_bound"),
    (23_800.0, 24_000.0, 23_000.0, 0.02, True, 0.99, "above_upper_bound"),  # > 0.99 * forward
    (25_000.0, 24_000.0, 25_000.0, 0.02, False, 1.0, "above_upper_bound"),
    (30_000.0, 24_000.0, 25_000.0, 0.02, False, 1.0, "above_upper_bound"),
    (100.0, 24_000.0, 24_000.0, 0.0, True, 1.0, "non_positive_time"),
    (100.0, 24_000.0, 24_000.0, -0.01, False, 1.0, "non_positive_time"),
    (0.0, 24_000.0, 24_000.0, 0.02, True, 1.0, "non_positive_price"),
    (-5.0, 24_000.0, 25_000.0, 0.02, True, 1.0, "non_positive_price"),
    (math.nan, 24_000.0, 24_000.0, 0.02, True, 1.0, "invalid_input"),
    (100.0, math.nan, 24_000.0, 0.02, True, 1.0, "invalid_input"),
    (100.0, 24_000.0, math.inf, 0.02, True, 1.0, "invalid_input"),
    (100.0, 24_000.0, 24_000.0, math.nan, True, 1.0, "invalid_input"),
    (100.0, 0.0, 24_000.0, 0.02, True, 1.0, "invalid_input"),
    (100.0, 24_000.0, -1.0, 0.02, False, 1.0, "invalid_input"),
    (100.0, 24_000.0, 24_000.0, 0.02, True, 0.0, "invalid_input"),
    (math.nan, 24_000.0, 24_000.0, 0.0, True, 1.0, "invalid_input"),  # invalid comes first
]


@pytest.mark.parametrize(
    ("price", "forward", "strike", "t", "is_call", "discount", "reason"), NO_VOL
)
def test_no_volatility_gives_nan_and_a_reason(
    price: float,
    forward: float,
    strike: float,
    t: float,
    is_call: bool,
    discount: float,
    reason: str,
) -> None:
    args = (price, forward, strike, t, is_call, discount)
    assert np.isnan(implied_vol(*args))
    assert implied_vol_reasons(*args) == reason


def test_reasons_line_up_with_nans_in_an_array() -> None:
    columns = list(zip(*(case[:6] for case in NO_VOL), strict=True))
    valid = (150.0, 24_000.0, 24_000.0, 7 / 365, True, 1.0)
    price, forward, strike, t, is_call, discount = (
        np.array([*column, extra]) for column, extra in zip(columns, valid, strict=True)
    )

    iv = implied_vol(price, forward, strike, t, is_call, discount)
    reasons = implied_vol_reasons(price, forward, strike, t, is_call, discount)

    assert reasons.tolist() == [case[6] for case in NO_VOL] + [""]
    np.testing.assert_array_equal(np.isnan(iv), reasons != "")
    assert iv[-1] == pytest.approx(0.13, abs=0.02)


@settings(max_examples=500)
@given(
    st.floats(-100.0, 50_000.0),
    st.floats(10_000.0, 40_000.0),
    st.floats(-0.01, 1.0),
    st.booleans(),
    st.floats(0.9, 1.0),
)
def test_a_vol_exists_exactly_when_there_is_no_reason(
    price: float, strike: float, t: float, is_call: bool, discount: float
) -> None:
    iv = float(implied_vol(price, FORWARD, strike, t, is_call, discount))
    reason = str(implied_vol_reasons(price, FORWARD, strike, t, is_call, discount))

    assert math.isnan(iv) == (reason != "")
    if not reason:
        assert 0 < iv < math.inf
        repriced = float(black76_price(FORWARD, strike, t, iv, is_call, discount))
        assert abs(repriced - price) <= 1e-9 * max(1.0, price)


def test_tiny_time_value_still_gives_a_positive_vol() -> None:
    for time_value in (1e-6, 1e-3):
        price = 1_000.0 + time_value  # in-the-money call on 23,000
        iv = float(implied_vol(price, FORWARD, 23_000.0, 7 / 365, True))
        assert 0 < iv < 0.1
        repriced = float(black76_price(FORWARD, 23_000.0, 7 / 365, iv, True))
        assert repriced == pytest.approx(price, abs=1e-9)


def test_degenerate_inputs_raise_no_floating_point_errors() -> None:
    values = np.array([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e-300, 1e300, 100.0])
    grid = np.meshgrid(values, values, values, values, indexing="ij")
    with np.errstate(all="raise"):
        implied_vol(*grid, True)
        implied_vol_reasons(*grid, False, grid[0])
        black76_price(*grid, True)
        norm_cdf(values)


# --- scalars, arrays and broadcasting ----------------------------------------------------------


def test_scalars_in_give_zero_dimensional_float_arrays_out() -> None:
    price = black76_price(FORWARD, 24_000.0, 7 / 365, 0.13, True)
    iv = implied_vol(float(price), FORWARD, 24_000.0, 7 / 365, True)
    reason = implied_vol_reasons(float(price), FORWARD, 24_000.0, 7 / 365, True)
    for result in (price, iv):
        assert isinstance(result, np.ndarray)
        assert result.shape == ()
        assert result.dtype == np.float64
    assert float(iv) == pytest.approx(0.13, abs=1e-12)
    assert reason.shape == ()
    assert reason == ""


def test_broadcasting_matches_elementwise_calls() -> None:
    strikes = FORWARD * np.array([0.9, 0.97, 1.0, 1.03, 1.1])
    is_call = np.array([[True], [False]])
    t = 14 / 365
    prices = black76_price(FORWARD, strikes, t, 0.15, is_call)
    assert prices.shape == (2, 5)

    ivs = implied_vol(prices, FORWARD, strikes, t, is_call)

    assert ivs.shape == (2, 5)
    for row, call in enumerate((True, False)):
        for column, strike in enumerate(strikes):
            expected = reference_price(FORWARD, float(strike), t, 0.15, call)
            assert prices[row, column] == pytest.approx(expected, rel=1e-12)
            assert float(implied_vol(expected, FORWARD, strike, t, call)) == pytest.approx(
                ivs[row, column], abs=1e-12
            )
    np.testing.assert_allclose(ivs, 0.15, rtol=0, atol=1e-10)


def test_one_price_against_many_times() -> None:
    t = np.array([0.0, 3 / 365, 30 / 365])
    price = reference_price(FORWARD, 24_000.0, 3 / 365, 0.2, False)
    iv = implied_vol(price, FORWARD, 24_000.0, t, False)
    assert iv.shape == (3,)
    assert np.isnan(iv[0])
    assert iv[1] == pytest.approx(0.2, abs=1e-10)
    assert 0 < iv[2] < 0.2
    assert implied_vol_reasons(price, FORWARD, 24_000.0, t, False).tolist() == [
        "non_positive_time",
        "",
        "",
    ]


def test_lists_are_accepted() -> None:
    iv = implied_vol([100.0, 200.0], [FORWARD, FORWARD], [24_000.0, 24_000.0], 7 / 365, [1, 0])
    assert iv.shape == (2,)
    assert np.all(iv > 0)


# --- time to expiry ----------------------------------------------------------------------------


def test_years_to_expiry_counts_calendar_seconds_to_the_close() -> None:
    now = datetime(2026, 11, 20, 9, 15, tzinfo=IST)
    expected = (3 * 86_400 + 6 * 3_600 + 15 * 60) / 31_536_000
    assert years_to_expiry(now, date(2026, 11, 23)) == pytest.approx(expected, rel=1e-15)
    assert years_to_expiry(now.astimezone(UTC), date(2026, 11, 23)) == pytest.approx(
        expected, rel=1e-15
    )


def test_years_to_expiry_on_expiry_day() -> None:
    close = datetime.combine(date(2026, 11, 24), time(15, 30), tzinfo=IST)
    assert years_to_expiry(close - timedelta(minutes=1), date(2026, 11, 24)) == 60 / YEAR_SECONDS
    assert years_to_expiry(close, date(2026, 11, 24)) == 0.0
    assert years_to_expiry(close + timedelta(hours=2), date(2026, 11, 24)) == 0.0
    assert years_to_expiry(close, date(2026, 11, 23)) == 0.0


def test_years_to_expiry_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        years_to_expiry(datetime(2026, 11, 20, 9, 15), date(2026, 11, 23))  # noqa: DTZ001
