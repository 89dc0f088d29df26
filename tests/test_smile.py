"""Smile, ATM term structure, 25-delta wings and expected move (analytics.md §4)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.analytics.black76 import black76_price, norm_cdf
from opchain.analytics.smile import (
    atm_iv,
    atm_term_structure,
    expected_move,
    iv_at_maturity,
    smile,
    wings,
)

FORWARD = 24_000.0
STRIKES = np.arange(18_000.0, 30_001.0, 50.0)


def test_smile_takes_the_out_of_the_money_leg() -> None:
    strikes = [23_900.0, 24_000.0, 24_100.0]
    result = smile(strikes, FORWARD, call_iv=[0.30, 0.14, 0.13], put_iv=[0.15, 0.16, np.nan])
    assert result.iv.tolist() == [0.15, 0.14, 0.13]  # put below F, call at and above
    assert result.moneyness == pytest.approx(
        [math.log(23_900 / 24_000), 0.0, math.log(24_100 / 24_000)]
    )
    assert math.isnan(smile([24_100.0], FORWARD, [np.nan], [0.2]).iv[0])  # no ITM fallback


def test_atm_iv_interpolates_in_log_strike() -> None:
    weight = math.log(24_000 / 23_900) / math.log(24_100 / 23_900)  # 0.50104...
    iv = atm_iv([23_900.0, 24_100.0], [0.10, 0.20], FORWARD)
    assert iv == pytest.approx(0.10 + 0.10 * weight, rel=1e-14)
    assert iv == pytest.approx(0.1501, abs=1e-4)
    assert atm_iv([23_900.0, 24_000.0, 24_100.0], [0.1, 0.12, np.nan], FORWARD) == 0.12
    assert math.isnan(atm_iv([24_000.0, 24_100.0], [np.nan, 0.2], FORWARD))  # no IV below F
    assert math.isnan(atm_iv([], [], FORWARD))


def test_term_structure_has_one_atm_iv_per_expiry() -> None:
    strikes = [[23_900.0, 24_100.0], [23_800.0, 24_000.0, 24_200.0]]
    ivs = [[0.12, 0.12], [0.2, 0.15, 0.1]]
    assert atm_term_structure(strikes, ivs, [24_000.0, 24_000.0]).tolist() == [0.12, 0.15]
    with pytest.raises(ValueError, match="per expiry"):
        atm_term_structure(strikes, ivs, [24_000.0])


def test_constant_maturity_iv_is_linear_in_total_variance() -> None:
    # w = σ²t: 0.1²·0.02 = 0.0002 and 0.2²·0.1 = 0.004; at t = 0.05, w = 0.0002 + 0.0038·3/8.
    assert iv_at_maturity([0.1, 0.02], [0.2, 0.1], 0.05) == pytest.approx(math.sqrt(0.0325))
    assert iv_at_maturity([0.02, 0.1], [0.1, 0.2], 0.1) == pytest.approx(0.2, rel=1e-14)
    assert math.isnan(iv_at_maturity([0.02, 0.1], [0.1, 0.2], 0.2))


@given(st.floats(0.08, 0.6), st.floats(1.0, 90.0), st.floats(20_000, 28_000))
def test_a_flat_smile_has_no_risk_reversal_or_butterfly(
    vol: float, days: float, forward: float
) -> None:
    t = days / 365
    s = vol * math.sqrt(t)
    strikes = np.arange(
        50 * math.floor(forward * math.exp(-4 * s) / 50), forward * math.exp(4 * s) + 50, 50.0
    )
    result = wings(strikes, np.full(strikes.size, vol), forward, t)
    assert result.call_iv == result.put_iv == result.atm_iv == pytest.approx(vol, rel=1e-12)
    assert result.risk_reversal == 0.0
    assert abs(result.butterfly) <= 1e-15


def test_wings_read_the_smile_at_25_delta() -> None:
    t = 30 / 365

    def vol_at(strike: np.ndarray | float) -> np.ndarray:
        return (
            0.14
            - 0.4 * np.log(np.asarray(strike) / FORWARD)
            + 2.0 * np.log(np.asarray(strike) / FORWARD) ** 2
        )

    def strike_at_call_delta(target: float) -> float:  # bisection on N(d1(K, σ(K)))
        low, high = 10_000.0, 40_000.0
        for _ in range(100):
            mid = 0.5 * (low + high)
            s = float(vol_at(mid)) * math.sqrt(t)
            delta = float(norm_cdf(math.log(FORWARD / mid) / s + 0.5 * s))
            low, high = (mid, high) if delta > target else (low, mid)
        return 0.5 * (low + high)

    result = wings(STRIKES, vol_at(STRIKES), FORWARD, t)
    call_iv = float(vol_at(strike_at_call_delta(0.25)))
    put_iv = float(vol_at(strike_at_call_delta(0.75)))  # put delta −0.25
    assert result.call_iv == pytest.approx(call_iv, abs=2e-5)
    assert result.put_iv == pytest.approx(put_iv, abs=2e-5)
    assert result.atm_iv == pytest.approx(0.14, abs=1e-12)
    assert result.risk_reversal == pytest.approx(call_iv - put_iv, abs=4e-5)
    assert result.risk_reversal < 0  # puts bid, as for an index
    assert result.butterfly == pytest.approx(0.5 * (call_iv + put_iv) - 0.14, abs=4e-5)
    assert result.butterfly > 0


def test_wings_need_strikes_out_to_the_delta() -> None:
    near = np.arange(23_900.0, 24_101.0, 50.0)
    result = wings(near, np.full(near.size, 0.15), FORWARD, 30 / 365)
    assert math.isnan(result.call_iv) and math.isnan(result.put_iv)
    assert math.isnan(result.risk_reversal) and math.isnan(result.butterfly)
    with pytest.raises(ValueError, match="delta"):
        wings(near, np.full(near.size, 0.15), FORWARD, 0.1, delta=0.5)


def test_expected_move_worked_example() -> None:
    strikes = [23_900.0, 24_000.0, 24_100.0]
    move = expected_move(strikes, [150.0, 100.0, 60.0], [55.0, 95.0, 140.0], 24_010.0, 24_030.0)
    assert move.strike == 24_000.0
    assert move.straddle == 195.0
    assert move.percent == pytest.approx(100 * 195 / 24_010)  # 0.812%
    assert expected_move(strikes, [1.0] * 3, [2.0] * 3, 24_070.0).strike == 24_100.0  # spot
    assert math.isnan(expected_move([], [], [], 24_000.0).straddle)


@given(
    st.lists(st.integers(400, 560), min_size=1, max_size=40, unique=True),
    st.floats(20_000, 28_000),
    st.floats(-200, 200),
    st.data(),
)
def test_expected_move_is_the_atm_straddle(
    raw: list[int], spot: float, basis: float, data: st.DataObject
) -> None:
    strikes = sorted(50.0 * k for k in raw)
    prices = st.lists(st.floats(0.05, 2_000), min_size=len(strikes), max_size=len(strikes))
    calls, puts = data.draw(prices), data.draw(prices)
    move = expected_move(strikes, calls, puts, spot, spot + basis)
    assert move.strike in strikes
    assert abs(move.strike - spot - basis) == min(abs(k - spot - basis) for k in strikes)
    at = strikes.index(move.strike)
    assert move.straddle == calls[at] + puts[at]
    assert move.percent == pytest.approx(100 * move.straddle / spot, rel=1e-12)


def test_an_atm_straddle_is_about_0_8_sigma() -> None:
    # Black-76 at K = F: straddle = F·(2Φ(σ√t/2) − 1) ≈ √(2/π)·F·σ√t.
    t, vol = 7 / 365, 0.13
    call, put = (float(black76_price(FORWARD, FORWARD, t, vol, side)) for side in (True, False))
    move = expected_move([FORWARD], [call], [put], FORWARD)
    sigma_move = FORWARD * vol * math.sqrt(t)
    assert move.straddle / sigma_move == pytest.approx(math.sqrt(2 / math.pi), rel=1e-3)
