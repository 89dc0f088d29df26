"""The parity-implied forward and the out-of-the-money IV per strike (analytics.md §3.4)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.analytics.black76 import black76_price, implied_vol
from opchain.analytics.forward import otm_implied_vol, parity_forward

STRIKES = np.arange(22_000.0, 26_001.0, 100.0)


def chain(forward: float, t: float, discount: float, vol: float = 0.15) -> tuple:
    calls = black76_price(forward, STRIKES, t, vol, True, discount)
    puts = black76_price(forward, STRIKES, t, vol, False, discount)
    return calls, puts


@given(st.floats(23_000.0, 25_000.0), st.floats(1 / 365, 0.25), st.floats(0.0, 0.1))
def test_exact_prices_give_back_the_forward(forward: float, t: float, rate: float) -> None:
    discount = math.exp(-rate * t)
    calls, puts = chain(forward, t, discount)
    assert float(parity_forward(STRIKES, calls, puts, discount)) == pytest.approx(
        forward, rel=1e-12
    )


def test_noisy_far_strikes_and_one_bad_quote_do_not_move_the_forward() -> None:
    forward, t, discount = 24_037.5, 7 / 365, math.exp(-0.065 * 7 / 365)
    calls, puts = chain(forward, t, discount)
    rng = np.random.default_rng(7)
    far = np.abs(STRIKES - forward) > 300
    calls = np.where(far, calls + rng.uniform(-20, 20, STRIKES.size), calls)
    near = int(np.argmin(np.abs(STRIKES - forward)))
    calls[near] += 40.0  # one stale quote among the nearest three
    assert float(parity_forward(STRIKES, calls, puts, discount)) == pytest.approx(forward, abs=1e-6)


def test_unusable_legs_are_skipped_and_none_gives_nan() -> None:
    calls, puts = chain(24_000.0, 0.05, 1.0)
    calls[20] = np.nan  # the at-the-money call is missing
    puts[19] = 0.0  # and a zero price is no quote
    assert float(parity_forward(STRIKES, calls, puts)) == pytest.approx(24_000.0, rel=1e-12)
    nothing = np.full(STRIKES.size, np.nan)
    with np.errstate(all="raise"):
        assert np.isnan(parity_forward(STRIKES, nothing, puts))
        assert np.isnan(parity_forward([], [], []))
        assert np.isnan(parity_forward(STRIKES, calls, puts, discount=0.0))


def test_fewer_usable_strikes_than_asked_for() -> None:
    strikes = np.array([23_900.0, 24_000.0, 24_100.0])
    calls = np.array([np.nan, 150.0, np.nan])
    puts = np.array([60.0, 110.0, 170.0])
    assert float(parity_forward(strikes, calls, puts)) == 24_040.0
    calls[0] = 200.0  # 24,040 and 24,040: even count, mean of the middle two
    assert float(parity_forward(strikes, calls, puts, nearest=5)) == 24_040.0
    calls[2] = 71.0  # votes 24,040, 24,040, 24,001
    assert float(parity_forward(strikes, calls, puts, nearest=3)) == 24_040.0
    with pytest.raises(ValueError, match="nearest"):
        parity_forward(strikes, calls, puts, nearest=0)


def test_one_forward_per_expiry_on_the_leading_axis() -> None:
    forwards = np.array([24_010.0, 24_080.0, 24_300.0])
    times = np.array([2 / 365, 9 / 365, 37 / 365])
    discounts = np.exp(-0.06 * times)
    calls, puts = (
        black76_price(forwards[:, None], STRIKES, times[:, None], 0.14, is_call, discounts[:, None])
        for is_call in (True, False)
    )
    calls[1, :] = np.nan  # an expiry without quotes
    implied = parity_forward(STRIKES, calls, puts, discounts)
    assert implied.shape == (3,)
    np.testing.assert_allclose(implied[[0, 2]], forwards[[0, 2]], rtol=1e-12)
    assert np.isnan(implied[1])


def test_otm_implied_vol_takes_the_put_below_the_forward_and_the_call_above() -> None:
    strikes = np.array([23_900.0, 24_000.0, 24_100.0])
    call_iv = np.array([0.10, 0.11, 0.12])
    put_iv = np.array([0.20, 0.21, np.nan])
    np.testing.assert_array_equal(
        otm_implied_vol(strikes, 24_000.0, call_iv, put_iv), [0.20, 0.11, 0.12]
    )
    np.testing.assert_array_equal(
        otm_implied_vol(strikes, 24_150.0, call_iv, put_iv), [0.20, 0.21, np.nan]
    )
    assert np.isnan(otm_implied_vol(strikes, np.nan, call_iv, put_iv)).all()
    per_expiry = otm_implied_vol(strikes, np.array([[23_950.0], [24_050.0]]), call_iv, put_iv)
    np.testing.assert_array_equal(per_expiry, [[0.20, 0.11, 0.12], [0.20, 0.21, 0.12]])


def test_forward_then_otm_iv_recovers_a_smile() -> None:
    # A skewed smile priced with Black-76; the chain's forward and OTM IVs give it back.
    forward, t, discount = 24_123.0, 14 / 365, math.exp(-0.065 * 14 / 365)
    smile = 0.14 - 0.25 * np.log(STRIKES / forward) + 0.8 * np.log(STRIKES / forward) ** 2
    calls = black76_price(forward, STRIKES, t, smile, True, discount)
    puts = black76_price(forward, STRIKES, t, smile, False, discount)
    implied = parity_forward(STRIKES, calls, puts, discount)
    call_iv = implied_vol(calls, implied, STRIKES, t, True, discount)
    put_iv = implied_vol(puts, implied, STRIKES, t, False, discount)
    np.testing.assert_allclose(otm_implied_vol(STRIKES, implied, call_iv, put_iv), smile, atol=1e-9)
