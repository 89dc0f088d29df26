"""The ``opchain`` command with its quote requests stamped with the cycle they are for.

    python tests/stamped.py <lead seconds> [--instant] run --broker kite --start ... --speed ...

Two things differ from ``opchain`` itself (three with ``--instant``), for tests that compare
runs (``opchain run``, or ``opchain collect`` whose collector is the same) against the fake Kite
server (``tests/test_kill_kite.py``, ``tests/test_bus_kite.py``):

- every HTTP request made while the collector gathers the cycle of ``ts`` carries the header
  ``X-Opchain-Cycle: <ts>``, so the fake can price it at that cycle rather than at the moment
  it arrives: on a busy machine a run at 30 times real time asks for a cycle's quotes a little
  late now and then, and two runs compared row for row must see the same market;
- the simulated-market clock (``--start``/``--speed``) stands at its start for ``lead`` wall
  seconds after it is made: time for the run to get ready before its first cycle is due;
- with ``--instant``, a cycle's answers count as received at the cycle's own moment (its
  ``received_at``, which the raw record keeps and the stale check reads): what the fake
  answers is the same whenever it arrives, and now so is every byte recorded of it.

Nothing else is changed: the command runs as a user runs it, and a SIGKILL kills it for real.
"""

import asyncio
import sys
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import httpx

from opchain.collect.cycle import Collector
from opchain.market import clock
from opchain.model import Snapshot

HEADER = "X-Opchain-Cycle"
LEAD = float(sys.argv.pop(1)) if __name__ == "__main__" else 0.0
INSTANT = __name__ == "__main__" and sys.argv[1] == "--instant"
if INSTANT:
    sys.argv.pop(1)
_cycle: ContextVar[datetime | None] = ContextVar("cycle", default=None)
_snapshot, _send = Collector.snapshot, httpx.AsyncClient.send
_made, _read = clock.ScaledClock.__init__, clock.ScaledClock.now


async def _stamped_snapshot(self: Collector, ts: datetime) -> Snapshot:
    token, kept = _cycle.set(ts), self.clock
    if INSTANT:
        self.clock = clock.VirtualClock(ts)  # the collector reads it for received_at alone
    try:
        return await _snapshot(self, ts)
    finally:
        self.clock = kept
        _cycle.reset(token)


async def _stamped_send(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
    ts = _cycle.get()
    if ts is not None:
        request.headers[HEADER] = ts.isoformat()
    return await _send(self, request, **kw)


def _late(self: clock.ScaledClock, *args: Any, **kwargs: Any) -> None:
    _made(self, *args, **kwargs)
    self._origin += LEAD


def _standing(self: clock.ScaledClock) -> datetime:
    """The start until ``LEAD`` has passed (not earlier: what is due first stays due first,
    however long the run takes to get ready within the lead), then on from it."""
    return max(self._start, _read(self))


async def _sleep_until(self: clock.ScaledClock, moment: datetime) -> None:
    delay = (moment - _read(self)).total_seconds() / self.speed  # through the lead too
    if delay > 0:
        await asyncio.sleep(delay)


if __name__ == "__main__":
    Collector.snapshot = _stamped_snapshot  # type: ignore[method-assign]
    httpx.AsyncClient.send = _stamped_send  # type: ignore[method-assign]
    clock.ScaledClock.__init__ = _late  # type: ignore[method-assign]
    clock.ScaledClock.now = _standing  # type: ignore[method-assign]
    clock.ScaledClock.sleep_until = _sleep_until  # type: ignore[method-assign]
    from opchain.cli import app

    app(prog_name="opchain")
