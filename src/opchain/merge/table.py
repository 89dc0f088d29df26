"""A snapshot's chains as one padded table: a row per slice, a column per strike.

The forwards and the per-bucket analytics of a snapshot are computed for all slices at once
(``analytics.rows``), which needs the legs laid out as (slices, strikes) arrays: strikes
ascending in each row, then NaN padding; each value column NaN where a strike has no such side
or value. Built in one pass over the legs, beside each leg's place in the table so values
solved per leg (implied vols) can be put back.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import NamedTuple

import numpy as np

from opchain.analytics.black76 import FloatArray
from opchain.model import Snapshot

OiKey = tuple[str, date, float, str]  # index, expiry, strike, "CE"|"PE"

# Value columns per strike, calls then puts: price, IV (filled in later), OI, volume, OI at
# the previous close. COLUMNS[2 * k + side] is column k of side 0 (CE) or 1 (PE).
_KINDS = ("price", "iv", "oi", "volume", "oi_before")


class Table(NamedTuple):
    strikes: FloatArray  # (slices, n)
    values: FloatArray  # (10, slices, n): call/put price, iv, oi, volume, oi_before
    cells: list[list[tuple[int, int] | None]]  # each leg's (column, side), None: no strike/quote

    def column(self, kind: str, side: int) -> FloatArray:
        """``kind`` of calls (side 0) or puts (side 1), shape (slices, n)."""
        column: FloatArray = self.values[2 * _KINDS.index(kind) + side]
        return column


def chain_table(
    snapshot: Snapshot,
    prices: Sequence[Sequence[float | None]],
    previous_oi: Mapping[OiKey, int],
) -> Table:
    """The snapshot's legs as a :class:`Table`; ``prices`` are the legs' usable prices."""
    nan = math.nan
    slices: list[tuple[list[float], list[list[float]]]] = []
    cells: list[list[tuple[int, int] | None]] = []
    for chain, chain_prices in zip(snapshot.chains, prices, strict=True):
        by_strike: dict[float, list[float]] = {}
        at: list[tuple[float, int] | None] = []
        index, expiry = chain.index, chain.expiry
        for leg, price in zip(chain.legs, chain_prices, strict=True):
            q, strike = leg.quote, leg.strike
            if strike is None or q is None:
                at.append(None)
                continue
            row = by_strike.get(strike)
            if row is None:
                row = by_strike[strike] = [nan] * 10
            side = leg.side == "PE"
            row[side] = nan if price is None else price
            row[4 + side] = q.oi
            row[6 + side] = q.volume
            before = previous_oi.get((index, expiry, strike, leg.side)) if previous_oi else None
            row[8 + side] = nan if before is None else before
            at.append((strike, side))
        strikes = sorted(by_strike)
        column = {k: j for j, k in enumerate(strikes)}
        cells.append([None if a is None else (column[a[0]], a[1]) for a in at])
        slices.append((strikes, [by_strike[k] for k in strikes]))
    width = max((len(s) for s, _ in slices), default=0)
    k = np.full((len(slices), width), nan)
    values = np.full((len(slices), width, 10), nan)
    for i, (strikes, rows) in enumerate(slices):
        if strikes:
            k[i, : len(strikes)] = strikes
            values[i, : len(strikes)] = rows
    return Table(k, np.ascontiguousarray(values.transpose(2, 0, 1)), cells)


Span = tuple[slice, int]  # a part's rows of a stacked table, and that part's own width


def stack_tables(tables: Sequence[Table]) -> tuple[Table, list[Span]]:
    """Several snapshots' tables (each index's) as one, padded to the widest with NaN, and
    where each one's rows are with its own width: sums along a row must be taken over that
    width alone (:func:`row_sums`), since padding would change how a sum is grouped (numpy
    adds eight partial sums once a row has eight values) and so its last digit."""
    width = max((t.strikes.shape[1] for t in tables), default=0)
    count = sum(t.strikes.shape[0] for t in tables)
    strikes = np.full((count, width), math.nan)
    values = np.full((10, count, width), math.nan)
    spans: list[Span] = []
    start = 0
    for t in tables:
        rows, n = t.strikes.shape
        strikes[start : start + rows, :n] = t.strikes
        values[:, start : start + rows, :n] = t.values
        spans.append((slice(start, start + rows), n))
        start += rows
    return Table(strikes, values, [cell for t in tables for cell in t.cells]), spans


def row_sums(terms: FloatArray, spans: Sequence[Span]) -> FloatArray:
    """Sums along the last axis of a stacked table's ``terms`` (any leading axes), each part's
    rows over its own width only: the numbers of each table summed alone."""
    if len(spans) == 1:
        rows, n = spans[0]
        return np.asarray(terms[..., rows, :n].sum(axis=-1), dtype=np.float64)
    return np.concatenate([terms[..., rows, :n].sum(axis=-1) for rows, n in spans], axis=-1)
