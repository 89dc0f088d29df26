"""A deterministic simulated market for one trading date.

Everything is a pure function of (seed, date, second of the session): the spot paths are drawn
once per day, and a quote at any instant is computed from them. So a restarted process sees the
very same market, which is what makes crash-and-resume runs reproducible.

Model, per index: a previous close that wanders by date; an opening gap; one-second log returns
with a U-shaped intraday volatility profile, rare jumps, and correlated moves across indices;
INDIA VIX moving against the market. Options are priced with Black-76 on the forward
``S·e^{(r-q)T}`` with a per-expiry smile (skew and curvature in standardised moneyness) on an
ATM term structure tied to VIX; prices are rounded to the 0.05 tick. Volume accrues along the
intraday activity curve, heavier near the money and near expiry; open interest drifts from the
previous day's level by a contract-specific amount. A small, seeded share of quotes is glitched
(crossed book or stale timestamp) so that validation has something to find.

(The options' vols follow VIX's level at the open, so their IVs move only along the smile and
the term structure during the day.) To measure jump detectors the rare jumps can be replaced
(:class:`Jump`): by none at all, or by jumps of the indices or of every option's implied vol of
a chosen size at chosen seconds, sized against :meth:`SimMarket.noise`. Without ``jumps`` the
market is the default one, draw for draw.
"""

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from itertools import repeat

import numpy as np

from opchain.analytics.black76 import black76_price
from opchain.market import calendar
from opchain.market.indices import DEFAULT_INDICES, INDIA_VIX, INDICES, OVERVIEW
from opchain.market.ist import SESSION_CLOSE, at, to_ist
from opchain.model import DepthLevel, Instrument, Quote

from .listing import build_listing, listed_indices
from .traits import TRAITS

RATE, DIVIDEND = 0.065, 0.012
TICK = 0.05
YEAR_SECONDS = 365 * 24 * 3600
DEPTH_LEVELS = 5
# tuple.__new__(DepthLevel, fields) builds a level without the Python-level __new__ frame of a
# NamedTuple: the simulator makes some 1,400 levels a cycle, and this is a quarter of their cost.
_new, _LEVEL = tuple.__new__, repeat(DepthLevel)
OwnGenerator = Callable[..., np.random.Generator]  # (index key, *more) -> its own generator


@dataclass(frozen=True, slots=True)
class Contracts:
    """Static per-contract arrays for every listed option, indexed by position."""

    index: np.ndarray  # position of the underlying in ``SimMarket.indices``
    strike: np.ndarray
    is_call: np.ndarray
    expiry_close: np.ndarray  # epoch seconds of 15:30 IST on the expiry day
    lot: np.ndarray
    liquidity: np.ndarray  # daily volume in lots at the money
    oi_prev: np.ndarray  # previous day's open interest, in lots
    oi_drift: np.ndarray
    close: np.ndarray  # previous session's close of the option


@dataclass(frozen=True, slots=True)
class Jump:
    """A jump put into the simulated market between session seconds ``second - 1`` and
    ``second``: a log return ``spot`` of the market factor (each index takes its market
    loading of it, as with the model's own jumps), and a log change ``vol`` of every option's
    implied vol (and of INDIA VIX) from then on: a jump of the option premiums alone."""

    second: int
    spot: float = 0.0
    vol: float = 0.0


