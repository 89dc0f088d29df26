"""TEST-ONLY: live cycles, as the pipeline hands them to its outputs, from a simulated session.

Until the pipeline's ``merge_cycle`` lands, a Cycle is made here from ``merge``'s rows and
analytics and :func:`opchain.outputs.influx.backfill.solve`'s vols and Greeks. The integrator
switches :func:`make_cycle` to ``opchain.merge.rows.merge_cycle``.
"""

import asyncio
from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.cycle import Cycle, LoopStats
from opchain.merge.rows import merge
from opchain.merge.stats import BucketStats, History
from opchain.model import Snapshot
from opchain.outputs.influx.backfill import solve
from opchain.pipeline import record_session
from opchain.settings import Settings

from .sessions import DAY


def make_cycle(
    snapshot: Snapshot,
    rate: float = 0.0,
    offsets: Collection[int] | None = None,
    history: History | None = None,
    loop: LoopStats | None = None,
) -> Cycle:
    """The cycle of a snapshot (``history`` is remembered as the pipeline does)."""
    history = history if history is not None else History()
    rows, stats = merge(snapshot, rate, offsets, history)
    history.remember(stats)
    solved = solve(snapshot, rate)
    return Cycle(snapshot, rows, stats, solved, history.previous_oi, loop or LoopStats())


def record_live(
    data_dir: Path, until: datetime | None = None, day: date = DAY, **overrides: object
) -> list[tuple[Snapshot, list[BucketStats]]]:
    """Record (part of) a simulated session into ``data_dir``, in-process, and return what the
    pipeline handed its watchers each cycle: the snapshot and its analytics rows."""
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    seen: list[tuple[Snapshot, list[BucketStats]]] = []

    def keep(snapshot: Snapshot, stats: list[BucketStats]) -> None:
        seen.append((snapshot, stats))

    asyncio.run(record_session(settings, broker, clock, day, until=until, on_cycle=keep))
    return seen


def live_cycles(seen: list[tuple[Snapshot, list[BucketStats]]], settings: Settings) -> list[Cycle]:
    """The cycles the live run had: its own analytics rows, the split rows and Greeks of each
    snapshot (a session without an earlier day: no previous close OI)."""
    out = []
    for snapshot, stats in seen:
        rows, _ = merge(snapshot, settings.rate, settings.strike_offsets)
        out.append(Cycle(snapshot, rows, stats, solve(snapshot, settings.rate)))
    return out
