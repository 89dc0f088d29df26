"""Gamma exposure and the zero-gamma level (SPEC §3.5, analytics.md §4)."""

import math
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.analytics.black76 import FloatArray
from opchain.analytics.gex import GammaExposure, gamma_exposure, gamma_profile, zero_gamma

FORWARD = 24_000.0
NIFTY_LOT = 65
STRIKES = np.arange(22_000.0, 26_001.0, 100.0)


def gamma_at(forward: float, strike: float, t: float, vol: float) -> float:
    """Black-76 gamma written out with the math module: φ(d1) / (F·σ·√t)."""
    s = vol * math.sqrt(t)
    d1 = math.log(forward / strike) / s + 0.5 * s
    return math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) / (forward * s)


class Chain(NamedTuple):
    """A NIFTY-like expiry on STRIKES (41 strikes around the forward)."""

    call_oi: FloatArray
    put_oi: FloatArray
    t: float
    call_vol: FloatArray
    put_vol: FloatArray

    def exposure(self) -> GammaExposure:
        return gamma_exposure(*self.arguments())

    def profile(self, levels: FloatArray) -> FloatArray:
        return gamma_profile(*self.arguments(), levels)

    def flip(self, grid: FloatArray) -> float:
        return zero_gamma(*self.arguments(), grid=grid)

    def arguments(
        self,
    ) -> tuple[FloatArray, FloatArray, FloatArray, float, float, FloatArray, FloatArray, int]:
        oi, vol = (self.call_oi, self.put_oi), (self.call_vol, self.put_vol)
        return (STRIKES, *oi, FORWARD, self.t, *vol, NIFTY_LOT)


@st.composite
def chains(draw: st.DrawFn) -> Chain:
    """Random OI and a random smile."""
    n = STRIKES.size
    oi = st.lists(st.integers(0, 5_000_000), min_size=n, max_size=n)
    vols = st.lists(st.floats(0.08, 0.6), min_size=n, max_size=n)
    return Chain(
        np.array(draw(oi), dtype=float),
        np.array(draw(oi), dtype=float),
        draw(st.floats(1.0, 60.0)) / 365,
        np.array(draw(vols)),
        np.array(draw(vols)),
    )


def test_one_atm_call_worked_example() -> None:
    # F = 24,000, σ = 16%, t = 0.04 → σ√t = 0.032, d1 = 0.016, φ(d1) = 0.3988912...
    # Γ = φ(d1) / (F·0.032); GEX = Γ · 1 lot · 65 · F² · 0.01 = φ(d1) · 24,000 · 0.65 / 0.032
    gex = gamma_exposure([FORWARD], [1.0], [0.0], FORWARD, 0.04, [0.16], [0.16], NIFTY_LOT)
    phi = math.exp(-0.5 * 0.016**2) / math.sqrt(2 * math.pi)
    assert gex.total == pytest.approx(phi * 487_500, rel=1e-12)
    assert gex.total == pytest.approx(194_459.5, abs=0.1)  # rupees per 1% move
    assert gex.put.tolist() == [0.0]


def test_per_strike_sign_and_scale() -> None:
    strikes, t = [23_900.0, 24_100.0], 7 / 365
    gex = gamma_exposure(strikes, [100, 300], [200, 50], FORWARD, t, [0.14, 0.12], [0.15, 0.13], 30)
    for i, k in enumerate(strikes):
        unit = 30 * FORWARD**2 * 0.01
        call_gamma = gamma_at(FORWARD, k, t, [0.14, 0.12][i])
        put_gamma = gamma_at(FORWARD, k, t, [0.15, 0.13][i])
        assert gex.call[i] == pytest.approx(call_gamma * [100, 300][i] * unit, rel=1e-12)
        assert gex.put[i] == pytest.approx(-put_gamma * [200, 50][i] * unit, rel=1e-12)
    assert gex.net.tolist() == (gex.call + gex.put).tolist()
    assert gex.total == pytest.approx(gex.net.sum(), rel=1e-15)


def test_a_leg_without_iv_or_oi_contributes_nothing() -> None:
    gex = gamma_exposure(
        [24_000.0, 24_100.0],
        [np.nan, 10.0],
        [5.0, 0.0],
        FORWARD,
        0.02,
        [0.1, np.nan],
        [np.nan, np.nan],
        1,
    )
    assert gex.call.tolist() == [0.0, 0.0]
    assert gex.put.tolist() == [0.0, 0.0]
    assert gex.total == 0.0


