"""One collection cycle: the index overview and every watched leg, in as few quote calls as the
broker allows.

A cycle asks for the index levels together with a band of strikes around each slice's previous
ATM (the watched offsets plus a margin), all in one batched call. Only when the market has moved
past the band, or on the first cycle, does it make a second call for the legs it lacks. With
Kite's 1 request/s quote limit that keeps a 1-second cadence possible.

Far expiries trade around their forward, not the spot: a two-month SENSEX forward sits five
strikes above the spot's ATM, past the watched offsets, where the analytics need strikes on both
sides of it for an ATM IV. So each slice also gets the strikes next to its forward, estimated
by put-call parity at the ATM strike of the previous cycle (K + C − P, close enough to pick a
strike); the split files still hold only the watched offsets.

In full-chain mode every listed strike of the slice's expiry is a leg and the band is all of
them: about 3,000 legs for three indices, six or seven calls of 500 per cycle, so a cadence of
10 s or more when polling Kite (ticks have no such limit).
"""

import bisect
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from opchain.brokers.base import Broker
from opchain.collect.validate import validate, validate_index
from opchain.collect.watch import Watch
from opchain.market.clock import Clock
from opchain.market.indices import INDIA_VIX, INDICES
from opchain.market.strikes import atm_strike, strike_at_offset
from opchain.model import ChainSlice, Instrument, Leg, Quote, Side, Snapshot

SIDES: tuple[Side, ...] = ("CE", "PE")


class Planned(NamedTuple):
    offset: int
    side: Side
    strike: float | None
    instrument: Instrument | None


class Plan(NamedTuple):
    legs: tuple[Planned, ...]
    band: tuple[str, ...]


class Collector:
    def __init__(
        self,
        broker: Broker,
        clock: Clock,
        watches: Sequence[Watch],
        offsets: Sequence[int],
        band_margin: int = 1,
        full_chain: bool = False,
    ) -> None:
        self.broker, self.clock = broker, clock
        self.watches, self.offsets = list(watches), tuple(offsets)
        self.band_margin = band_margin
        self.full_chain = full_chain
        self.index_keys = {k: INDICES[k].quote_key for k in {w.index for w in watches}}
        self.index_keys[INDIA_VIX.key] = INDIA_VIX.quote_key
        self._last_atm: dict[Watch, float] = {}
        self._forward: dict[Watch, float] = {}  # parity estimate at the previous cycle's ATM
        self._plans: dict[tuple[Watch, float, int], Plan] = {}
        self.quote_calls = 0

    def resume(self, atms: dict[Watch, float], forwards: dict[Watch, float]) -> None:
        """Continue from an earlier run whose last cycle found these ATM strikes and forward
        estimates: the next cycle asks for the same band it would have asked for had the run
        never stopped."""
        self._last_atm, self._forward = dict(atms), dict(forwards)

    async def snapshot(self, ts: datetime) -> Snapshot:
        """Collect the cycle scheduled at ``ts``."""
        band = [
            key
            for watch, atm in self._last_atm.items()
            for key in self._plan(watch, atm, self._shift(watch, atm)).band
        ]
        quotes = await self._quote([*self.index_keys.values(), *band])
        indices = {
            k: q
            for k, key in self.index_keys.items()
            if (q := quotes.get(key)) is not None and validate_index(q) is None
        }
        # An index whose level is bad this cycle skips its slices; the others go on.
        atms = {
            w: atm_strike(w.strikes, indices[w.index].last_price)
            for w in self.watches
            if w.index in indices
        }
        plans = {w: self._plan(w, atm, self._shift(w, atm)) for w, atm in atms.items()}
        lacking = [
            p.instrument.key
            for plan in plans.values()
            for p in plan.legs
            if p.instrument is not None and p.instrument.key not in quotes
        ]
        if lacking:
            quotes |= await self._quote(lacking)
        received_at = self.clock.now()
        chains = []
        for watch, plan in plans.items():
            spot, atm = indices[watch.index].last_price, atms[watch]
            legs = tuple(_leg(watch, p, quotes, received_at) for p in plan.legs)
            chains.append(ChainSlice(watch.index, watch.bucket, watch.expiry, spot, atm, legs))
            self._estimate_forward(watch, atm, legs)
        self._last_atm = atms
        return Snapshot(ts=ts, received_at=received_at, indices=indices, chains=tuple(chains))

    def _shift(self, watch: Watch, atm: float) -> int:
        """Listed strikes from ``atm`` to the strike nearest the estimated forward (0: none)."""
        forward = self._forward.get(watch)
        if forward is None:
            return 0
        at = bisect.bisect_left(watch.strikes, atm)
        return bisect.bisect_left(watch.strikes, atm_strike(watch.strikes, forward)) - at

    def _estimate_forward(self, watch: Watch, atm: float, legs: tuple[Leg, ...]) -> None:
        prices = {leg.side: leg.price for leg in legs if leg.offset == 0}
        call, put = prices.get("CE"), prices.get("PE")
        if call is not None and put is not None:
            self._forward[watch] = atm + call - put

    def _plan(self, watch: Watch, atm: float, shift: int) -> Plan:
        """The legs wanted around ``atm`` (and around the forward, ``shift`` strikes away), and
        the band of keys to ask for while they stay where they are.

        Cached: the ATM strike changes only now and then, and this is per-cycle work otherwise.
        """
        plan = self._plans.get((watch, atm, shift))
        if plan is None:
            wanted = {*self.offsets, shift - 1, shift, shift + 1}
            if self.full_chain:  # every listed strike, and the offsets past the grid if asked
                at = bisect.bisect_left(watch.strikes, atm)
                wanted |= set(range(-at, len(watch.strikes) - at))
            offsets = sorted(wanted)
            legs = tuple(
                Planned(offset, side, *_contract(watch, atm, offset, side))
                for offset in offsets
                for side in SIDES
            )
            margin = range(-self.band_margin, self.band_margin + 1)
            steps = sorted({o + m for o in offsets for m in margin})
            band = tuple(
                inst.key
                for step in steps
                for side in SIDES
                if (inst := _contract(watch, atm, step, side)[1]) is not None
            )
            plan = self._plans[(watch, atm, shift)] = Plan(legs, band)
        return plan

    async def _quote(self, keys: list[str]) -> dict[str, Quote]:
        batch = self.broker.max_quote_batch
        unique = list(dict.fromkeys(keys))
        quotes: dict[str, Quote] = {}
        for start in range(0, len(unique), batch):
            self.quote_calls += 1
            quotes |= await self.broker.quote(unique[start : start + batch])
        return quotes


def _contract(
    watch: Watch, atm: float, step: int, side: Side
) -> tuple[float | None, Instrument | None]:
    """The strike ``step`` listed strikes from ``atm`` and its contract (None past the grid)."""
    strike = strike_at_offset(watch.strikes, atm, step)
    return strike, watch.contracts.get((strike, side)) if strike is not None else None


def _leg(watch: Watch, plan: Planned, quotes: dict[str, Quote], received_at: datetime) -> Leg:
    instrument = plan.instrument
    quote = quotes.get(instrument.key) if instrument else None
    flag = "not_listed" if instrument is None else validate(quote, received_at)
    return Leg(  # positional, in field order: this runs for every leg of the day
        watch.index, watch.bucket, watch.expiry, plan.offset, plan.side, plan.strike,
        instrument, quote, flag,
    )  # fmt: skip
