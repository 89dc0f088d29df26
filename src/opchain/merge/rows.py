"""Merge: the CE and PE legs of each offset side by side, one split row each (SPEC §3.3).

Symmetric rows put CALL and PUT of the same offset together (``atm``, ``atm_p1``, ...). Pair rows
are the one-step-out strangles: ``atm_p1m1`` = CALL at ``atm_p1`` + PUT at ``atm_m1``,
``atm_p2m2`` likewise. ``total_premium`` = call + put last price, empty when either is unusable.

Each leg also gets its Black-76 implied volatility and delta, on the slice's forward implied by
put-call parity (:func:`opchain.analytics.forward.parity_forward`: the median of
``K + e^{rT}(C - P)`` over the three usable strikes nearest the money).
"""

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np

from opchain.analytics.black76 import FloatArray, implied_vols_apart
from opchain.analytics.expiry_time import years_to_expiry
from opchain.analytics.forward import parity_forward
from opchain.analytics.greeks import greeks
from opchain.market.ist import trading_date
from opchain.market.strikes import offset_label, pair_label
from opchain.merge.cycle import Cycle, LoopStats, Solved
from opchain.merge.stats import BucketStats, History, unscored, with_history
from opchain.merge.table import Table, chain_table, stack_tables
from opchain.model import Snapshot, SplitRow

IV_DECIMALS = 6  # IVs and deltas

# One side of a row: strike, usable price, implied vol, volume, open interest, delta.
_Half = tuple[float | None, float | None, float | None, int | None, int | None, float | None]
_ABSENT: _Half = (None, None, None, None, None, None)


def split_rows(snapshot: Snapshot, rate: float = 0.0) -> list[SplitRow]:
    """All split rows of one snapshot, slice by slice, offsets ascending, then pairs."""
    return merge(snapshot, rate)[0]


def merge(
    snapshot: Snapshot,
    rate: float = 0.0,
    offsets: Collection[int] | None = None,
    history: History | None = None,
) -> tuple[list[SplitRow], list[BucketStats]]:
    """The split rows of one snapshot and its per-bucket analytics (:func:`merge_cycle`)."""
    cycle = merge_cycle(snapshot, rate, offsets, history)
    return cycle.rows, cycle.stats


def merge_cycle(
    snapshot: Snapshot,
    rate: float = 0.0,
    offsets: Collection[int] | None = None,
    history: History | None = None,
    loop: LoopStats | None = None,
) -> Cycle:
    """One cycle as every output sees it: split rows, per-bucket analytics and every leg's IV
    and Greeks, from one IV solve.

    Split rows are written for ``offsets`` (default: every offset the snapshot holds); the
    analytics see every leg, so a full-chain snapshot gives full-chain PCR, max pain and GEX
    while the split files keep their usual offsets. ``history`` is what the analytics compare
    with (previous close, earlier cycles); it is not changed here.
    """
    history = history or History()
    parts = by_index(snapshot)
    # Each index's legs are solved alone, as a bus worker that owns one index solves them
    # (_solve_legs: apart). Everything else is computed for all indices at once on their
    # tables stacked (merge.table.stack_tables): it is leg by leg or row by row, with every
    # sum along a row over its own table's width (merge.stats.unscored), so the numbers are
    # those of each index alone.
    prices = [[[leg.price for leg in chain.legs] for chain in part.chains] for part in parts]
    tables = [
        chain_table(part, part_prices, history.previous_oi)
        for part, part_prices in zip(parts, prices, strict=True)
    ]
    ts = snapshot.ts
    years = np.array([years_to_expiry(ts, chain.expiry) for chain in snapshot.chains])
    table, spans = stack_tables(tables) if len(tables) > 1 else (tables[0], None)
    forwards = _forwards(table, years, rate)
    every = [chain_prices for part_prices in prices for chain_prices in part_prices]
    apart = [len(part.chains) for part in parts]
    solved = _solve_legs(every, rate, table, years, forwards, apart)
    rows = _split_rows(snapshot, every, solved, offsets)
    stats = unscored(snapshot, table, forwards, years, rate, history, spans)
    return Cycle(
        snapshot=snapshot,
        rows=rows,
        stats=with_history([stats], history),
        solved=solved,
        previous_oi=history.previous_oi,
        loop=loop or LoopStats(),
    )


