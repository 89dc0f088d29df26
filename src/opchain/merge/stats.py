"""Per-bucket chain analytics of a snapshot, beside its split rows: one row per index, bucket
and cycle with the parity forward, ATM IV, put-call ratios, max pain, the expected move, gamma
exposure, OI walls, OI change since the previous close, the 30-day IV against its history, and
jump flags.

Computed over the strikes the snapshot holds for the slice: the watched band (ATM ± the
offsets and a margin), or every listed strike in full-chain mode. PCR, max pain, GEX and walls
over a narrow band describe that band only; the ``strikes`` column says how many strikes they
saw. What a row is compared with (the previous close, earlier days, earlier cycles) comes in a
:class:`History` that the pipeline keeps and reloads on resume; nothing here does I/O.
"""

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from opchain.analytics import chains
from opchain.analytics.black76 import FloatArray
from opchain.analytics.forward import otm_implied_vol
from opchain.analytics.gex import zero_gamma
from opchain.analytics.history import (
    MIN_JUMP,
    anomalies,
    iv_percentile,
    iv_rank,
    straddle_move_bound,
)
from opchain.analytics.smile import iv_at_maturity
from opchain.market.indices import INDICES
from opchain.merge.table import OiKey as OiKey
from opchain.merge.table import Span, Table, row_sums
from opchain.model import Snapshot

IV30_YEARS = 30 / 365  # the constant maturity whose IV is ranked against its history
ANOMALY_WINDOW = 30  # earlier changes a jump is scored against (analytics.history.anomalies)
ANOMALY_THRESHOLD = 5.0  # robust z-score of a jump
TICK = 0.05  # the smallest change of a premium: no straddle scale below it
_ROUND = {"atm_iv": 6, "straddle": 2, "forward": 2}  # as written: reloaded history = kept one
# OI is reported in units of the underlying (Kite: shares, not lots), so GEX uses lot size 1.
OI_LOT = 1.0
# The gamma flip is a property of the whole chain: over the few strikes of a watched band it
# says little, and re-evaluating GEX at 72 levels costs more than the rest of the row. It is
# left blank below this many strikes (full-chain mode has 100 and more).
FLIP_MIN_STRIKES = 20


class BucketStats(NamedTuple):
    """Field order is the file's column order; NaN is written as an empty cell."""

    ts: str
    index: str  # type: ignore[assignment]  # shadows tuple.index; the name is the contract
    bucket: str
    expiry: str
    strikes: int  # strikes with a quote on either side
    spot: float
    forward: float
    atm_iv: float
    pcr_oi: float
    pcr_volume: float
    max_pain: float
    straddle: float  # ATM call + put
    expected_move_pct: float  # straddle / spot × 100
    gex: float  # dealer gamma exposure, rupees per 1% move (analytics.gex)
    zero_gamma: float  # level of the index where that total changes sign
    call_wall: float  # strike at or above spot with the largest call OI (resistance)
    put_wall: float  # strike at or below spot with the largest put OI (support)
    call_oi_change: float  # Σ call OI − its previous close, over strikes seen both times
    put_oi_change: float
    iv30: float  # the index's 30-day constant-maturity ATM IV (same in each of its buckets)
    iv_rank: float  # of iv30 against its daily closes, 0-100
    iv_percentile: float
    anomaly: str  # space-separated series whose latest change is a jump: atm_iv, straddle


@dataclass
class History:
    """What a snapshot's analytics are compared with, kept across cycles by the pipeline."""

    # Open interest at the previous session's close, per contract (empty: no earlier session).
    previous_oi: Mapping[OiKey, int] = field(default_factory=dict)
    # Each index's iv30 at the close of earlier sessions, oldest first (the IV rank window).
    iv30_closes: Mapping[str, Sequence[float]] = field(default_factory=dict)
    # Each bucket's ATM IV, straddle and forward at the earlier cycles of today, oldest first.
    recent: dict[tuple[str, str], deque[tuple[float, float, float]]] = field(default_factory=dict)

    def remember(self, rows: Iterable["BucketStats"]) -> None:
        """Add a cycle's rows to ``recent`` (only as many cycles as the jump score uses), as
        the analytics file has them."""
        for row in rows:
            key = (row.index, row.bucket)
            if key not in self.recent:
                self.recent[key] = deque(maxlen=ANOMALY_WINDOW + 1)
            self.recent[key].append(_remembered(row))


