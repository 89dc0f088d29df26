"""The ``opchain`` command with its quote requests stamped with the cycle they are for.

    python tests/stamped.py <lead seconds> run --broker kite --start ... --speed ...

Two things differ from ``opchain`` itself, for tests that compare runs against the fake Kite
server (``tests/test_kill_kite.py``):

- every HTTP request made while the collector gathers the cycle of ``ts`` carries the header
  ``X-Opchain-Cycle: <ts>``, so the fake can price it at that cycle rather than at the moment
  it arrives: on a busy machine a run at 30 times real time asks for a cycle's quotes a little
  late now and then, and two runs compared row for row must see the same market;
- the simulated-market clock (``--start``/``--speed``) stands at its start for ``lead`` wall
  seconds after it is made: time for the run to get ready before its first cycle is due.

Nothing else is changed: the command runs as a user runs it, and a SIGKILL kills it for real.
"""

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
_cycle: ContextVar[datetime | None] = ContextVar("cycle", default=None)
_snapshot, _send, _made = Collector.snapshot, httpx.AsyncClient.send, clock.ScaledClock.__init__


async def _stamped_snapshot(self: Collector, ts: datetime) -> Snapshot:
    token = _cycle.set(ts)
    try:
        return await _snapshot(self, ts)
    finally:
        _cycle.reset(token)


async def _stamped_send(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
    ts = _cycle.get()
    if ts is not None:
        request.headers[HEADER] = ts.isoformat()
    return await _send(self, request, **kw)


def _late(self: clock.ScaledClock, *args: Any, **kwargs: Any) -> None:
    _made(self, *args, **kwargs)
    self._origin += LEAD


if __name__ == "__main__":
    Collector.snapshot = _stamped_snapshot  # type: ignore[method-assign]
    httpx.AsyncClient.send = _stamped_send  # type: ignore[method-assign]
    clock.ScaledClock.__init__ = _late  # type: ignore[method-assign]
    from opchain.cli import app

    app(prog_name="opchain")