class SimMarket:
    """The market of one trading date. Build with :func:`open_market`.

    ``jumps``: None for the model's own rare jumps (the default market); a sequence (empty for
    a day without jumps) puts exactly those jumps in instead. ``indices``: those listed besides
    the default ones (:func:`~opchain.brokers.sim.listing.listed_indices`).

    Random numbers: the default indices draw from the day's generator, in the order they always
    have; every other index draws from a generator of its own, seeded by (seed, date, its key).
    So listing more indices changes nothing of the default ones."""

    def __init__(
        self,
        seed: int,
        day: date,
        glitch_rate: float,
        tables: calendar.Tables | None = None,
        jumps: Sequence[Jump] | None = None,
        indices: Iterable[str] = DEFAULT_INDICES,
    ) -> None:
        self.seed, self.day, self.glitch_rate = seed, day, glitch_rate
        self.jumps = None if jumps is None else tuple(jumps)
        session = calendar.session(INDICES[DEFAULT_INDICES[0]].exchange, day, tables)
        if session is None:
            raise ValueError(f"{day} is not a trading day: the simulated market is closed")
        self.open_at, self.close_at = session.open, session.close
        self.seconds = int((self.close_at - self.open_at).total_seconds())
        rng = np.random.default_rng([seed, day.toordinal()])
        self.indices = [*listed_indices(indices), INDIA_VIX.key]
        self.prev_close = {k: _previous_close(seed, day, k) for k in self.indices}
        own = _own_generators(seed, day)
        self.paths, self._sigma = _spot_paths(rng, own, self.seconds, self.prev_close, self.jumps)
        # each second's factor on the options' vols: None when no jump moves them
        self._vol_level = _vol_level(self.jumps or (), self.seconds)
        self.running_high = np.maximum.accumulate(self.paths, axis=1)
        self.running_low = np.minimum.accumulate(self.paths, axis=1)
        self.instruments = build_listing(day, self.prev_close, tables, self.indices[:-1])
        self.by_key = {i.key: i for i in self.instruments}
        self._option_pos = {
            i.key: n for n, i in enumerate(o for o in self.instruments if _is_option(o))
        }
        options = [o for o in self.instruments if _is_option(o)]
        # The contracts of a year without a holiday table are listed last and draw from their
        # own generator: listing them changes nothing for the other contracts. So do those of
        # an index that is not a default one (one generator per index).
        groups: dict[tuple[str | None, bool], list[int]] = {}
        for n, o in enumerate(options):
            stream = None if INDICES[o.name].default else o.name
            groups.setdefault((stream, _provisional(o, tables)), []).append(n)
        parts = []
        for (stream, provisional), positions in groups.items():
            if stream is None:
                gen = _day_generator(seed, day, 1) if provisional else rng
            else:
                gen = own(stream, 1) if provisional else own(stream)
            parts.append((positions, _contracts([options[n] for n in positions], self, gen)))
        self.contracts = _joined(parts)
        self.activity = _activity_curve(self.seconds)

    def second_of(self, moment: datetime) -> int:
        """The session second a moment falls in, clamped to the session."""
        elapsed = int((to_ist(moment) - self.open_at).total_seconds())
        return min(max(elapsed, 0), self.seconds)

    def noise(self, second: int, seconds: float = 1.0) -> float:
        """The standard deviation of NIFTY's log return over ``seconds`` seconds around
        session second ``second`` (jumps aside): the local noise a jump is sized against. An
        ATM straddle moves in proportion to the index, so a vol jump of this size moves it as
        much as the index's usual move does. Other indices scale it by their vol multiplier."""
        return float(self._sigma[min(max(second - 1, 0), self.seconds - 1)] * np.sqrt(seconds))

    def quotes(self, keys: Sequence[str], moment: datetime) -> dict[str, Quote]:
        """Quotes for the known keys at ``moment``; unknown keys are absent, as with Kite."""
        n = self.second_of(moment)
        stamp = self.open_at + timedelta(seconds=n)
        out: dict[str, Quote] = {}
        option_keys = []
        for key in keys:
            if key in self._option_pos:
                option_keys.append(key)
            elif key in self.by_key and self.by_key[key].segment == "INDICES":
                out[key] = self._index_quote(self.by_key[key], n, stamp)
        if option_keys:
            out.update(self._option_quotes(option_keys, n, stamp))
        return out

    def _index_quote(self, inst: Instrument, n: int, stamp: datetime) -> Quote:
        row = self.indices.index(_index_key(inst))
        path = self.paths[row]
        return Quote(
            instrument_token=inst.instrument_token,
            timestamp=stamp,
            last_trade_time=None,
            last_price=_tick(path[n]),
            last_quantity=0,
            average_price=0.0,
            volume=0,
            buy_quantity=0,
            sell_quantity=0,
            oi=0,
            oi_day_high=0,
            oi_day_low=0,
            open=_tick(path[0]),
            high=_tick(self.running_high[row, n]),
            low=_tick(self.running_low[row, n]),
            close=self.prev_close[self.indices[row]],
        )

    def _option_quotes(self, keys: list[str], n: int, stamp: datetime) -> dict[str, Quote]:
        c = self.contracts
        pos = np.fromiter((self._option_pos[k] for k in keys), dtype=np.intp, count=len(keys))
        idx, strike, is_call = c.index[pos], c.strike[pos], c.is_call[pos]
        t = np.maximum((c.expiry_close[pos] - stamp.timestamp()) / YEAR_SECONDS, 1e-7)
        spot = self.paths[idx, n]
        # Now, the day's high and low (which follow the running extremes of the underlying) and
        # the open, priced in one call: four sets of a hundred options cost little more than one.
        up, down = self.running_high[idx, n], self.running_low[idx, n]
        spots = (spot, np.where(is_call, up, down), np.where(is_call, down, up), self.paths[idx, 0])
        level = None
        if self._vol_level is not None:
            now, at_open = self._vol_level[n], self._vol_level[0]
            level = np.repeat([now, now, now, at_open], len(keys))
        idx4, strike4, t4, call4 = (np.tile(x, 4) for x in (idx, strike, t, is_call))
        price, high, low, opening = self._price(
            idx4, np.concatenate(spots), strike4, t4, call4, level
        ).reshape(4, -1)
        high, low = np.maximum(high, price), np.minimum(low, price)

        moneyness = np.abs(np.log(strike / spot)) / np.sqrt(t)
        lots_day = c.liquidity[pos] * np.exp(-((moneyness / 0.25) ** 2)) / np.sqrt(t * 52 + 0.2)
        lot = c.lot[pos]
        volume = (np.floor(lots_day * self.activity[n]) * lot).astype(np.int64)
        oi_lots = c.oi_prev[pos] * (1 + c.oi_drift[pos] * self.activity[n])
        oi = (np.round(oi_lots) * lot).astype(np.int64)
        oi_prev = (c.oi_prev[pos] * lot).astype(np.int64)
        half_spread = _ticks(np.maximum(TICK, price * 0.002 + 0.02 * moneyness))
        bid, ask = np.round(price - half_spread, 2), np.round(price + half_spread, 2)
        levels = np.arange(DEPTH_LEVELS)
        bid_prices = np.round(bid[:, None] - levels * TICK, 2)
        ask_prices = np.round(ask[:, None] + levels * TICK, 2)
        bid_levels = (bid_prices > 0).sum(axis=1)  # no bids at or below zero

        jitter = (pos * 2654435761 + n * 40503) % 1000  # cheap deterministic noise
        quantity = lot * (1 + jitter % 40)
        bid_sizes = quantity[:, None] + levels * lot[:, None]
        ask_sizes = quantity[:, None] + 2 * levels * lot[:, None]
        traded = volume > 0  # an option that has not traded today shows zeros, as on Kite
        floats = np.where(
            traded[:, None],
            np.column_stack([price, _ticks((opening + price) / 2), opening, high, low]),
            0.0,
        )
        ints = np.column_stack(
            [
                np.where(traded, lot, 0),
                volume,
                quantity * 23,
                quantity * 19,
                oi,
                np.maximum(oi, oi_prev),
                np.minimum(oi, oi_prev),
            ]
        )
        lag = jitter % 7
        glitch = _glitches(pos, n, self.glitch_rate, self.seed)
        tokens = [self.by_key[k].instrument_token for k in keys]
        trade_times = [stamp - timedelta(seconds=s) for s in range(7)]
        stale = stamp - timedelta(minutes=5)
        # Every depth level of every quote in one pass at C speed; each quote takes its slice.
        # (Arrays become lists first: per-element numpy scalars would cost more than the maths.)
        width = DEPTH_LEVELS
        level_orders = np.tile(levels + 1, len(keys)).tolist()
        bid_book = list(
            map(_new, _LEVEL, zip(bid_prices.ravel().tolist(), bid_sizes.ravel().tolist(),
                                  level_orders, strict=True))
        )  # fmt: skip
        ask_book = list(
            map(_new, _LEVEL, zip(ask_prices.ravel().tolist(), ask_sizes.ravel().tolist(),
                                  level_orders, strict=True))
        )  # fmt: skip
        rows = zip(
            keys,
            tokens,
            floats.tolist(),
            ints.tolist(),
            c.close[pos].tolist(),
            traded.tolist(),
            lag.tolist(),
            glitch.tolist(),
            bid_levels.tolist(),
            strict=True,
        )
        quotes = {}
        for j, (key, token, f, i, close, did_trade, lag_j, g, nb) in enumerate(rows):
            first = j * width
            bids = tuple(bid_book[first : first + nb])
            asks = tuple(ask_book[first : first + width])
            quote_time, trade_time = stamp, trade_times[lag_j]
            if g == 1:  # crossed book
                bids, asks = asks, bids
            elif g == 2:  # a quote the exchange feed stopped updating
                quote_time = trade_time = stale
            quotes[key] = _new(  # Quote(...) without the NamedTuple's Python-level __new__
                Quote,
                (
                    token, quote_time, trade_time if did_trade else None, f[0], i[0], f[1], i[1],
                    i[2], i[3], i[4], i[5], i[6], f[2], f[3], f[4], close, bids, asks,
                ),
            )  # fmt: skip
        return quotes

    def _price(
        self,
        idx: np.ndarray,
        spot: np.ndarray,
        strike: np.ndarray,
        t: np.ndarray,
        is_call: np.ndarray,
        level: np.ndarray | None = None,  # a factor on each option's vol (injected jumps)
    ) -> np.ndarray:
        forward = spot * np.exp((RATE - DIVIDEND) * t)
        vix = self.paths[-1, 0] / 100
        multiplier = np.array([TRAITS[k].vol for k in self.indices[:-1]])[idx]
        atm = vix * multiplier * (0.93 + 0.17 * np.exp(-t * 365 / 12))
        if level is not None:
            atm = atm * level
        x = np.clip(np.log(strike / forward) / (atm * np.sqrt(t)), -4, 4)
        vol = np.maximum(atm * (1 - 0.08 * x + 0.035 * x * x), 0.03)
        value = black76_price(forward, strike, t, vol, is_call, np.exp(-RATE * t))
        return np.asarray(_ticks(np.maximum(value, TICK)))