def _remembered(row: "BucketStats") -> tuple[float, float, float]:
    return row.atm_iv, row.straddle, round(row.forward, _ROUND["forward"])


class Unscored(NamedTuple):
    """A snapshot's (or one index's) rows before :func:`with_history` fills in what they are
    compared with: iv30 and its rank, and the jump flags."""

    rows: list[BucketStats]
    years: FloatArray  # to expiry, one per row
    slid: FloatArray  # the smile of now at the previous cycle's forward, one per row


def bucket_stats(
    snapshot: Snapshot,
    table: Table,
    forwards: FloatArray,
    years: FloatArray,
    rate: float = 0.0,
    history: History | None = None,
) -> list[BucketStats]:
    """One row per slice, all slices at once: ``table`` is the snapshot's
    (:func:`~opchain.merge.table.chain_table`) with its IVs solved, ``forwards`` and ``years``
    (to expiry) one per slice, NaN where a slice has no forward."""
    history = history or History()
    return with_history([unscored(snapshot, table, forwards, years, rate, history)], history)


def unscored(
    snapshot: Snapshot,
    table: Table,
    forwards: FloatArray,
    years: FloatArray,
    rate: float,
    history: History,
    spans: Sequence[Span] | None = None,
) -> Unscored:
    """:func:`bucket_stats` up to what :func:`with_history` adds. ``table`` may be several
    tables stacked (:func:`~opchain.merge.table.stack_tables`, ``spans`` says where each is):
    every step is then row by row, and every sum along a row is over its own table's width,
    so each row's numbers are those of its table alone."""
    k = table.strikes
    spans = spans or [(slice(None), k.shape[1])]
    call_oi, put_oi = table.column("oi", 0), table.column("oi", 1)
    call_iv, put_iv = table.column("iv", 0), table.column("iv", 1)
    call, put = table.column("price", 0), table.column("price", 1)
    spot = np.array([chain.spot for chain in snapshot.chains], dtype=np.float64)
    count = np.count_nonzero(np.isfinite(k), axis=-1)
    has_forward = np.isfinite(forwards)
    smile = otm_implied_vol(k, forwards[:, None], call_iv, put_iv)
    atm = np.round(chains.atm_ivs(k, smile, forwards), _ROUND["atm_iv"])
    move = chains.straddles(k, call, put, np.where(has_forward, forwards, spot))
    with np.errstate(invalid="ignore"):
        discount = np.exp(-rate * years)
        live = has_forward & (years > 0) & (count > 0)
        gex = chains.gex_terms(
            k, call_oi, put_oi, forwards, years, call_iv, put_iv, OI_LOT, discount
        )
    call_change, call_seen = chains.oi_change_terms(call_oi, table.column("oi_before", 0))
    put_change, put_seen = chains.oi_change_terms(put_oi, table.column("oi_before", 1))
    # Every sum along a row in one call (per table): the put-call ratios' (NaN counted as 0,
    # as nansum does), GEX's, and the OI changes'.
    counted = np.stack([put_oi, call_oi, table.column("volume", 1), table.column("volume", 0)])
    terms = [np.where(np.isnan(counted), 0.0, counted), np.stack([gex, call_change, put_change])]
    sums = row_sums(np.concatenate(terms), spans)
    resistance, support = chains.walls(k, call_oi, put_oi, spot)
    columns = np.stack(
        [
            forwards,
            atm,
            chains.ratios(sums[0], sums[1]),
            chains.ratios(sums[2], sums[3]),
            chains.max_pains(k, call_oi, put_oi),
            np.round(move.straddle, _ROUND["straddle"]),
            100.0 * move.straddle / spot,
            np.where(live, sums[4], np.nan),
            _flips(k, count, table, forwards, years, discount, spot, live),
            resistance,
            support,
            chains.oi_change_totals(sums[5], call_seen),
            chains.oi_change_totals(sums[6], put_seen),
        ]
    ).T.tolist()
    # the ATM IV the smile of now gives at the previous cycle's forward: how far the forward's
    # move alone shifts the IV at the forward (jump scores)
    before = [history.recent.get((c.index, c.bucket)) for c in snapshot.chains]
    previous = np.array([b[-1][2] if b else math.nan for b in before], dtype=np.float64)
    slid = np.round(chains.atm_ivs(k, smile, previous), _ROUND["atm_iv"])
    ts = snapshot.ts.isoformat()
    nan = math.nan
    out = [
        BucketStats._make(
            [ts, chain.index, chain.bucket, chain.expiry.isoformat(), n, chain.spot, *values,
             nan, nan, nan, ""]
        )
        for chain, n, values in zip(snapshot.chains, count.tolist(), columns, strict=True)
    ]  # fmt: skip
    return Unscored(out, years, slid)


