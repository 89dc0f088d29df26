"""IV rank, IV percentile and robust jump flags (analytics.md §4)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.analytics.history import _nanmean, _nanmedian, anomalies, iv_percentile, iv_rank

ivs = st.floats(0.01, 2.0)


def test_iv_rank_and_percentile_worked_example() -> None:
    assert iv_rank(0.25, [0.10, 0.20, 0.30]) == pytest.approx(75.0)
    assert iv_rank(0.40, [0.10, 0.20, 0.30]) == 100.0  # today is the window's new high
    assert iv_percentile(0.25, [0.10, 0.20, 0.30, 0.40]) == 50.0
    assert iv_percentile(0.20, [0.10, 0.20, 0.30, 0.40]) == 25.0  # strictly below only


def test_empty_or_flat_history_gives_nan() -> None:
    assert math.isnan(iv_rank(0.2, []))
    assert math.isnan(iv_rank(0.2, [np.nan, np.nan]))
    assert math.isnan(iv_rank(0.2, [0.2, 0.2]))
    assert math.isnan(iv_percentile(0.2, []))
    assert math.isnan(iv_rank(np.nan, [0.1, 0.3]))
    assert iv_percentile(0.2, [0.2, 0.2]) == 0.0


@given(ivs, st.lists(st.one_of(ivs, st.just(math.nan)), max_size=300))
def test_rank_and_percentile_stay_within_0_and_100(current: float, history: list[float]) -> None:
    rank, percentile = iv_rank(current, history), iv_percentile(current, history)
    finite = [x for x in history if not math.isnan(x)]
    assert math.isnan(rank) == (not finite or min(finite) == max(finite) == current)
    assert math.isnan(percentile) == (not finite)
    if not math.isnan(rank):
        assert 0.0 <= rank <= 100.0
        assert 0.0 <= percentile <= 100.0


# --- anomalies -------------------------------------------------------------------------------


def zigzag(n: int, last_change: float) -> np.ndarray:
    """Changes of +1, -1, +1, ... (median 0, MAD 1), then ``last_change``."""
    changes = np.append(np.where(np.arange(n) % 2 == 0, 1.0, -1.0), last_change)
    return np.concatenate([[100.0], 100.0 + np.cumsum(changes)])


def test_robust_z_worked_example() -> None:
    # Median change 0, MAD 1: a jump of 10 scores 10 / 1.4826 = 6.745, one of 5 only 3.37.
    jumped = anomalies(zigzag(30, 10.0))
    assert float(jumped.score) == pytest.approx(10 / 1.4826)
    assert bool(jumped.flagged)
    calm = anomalies(zigzag(30, -5.0))
    assert float(calm.score) == pytest.approx(-5 / 1.4826)
    assert not bool(calm.flagged)
    assert bool(anomalies(zigzag(30, -5.0), threshold=3.0).flagged)


def test_only_the_recent_window_counts() -> None:
    # 40 big swings long ago, then 30 small ones: a jump of 10 is judged against the small ones.
    old = np.where(np.arange(40) % 2 == 0, 50.0, -50.0)
    recent = np.where(np.arange(30) % 2 == 0, 1.0, -1.0)
    values = np.cumsum(np.concatenate([old, recent, [10.0]]))
    assert bool(anomalies(values, window=30).flagged)
    assert not bool(anomalies(values, window=70).flagged)


def test_a_rarely_ticking_premium_falls_back_to_the_mean_deviation() -> None:
    # 16 unchanged minutes and 4 one-tick moves: MAD is 0, mean |d| = 0.01, scale 0.012533.
    changes = [0.0] * 16 + [0.05] * 4
    base = np.concatenate([[100.0], 100.0 + np.cumsum(changes)])
    one_tick = anomalies(np.append(base, base[-1] + 0.05))
    assert float(one_tick.score) == pytest.approx(0.05 / (1.2533 * 0.01))  # 3.99
    assert not bool(one_tick.flagged)
    assert bool(anomalies(np.append(base, base[-1] + 0.10)).flagged)


def test_a_stale_series_needs_min_scale() -> None:
    stale = np.append(np.full(25, 80.0), 80.05)
    assert float(anomalies(stale).score) == math.inf  # nothing moved before: any move is infinite
    assert bool(anomalies(stale).flagged)
    assert float(anomalies(stale, min_scale=0.05).score) == pytest.approx(1.0)
    assert float(anomalies(np.full(25, 80.0)).score) == 0.0


def test_too_little_history_is_never_flagged() -> None:
    short = anomalies(zigzag(8, 1_000.0))  # 8 changes before the latest, 10 needed
    assert math.isnan(float(short.score)) and not bool(short.flagged)
    gappy = zigzag(30, 1_000.0)
    gappy[5:-2] = np.nan  # only a few finite changes left in the window
    assert not bool(anomalies(gappy).flagged)
    missing_latest = zigzag(30, 1_000.0)
    missing_latest[-1] = np.nan
    assert math.isnan(float(anomalies(missing_latest).score))
    assert anomalies([]).score.shape == ()
    with pytest.raises(ValueError, match="window"):
        anomalies(zigzag(30, 1.0), window=0)


def test_rows_are_scored_independently() -> None:
    rows = np.stack([zigzag(30, 10.0), zigzag(30, 1.0), np.full(32, 5.0)])
    result = anomalies(rows)
    assert result.flagged.tolist() == [True, False, False]
    for i, row in enumerate(rows):
        assert float(anomalies(row).score) == result.score[i]


# Quarter-point values, integer shifts and power-of-two scales keep every step exact.
series = st.lists(st.integers(-4_000, 4_000).map(lambda x: x / 4), min_size=12, max_size=80)


@given(series, st.integers(-10_000, 10_000), st.integers(-4, 6))
def test_scores_ignore_level_and_units(values: list[float], shift: int, power: int) -> None:
    x = np.array(values)
    base, moved = anomalies(x), anomalies(2.0**power * x + shift)
    assert float(moved.score) == float(base.score) or math.isnan(float(base.score))
    assert math.isnan(float(moved.score)) == math.isnan(float(base.score))
    assert bool(moved.flagged) == bool(base.flagged)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=12),
        min_size=1,
        max_size=5,
    )
)
def test_the_sorting_median_and_mean_equal_numpys_nan_functions(
    rows: list[list[float | None]],
) -> None:
    width = max(len(r) for r in rows)
    x = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        x[i, : len(r)] = [np.nan if v is None else v for v in r]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: numpy warns, gives NaN
        median, mean = np.nanmedian(x, axis=-1), np.nanmean(x, axis=-1)
    np.testing.assert_array_equal(_nanmedian(x), median)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(_nanmean(x), mean)


def test_a_minimum_scale_per_series_equals_one_call_per_series() -> None:
    rng = np.random.default_rng(3)
    steady = np.cumsum(rng.choice([0.0, 0.05], size=(2, 4, 40)), axis=-1)
    steady[..., -1] += np.array([[0.06], [0.5]])
    together = anomalies(steady, min_scale=np.array([[0.001], [0.05]]))
    for series, scale in enumerate((0.001, 0.05)):
        alone = anomalies(steady[series], min_scale=scale)
        np.testing.assert_array_equal(together.score[series], alone.score)
        np.testing.assert_array_equal(together.flagged[series], alone.flagged)
