"""Keep a component running: restart it when it fails, waiting longer after each failure.

The wait doubles from ``first`` up to ``cap`` seconds, each drawn between half and all of
that (jitter, so components that failed together do not all come back at the same instant).
A run that lasted ``healthy_after`` seconds before it failed counts as healthy: the next
wait starts from ``first`` again. Every start, failure and restart is written to the
component's health state, where ``/health``, ``opchain health`` and the alerts see it.

The clock says how long a run lasted and the sleep is injectable, so tests drive a
:class:`~opchain.market.clock.VirtualClock` or record the sleeps instead of sleeping.
"""

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from opchain.health import state
from opchain.health.metrics import Metrics
from opchain.market.clock import Clock

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    first: float = 1.0  # seconds before the first restart
    cap: float = 300.0  # the longest wait
    factor: float = 2.0
    healthy_after: float = 600.0  # a run this long resets the wait to ``first``

    def delay(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, ...)."""
        try:
            ceiling = min(self.cap, self.first * self.factor ** (failures - 1))
        except OverflowError:  # a thousand failures in a row: long past the cap
            ceiling = self.cap
        return rng.uniform(ceiling / 2, ceiling)


class GaveUp(Exception):
    """A component failed ``max_failures`` times in a row; its last error is the cause."""


async def supervise(
    component: str,
    start: Callable[[], Awaitable[None]],
    data_dir: Path,
    clock: Clock,
    backoff: Backoff = Backoff(),
    sleep: Sleep | None = None,
    rng: random.Random | None = None,
    give_up_on: tuple[type[Exception], ...] = (),
    max_failures: int | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Run ``start()`` until it returns, restarting it after each failure.

    An exception of a ``give_up_on`` type (an expired login: restarting cannot help) is
    reported ``down`` and raised at once; so is the last error, wrapped in :class:`GaveUp`,
    after ``max_failures`` failures in a row. Cancellation passes through untouched.
    """
    rng = rng or random.Random()
    sleep = sleep or _clock_sleep(clock)
    failures = restarts = 0
    while True:
        started = clock.now()
        detail = "running" if not restarts else f"running again (restart {restarts})"
        state.report(data_dir, component, "ok", detail, started)
        try:
            await start()
        except give_up_on as err:
            state.report(data_dir, component, "down", f"stopped: {_say(err)}", clock.now())
            raise
        except Exception as err:
            ran = (clock.now() - started).total_seconds()
            failures = 1 if ran >= backoff.healthy_after else failures + 1
            if max_failures is not None and failures >= max_failures:
                detail = f"gave up after {failures} failures in a row: {_say(err)}"
                state.report(data_dir, component, "down", detail, clock.now())
                raise GaveUp(f"{component}: {detail}") from err
            wait = backoff.delay(failures, rng)
            restarts += 1
            log.warning("%s failed (%s); restart %d in %.1f s", component, _say(err), restarts,
                        wait, exc_info=err)  # fmt: skip
            detail = f"failed: {_say(err)}; restart {restarts} in {wait:.1f} s"
            state.report(data_dir, component, "down", detail, clock.now())
            if metrics is not None:
                metrics.restarts.labels(component).inc()
            await sleep(wait)
            continue
        state.report(data_dir, component, "ok", "finished", clock.now())
        return


def _clock_sleep(clock: Clock) -> Sleep:
    async def sleep(seconds: float) -> None:
        await clock.sleep_until(clock.now() + timedelta(seconds=seconds))

    return sleep


def _say(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