def with_history(parts: Sequence[Unscored], history: History) -> list[BucketStats]:
    """The rows of ``parts`` (each index's, in order) with iv30, its rank and the jump flags.

    All parts go through at once: each step is row by row (iv30 per index, the jump score of a
    row from its own history along the last axis, a window of fixed length), so the numbers
    are those of part by part, at a third of the calls for three indices (a bus worker merges
    one index alone and must write what ``opchain run`` writes)."""
    if len(parts) == 1:
        return _with_history(*parts[0], history)
    rows = [row for part in parts for row in part.rows]
    years = np.concatenate([part.years for part in parts])
    slid = np.concatenate([part.slid for part in parts])
    return _with_history(rows, years, slid, history)


def _flips(
    k: FloatArray,
    count: NDArray[np.intp],
    table: Table,
    forwards: FloatArray,
    years: FloatArray,
    discount: FloatArray,
    spot: FloatArray,
    live: NDArray[np.bool_],
) -> FloatArray:
    """The zero-gamma level of each slice with at least FLIP_MIN_STRIKES strikes, else NaN."""
    flips = np.full(len(k), math.nan)
    for i in np.flatnonzero(live & (count >= FLIP_MIN_STRIKES)).tolist():
        n = int(count[i])
        call_oi, put_oi, call_iv, put_iv = (
            table.column(kind, side)[i, :n] for kind, side in _FLIP_COLUMNS
        )
        flips[i] = zero_gamma(
            k[i, :n], call_oi, put_oi, float(forwards[i]), float(years[i]), call_iv, put_iv,
            OI_LOT, float(discount[i]), spot=float(spot[i]),
        )  # fmt: skip
    return flips


_FLIP_COLUMNS = (("oi", 0), ("oi", 1), ("iv", 0), ("iv", 1))


def _with_history(
    rows: list[BucketStats], years: FloatArray, slid: FloatArray, history: History
) -> list[BucketStats]:
    """Fill in each index's iv30 with its rank and percentile, and each bucket's jump flags."""
    by_index: dict[str, list[tuple[float, float]]] = {}
    for row, t in zip(rows, years.tolist(), strict=True):
        by_index.setdefault(row.index, []).append((t, row.atm_iv))
    ranked = {}  # each index's iv30, its rank and percentile: the same in all its rows
    for index, points in by_index.items():
        t, iv = np.array(points).T
        known = np.isfinite(iv) & (t > 0)
        current = round(iv_at_maturity(t[known], iv[known], IV30_YEARS), _ROUND["atm_iv"])
        closes = history.iv30_closes.get(index, ())
        ranked[index] = (current, iv_rank(current, closes), iv_percentile(current, closes))
    before = [history.recent.get((r.index, r.bucket), ()) for r in rows]
    flags = _jumps(before, rows, years, slid)
    return [
        row._replace(
            iv30=ranked[row.index][0],
            iv_rank=ranked[row.index][1],
            iv_percentile=ranked[row.index][2],
            anomaly=flagged,
        )
        for row, flagged in zip(rows, flags, strict=True)
    ]


