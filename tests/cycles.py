"""Live cycles, as the pipeline hands them to its outputs, from a simulated session."""

import asyncio
from datetime import date, datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.merge.cycle import Cycle
from opchain.pipeline import record_session
from opchain.settings import Settings

from .sessions import DAY


def record_live(
    data_dir: Path, until: datetime | None = None, day: date = DAY, **overrides: object
) -> list[Cycle]:
    """Record (part of) a simulated session into ``data_dir``, in-process, and return the
    cycles the pipeline handed its outputs."""
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate)
    seen: list[Cycle] = []
    asyncio.run(record_session(settings, broker, clock, day, until=until, on_cycle=seen.append))
    return seen
