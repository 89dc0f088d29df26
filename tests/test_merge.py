"""Merge: symmetric and pair rows, totals, implied vols on the parity forward."""

import math
from datetime import date, datetime

from opchain.analytics.black76 import black76_price
from opchain.analytics.expiry_time import years_to_expiry
from opchain.merge.rows import implied_vols, merge, split_rows
from opchain.model import ChainSlice, DepthLevel, Leg, Quote, Side, Snapshot

TS = datetime.fromisoformat("2026-11-20T10:00:00+05:30")
EXPIRY = date(2026, 11, 23)
FORWARD, VOL = 26_030.0, 0.14
T = years_to_expiry(TS, EXPIRY)


def leg(offset: int, side: Side, flag: str | None = None) -> Leg:
    strike = 26_000.0 + 50 * offset
    price = float(black76_price(FORWARD, strike, T, VOL, side == "CE"))
    q = Quote(
        1, TS, TS, price, 65, price, 650, 1, 1, 6500, 6500, 6500, price, price, price, price,
        (DepthLevel(price - 0.05, 65, 1),), (DepthLevel(price + 0.05, 65, 1),),
    )  # fmt: skip
    return Leg("NIFTY", "this_week", EXPIRY, offset, side, strike, None, q, flag)


def snapshot(*legs: Leg) -> Snapshot:
    chain = ChainSlice("NIFTY", "this_week", EXPIRY, 26_010.0, 26_000.0, legs)
    return Snapshot(TS, TS, {}, (chain,))


ALL = [leg(o, s) for o in range(-2, 3) for s in ("CE", "PE")]


def test_labels_and_order() -> None:
    labels = [r.strike_offset for r in split_rows(snapshot(*ALL))]
    assert labels == ["atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2", "atm_p1m1", "atm_p2m2"]


def test_pair_is_call_above_put_below() -> None:
    rows = {r.strike_offset: r for r in split_rows(snapshot(*ALL))}
    pair = rows["atm_p1m1"]
    assert (pair.call_strike, pair.put_strike) == (26_050.0, 25_950.0)
    assert pair.call_last_price == rows["atm_p1"].call_last_price
    assert pair.put_last_price == rows["atm_m1"].put_last_price


def test_total_premium_is_call_plus_put() -> None:
    for row in split_rows(snapshot(*ALL)):
        assert row.call_last_price is not None and row.put_last_price is not None
        assert row.total_premium == round(row.call_last_price + row.put_last_price, 2)
        assert row.days_to_expiry == 3


def test_unusable_leg_blanks_its_side_and_the_total_only() -> None:
    legs = [leg(0, "CE", flag="no_trade") if (x.offset, x.side) == (0, "CE") else x for x in ALL]
    rows = {r.strike_offset: r for r in split_rows(snapshot(*legs))}
    assert rows["atm"].call_last_price is None and rows["atm"].call_iv is None
    assert rows["atm"].total_premium is None
    assert rows["atm"].put_last_price is not None and rows["atm"].put_iv is not None
    assert rows["atm_p1"].total_premium is not None


def test_warning_flags_keep_the_price() -> None:
    legs = [
        leg(0, "CE", flag="crossed_book") if (x.offset, x.side) == (0, "CE") else x for x in ALL
    ]
    rows = {r.strike_offset: r for r in split_rows(snapshot(*legs))}
    assert rows["atm"].call_last_price is not None


def test_ivs_recover_the_pricing_vol_on_the_parity_forward() -> None:
    snap = snapshot(*ALL)
    _, _, (forward,) = implied_vols(snap, [[leg.price for leg in snap.chains[0].legs]], 0.0)
    assert forward is not None and math.isclose(forward, FORWARD, abs_tol=1e-6)
    for row in split_rows(snapshot(*ALL)):
        assert row.call_iv is not None and row.put_iv is not None
        assert abs(row.call_iv - VOL) < 1e-5 and abs(row.put_iv - VOL) < 1e-5


def test_no_parity_pair_means_no_iv() -> None:
    calls_only = [x for x in ALL if x.side == "CE"]
    assert all(r.call_iv is None for r in split_rows(snapshot(*calls_only)))


def test_rows_only_for_the_offsets_asked_for() -> None:
    """A snapshot may hold more legs than the split files keep (the strikes around a far
    forward, or the full chain): rows are written for the watched offsets only."""
    rows, stats = merge(snapshot(*ALL), offsets=(-1, 0, 1))
    assert [r.strike_offset for r in rows] == ["atm_m1", "atm", "atm_p1", "atm_p1m1"]
    assert stats[0].strikes == len({leg.strike for leg in ALL})  # the analytics see them all


def test_slices_without_quotes_give_blank_analytics_beside_full_ones() -> None:
    """Slices are analysed together in one padded table: a slice with no quote at all, or
    none priced, is blank and leaves its neighbours' numbers as they are alone."""
    missing = [x._replace(quote=None, flag="missing") for x in ALL]
    empty = ChainSlice("NIFTY", "next_week", EXPIRY, 26_010.0, 26_000.0, tuple(missing))
    full = snapshot(*ALL)
    both = Snapshot(TS, TS, {}, (*full.chains, empty))
    _, alone = merge(full)
    _, together = merge(both)
    assert [_cell(v) for v in together[0]] == [_cell(v) for v in alone[0]]
    blank = together[1]
    assert blank.strikes == 0 and blank.anomaly == ""
    numbers = blank[6:-1]
    assert all(math.isnan(v) for v in numbers if v != blank.iv30)
    _, none = merge(Snapshot(TS, TS, {}, (empty,)))
    assert none[0].strikes == 0 and math.isnan(none[0].max_pain) and math.isnan(none[0].gex)


def _cell(value: object) -> object:
    return "nan" if isinstance(value, float) and math.isnan(value) else value
