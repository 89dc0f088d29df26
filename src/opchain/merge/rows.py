"""Merge: the CE and PE legs of each offset side by side, one split row each (SPEC §3.3).

Symmetric rows put CALL and PUT of the same offset together (``atm``, ``atm_p1``, ...). Pair rows
are the one-step-out strangles: ``atm_p1m1`` = CALL at ``atm_p1`` + PUT at ``atm_m1``,
``atm_p2m2`` likewise. ``total_premium`` = call + put last price, empty when either is unusable.

Each leg also gets its Black-76 implied volatility and delta, on the slice's forward implied by
put-call parity (:func:`opchain.analytics.forward.parity_forward`: the median of
``K + e^{rT}(C - P)`` over the three usable strikes nearest the money).
"""

import math
from collections.abc import Collection, Sequence
from dataclasses import replace

import numpy as np

from opchain.analytics.black76 import FloatArray, implied_vol
from opchain.analytics.expiry_time import years_to_expiry
from opchain.analytics.forward import parity_forward
from opchain.analytics.greeks import greeks
from opchain.market.ist import trading_date
from opchain.market.strikes import offset_label, pair_label
from opchain.merge.cycle import Cycle, LoopStats, Solved
from opchain.merge.stats import BucketStats, History, bucket_stats
from opchain.merge.table import Table, chain_table
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
    if len(parts) > 1:  # each index alone, as a bus worker that owns one index merges it
        merged = [_merge(part, rate, offsets, history) for part in parts]
        return Cycle(
            snapshot=snapshot,
            rows=[row for m in merged for row in m.rows],
            stats=[stat for m in merged for stat in m.stats],
            solved=[legs for m in merged for legs in m.solved],
            previous_oi=history.previous_oi,
            loop=loop or LoopStats(),
        )
    return replace(_merge(snapshot, rate, offsets, history), loop=loop or LoopStats())


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


def _merge(
    snapshot: Snapshot, rate: float, offsets: Collection[int] | None, history: History
) -> Cycle:
    """:func:`merge_cycle` of one index's chains (or a snapshot taken as a whole).

    Each index is solved on its own: a vectorized solve's last digit can depend on what else
    is in the arrays (Newton iterations run until every leg has converged, SIMD loops change
    with length), so merging an index alone or beside others must be the same computation for
    a bus worker's files to equal ``opchain run``'s byte for byte."""
    ts = snapshot.ts
    day = trading_date(ts)
    prices = [[leg.price for leg in chain.legs] for chain in snapshot.chains]
    table = chain_table(snapshot, prices, history.previous_oi)
    years = np.array([years_to_expiry(ts, chain.expiry) for chain in snapshot.chains])
    solved, forwards = _solve(snapshot, prices, rate, table, years)
    rows = []
    for chain, chain_prices, legs in zip(snapshot.chains, prices, solved, strict=True):
        halves: dict[tuple[int, str], _Half] = {}
        for leg, price, iv, delta in zip(
            chain.legs, chain_prices, legs.iv, legs.delta, strict=True
        ):
            q = leg.quote
            halves[leg.offset, leg.side] = (
                leg.strike, price, iv, q and q.volume, q and q.oi, delta
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
                SplitRow(
                    *head, label, *where,
                    c[0], p[0], c[1], p[1], _round(c[2]), _round(p[2]), c[3], p[3], c[4], p[4],
                    total, dte, _round(c[5]), _round(p[5]),
                )
            )  # fmt: skip
    stats = bucket_stats(snapshot, table, forwards, years, rate, history)
    return Cycle(
        snapshot=snapshot,
        rows=rows,
        stats=stats,
        solved=solved,
        previous_oi=history.previous_oi,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, IV_DECIMALS)


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
    columns: list[Column] = [[[None] * len(c.legs) for c in snapshot.chains] for _ in range(5)]
    with np.errstate(invalid="ignore"):
        discounts = np.exp(-rate * years)
        forwards = parity_forward(
            table.strikes, table.column("price", 0), table.column("price", 1), discounts
        )
        forwards = np.where(years > 0, forwards, np.nan)
    at: list[tuple[int, int]] = []
    place: list[tuple[int, int, int]] = []  # the table cell of each solved leg
    price: list[float] = []
    chain_of: list[int] = []
    for c, (f, chain_prices, cells) in enumerate(
        zip(forwards.tolist(), prices, table.cells, strict=True)
    ):
        if math.isnan(f):
            continue
        for n, (p, cell) in enumerate(zip(chain_prices, cells, strict=True)):
            if p is not None and cell is not None:
                at.append((c, n))
                place.append((2 + cell[1], c, cell[0]))
                price.append(p)
                chain_of.append(c)
    if at:
        rows = np.array(chain_of)
        kind, row, column = np.array(place).T
        k_arr, f_arr, t_arr = table.strikes[row, column], forwards[rows], years[rows]
        calls = kind == 2
        discount = np.exp(-rate * t_arr)
        vols = implied_vol(np.array(price), f_arr, k_arr, t_arr, calls, discount)
        table.values[kind, row, column] = vols
        g = greeks(f_arr, k_arr, t_arr, vols, calls, discount)  # NaN where vol is NaN
        solved = np.isfinite(vols).tolist()
        solved_greeks = (g.delta, g.gamma, g.theta, g.vega)
        values = zip(vols.tolist(), *(x.tolist() for x in solved_greeks), strict=True)
        for (c, n), ok, leg in zip(at, solved, values, strict=True):
            if ok:
                for out, value in zip(columns, leg, strict=True):
                    out[c][n] = value
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
    ], forwards
