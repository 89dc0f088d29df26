"""One collection cycle: the index overview and every watched leg, in as few quote calls as the
broker allows.

A cycle asks for the index levels together with a band of strikes around each slice's previous
ATM (the watched offsets plus a margin), all in one batched call. Only when the market has moved
past the band, or on the first cycle, does it make a second call for the legs it lacks. At a
cadence with no time for a second call (1 s: Kite allows one call a second) a second call would
push every later cycle back, so there the band is as wide as one call has room for
(:meth:`Collector.widen_band`, 500 instruments with Kite), and :meth:`Collector.prime` learns
the ATM strikes before the first cycle, so that the first cycle is one call too.

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
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from opchain.brokers.base import Broker, QuoteUnavailable
from opchain.collect.validate import validate, validate_index
from opchain.collect.watch import Watch
from opchain.market.clock import Clock
from opchain.market.indices import INDIA_VIX, INDICES
from opchain.market.strikes import atm_strike, strike_at_offset
from opchain.model import ChainSlice, Instrument, Leg, Quote, Side, Snapshot

log = logging.getLogger(__name__)

SIDES: tuple[Side, ...] = ("CE", "PE")
SHIFT = 3  # strikes between the ATM and the forward's strike a band leaves room for
MAX_MARGIN = 10  # strikes each side: a market that moves further in one cycle is rare


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
        self.full_chain = full_chain
        self.index_keys = {k: INDICES[k].quote_key for k in {w.index for w in watches}}
        self.index_keys[INDIA_VIX.key] = INDIA_VIX.quote_key
        self.band_margin = band_margin
        self._last_atm: dict[Watch, float] = {}
        self._forward: dict[Watch, float] = {}  # parity estimate at the previous cycle's ATM
        self._plans: dict[tuple[Watch, float, int], Plan] = {}
        self.quote_calls = 0
        self.incomplete = 0  # quote calls past a cycle's first that the broker failed

    def resume(self, atms: dict[Watch, float], forwards: dict[Watch, float]) -> None:
        """Continue from an earlier run whose last cycle found these ATM strikes and forward
        estimates: the next cycle asks for the same band it would have asked for had the run
        never stopped."""
        self._last_atm, self._forward = dict(atms), dict(forwards)

    @property
    def primed(self) -> bool:
        """Whether the next cycle knows where to look (one call, not two)."""
        return bool(self._last_atm)

    async def prime(self) -> None:
        """Learn each slice's ATM strike from the index levels now, ahead of the first cycle."""
        quotes = await self._quote(list(self.index_keys.values()))
        for watch in self.watches:
            quote = quotes.get(self.index_keys[watch.index])
            if quote is not None and validate_index(quote) is None:
                self._last_atm[watch] = atm_strike(watch.strikes, quote.last_price)

    def calls_per_cycle(self, full_chain: bool | None = None) -> int:
        """Quote calls a cycle makes once primed (the market staying inside the band), with
        the whole chain or with the band (default: as this collector is set)."""
        full = self.full_chain if full_chain is None else full_chain
        if full:
            keys = len(self.index_keys) + sum(2 * len(w.strikes) for w in self.watches)
        else:
            keys = len(self.index_keys) + len(self.watches) * self._band_keys(self.band_margin)
        return -(-keys // self.broker.max_quote_batch)

    def widen_band(self) -> None:
        """Make the band as wide as one call has room for: at a cadence with no time for a
        second call, a market that moves past a narrow band would push every later cycle
        back. (At longer cadences a second call now and then costs nothing, and the band
        stays narrow: fewer quotes to ask for, decode and throw away.)"""
        self.band_margin = max(self.band_margin, self._room(self.broker.max_quote_batch))

    def _band_keys(self, margin: int) -> int:
        """The most keys a slice's band asks for: the offsets, the strikes next to the forward
        (allowing it up to SHIFT strikes from the ATM) and ``margin`` strikes each side."""
        span = max(self.offsets) - min(self.offsets) + 1 if self.offsets else 1
        return 2 * (span + 2 * SHIFT + 2 * margin)

    def _room(self, batch: int) -> int:
        """The widest margin whose band still fits one call."""
        free = batch - len(self.index_keys)
        margin = 0
        while margin < MAX_MARGIN and len(self.watches) * self._band_keys(margin + 1) <= free:
            margin += 1
        return margin

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
            quotes |= await self._quote(lacking, first_needed=False)
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

    async def _quote(self, keys: list[str], first_needed: bool = True) -> dict[str, Quote]:
        """Quotes for ``keys`` in calls of the broker's batch size. A call the broker cannot
        answer in time raises when it is the first and ``first_needed`` (it holds the index
        levels: without them there is no cycle); any other's legs are left out, to be
        flagged ``missing``: the cycle keeps what could be had."""
        batch = self.broker.max_quote_batch
        unique = list(dict.fromkeys(keys))
        quotes: dict[str, Quote] = {}
        for start in range(0, len(unique), batch):
            self.quote_calls += 1
            asked = unique[start : start + batch]
            try:
                quotes |= await self.broker.quote(asked)
            except QuoteUnavailable as err:
                if first_needed and start == 0:
                    raise
                self.incomplete += 1
                log.warning("%d quotes of this cycle are missing: %s", len(asked), err)
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
