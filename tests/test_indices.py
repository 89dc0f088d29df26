"""The index table as data: the selection, the simulator's traits and streams of each index."""

from datetime import date, datetime

import numpy as np
import pytest

from opchain.brokers.sim import SimMarket
from opchain.brokers.sim.listing import listed_indices
from opchain.brokers.sim.traits import TRAITS, lot_size
from opchain.market.indices import DEFAULT_INDICES, INDICES, OVERVIEW
from opchain.market.ist import IST
from opchain.settings import Settings

DAY = date(2026, 11, 20)
MORE = ("FINNIFTY", "MIDCPNIFTY", "BANKEX")


def test_the_default_selection_is_the_first_three() -> None:
    assert DEFAULT_INDICES == ("NIFTY", "BANKNIFTY", "SENSEX")
    assert Settings().indices == DEFAULT_INDICES
    assert set(INDICES) == {*DEFAULT_INDICES, *MORE}


def test_any_index_of_the_table_can_be_selected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPCHAIN_INDICES", "nifty, finnifty,BANKEX")
    assert Settings().indices == ("NIFTY", "FINNIFTY", "BANKEX")
    monkeypatch.setenv("OPCHAIN_INDICES", "NIFTY,MIDCAP")
    with pytest.raises(ValueError, match=r"unknown indices \['MIDCAP'\]; known: NIFTY, .*BANKEX"):
        Settings()


def test_every_index_has_the_simulators_traits() -> None:
    assert set(TRAITS) == set(OVERVIEW)
    tokens = [t.index_token for t in TRAITS.values()]
    assert len(set(tokens)) == len(tokens) and all(t & 0xFF == 9 for t in tokens)


@pytest.mark.parametrize(
    ("index", "expiry", "lots"),
    [
        ("NIFTY", date(2025, 12, 30), 75),
        ("NIFTY", date(2026, 1, 27), 65),
        ("BANKNIFTY", date(2025, 9, 30), 35),
        ("FINNIFTY", date(2025, 12, 30), 65),
        ("FINNIFTY", date(2026, 11, 24), 60),
        ("MIDCPNIFTY", date(2025, 9, 30), 140),
        ("MIDCPNIFTY", date(2026, 11, 24), 120),
        ("BANKEX", date(2026, 11, 26), 30),
    ],
)
def test_lot_sizes_by_expiry(index: str, expiry: date, lots: int) -> None:
    assert lot_size(index, expiry) == lots


def test_listed_indices_keep_the_table_order_and_the_default_ones() -> None:
    assert listed_indices() == DEFAULT_INDICES
    assert listed_indices(["BANKEX", "NIFTY"]) == (*DEFAULT_INDICES, "BANKEX")


def test_listing_more_indices_changes_nothing_of_the_default_ones() -> None:
    plain = SimMarket(7, DAY, 0.001)
    more = SimMarket(7, DAY, 0.001, indices=MORE)
    assert more.indices == [*DEFAULT_INDICES, *MORE, "INDIAVIX"]
    rows = [*range(len(DEFAULT_INDICES)), -1]
    np.testing.assert_array_equal(plain.paths, more.paths[rows])
    added = {*MORE, *(OVERVIEW[k].display for k in MORE)}
    assert plain.instruments == [i for i in more.instruments if i.name not in added]
    options = [i.key for i in plain.instruments if i.instrument_type in ("CE", "PE")]
    assert [more._option_pos[k] for k in options] == list(range(len(options)))
    moment = datetime(2026, 11, 20, 13, 7, 11, tzinfo=IST)
    keys = [i.key for i in plain.instruments]
    assert plain.quotes(keys, moment) == more.quotes(keys, moment)


def test_the_new_indices_quote_like_an_index_and_its_options() -> None:
    market = SimMarket(7, DAY, 0.0, indices=MORE)
    moment = datetime(2026, 11, 20, 11, 0, tzinfo=IST)
    for key in MORE:
        spec = INDICES[key]
        spot = market.quotes([spec.quote_key], moment)[spec.quote_key].last_price
        assert abs(spot / TRAITS[key].level - 1) < 0.15
        atm = round(spot / spec.strike_step) * spec.strike_step  # type: ignore[operator]
        calls = [
            i for i in market.instruments
            if i.name == key and i.instrument_type == "CE" and i.strike == atm
        ]  # fmt: skip
        assert len(calls) == 3  # three monthlies, no weeklies
        quotes = market.quotes([c.key for c in calls], moment)
        prices = [quotes[c.key].last_price for c in sorted(calls, key=lambda c: c.expiry or DAY)]
        assert 0 < prices[0] < prices[1] < prices[2] < 0.1 * spot
