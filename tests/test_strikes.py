from hypothesis import given
from hypothesis import strategies as st

from opchain.market.strikes import (
    atm_strike,
    offset_label,
    offsets,
    pair_label,
    parse_offset_label,
    strike_at_offset,
)

GRID = [float(k) for k in range(25_000, 27_001, 50)]


def test_atm_is_nearest_listed_strike() -> None:
    assert atm_strike(GRID, 26_012.4) == 26_000
    assert atm_strike(GRID, 26_037.6) == 26_050


def test_atm_tie_goes_up() -> None:
    assert atm_strike(GRID, 26_025.0) == 26_050


def test_atm_outside_grid_clamps() -> None:
    assert atm_strike(GRID, 10.0) == 25_000
    assert atm_strike(GRID, 99_999.0) == 27_000


def test_atm_uses_listed_strikes_not_arithmetic() -> None:
    uneven = [24_000.0, 24_500.0, 25_000.0, 26_000.0]
    assert atm_strike(uneven, 25_400.0) == 25_000
    assert atm_strike(uneven, 25_500.0) == 26_000  # tie between 25,000 and 26,000


@given(
    st.floats(24_000, 28_000), st.lists(st.integers(200, 600), min_size=1, max_size=60, unique=True)
)
def test_atm_minimises_distance(spot: float, raw: list[int]) -> None:
    strikes = sorted(float(k * 50) for k in raw)
    atm = atm_strike(strikes, spot)
    best = min(abs(k - spot) for k in strikes)
    assert abs(atm - spot) == best
    ties = [k for k in strikes if abs(k - spot) == best]
    assert atm == max(ties)


@given(st.integers(-5, 5))
def test_offsets_walk_the_grid(step: int) -> None:
    strike = strike_at_offset(GRID, 26_000.0, step)
    assert strike == 26_000 + 50 * step


def test_offset_past_grid_is_none() -> None:
    assert strike_at_offset(GRID, 27_000.0, 1) is None
    assert strike_at_offset(GRID, 25_000.0, -1) is None


@given(st.integers(-50, 50))
def test_labels_round_trip(offset: int) -> None:
    assert parse_offset_label(offset_label(offset)) == offset


def test_labels_are_ops_folder_names() -> None:
    assert [offset_label(o) for o in offsets(2)] == ["atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2"]
    assert pair_label(1) == "atm_p1m1"