@given(chains(), st.booleans())
def test_calls_alone_are_positive_and_puts_alone_negative(chain: Chain, calls: bool) -> None:
    none = np.zeros(STRIKES.size)
    alone = chain._replace(put_oi=none) if calls else chain._replace(call_oi=none)
    gex = alone.exposure()
    if alone.call_oi.sum() + alone.put_oi.sum() == 0:
        assert gex.total == 0.0
    elif calls:
        assert gex.total > 0 and (gex.call >= 0).all()
    else:
        assert gex.total < 0 and (gex.put <= 0).all()


@given(chains(), st.floats(0.01, 1000.0))
def test_scaling_oi_scales_gex(chain: Chain, k: float) -> None:
    gex = chain.exposure()
    scaled = chain._replace(call_oi=k * chain.call_oi, put_oi=k * chain.put_oi).exposure()
    np.testing.assert_allclose(scaled.call, k * gex.call, rtol=1e-12, atol=0)
    np.testing.assert_allclose(scaled.put, k * gex.put, rtol=1e-12, atol=0)
    assert scaled.total == pytest.approx(k * gex.total, rel=1e-9, abs=1e-9 * k * gex.call.sum())


@given(chains())
def test_the_profile_at_the_forward_is_the_total(chain: Chain) -> None:
    gex = chain.exposure()
    profile = chain.profile(np.array([FORWARD]))
    # Calls and puts may cancel to a tiny total: the tolerance scales with what was summed.
    scale = np.abs(gex.call).sum() + np.abs(gex.put).sum()
    assert profile[0] == pytest.approx(gex.total, rel=1e-9, abs=1e-9 * scale)


def test_zero_gamma_between_a_put_wall_and_a_call_wall() -> None:
    # Equal OI and vol: the puts' and calls' gammas match where d1(K1) = -d1(K2), i.e. at
    # F = sqrt(K1·K2)·exp(-σ²t/2).
    k1, k2, vol, t = 23_500.0, 24_500.0, 0.15, 10 / 365
    args = ([k1, k2], [0.0, 1e6], [1e6, 0.0], FORWARD, t, [vol, vol], [vol, vol], NIFTY_LOT)
    expected = math.sqrt(k1 * k2) * math.exp(-0.5 * vol * vol * t)
    assert zero_gamma(*args) == pytest.approx(expected, rel=2e-5)  # default 0.1% grid
    fine = np.linspace(23_000, 25_000, 20_001)
    assert zero_gamma(*args, grid=fine) == pytest.approx(expected, rel=1e-8)
    assert k1 < zero_gamma(*args) < k2


def test_zero_gamma_in_spot_terms_scales_with_the_basis() -> None:
    args = ([23_500.0, 24_500.0], [0.0, 1e6], [1e6, 0.0], FORWARD, 0.03, [0.15] * 2, [0.15] * 2, 1)
    in_forward = zero_gamma(*args)
    in_spot = zero_gamma(*args, spot=FORWARD - 60.0)
    assert in_spot == pytest.approx(in_forward * (FORWARD - 60.0) / FORWARD, rel=1e-12)


def test_no_sign_change_gives_nan() -> None:
    calls_only = ([24_000.0], [1e6], [0.0], FORWARD, 0.03, [0.15], [0.15], NIFTY_LOT)
    assert math.isnan(zero_gamma(*calls_only))
    no_oi = ([24_000.0], [0.0], [0.0], FORWARD, 0.03, [0.15], [0.15], NIFTY_LOT)
    assert math.isnan(zero_gamma(*no_oi))


@given(chains())
def test_zero_gamma_lies_where_the_profile_changes_sign(chain: Chain) -> None:
    grid = np.linspace(20_000, 28_000, 161)
    level, profile = chain.flip(grid), chain.profile(grid)
    live = profile != 0
    if math.isnan(level):
        signs = np.sign(profile[live])
        assert (signs == signs[0]).all() if signs.size else True
        return
    below = profile[live & (grid <= level)]
    above = profile[live & (grid >= level)]
    assert np.sign(below[-1]) == -np.sign(above[0])


def test_inputs_must_line_up() -> None:
    with pytest.raises(ValueError, match="equal length"):
        gamma_exposure([1.0, 2.0], [1.0], [1.0, 1.0], 1.5, 0.1, [0.2, 0.2], [0.2, 0.2], 1)
