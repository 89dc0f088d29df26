"""TEST-ONLY: live cycles, as the pipeline hands them to its outputs, from a simulated session.

Until the pipeline's ``merge_cycle`` lands, a Cycle is made here from ``merge``'s rows and
analytics and :func:`opchain.outputs.influx.backfill.solve`'s vols and Greeks; once it has
landed, the pipeline's ``on_cycle`` hands over its own Cycle and that one is used as it is.
The integrator then drops the first way (``make_cycle``, the pairs in ``live_cycles``).
"""

import asyncio
from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.market.ist import trading_date
from opchain.merge.cycle import Cycle, LoopStats
from opchain.merge.rows import merge
from opchain.merge.stats import BucketStats, History, OiKey
from opchain.model import Snapshot
from opchain.outputs.influx.backfill import solve
from opchain.pipeline import record_session
from opchain.settings import Settings
from opchain.store.raw import RawStore

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


Seen = tuple[Snapshot, list[BucketStats]] | Cycle


def record_live(
    data_dir: Path, until: datetime | None = None, day: date = DAY, **overrides: object
) -> list[Seen]:
    """Record (part of) a simulated session into ``data_dir``, in-process, and return what the
    pipeline handed its watchers each cycle: the snapshot and its analytics rows (before
    ``merge_cycle``), or the Cycle itself."""
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    seen: list[Seen] = []

    def keep(*found: object) -> None:
        seen.append(found[0] if len(found) == 1 else found)  # type: ignore[arg-type]

    asyncio.run(record_session(settings, broker, clock, day, until=until, on_cycle=keep))
    return seen


def live_cycles(seen: list[Seen], settings: Settings) -> list[Cycle]:
    """The cycles the live run had: its own, or its snapshots with its own analytics rows, the
    split rows and Greeks of each and the previous close's OI."""
    out = []
    previous: dict[OiKey, int] | None = None
    for found in seen:
        if isinstance(found, Cycle):
            out.append(found)
            continue
        snapshot, stats = found
        if previous is None:  # as the pipeline loads it
            raw = RawStore(settings.data_dir / "raw")
            day = trading_date(snapshot.ts)
            indices = sorted({c.index for c in snapshot.chains})
            previous = {k: v for i in indices for k, v in raw.closing_oi(i, day).items()}
            raw.close()
        rows, _ = merge(snapshot, settings.rate, settings.strike_offsets)
        out.append(Cycle(snapshot, rows, stats, solve(snapshot, settings.rate), previous))
    return out