def _provisional(option: Instrument, tables: calendar.Tables | None) -> bool:
    """Whether the option expires in a year without a holiday table."""
    assert option.expiry is not None
    return not calendar.is_covered(INDICES[option.name].exchange, option.expiry.year, tables)


def _joined(parts: list[tuple[list[int], Contracts]]) -> Contracts:
    """One set of arrays from parts, each holding the options at its positions."""
    if len(parts) == 1 and parts[0][0] == list(range(len(parts[0][0]))):
        return parts[0][1]
    order = np.concatenate([np.asarray(positions, dtype=np.intp) for positions, _ in parts])
    arrays = {}
    for f in fields(Contracts):
        joined = np.concatenate([getattr(part, f.name) for _, part in parts])
        placed = np.empty_like(joined)
        placed[order] = joined
        arrays[f.name] = placed
    return Contracts(**arrays)


def _day_generator(seed: int, day: date, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, day.toordinal(), *more])


def _own_generators(seed: int, day: date) -> "OwnGenerator":
    """An index's own generator for the day (``more`` tells its uses apart)."""

    def own(key: str, *more: int) -> np.random.Generator:
        return _day_generator(seed, day, zlib.crc32(key.encode()), *more)

    return own


def _is_option(i: Instrument) -> bool:
    return i.instrument_type in ("CE", "PE")


