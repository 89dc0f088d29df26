"""The ``replay`` broker: a recorded day played back as if it were live (``opchain run --broker
replay --date D --speed 60``), so the API, the dashboard and every output see that day again.

It answers as a broker does, from the archive: the day's instruments dump, and for each quote
call the quotes of the newest recorded cycle at or before the clock's time (the raw legs, keyed
by their instrument token through the dump; the index quotes from the overview files). It reads
the day window by window as the clock moves, so a whole 1-second day is never in memory.
"""

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from itertools import islice
from pathlib import Path

from opchain.brokers.tally import BrokerTally
from opchain.market.clock import Clock
from opchain.market.expiry import index_options, strike_grid
from opchain.market.indices import INDIA_VIX, INDICES
from opchain.market.instruments import parse_dump
from opchain.model import Instrument, Quote, Snapshot
from opchain.store import layout
from opchain.store.recorded import raw_cycles

from .replay import ReplayError, recorded_indices, recorded_snapshots


class ReplayBroker:
    name = "replay"
    max_quote_batch = 5000  # no HTTP: one call a cycle
    quote_interval = 0.001
    tally: BrokerTally | None = None

    def __init__(self, data_dir: Path, day: date, clock: Clock) -> None:
        self.data_dir, self.day, self.clock = data_dir, day, clock
        self.indices = recorded_indices(layout.raw_root(data_dir), day)
        if not self.indices:
            raise ReplayError(f"no raw legs of {day} in {layout.raw_root(data_dir)}: "
                              "nothing to play")  # fmt: skip
        dump_file = layout.instruments_path(data_dir, day)
        if not dump_file.exists():
            raise ReplayError(f"no instruments dump of {day} ({dump_file})")
        self.dump = parse_dump(dump_file.read_text(encoding="utf-8"), str(dump_file))
        self.keys = {i.instrument_token: i.key for i in self.dump}
        self.index_keys = {INDICES[k].quote_key: k for k in self.indices if k in INDICES}
        self.index_keys[INDIA_VIX.quote_key] = INDIA_VIX.key
        self._cycles: Iterator[Snapshot] | None = None
        self._current: Snapshot | None = None
        self._next: Snapshot | None = None
        self._quotes: dict[str, Quote] = {}
        self._head: list[Snapshot] | None = None

    async def instruments(self) -> list[Instrument]:
        return list(self.dump)

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        if len(keys) > self.max_quote_batch:
            raise ValueError(f"at most {self.max_quote_batch} instruments per quote call")
        self._advance(self.clock.now())
        return {key: self._quotes[key] for key in keys if key in self._quotes}

    async def close(self) -> None:
        self._cycles = None

    def first_cycles(self) -> list[datetime]:
        """The times of the day's first two recorded cycles (its cadence is their difference)."""
        return [cycle.ts for cycle in self._first()]

    def full_chain(self) -> bool:
        """Whether the day was recorded over whole chains (every listed strike of each expiry
        in its first cycle), not a band around the money."""
        first = self._first()
        if not first:
            return False
        for chain in first[0].chains:
            segment = INDICES[chain.index].options_segment if chain.index in INDICES else None
            options = index_options(self.dump, chain.index, segment or "")
            if len({leg.strike for leg in chain.legs}) < len(strike_grid(options, chain.expiry)):
                return False
        return True

    def _first(self) -> list[Snapshot]:
        """The day's first two recorded cycles (their legs; read once)."""
        if self._head is None:
            cycles = raw_cycles(layout.raw_root(self.data_dir), self.day)
            self._head = [
                Snapshot(ts=c.ts, received_at=c.received_at, indices={}, chains=tuple(c.chains))
                for c in islice(cycles, 2)
            ]
        return self._head

    def _advance(self, now: datetime) -> None:
        """Move to the newest recorded cycle at or before ``now``."""
        if self._cycles is None:
            self._cycles = recorded_snapshots(self.data_dir, self.day, self.indices)
            self._next = next(self._cycles, None)
        moved = False
        while self._next is not None and self._next.ts <= now:
            self._current, self._next = self._next, next(self._cycles, None)
            moved = True
        if moved and self._current is not None:
            self._quotes = self._keyed(self._current)

    def _keyed(self, snapshot: Snapshot) -> dict[str, Quote]:
        quotes: dict[str, Quote] = {}
        for chain in snapshot.chains:
            for leg in chain.legs:
                quote = leg.quote
                if quote is not None and (key := self.keys.get(quote.instrument_token)):
                    quotes[key] = quote
        for key, index in self.index_keys.items():
            if (quote := snapshot.indices.get(index)) is not None:
                quotes[key] = quote
        return quotes