def by_index(snapshot: Snapshot) -> list[Snapshot]:
    """The snapshot's chains index by index (each part keeps every index quote), in the
    snapshot's order; the snapshot itself when it holds one index, or when its chains are not
    grouped by index (then the parts would not line up with its chains)."""
    keys = [chain.index for chain in snapshot.chains]
    order = list(dict.fromkeys(keys))
    if len(order) < 2 or keys != sorted(keys, key=order.index):
        return [snapshot]
    return [
        replace(snapshot, chains=tuple(c for c in snapshot.chains if c.index == index))
        for index in order
    ]


def _split_rows(
    snapshot: Snapshot,
    prices: Sequence[Sequence[float | None]],
    solved: Sequence[Solved],
    offsets: Collection[int] | None,
) -> list[SplitRow]:
    """The split rows of a snapshot's chains, their legs solved."""
    ts = snapshot.ts
    day = trading_date(ts)
    rows: list[SplitRow] = []
    make = SplitRow._make  # tuple.__new__: skips the generated __new__'s argument handling
    for chain, chain_prices, legs in zip(snapshot.chains, prices, solved, strict=True):
        # Each half is built once, its IV and delta rounded as written (a half can be in two
        # rows: its offset's and a pair's), so the row loop below only picks halves.
        halves: dict[tuple[int, str], _Half] = {}
        for leg, price, iv, delta in zip(
            chain.legs, chain_prices, legs.iv, legs.delta, strict=True
        ):
            q = leg.quote
            halves[leg.offset, leg.side] = (
                leg.strike, price,
                None if iv is None else round(iv, IV_DECIMALS),
                q and q.volume, q and q.oi,
                None if delta is None else round(delta, IV_DECIMALS),
            )  # fmt: skip
        head = (ts, chain.index, chain.bucket, chain.expiry)
        where = (chain.atm_strike, chain.spot)
        dte = (chain.expiry - day).days
        held = sorted({offset for offset, _ in halves})
        wanted = held if offsets is None else [o for o in held if o in offsets]
        pairs = [(offset_label(o), (o, "CE"), (o, "PE")) for o in wanted]
        pairs += [
            (pair_label(s), (s, "CE"), (-s, "PE"))
            for s in range(1, max(wanted, default=0) + 1)
            if s in wanted and -s in wanted and (s, "CE") in halves and (-s, "PE") in halves
        ]
        for label, call_at, put_at in pairs:
            c, p = halves.get(call_at, _ABSENT), halves.get(put_at, _ABSENT)
            total = None if c[1] is None or p[1] is None else round(c[1] + p[1], 2)
            rows.append(
                make((
                    *head, label, *where,
                    c[0], p[0], c[1], p[1], c[2], p[2], c[3], p[3], c[4], p[4],
                    total, dte, c[5], p[5],
                ))
            )  # fmt: skip
    return rows


Column = list[list[float | None]]  # one value per leg, chain by chain


def solve(snapshot: Snapshot, rate: float = 0.0) -> list[Solved]:
    """Every leg's IV and Greeks, chain by chain, as :func:`merge_cycle` solves them (for a
    snapshot read back from the files, whose split rows and analytics are already written)."""
    parts = by_index(snapshot)
    if len(parts) > 1:  # index by index, as merge_cycle solves them
        return [legs for part in parts for legs in solve(part, rate)]
    prices = [[leg.price for leg in chain.legs] for chain in snapshot.chains]
    table = chain_table(snapshot, prices, {})
    years = np.array([years_to_expiry(snapshot.ts, chain.expiry) for chain in snapshot.chains])
    return _solve(snapshot, prices, rate, table, years)[0]


def implied_vols(
    snapshot: Snapshot, prices: Sequence[Sequence[float | None]], rate: float
) -> tuple[Column, Column, list[float | None]]:
    """Implied vol and delta of every leg, chain by chain (None where no vol fits), in one
    vectorized solve for the whole snapshot, and each chain's parity forward. ``prices`` are
    the legs' usable prices. Unrounded: the split rows round what they write."""
    table = chain_table(snapshot, prices, {})
    years = np.array([years_to_expiry(snapshot.ts, chain.expiry) for chain in snapshot.chains])
    solved, _ = _solve(snapshot, prices, rate, table, years)
    return [s.iv for s in solved], [s.delta for s in solved], [s.forward for s in solved]