def _jumps(
    earlier: Sequence[Iterable[tuple[float, float, float]]],
    rows: Sequence[BucketStats],
    years: FloatArray,
    slid: FloatArray,
) -> list[str]:
    """Each row's flags: which of its series (ATM IV, straddle) just jumped, scored for all
    rows and both series in one call (histories padded to one length with NaN).

    A change is a jump when its robust z-score against the bucket's last ANOMALY_WINDOW
    changes passes ANOMALY_THRESHOLD and it is at least MIN_JUMP of the series' level; and
    only for what the forward's own move does not explain. A straddle change across a strike
    roll (the strike nearest the forward, on the index's strike step, changed) is not scored
    at all: it is another straddle. The latest straddle change is reduced by
    ``straddle_move_bound``, the latest IV change by how far the forward's move slid the IV
    along the smile (``slid``: the smile of now at the previous forward). All of it is read
    from the values the analytics file holds, so a resumed run flags what an uninterrupted
    one does.
    """
    width = ANOMALY_WINDOW + 2  # the window's changes, and the latest
    # Laid out as one flat list (NaN padding first) and made an array in one call: cheaper
    # than a numpy assignment per row.
    padding = (math.nan, math.nan, math.nan)
    cells: list[tuple[float, float, float]] = []
    for before, row in zip(earlier, rows, strict=True):
        values = [*before, _remembered(row)][-width:]
        cells += [padding] * (width - len(values))
        cells += values
    table = np.array(cells, dtype=np.float64).reshape(len(rows), width, 3)
    iv, straddle, forward = np.moveaxis(table, -1, 0)  # (rows, cycles) each
    step = np.array([_strike_step(row.index) for row in rows])
    with np.errstate(invalid="ignore"):
        strike = np.floor(forward / step[:, None] + 0.5)
    rolled = np.diff(strike, axis=-1) != 0  # NaN strikes compare unequal: no score either
    d_iv = np.diff(iv, axis=-1)
    d_straddle = np.where(rolled, np.nan, np.diff(straddle, axis=-1))
    last_iv, last_straddle, last_forward = iv[:, -2], straddle[:, -2], forward[:, -2]
    vol = np.where(np.isfinite(last_iv), last_iv, iv[:, -1])
    bound = straddle_move_bound(forward[:, -1] - last_forward, last_forward, vol, years, step)
    d_iv[:, -1] = _less(d_iv[:, -1], np.abs(iv[:, -1] - slid))
    d_straddle[:, -1] = _less(d_straddle[:, -1], bound)
    floor = MIN_JUMP / ANOMALY_THRESHOLD
    scales = np.stack([floor * last_iv, np.maximum(TICK, floor * last_straddle)])
    flagged = anomalies(
        np.stack([d_iv, d_straddle]),  # (series, rows, changes)
        window=ANOMALY_WINDOW,
        threshold=ANOMALY_THRESHOLD,
        min_scale=np.nan_to_num(scales),
        differenced=True,
    ).flagged
    names = ("atm_iv", "straddle")
    return [
        " ".join(name for name, column in zip(names, flagged, strict=True) if column[i])
        for i in range(len(rows))
    ]


def _strike_step(index: str) -> float:
    spec = INDICES.get(index)
    return float(spec.strike_step) if spec and spec.strike_step else math.nan


def _less(change: FloatArray, explained: FloatArray) -> FloatArray:
    """``change`` less ``explained`` in size, its sign kept (0 if explained wholly; NaN when
    ``explained`` is unknown)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sign(change) * np.maximum(np.abs(change) - explained, 0.0))
