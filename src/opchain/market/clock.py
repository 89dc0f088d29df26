"""Clocks: the wall clock, an accelerated clock for the simulator, a virtual one for replays.

Every component asks a clock for the time instead of calling ``datetime.now``, so a whole
session can run in seconds and tests decide what time it is.
"""

import asyncio
import math
import time as _time
from datetime import datetime, timedelta
from typing import Protocol

from opchain.market.ist import IST, to_ist


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, moment: datetime) -> None: ...


class WallClock:
    """Real time, in IST."""

    def now(self) -> datetime:
        return datetime.now(IST)

    async def sleep_until(self, moment: datetime) -> None:
        delay = (moment - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class ScaledClock:
    """Starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(self, start: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._start = to_ist(start)
        self._speed = speed
        self._origin = _time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = (_time.monotonic() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed)

    async def sleep_until(self, moment: datetime) -> None:
        delay = (moment - self.now()).total_seconds() / self._speed
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """Time stands still until someone sleeps; sleeping jumps there at once."""

    def __init__(self, start: datetime) -> None:
        self._now = to_ist(start)

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, moment: datetime) -> None:
        self._now = max(self._now, to_ist(moment))


class PacedClock(VirtualClock):
    """A virtual clock that takes its time: a sleep jumps to its moment after ``1/speed`` of
    the time between, in real time. Every moment is what a :class:`VirtualClock` gives (a
    simulated day replayed is the same day, whatever the machine's load), at a pace a person,
    or another process, can follow."""

    def __init__(self, start: datetime, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        super().__init__(start)
        self.pace = speed

    async def sleep_until(self, moment: datetime) -> None:
        delay = (to_ist(moment) - self.now()).total_seconds() / self.pace
        if delay > 0:
            await asyncio.sleep(delay)
        await super().sleep_until(moment)


def wall_seconds(clock: Clock, seconds: float) -> float:
    """How long ``seconds`` of ``clock`` time last in real time: for ever on a virtual clock,
    which stands still until someone sleeps (so nothing waited for there is ever late); a time
    already past is past on any clock."""
    if isinstance(clock, VirtualClock):
        return math.inf if seconds > 0 else seconds
    speed = getattr(clock, "speed", 1.0)
    return seconds / speed if isinstance(speed, int | float) and speed > 0 else seconds
