"""The ``sim`` broker: the simulated market behind the :class:`~opchain.brokers.base.Broker`
interface, reading the time from a clock so a session can run at any speed.

Like an exchange it answers on any day: on a weekend or a holiday the market is the last
trading day's, as it closed (its instruments, its closing quotes with that day's timestamps).
A year without a holiday table has no market: that raises the calendar's YearNotCovered."""

from collections.abc import Iterable, Sequence
from datetime import date

from opchain.brokers.pacing import Pacer
from opchain.brokers.tally import BrokerTally
from opchain.market import calendar
from opchain.market.clock import Clock
from opchain.market.indices import DEFAULT_INDICES, INDICES
from opchain.market.ist import trading_date
from opchain.model import Instrument, Quote

from .market import Jump, SimMarket


class SimBroker:
    name = "sim"
    max_quote_batch = 500
    tally: BrokerTally | None = None  # no HTTP

    def __init__(
        self,
        clock: Clock,
        seed: int = 7,
        glitch_rate: float = 0.0,
        pace: float = 1.0,
        tables: calendar.Tables | None = None,  # the exchange's calendar (default: installed)
        jumps: Sequence[Jump] | None = None,  # SimMarket's: None for the default market
        indices: Iterable[str] = DEFAULT_INDICES,  # listed besides the default ones
    ) -> None:
        self.clock, self.seed, self.glitch_rate, self.tables = clock, seed, glitch_rate, tables
        self.jumps, self.indices = jumps, tuple(indices)
        self._market: SimMarket | None = None
        self.quote_interval = pace
        # Kite's limit, one quote request a second: here one per second of the clock.
        self._pace = Pacer(clock, pace, per_second=pace == 1.0)

    def market(self, day: date) -> SimMarket:
        """The market standing on ``day``: its own, or on a closed day the last trading day's.
        Built once and kept until that day changes."""
        day = calendar.last_trading_day(INDICES[DEFAULT_INDICES[0]].exchange, day, self.tables)
        if self._market is None or self._market.day != day:
            self._market = SimMarket(
                self.seed, day, self.glitch_rate, self.tables, self.jumps, self.indices
            )
        return self._market

    async def instruments(self) -> list[Instrument]:
        return list(self.market(trading_date(self.clock.now())).instruments)

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        if len(keys) > self.max_quote_batch:
            raise ValueError(f"at most {self.max_quote_batch} instruments per quote call")
        await self._pace.wait()
        now = self.clock.now()
        return self.market(trading_date(now)).quotes(keys, now)

    async def close(self) -> None:
        self._market = None
