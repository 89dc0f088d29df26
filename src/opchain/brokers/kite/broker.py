"""The ``kite`` broker: Kite Connect behind the :class:`~opchain.brokers.base.Broker` interface.

The instruments dump is downloaded once a day per exchange and kept in ``cache_dir`` (Kite
regenerates it once a day); a restart on the same day reads the cached copy.
"""

from collections.abc import Sequence
from pathlib import Path

from opchain.brokers.tally import BrokerTally
from opchain.market.instruments import format_dump, parse_dump
from opchain.market.ist import trading_date
from opchain.model import Instrument, Quote

from .client import QUOTE_BATCH, QUOTE_INTERVAL, KiteClient

# Indices live in the cash segments' dumps, options in the derivative segments'.
EXCHANGES = ("NSE", "BSE", "NFO", "BFO")


class KiteBroker:
    name = "kite"
    max_quote_batch = QUOTE_BATCH
    quote_interval = QUOTE_INTERVAL
    tally: BrokerTally | None = None  # set where the client's transport counts its answers

    def __init__(
        self,
        client: KiteClient,
        cache_dir: Path | None = None,
        exchanges: Sequence[str] = EXCHANGES,
    ) -> None:
        self.client, self.cache_dir, self.exchanges = client, cache_dir, tuple(exchanges)

    async def instruments(self) -> list[Instrument]:
        day = trading_date(self.client.clock.now())
        rows: list[Instrument] = []
        for exchange in self.exchanges:
            cached = (
                self.cache_dir / f"{day.isoformat()}-{exchange}.csv" if self.cache_dir else None
            )
            if cached is not None and cached.exists():
                rows += parse_dump(cached.read_text(encoding="utf-8"), source=str(cached))
                continue
            dump = await self.client.instruments(exchange)
            if cached is not None:  # whole or absent: a temporary file, then a rename
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_name(cached.name + ".tmp")
                tmp.write_text(format_dump(dump), encoding="utf-8")
                tmp.replace(cached)
            rows += dump
        return rows

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        return await self.client.quote(keys)

    async def close(self) -> None:
        await self.client.close()
