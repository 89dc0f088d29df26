"""merge_cycle solves each index alone but computes the forwards and analytics of all indices
at once on their tables stacked: every number must be the one each index gives alone (a bus
worker merges one index and must write what ``opchain run`` writes), to the last digit."""

import asyncio
import itertools
import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from opchain.analytics.along import take_last
from opchain.analytics.black76 import black76_price, implied_vol, implied_vols_apart
from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.cycle import Cycle
from opchain.merge.rows import by_index, merge_cycle
from opchain.merge.stats import History
from opchain.merge.table import Table, row_sums, stack_tables
from opchain.model import Snapshot

from .sessions import DAY

_floats = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.data())
def test_take_last_is_take_along_axis(data: st.DataObject) -> None:
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    shape = (*lead, data.draw(st.integers(1, 6)))  # rows may be none at all (no chains)
    values = data.draw(hnp.arrays(np.float64, shape, elements=_floats))
    picks = data.draw(st.integers(1, 4))
    index = data.draw(
        hnp.arrays(np.intp, (*shape[:-1], picks), elements=st.integers(0, shape[-1] - 1))
    )
    assert np.array_equal(take_last(values, index), np.take_along_axis(values, index, axis=-1))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_row_sums_of_stacked_tables_are_each_tables_own(data: st.DataObject) -> None:
    """Padding a row to a wider table regroups numpy's pairwise sum (eight partial sums from
    eight values on) and can change its last digit: row_sums must not."""
    tables = []
    for _ in range(data.draw(st.integers(2, 4))):
        rows, width = data.draw(st.integers(1, 3)), data.draw(st.integers(0, 20))
        values = data.draw(hnp.arrays(np.float64, (10, rows, width), elements=_floats))
        tables.append(Table(np.sort(values[0], axis=-1), values, [[] for _ in range(rows)]))
    stacked, spans = stack_tables(tables)
    alone = np.concatenate([t.values.sum(axis=-1) for t in tables], axis=-1)
    assert np.array_equal(row_sums(stacked.values, spans), alone)
    for t, (span, width) in zip(tables, spans, strict=True):
        assert np.array_equal(stacked.values[:, span, :width], t.values, equal_nan=True)


def test_a_snapshot_without_chains_merges_to_nothing() -> None:
    snapshot = _snapshots(minutes=1)[0]
    cycle = merge_cycle(replace(snapshot, chains=()), 0.07, range(-2, 3), History())
    assert (cycle.rows, cycle.stats, cycle.solved) == ([], [], [])


def _snapshots(minutes: int) -> list[Snapshot]:
    """The simulator's three-index band snapshots, one every 20 s from the open."""
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, 7, 0.01)  # a few flagged legs too

    async def take() -> list[Snapshot]:
        from opchain.collect.cycle import Collector
        from opchain.collect.watch import plan_watches

        watches, _ = plan_watches(
            await broker.instruments(), ("NIFTY", "BANKNIFTY", "SENSEX"), session.open
        )
        collector = Collector(broker, clock, watches, range(-2, 3))
        out = []
        for k in range(minutes * 3):
            ts = session.open + timedelta(seconds=20 * k)
            await clock.sleep_until(ts)
            out.append(await collector.snapshot(ts))
        return out

    return asyncio.run(take())


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_several_indices_merge_as_each_alone() -> None:
    snapshots = _snapshots(minutes=15)
    widths = set()
    together_history, alone_history = History(), History()
    for snapshot in snapshots:
        parts = by_index(snapshot)
        assert len(parts) == 3
        widths.add(tuple(len({leg.strike for leg in c.legs}) for c in snapshot.chains))
        together = merge_cycle(snapshot, 0.07, range(-2, 3), together_history)
        alone = [merge_cycle(part, 0.07, range(-2, 3), alone_history) for part in parts]
        whole = Cycle(
            snapshot=snapshot,
            rows=[r for c in alone for r in c.rows],
            stats=[s for c in alone for s in c.stats],
            solved=[s for c in alone for s in c.solved],
        )
        assert _same(together.rows, whole.rows)
        assert _same(together.solved, whole.solved)
        assert _same(together.stats, whole.stats)
        together_history.remember(together.stats)
        alone_history.remember(whole.stats)
    assert len(widths) > 1  # slices of different widths were stacked


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_implied_vols_apart_are_each_groups_alone(data: st.DataObject) -> None:
    sizes = data.draw(st.lists(st.integers(0, 12), min_size=1, max_size=4))
    n = sum(sizes)
    forward = data.draw(hnp.arrays(np.float64, n, elements=st.floats(20_000, 30_000)))
    strike = forward * data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.8, 1.2)))
    t = data.draw(hnp.arrays(np.float64, n, elements=st.floats(1e-4, 0.5)))
    vol = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0.05, 1.0)))
    calls = data.draw(hnp.arrays(np.bool_, n))
    price = black76_price(forward, strike, t, vol, calls) * 1.001  # not all exactly solvable
    bounds = np.cumsum([0, *sizes]).tolist()
    groups = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    together = implied_vols_apart(price, forward, strike, t, calls, np.ones(n), groups)
    alone = [implied_vol(price[g], forward[g], strike[g], t[g], calls[g]) for g in groups]
    assert np.array_equal(together, np.concatenate(alone), equal_nan=True)
