"""Put-call ratios, max pain, OI walls and OI change (analytics.md §4)."""

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.analytics.oi import (
    max_pain,
    oi_change,
    oi_walls,
    payout,
    put_call_ratio,
    put_call_ratios,
)


@st.composite
def chains(draw: st.DrawFn, min_size: int = 1) -> tuple[list[float], list[float], list[float]]:
    """Integer strikes on a 50-point grid, sorted, with integer OI (as brokers send it)."""
    raw = draw(st.lists(st.integers(300, 700), min_size=min_size, max_size=60, unique=True))
    n = len(raw)
    oi = st.lists(st.integers(0, 2_000_000), min_size=n, max_size=n)
    return sorted(50.0 * k for k in raw), [float(x) for x in draw(oi)], [float(x) for x in draw(oi)]


def brute_force_payout(strikes: list[float], calls: list[float], puts: list[float]) -> list[float]:
    return [
        sum(
            c * max(s - k, 0) + p * max(k - s, 0)
            for k, c, p in zip(strikes, calls, puts, strict=True)
        )
        for s in strikes
    ]


# --- PCR -------------------------------------------------------------------------------------


def test_pcr_worked_example() -> None:
    assert put_call_ratio([300, 500, 200], [400, 100, 0]) == 2.0
    assert put_call_ratio([1, np.nan], [np.nan, 4]) == 0.25  # a missing leg counts as zero


@given(
    st.lists(st.floats(0, 1e9), max_size=40),
    st.lists(st.floats(0, 1e9), max_size=40),
)
def test_pcr_is_the_ratio_of_sums_and_nan_without_calls(
    puts: list[float], calls: list[float]
) -> None:
    ratio = put_call_ratio(puts, calls)
    if sum(calls) == 0:
        assert math.isnan(ratio)
    else:
        assert ratio == pytest.approx(sum(puts) / sum(calls), rel=1e-12)


def test_pcr_with_zero_calls_is_nan_not_inf() -> None:
    assert math.isnan(put_call_ratio([10, 20], [0, 0]))
    assert math.isnan(put_call_ratio([], []))


@given(st.lists(st.tuples(chains(), st.booleans()), min_size=1, max_size=4))
def test_pcr_across_expiries_pools_the_sums(
    expiries: list[tuple[tuple[list[float], list[float], list[float]], bool]],
) -> None:
    calls = [[0.0] * len(c) if empty else c for (_, c, _), empty in expiries]
    puts = [p for (_, _, p), _ in expiries]
    table = put_call_ratios(puts, calls)
    for ratio, p, c in zip(table.per_expiry, puts, calls, strict=True):
        assert ratio == put_call_ratio(p, c) or (math.isnan(ratio) and sum(c) == 0)
    pooled = put_call_ratio(np.concatenate(puts), np.concatenate(calls))
    assert table.overall == pooled or (math.isnan(pooled) and math.isnan(table.overall))


def test_pcr_across_expiries_needs_matching_lengths() -> None:
    with pytest.raises(ValueError, match="expiries"):
        put_call_ratios([[1.0]], [])


# --- max pain --------------------------------------------------------------------------------


def test_max_pain_worked_example() -> None:
    strikes = [100.0, 110.0, 120.0]
    calls, puts = [5.0, 10.0, 0.0], [0.0, 10.0, 5.0]
    # At 100: puts 110, 120 pay 10·10 + 5·20; at 110: calls 100 pay 5·10, puts 120 pay 5·10; ...
    assert payout(strikes, calls, puts).tolist() == [200.0, 100.0, 200.0]
    assert max_pain(strikes, calls, puts) == 110.0


def test_max_pain_tie_goes_to_the_lowest_strike() -> None:
    strikes, calls, puts = [100.0, 110.0, 120.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]
    assert payout(strikes, calls, puts).tolist() == [20.0, 20.0, 20.0]
    assert max_pain(strikes, calls, puts) == 100.0


@given(chains())
def test_max_pain_is_a_listed_strike_minimising_the_payout(
    chain: tuple[list[float], list[float], list[float]],
) -> None:
    strikes, calls, puts = chain
    expected = brute_force_payout(strikes, calls, puts)
    assert payout(strikes, calls, puts).tolist() == expected  # exact for integer inputs
    pain = max_pain(strikes, calls, puts)
    if sum(calls) + sum(puts) == 0:
        assert math.isnan(pain)
    else:
        assert pain in strikes
        assert pain == strikes[expected.index(min(expected))]  # the lowest of any tie


