"""Keep a component running: restart it when it fails, waiting longer after each failure.

The wait doubles from ``first`` up to ``cap`` seconds, each drawn between half and all of
that (jitter, so components that failed together do not all come back at the same instant).
A run that lasted ``healthy_after`` seconds before it failed counts as healthy: the next
wait starts from ``first`` again. Every start, failure and restart is written to the
component's health state, where ``/health``, ``opchain health`` and the alerts see it, with
the time of the first start (``started``), which restarts keep.

A failure is one warning line (what failed, the restart's number and wait) in the log and one
line in the state. Its traceback goes to the debug log (``opchain -v``), once for a run of
failures that look alike: a full disk that fails the collector every few minutes for an hour
is a line a restart, not a page of stack frames each time.

The clock says how long a run lasted and the sleep is injectable, so tests drive a
:class:`~opchain.market.clock.VirtualClock` or record the sleeps instead of sleeping.
"""

import asyncio
import logging
import random
import traceback
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
    after ``max_failures`` failures in a row. Cancellation (the command stopped) is reported
    ``down``, ``stopped``, and passes through.
    """
    rng = rng or random.Random()
    sleep = sleep or _clock_sleep(clock)
    failures = restarts = 0
    first = clock.now()
    traced: tuple[str, ...] = ()  # where the last failure whose traceback was logged came from

    def report(status: state.Status, detail: str) -> None:
        state.report(data_dir, component, status, detail, clock.now(), started=first)

    while True:
        started = clock.now()
        report("ok", "running" if not restarts else f"running again (restart {restarts})")
        try:
            await start()
        except asyncio.CancelledError:  # stopped (Ctrl-C, SIGTERM): nothing runs any more
            report("down", "stopped")
            raise
        except give_up_on as err:
            report("down", f"stopped: {_say(err)}")
            raise
        except Exception as err:
            ran = (clock.now() - started).total_seconds()
            failures = 1 if ran >= backoff.healthy_after else failures + 1
            if max_failures is not None and failures >= max_failures:
                detail = f"gave up after {failures} failures in a row: {_say(err)}"
                report("down", detail)
                raise GaveUp(f"{component}: {detail}") from err
            wait = backoff.delay(failures, rng)
            restarts += 1
            log.warning("%s failed (%s); restart %d in %.1f s", component, _say(err), restarts,
                        wait)  # fmt: skip
            if _origin(err) != traced:
                traced = _origin(err)
                log.debug("%s failure %d, the traceback:", component, restarts, exc_info=err)
            report("down", f"failed: {_say(err)}; restart {restarts} in {wait:.1f} s")
            if metrics is not None:
                metrics.restarts.labels(component).inc()
            await sleep(wait)
            continue
        report("ok", "finished")
        return


def _clock_sleep(clock: Clock) -> Sleep:
    async def sleep(seconds: float) -> None:
        await clock.sleep_until(clock.now() + timedelta(seconds=seconds))

    return sleep


def _origin(err: BaseException) -> tuple[str, ...]:
    """What makes failures alike: the error's type and the line that raised it."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return type(err).__qualname__, where


def _say(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
