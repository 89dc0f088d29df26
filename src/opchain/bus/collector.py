"""``opchain collect``: the broker and the cycle loop of ``opchain run``, publishing each cycle
to the bus instead of recording it (:mod:`opchain.bus` has the entries' format).

The session is planned and its cycles taken by the same code as ``opchain run``
(:func:`opchain.pipeline.plan_session`, :func:`opchain.pipeline.take_cycles`), so a collector
asks the broker exactly what an embedded run would. Each cycle is cut into one entry per
index (its chains, its quote and INDIA VIX's), published through the
:class:`~opchain.bus.publish.Publisher`, which spools to local disk while Redis is away: the
collector never waits for Redis, and never loses a cycle to it.
"""

import logging
import zlib
from datetime import date, datetime

from opchain.brokers.base import Broker
from opchain.bus.codec import encode_loop, encode_snapshot
from opchain.bus.publish import Publisher
from opchain.health import state as health
from opchain.market.clock import Clock
from opchain.market.indices import INDIA_VIX
from opchain.market.instruments import format_dump
from opchain.model import Snapshot
from opchain.pipeline import (
    OnCycle,
    Progress,
    Say,
    SessionReport,
    plan_session,
    say_notes,
    take_cycles,
)
from opchain.redisconn import Keys, entry_id
from opchain.settings import Settings

log = logging.getLogger(__name__)
COMPONENT = "bus"  # the collector's health state of its way to Redis


def part(snapshot: Snapshot, index: str) -> Snapshot:
    """The snapshot of one index: its chains, and its and INDIA VIX's quotes."""
    keep = (index, INDIA_VIX.key)
    return Snapshot(
        ts=snapshot.ts,
        received_at=snapshot.received_at,
        indices={k: q for k, q in snapshot.indices.items() if k in keep},
        chains=tuple(c for c in snapshot.chains if c.index == index),
    )


class Publishing:
    """Records sessions by publishing them: a :class:`opchain.pipeline.Record`."""

    def __init__(self, publisher: Publisher, keys: Keys, until: datetime | None = None) -> None:
        self.publisher, self.keys, self.until = publisher, keys, until
        self._state = ""

    async def __call__(
        self,
        settings: Settings,
        broker: Broker,
        clock: Clock,
        day: date,
        progress: Progress | None = None,
        *,
        on_cycle: OnCycle | None = None,
        say: Say | None = None,
        metrics: object = None,
    ) -> SessionReport:
        report, plan = await plan_session(settings, broker, clock, day)
        if plan is None:
            return report
        say_notes(report, say)
        indices = list(dict.fromkeys(w.index for w in plan.watches))
        dump = zlib.compress(format_dump(plan.dump).encode(), 1)
        try:
            started = entry_id(plan.planned, 0)
            for index in indices:
                fields = {
                    "kind": b"start",
                    "day": day.isoformat().encode(),
                    "planned": plan.planned.isoformat().encode(),
                    "dump": dump,
                }
                await self._publish(settings, clock, index, started, fields)
            async for taken in take_cycles(broker, clock, plan, report, None, self.until):
                snapshot = taken.snapshot
                loop = encode_loop(taken.loop._asdict())
                at = entry_id(snapshot.ts, 1)
                for index in indices:
                    snap = encode_snapshot(part(snapshot, index))
                    fields = {"kind": b"cycle", "snap": snap, "loop": loop}
                    await self._publish(settings, clock, index, at, fields)
                if progress:
                    progress(snapshot.ts, taken.n, taken.total)
            if self.until is None or self.until >= plan.session.close:
                ended = entry_id(plan.session.close, 0)
                for index in indices:
                    fields = {"kind": b"end", "day": day.isoformat().encode()}
                    await self._publish(settings, clock, index, ended, fields)
        finally:
            report.quote_calls = plan.collector.quote_calls
        return report

    async def _publish(
        self, settings: Settings, clock: Clock, index: str, at: str, fields: dict[str, bytes]
    ) -> None:
        await self.publisher.publish(self.keys.stream(index), at, fields)
        state = self.publisher.state
        if state != self._state:  # said once per change, not per cycle
            self._state = state
            status: health.Status = "ok" if state == "ok" else "degraded"
            health.report(settings.data_dir, COMPONENT, status, self.publisher.detail, clock.now())