def _solve(
    snapshot: Snapshot,
    prices: Sequence[Sequence[float | None]],
    rate: float,
    table: Table,
    years: FloatArray,
) -> tuple[list[Solved], FloatArray]:
    """Every leg's IV and Greeks on a snapshot's table, whose IV columns it fills in, and the
    slices' forwards: NaN where a slice has none (no strike priced on both sides, or
    expired)."""
    forwards = _forwards(table, years, rate)
    return _solve_legs(prices, rate, table, years, forwards, [len(prices)]), forwards


def _forwards(table: Table, years: FloatArray, rate: float) -> FloatArray:
    """Each slice's parity forward, NaN where it has none."""
    with np.errstate(invalid="ignore"):
        discounts = np.exp(-rate * years)
        forwards = parity_forward(
            table.strikes, table.column("price", 0), table.column("price", 1), discounts
        )
        return np.asarray(np.where(years > 0, forwards, np.nan), dtype=np.float64)


def _solve_legs(
    prices: Sequence[Sequence[float | None]],
    rate: float,
    table: Table,
    years: FloatArray,
    forwards: FloatArray,
    apart: Sequence[int],
) -> list[Solved]:
    """:func:`_solve` with the slices' forwards known; ``apart``: how many chains each group
    solved alone has, in order (an index's, for merge_cycle)."""
    # The legs to solve, flat over the snapshot: each one's place among all legs, its table
    # cell as (value row: 2 call IV / 3 put IV, slice, strike column), its price and slice.
    at: list[int] = []
    place: list[int] = []
    price: list[float] = []
    chain_of: list[int] = []
    group_starts = set(itertools.accumulate(apart[:-1]))  # chains that start a group
    starts = [0]  # where each group's legs start
    first = 0  # flat position of the chain's first leg
    for c, (f, chain_prices, cells) in enumerate(
        zip(forwards.tolist(), prices, table.cells, strict=True)
    ):
        if c in group_starts:
            starts.append(len(price))
        if not math.isnan(f):
            for n, (p, cell) in enumerate(zip(chain_prices, cells, strict=True)):
                if p is not None and cell is not None:
                    at.append(first + n)
                    place += (2 + cell[1], c, cell[0])
                    price.append(p)
                    chain_of.append(c)
        first += len(cells)
    groups = [slice(a, b) for a, b in zip(starts, [*starts[1:], len(price)], strict=True)]
    # Each solved column over all legs, None where the leg has no vol; chain by chain below.
    flat: list[list[float | None]] = [[None] * first] * 5
    if at:
        rows = np.array(chain_of)
        kind, row, column = np.array(place).reshape(-1, 3).T
        k_arr, f_arr, t_arr = table.strikes[row, column], forwards[rows], years[rows]
        calls = kind == 2
        discount = np.exp(-rate * t_arr)
        vols = implied_vols_apart(np.array(price), f_arr, k_arr, t_arr, calls, discount, groups)
        table.values[kind, row, column] = vols
        g = greeks(f_arr, k_arr, t_arr, vols, calls, discount)  # NaN where vol is NaN
        # Scattered into object arrays of every leg and turned into lists in one go each (no
        # Python loop over the legs): a leg keeps a value only where its vol is finite (a
        # Greek may still be NaN there), None elsewhere.
        legs = np.array(at)
        ok = np.zeros(first, dtype=bool)
        ok[legs] = np.isfinite(vols)
        unknown = ~ok
        flat = []
        for solved_values in (vols, g.delta, g.gamma, g.theta, g.vega):
            # as objects (Python floats, as tolist gives) so the unknown ones can be None
            spread = np.full(first, np.nan, dtype=object)
            spread[legs] = solved_values
            spread[unknown] = None
            flat.append(spread.tolist())
    columns: list[Column] = [[] for _ in range(5)]
    first = 0
    for cells in table.cells:
        end = first + len(cells)
        for out, values in zip(columns, flat, strict=True):
            out.append(values[first:end])
        first = end
    iv, delta, gamma, theta, vega = columns
    return [
        Solved(
            forward=None if math.isnan(f) else f,
            iv=iv[c],
            delta=delta[c],
            gamma=gamma[c],
            theta=theta[c],
            vega=vega[c],
        )
        for c, f in enumerate(forwards.tolist())
    ]
