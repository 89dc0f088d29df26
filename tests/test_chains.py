"""analytics.chains computes, for many expiries at once, exactly what the one-expiry functions
of oi, smile and gex define: checked on random padded tables."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.analytics import chains
from opchain.analytics.forward import otm_implied_vol
from opchain.analytics.gex import gamma_exposure
from opchain.analytics.oi import max_pain, oi_walls, put_call_ratio
from opchain.analytics.smile import atm_iv, expected_move


@st.composite
def tables(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """2-6 expiries of 0-14 strikes each, padded with NaN; values NaN at random."""
    rows = draw(st.integers(2, 6))
    counts = draw(st.lists(st.integers(0, 14), min_size=rows, max_size=rows))
    width = max(counts)
    step = draw(st.sampled_from([50.0, 100.0]))
    k = np.full((rows, width), np.nan)
    names = ("call", "put", "call_oi", "put_oi", "call_iv", "put_iv", "call_before")
    values = {name: np.full((rows, width), np.nan) for name in names}
    spot = np.empty(rows)
    forward = np.empty(rows)
    for i, n in enumerate(counts):
        start = draw(st.integers(230, 270)) * step
        k[i, :n] = start + step * np.arange(n)
        spot[i] = start + draw(st.floats(-2, n + 2)) * step
        forward[i] = spot[i] * draw(st.floats(0.99, 1.02))
        for name in names:
            for j in range(n):
                if draw(st.booleans()) or draw(st.booleans()):  # three in four present
                    values[name][i, j] = _value(draw, name)
    if draw(st.booleans()):
        forward[0] = np.nan
    return {"k": k, "spot": spot, "forward": forward, **values}


def _value(draw: st.DrawFn, name: str) -> float:
    if name.endswith("_iv"):
        return draw(st.floats(0.05, 0.6))
    if name in ("call", "put"):
        return draw(st.integers(1, 40_000)) * 0.05
    return float(draw(st.integers(0, 5_000_000)))


def _row(t: dict[str, np.ndarray], i: int, name: str) -> np.ndarray:
    n = int(np.count_nonzero(np.isfinite(t["k"][i])))
    return t[name][i, :n]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=200, deadline=None)
@given(tables())
def test_each_row_equals_the_one_expiry_definition(t: dict[str, np.ndarray]) -> None:
    pcr = chains.put_call_ratios(t["put_oi"], t["call_oi"])
    pains = chains.max_pains(t["k"], t["call_oi"], t["put_oi"])
    resistance, support = chains.walls(t["k"], t["call_oi"], t["put_oi"], t["spot"])
    changes = chains.oi_changes(t["call_oi"], t["call_before"])
    at = np.where(np.isfinite(t["forward"]), t["forward"], t["spot"])
    straddles = chains.straddles(t["k"], t["call"], t["put"], at)
    smile = otm_implied_vol(t["k"], t["forward"][:, None], t["call_iv"], t["put_iv"])
    atm = chains.atm_ivs(t["k"], smile, t["forward"])
    for i in range(len(t["k"])):
        k = _row(t, i, "k")
        call_oi, put_oi = _row(t, i, "call_oi"), _row(t, i, "put_oi")
        assert _same(pcr[i], put_call_ratio(put_oi, call_oi))
        assert _same(pains[i], max_pain(k, call_oi, put_oi))
        w = oi_walls(k, call_oi, put_oi, float(t["spot"][i]), top=1)
        assert _same(resistance[i], float(w.resistance[0]) if w.resistance.size else np.nan)
        assert _same(support[i], float(w.support[0]) if w.support.size else np.nan)
        before = _row(t, i, "call_before")
        seen = np.isfinite(call_oi) & np.isfinite(before)
        expected = float((call_oi[seen] - before[seen]).sum()) if seen.any() else np.nan
        assert _same(changes[i], expected)
        f = float(t["forward"][i])
        move = expected_move(
            k, _row(t, i, "call"), _row(t, i, "put"), float(t["spot"][i]),
            None if math.isnan(f) else f,
        )  # fmt: skip
        assert _same(straddles.strike[i], move.strike)
        assert _same(straddles.straddle[i], move.straddle)
        one_smile = otm_implied_vol(k, f, _row(t, i, "call_iv"), _row(t, i, "put_iv"))
        expected_atm = atm_iv(k, one_smile, f) if k.size else np.nan
        assert _same(atm[i], expected_atm) or math.isclose(atm[i], expected_atm, rel_tol=1e-14)


@settings(max_examples=100, deadline=None)
@given(tables(), st.floats(0.002, 0.2))
def test_gex_totals_equal_gamma_exposure(t: dict[str, np.ndarray], years: float) -> None:
    rows = len(t["k"])
    forward = np.where(np.isfinite(t["forward"]), t["forward"], t["spot"])
    t_arr, discount = np.full(rows, years), np.full(rows, 0.99)
    totals = chains.gex_totals(
        t["k"], t["call_oi"], t["put_oi"], forward, t_arr, t["call_iv"], t["put_iv"], 1.0,
        discount,
    )  # fmt: skip
    for i in range(rows):
        k = _row(t, i, "k")
        one = gamma_exposure(
            k, _row(t, i, "call_oi"), _row(t, i, "put_oi"), float(forward[i]), years,
            _row(t, i, "call_iv"), _row(t, i, "put_iv"), 1.0, 0.99,
        ).total  # fmt: skip
        # Summing over the padded width may group the additions differently: last-bit only.
        assert math.isclose(totals[i], one, rel_tol=1e-12, abs_tol=1e-6)


def test_the_forward_on_the_highest_strike_takes_its_iv() -> None:
    k = np.array([[100.0, 110.0, np.nan]])
    iv = np.array([[0.2, 0.3, np.nan]])
    assert chains.atm_ivs(k, iv, np.array([110.0]))[0] == 0.3
    assert chains.atm_ivs(k, iv, np.array([100.0]))[0] == 0.2
    assert np.isnan(chains.atm_ivs(k, iv, np.array([110.5]))[0])
    assert math.isclose(
        chains.atm_ivs(k, iv, np.array([105.0]))[0], 0.2 + 0.1 * np.log(1.05) / np.log(1.1)
    )
