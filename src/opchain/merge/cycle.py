"""One cycle as every output sees it: what ``merge`` made of a snapshot, solved once.

The split rows, the per-bucket analytics and every leg's implied vol and Greeks come from one
vectorized solve in :func:`opchain.merge.rows.merge_cycle`; outputs (files, the live view,
InfluxDB) read them from here and never solve again.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from opchain.merge.stats import BucketStats, OiKey
from opchain.model import Snapshot, SplitRow

Column = list[float | None]  # one value per leg of a chain, None where no vol fits


class Solved(NamedTuple):
    """One chain's legs, in ``ChainSlice.legs`` order: Black-76 on the slice's parity forward,
    unrounded (units in :mod:`opchain.analytics.greeks`: theta per year, vega per 1.00)."""

    forward: float | None  # None: no strike priced on both sides, or expired
    iv: Column
    delta: Column
    gamma: Column
    theta: Column
    vega: Column


class LoopStats(NamedTuple):
    """How the cycle's loop went, as far as the pipeline knows it when the outputs get it:
    OP's ``pipeline_tick``/``monitor_status``/``broker_health`` numbers come from here."""

    collect_ms: float = 0.0  # the cycle's quote calls, from its start to the answer
    merge_ms: float = 0.0  # merge, IVs and analytics
    quote_calls: int = 0  # made for this cycle
    legs: int = 0
    flagged: int = 0  # legs with a validation flag
    lag_s: float = 0.0  # from the cycle's time to the broker's answer
    cycles: int = 0  # recorded so far this session, this one included
    lost: int = 0  # cycles the broker could not answer so far this session
    missed: int = 0  # cycles whose time had passed before they could run, so far
    requests: int = 0  # broker HTTP requests so far this process (0 without a tally)
    rate_limited: int = 0  # of them answered 429
    failed: int = 0  # of them 5xx or unanswered


@dataclass(frozen=True, slots=True)
class Cycle:
    """``stats`` and ``solved`` line up with ``snapshot.chains``; ``rows`` are the split rows
    for the session's offsets (slice by slice, offsets ascending, then pairs)."""

    snapshot: Snapshot
    rows: list[SplitRow]
    stats: list[BucketStats]
    solved: list[Solved]
    previous_oi: Mapping[OiKey, int] = field(default_factory=dict)
    loop: LoopStats = field(default_factory=LoopStats)
