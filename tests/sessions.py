"""Helpers shared by the tests: record simulated sessions, compare trees, damage quotes."""

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.model import Quote
from opchain.pipeline import SessionReport, record_session
from opchain.settings import Settings

DAY = date(2026, 11, 20)


def record(
    data_dir: Path,
    until: datetime | None = None,
    day: date = DAY,
    pace: float = 1.0,
    **overrides: object,
) -> SessionReport:
    """Record (part of) the simulated session of ``day`` into ``data_dir``, in-process, the
    quote calls ``pace`` seconds apart (the Kite client's are 1.1)."""
    settings = Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]
    session = calendar.session("NSE", day)
    assert session is not None
    clock = VirtualClock(session.open)
    broker = SimBroker(clock, settings.sim_seed, settings.sim_glitch_rate, pace=pace)
    return asyncio.run(record_session(settings, broker, clock, day, until=until))


def tree_bytes(root: Path, pattern: str = "*.csv") -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern)) if p.is_file()
    }


class ScriptedBroker(SimBroker):
    """The simulator with scripted damage: drop or replace the quotes of chosen keys."""

    def __init__(self, clock: VirtualClock, damage: dict[str, Quote | None]) -> None:
        super().__init__(clock)
        self.damage = damage
        self.calls: list[int] = []

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        self.calls.append(len(keys))
        quotes = await super().quote(keys)
        for key, replacement in self.damage.items():
            if key in quotes:
                if replacement is None:
                    del quotes[key]
                else:
                    quotes[key] = replacement
        return quotes