@given(chains(), st.integers(1, 1000))
def test_max_pain_does_not_depend_on_the_oi_unit(
    chain: tuple[list[float], list[float], list[float]], lot: int
) -> None:
    strikes, calls, puts = chain
    scaled = max_pain(strikes, [lot * c for c in calls], [lot * p for p in puts])
    assert scaled == max_pain(strikes, calls, puts) or math.isnan(scaled)


def test_max_pain_without_strikes_or_oi_is_nan() -> None:
    assert math.isnan(max_pain([], [], []))
    assert math.isnan(max_pain([100.0, 200.0], [0.0, np.nan], [0.0, 0.0]))


def test_strikes_must_be_sorted_and_columns_aligned() -> None:
    with pytest.raises(ValueError, match="sorted"):
        max_pain([200.0, 100.0], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        payout([100.0, 200.0], [1.0], [1.0, 1.0])


# --- walls -----------------------------------------------------------------------------------


def test_walls_worked_example() -> None:
    strikes = [23_800.0, 23_900.0, 24_000.0, 24_100.0, 24_200.0, 24_300.0]
    calls = [9e6, 1e5, 4e5, 2e6, 3e6, 2e6]
    puts = [3e6, 5e6, 1e6, 2e5, 0.0, 8e6]
    walls = oi_walls(strikes, calls, puts, spot=24_030.0, top=2)
    assert walls.resistance.tolist() == [24_200.0, 24_100.0]  # 24,300 ties 24,100 but is farther
    assert walls.resistance_oi.tolist() == [3e6, 2e6]
    assert walls.support.tolist() == [23_900.0, 23_800.0]  # 24,300's puts are above spot
    assert walls.support_oi.tolist() == [5e6, 3e6]


@given(chains(), st.floats(15_000, 35_000), st.integers(0, 5))
def test_walls_are_listed_strikes_on_the_right_side_of_spot(
    chain: tuple[list[float], list[float], list[float]], spot: float, top: int
) -> None:
    strikes, calls, puts = chain
    walls = oi_walls(strikes, calls, puts, spot, top)
    for side, oi, column, above in (
        (walls.resistance, walls.resistance_oi, calls, True),
        (walls.support, walls.support_oi, puts, False),
    ):
        assert len(side) <= top
        assert set(side.tolist()) <= set(strikes)
        assert all(k >= spot if above else k <= spot for k in side)
        assert list(oi) == sorted(oi, reverse=True)
        assert all(x > 0 for x in oi)
        eligible = [
            c for k, c in zip(strikes, column, strict=True) if (k >= spot if above else k <= spot)
        ]
        assert list(oi) == sorted((c for c in eligible if c > 0), reverse=True)[:top]


# --- OI change -------------------------------------------------------------------------------


def test_oi_change_worked_example() -> None:
    today_k, today = [100.0, 110.0, 120.0, 130.0], [500.0, 300.0, 900.0, 40.0]
    before_k, before = [120.0, 90.0, 100.0, 110.0], [1000.0, 7.0, 200.0, 300.0]
    change = oi_change(today_k, today, before_k, before)
    assert change[:3].tolist() == [300.0, 0.0, -100.0]  # added, unchanged, unwound
    assert math.isnan(change[3])  # 130 was not seen yesterday; 90 is gone today
    new_listing = oi_change(today_k, today, before_k, before, unseen=0.0)
    assert new_listing[3] == 40.0


def test_oi_change_without_a_previous_day_is_unseen() -> None:
    assert np.isnan(oi_change([100.0], [5.0], [], [])).all()
    assert oi_change([100.0], [5.0], [], [], unseen=0.0).tolist() == [5.0]
    with pytest.raises(ValueError, match="one value per strike"):
        oi_change([100.0], [5.0, 6.0], [], [])


@given(chains(min_size=0), st.randoms(use_true_random=False))
def test_oi_change_of_identical_days_is_zero(
    chain: tuple[list[float], list[float], list[float]], rng: random.Random
) -> None:
    strikes, oi, _ = chain
    shuffled = list(zip(strikes, oi, strict=True))
    rng.shuffle(shuffled)
    before_k, before = [k for k, _ in shuffled], [x for _, x in shuffled]
    assert oi_change(strikes, oi, before_k, before).tolist() == [0.0] * len(strikes)