def _index_key(inst: Instrument) -> str:
    return next(k for k, s in OVERVIEW.items() if s.display == inst.name)


def _tick(value: float) -> float:
    return round(round(float(value) / TICK) * TICK, 2)


def _ticks(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.round(np.round(values / TICK) * TICK, 2))


def _glitches(pos: np.ndarray, n: int, rate: float, seed: int) -> np.ndarray:
    """0 = good, 1 = crossed book, 2 = stale; a hash of (contract, second, seed)."""
    if rate <= 0:
        return np.zeros(len(pos), dtype=np.int8)
    h = (pos.astype(np.uint64) * np.uint64(0x9E3779B1) + np.uint64(n * 0x85EBCA6B + seed)) % 100_003
    u = h / 100_003
    return np.where(u < rate / 2, 1, np.where(u < rate, 2, 0)).astype(np.int8)


def _previous_close(seed: int, day: date, key: str) -> float:
    """A level that wanders smoothly with the date and a little with the seed."""
    crc = zlib.crc32(f"{seed}:{key}".encode())
    phase = (crc % 1000) / 1000 * 2 * np.pi
    wander = 0.06 * np.sin(day.toordinal() / 45 + phase) + 0.02 * np.sin(day.toordinal() / 7)
    if key == INDIA_VIX.key:
        return _tick(TRAITS[key].level * np.exp(-3 * wander))
    return _tick(TRAITS[key].level * np.exp(wander))


def _activity_curve(seconds: int) -> np.ndarray:
    """Cumulative share of the day's trading done by each second: busy open, busy close."""
    tau = np.linspace(0, 1, seconds + 1)
    intensity = 1 + 2.5 * np.exp(-tau / 0.04) + 1.2 * np.exp(-(1 - tau) / 0.06)
    cumulative = np.cumsum(intensity)
    return np.asarray(cumulative / cumulative[-1])


