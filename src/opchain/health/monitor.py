"""The monitor: every ``interval`` seconds, run the checks, update the metrics, send alerts.

It runs beside the collector in ``opchain run`` (and may run in ``opchain serve``), on the same
clock, so a simulated session's data is judged against simulated time. Nothing it does can
stop it: checks are bounded and turn errors into ``down``, senders log their failures, and an
unexpected error in a round is logged and the next round comes anyway.
"""

import logging
from datetime import timedelta

import httpx

from opchain.brokers.tally import BrokerTally
from opchain.health import alerts, state
from opchain.health.checks import Check, check_all, hold_since
from opchain.health.metrics import Metrics
from opchain.market.clock import Clock
from opchain.settings import Settings

log = logging.getLogger(__name__)

INTERVAL = 30.0  # seconds between rounds


async def monitor(
    settings: Settings,
    clock: Clock,
    metrics: Metrics | None = None,
    broker: BrokerTally | None = None,
    interval: float = INTERVAL,
    rounds: int | None = None,
    http: httpx.AsyncClient | None = None,
) -> None:
    """Watch until cancelled (or for ``rounds`` rounds). ``broker`` adds the ``kite_api``
    check; ``http`` is the client the webhook is posted with (default: a new one)."""
    repeat = timedelta(minutes=settings.alert_repeat_minutes)
    held: dict[str, Check] = {}
    sent: dict[str, alerts.Sent] = {}
    client = http or httpx.AsyncClient(timeout=10.0)
    done = 0
    try:
        while rounds is None or done < rounds:
            now = clock.now()
            try:
                checks = hold_since(held, await check_all(settings, now, broker))
                states = state.read(settings.data_dir)
                if metrics is not None:
                    metrics.set_health(checks, states)
                firing = alerts.alerts_for(checks, states, now)
                notices = alerts.decide(sent, firing, now, repeat)
                await alerts.send(settings, notices, client, metrics)
            except Exception as err:  # a round that breaks is logged; the next one comes anyway
                log.warning("health monitor round failed: %s: %s", type(err).__name__, err)
                log.debug("health monitor round failed", exc_info=err)
            done += 1
            if rounds is None or done < rounds:
                await clock.sleep_until(now + timedelta(seconds=interval))
    finally:
        if http is None:
            await client.aclose()