def _vol_level(jumps: Sequence["Jump"], seconds: int) -> np.ndarray | None:
    """e^(the vol jumps so far) at each second 0..seconds; None without vol jumps."""
    if not any(j.vol for j in jumps):
        return None
    steps = np.zeros(seconds + 1)
    for jump in jumps:
        steps[jump.second] += jump.vol
    return np.asarray(np.exp(np.cumsum(steps)))


def _spot_paths(
    rng: np.random.Generator,
    own: "OwnGenerator",
    seconds: int,
    prev: dict[str, float],
    injected: Sequence[Jump] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One row per index (in ``prev``'s order, VIX last), one column per second; and the
    standard deviation of the first index's (NIFTY's) one-second log return going into each
    second but the first (no jumps). ``injected`` replaces the random jumps
    (:class:`SimMarket`); the random numbers drawn are the same either way. The default
    indices' own noise and the VIX's come from ``rng``, in that order; any other index's from
    ``own(key)``; the market factor and its jumps are everyone's."""
    keys = [k for k in prev if k != INDIA_VIX.key]
    tau = np.linspace(0, 1, seconds)
    seasonal = 1 + 1.4 * np.exp(-tau / 0.05) + 0.7 * np.exp(-(1 - tau) / 0.08)
    seasonal /= np.sqrt(np.mean(seasonal**2))
    vix0 = prev[INDIA_VIX.key] * np.exp(rng.normal(0, 0.03))
    per_second = vix0 / 100 / np.sqrt(252 * 22_500)
    market = rng.standard_normal(seconds)
    jumps = rng.poisson(2 / 22_500, seconds) * rng.normal(0, 0.0015, seconds)
    vix_jumps = np.zeros(seconds)
    if injected is not None:
        jumps = np.zeros(seconds)
        for jump in injected:
            if not 1 <= jump.second <= seconds:
                raise ValueError(f"a jump at second {jump.second} is outside the session")
            jumps[jump.second - 1] += jump.spot
            vix_jumps[jump.second - 1] += jump.vol

    def path(key: str, gen: np.random.Generator) -> np.ndarray:
        beta, vol = TRAITS[key].loading, TRAITS[key].vol
        noise = beta * market + np.sqrt(1 - beta**2) * gen.standard_normal(seconds)
        steps = noise * per_second * vol * seasonal + jumps * beta
        gap = gen.normal(0, 0.004)
        start = prev[key] * np.exp(gap)
        return np.asarray(start * np.exp(np.concatenate([[0.0], np.cumsum(steps)])))

    rows = {key: path(key, rng) for key in keys if INDICES[key].default}
    first = rows[keys[0]]
    nifty_return = np.log(first / first[0])
    vix_noise = np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.0004, seconds))])
    if injected is not None:
        vix_noise += np.concatenate([[0.0], np.cumsum(vix_jumps)])
    rows |= {key: path(key, own(key)) for key in keys if key not in rows}
    vix = vix0 * np.exp(-4 * nifty_return + vix_noise)
    return np.vstack([*(rows[k] for k in keys), vix]), per_second * TRAITS[keys[0]].vol * seasonal


def _contracts(options: list[Instrument], market: SimMarket, rng: np.random.Generator) -> Contracts:
    count = len(options)
    index = np.array([market.indices.index(o.name) for o in options], dtype=np.intp)
    strike = np.array([o.strike for o in options])
    is_call = np.array([o.instrument_type == "CE" for o in options])
    expiry_close = np.array([at(o.expiry, SESSION_CLOSE).timestamp() for o in options if o.expiry])
    lot = np.array([o.lot_size for o in options], dtype=np.int64)
    # The option's previous close: priced at yesterday's close with a day more to run.
    yesterday = at(market.day, SESSION_CLOSE) - timedelta(days=1)
    t = np.maximum((expiry_close - yesterday.timestamp()) / YEAR_SECONDS, 1e-7)
    spot = np.array([market.prev_close[k] for k in market.indices])[index]
    return Contracts(
        index=index,
        strike=strike,
        is_call=is_call,
        expiry_close=expiry_close,
        lot=lot,
        liquidity=rng.uniform(20_000, 60_000, count),
        oi_prev=rng.uniform(2_000, 30_000, count).round(),
        oi_drift=rng.normal(0, 0.25, count),
        close=market._price(index, spot, strike, t, is_call),
    )
