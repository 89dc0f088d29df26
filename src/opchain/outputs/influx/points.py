"""A cycle as InfluxDB line protocol: the measurements of docs/influxdb.md, pure (no I/O).

Every point's time is the cycle's scheduled time in UTC nanoseconds and its tags are fixed by
what it describes, so writing a cycle again (a spool replayed, a backfill over the live run)
lands on the same series and time and InfluxDB keeps one point. A missing value (None, NaN,
infinite) is left out of its point; a point left with no fields is left out.

Written for the hot path: a full-chain cycle has some 2,000 legs, so each point is one f-string
of its tags and a join of the fields it has, with the per-chain parts (tags, expiry, days to
expiry) made once per chain.
"""

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from opchain.market.indices import OVERVIEW
from opchain.market.ist import IST, trading_date
from opchain.market.strikes import offset_label, parse_offset_label
from opchain.merge.cycle import Cycle, Solved
from opchain.merge.rows import IV_DECIMALS
from opchain.merge.stats import BucketStats, OiKey
from opchain.model import ChainSlice, Leg, Quote
from opchain.profiles.master import Cell
from opchain.store.opmasters import WEEKDAYS
from opchain.store.stats import COLUMNS as STATS_COLUMNS
from opchain.store.stats import format_stats

DAYS_PER_YEAR = 365.0  # Solved's theta is per year; chain_strike's per calendar day
VOL_POINT = 100.0  # Solved's vega is per 1.00 of vol; chain_strike's per vol point
CHANGE_DECIMALS, PERCENT_DECIMALS = 2, 4  # as the overview file rounds its changes
RATIO_DECIMALS = 4  # ATM put/call OI, as the analytics file rounds pcr_oi
_INF = (math.inf, -math.inf)


@dataclass(frozen=True, slots=True)
class Tags:
    """The tags every health point carries (docs/influxdb.md, "Identity")."""

    env: str
    host: str
    app: str = "opchain"


class WriterStatsLike(Protocol):
    """What the health points read of the writer's stats (``InfluxWriter.stats()``)."""

    @property
    def points_attempted(self) -> int: ...
    @property
    def points_written(self) -> int: ...
    @property
    def points_rejected(self) -> int: ...
    @property
    def points_dropped(self) -> int: ...
    @property
    def flush_latency_ms(self) -> float | None: ...
    @property
    def queue_points(self) -> int: ...  # OP's batch_queue_depth
    @property
    def spool_bytes(self) -> int: ...
    @property
    def spool_points(self) -> int: ...
    @property
    def state(self) -> str: ...


# -- line protocol -------------------------------------------------------------------------

_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": " "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": " "})


def escape_key(text: str) -> str:
    """A tag key, tag value or field key: commas, equals signs and spaces escaped (a newline,
    which line protocol cannot carry there, becomes a space)."""
    return text.translate(_KEY_ESCAPES)


def escape_measurement(text: str) -> str:
    return text.translate(_MEASUREMENT_ESCAPES)


def string_field(text: str) -> str:
    """A string field value: double-quoted, its quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def timestamp_ns(ts: datetime) -> int:
    """A cycle's time as UTC nanoseconds; cycle times are whole seconds, so exact."""
    return int(ts.timestamp()) * 1_000_000_000


def line(measurement: str, tags: str, fields: Iterable[str | None], ns: int) -> str | None:
    """One point from an escaped ``tags`` set and ready ``name=value`` fields (None: left out);
    None when no field is left."""
    body = ",".join([f for f in fields if f])
    return f"{escape_measurement(measurement)}{tags} {body} {ns}" if body else None


def fl(name: str, value: float | None) -> str | None:
    """A float field (``repr``: the shortest text that reads back exactly), or None."""
    if value is None or value != value or value in _INF:
        return None
    return f"{name}={float(value)!r}"


def it(name: str, value: int | None) -> str | None:
    """An integer field (``i`` suffix), or None."""
    return None if value is None else f"{name}={int(value)}i"


def st(name: str, value: str | None) -> str | None:
    """A string field, or None (also for an empty string)."""
    return f"{name}={string_field(value)}" if value else None


def _rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None or value != value else round(value, decimals)


# -- the cycle's measurements ----------------------------------------------------------------


def cycle_lines(cycle: Cycle, tags: Tags, offsets: Collection[int] | None = None) -> list[str]:
    """The cycle's market points: ``atm_option_quote`` (the watched legs: ``offsets``, default
    the offsets of the cycle's split rows), ``index_overview``, ``chain_analytics`` and
    ``chain_strike``. ``tags`` are not used by these (their tags are what they describe); the
    argument keeps every encoder's signature alike."""
    del tags
    snapshot = cycle.snapshot
    ns = timestamp_ns(snapshot.ts)
    day = trading_date(snapshot.ts)
    watched = _watched(cycle) if offsets is None else frozenset(offsets)
    out: list[str] = []
    for chain, solved in zip(snapshot.chains, cycle.solved, strict=True):
        out += atm_quote_lines(chain, solved, cycle.previous_oi, watched, day, ns)
    out += overview_lines(cycle, day, ns)
    out += analytics_lines(cycle.stats, ns)
    for chain, solved in zip(snapshot.chains, cycle.solved, strict=True):
        out += strike_lines(chain, solved, cycle.previous_oi, ns)
    return out


def _watched(cycle: Cycle) -> frozenset[int]:
    """The offsets the split rows were written for (their symmetric labels; pairs are not
    offsets)."""
    found = set()
    for label in {row.strike_offset for row in cycle.rows}:
        with suppress(ValueError):
            found.add(parse_offset_label(label))
    return frozenset(found)


_QUOTE_FLOATS = tuple(
    f"{name}="
    for name in (
        "last_price", "average_price", "ohlc_open", "ohlc_high", "ohlc_low", "ohlc_close",
        "net_change", "net_change_percent", "day_change", "day_change_percent", "iv",
    )
)  # fmt: skip
_QUOTE_INTS = ("volume=", "oi=", "oi_change=")


def _changes(last: float, base: float) -> tuple[float | None, float | None]:
    """Change from ``base`` in rupees (to the paisa) and in percent (4 places), as the overview
    file has them; None without a base."""
    if not base:
        return None, None
    change = round(last - base, CHANGE_DECIMALS)
    return change, round(change / base * 100, PERCENT_DECIMALS)


def _fields(float_names: Sequence[str], floats: Sequence[float | None],
            int_names: Sequence[str], ints: Sequence[int | None]) -> str:  # fmt: skip
    """``name=value`` fields joined, the missing (None, NaN, infinite) left out: one call per
    point, not per field."""
    return ",".join(
        [
            f"{k}{x!r}"
            for k, x in zip(float_names, floats, strict=True)
            if x is not None and x - x == 0
        ]
        + [f"{k}{x}i" for k, x in zip(int_names, ints, strict=True) if x is not None]
    )


def atm_quote_lines(
    chain: ChainSlice,
    solved: Solved,
    previous_oi: Mapping[OiKey, int],
    watched: Collection[int],
    day: date,
    ns: int,
) -> list[str]:
    """OP's ``atm_option_quote``: one point per watched leg with a quote."""
    atm = round(chain.atm_strike)
    dte = (chain.expiry - day).days
    expiry = chain.expiry.isoformat()
    head = (
        f"atm_option_quote,bucket={escape_key(chain.bucket)},expiration={expiry}"
        f",index={escape_key(chain.index)}"
    )
    tail = f"days_to_expiry={dte}i,atm_strike_val={atm}i"
    out = []
    for n, leg in enumerate(chain.legs):
        q = leg.quote
        if q is None or leg.strike is None or leg.offset not in watched:
            continue
        last = q.last_price
        net, net_pct = _changes(last, q.close)
        day_change, day_pct = _changes(last, q.open)
        vol = solved.iv[n]
        floats = (
            last, q.average_price, q.open, q.high, q.low, q.close, net, net_pct, day_change,
            day_pct, None if vol is None else round(vol, IV_DECIMALS),
        )  # fmt: skip
        before = previous_oi.get((chain.index, chain.expiry, leg.strike, leg.side))
        oi_change = None if before is None or q.oi is None else q.oi - before
        body = _fields(_QUOTE_FLOATS, floats, _QUOTE_INTS, (q.volume, q.oi, oi_change))
        out.append(
            f"{head},option_type={leg.side},strike={atm}"
            f",strike_offset={offset_label(leg.offset)} {body}{',' if body else ''}{tail}"
            f",strike_val={float(leg.strike)!r} {ns}"
        )
    return out


def overview_lines(cycle: Cycle, day: date, ns: int) -> list[str]:
    """OP's ``index_overview``: one point per index quote (INDIA VIX too), with each bucket's
    ATM straddle, ATM OI and their ratio, ATM IV and days to expiry."""
    snapshot = cycle.snapshot
    by_index: dict[str, list[tuple[ChainSlice, BucketStats | None]]] = {}
    stats = {(s.index, s.bucket): s for s in cycle.stats}
    for chain in snapshot.chains:
        by_index.setdefault(chain.index, []).append((chain, stats.get((chain.index, chain.bucket))))
    out = []
    for key, q in snapshot.indices.items():
        spec = OVERVIEW.get(key)
        name = spec.display if spec else key
        fields = _index_fields(q)
        chains = by_index.get(key, [])
        for chain, row in chains:
            fields += _bucket_fields(chain, row, day)
        if chains:
            nearest = min(chains, key=lambda pair: pair[0].expiry)[0]
            fields.append(it("atm_strike", round(nearest.atm_strike)))
        found = line("index_overview", f",index={escape_key(name)}", fields, ns)
        if found:
            out.append(found)
    return out


def _index_fields(q: Quote) -> list[str | None]:
    net, net_pct = _changes(q.last_price, q.close)
    day_change, day_pct = _changes(q.last_price, q.open)
    width = round(q.high - q.low, CHANGE_DECIMALS)
    return [
        fl("last_price", q.last_price),
        fl("open", q.open),
        fl("high", q.high),
        fl("low", q.low),
        fl("close", q.close),
        fl("net_change", net),
        fl("net_change_percent", net_pct),
        fl("day_change", day_change),
        fl("day_change_percent", day_pct),
        fl("day_width", width),
        fl("day_width_percent", round(width / q.open * 100, PERCENT_DECIMALS) if q.open else None),
    ]


def _bucket_fields(chain: ChainSlice, row: BucketStats | None, day: date) -> list[str | None]:
    upper, lower = chain.bucket.upper(), chain.bucket
    call = put = None
    for leg in chain.legs:
        if leg.offset == 0:
            if leg.side == "CE":
                call = leg
            else:
                put = leg
    c_price, p_price = _price(call), _price(put)
    c_oi, p_oi = _oi(call), _oi(put)
    straddle = None if c_price is None or p_price is None else round(c_price + p_price, 2)
    return [
        fl(f"{upper}_TP", straddle),
        fl(f"{upper}_OI_CALL", c_oi),
        fl(f"{upper}_OI_PUT", p_oi),
        fl(
            f"pcr_{lower}",
            round(p_oi / c_oi, RATIO_DECIMALS) if c_oi and p_oi is not None else None,
        ),
        fl(f"{lower}_atm_iv", row.atm_iv if row is not None else None),
        it(f"{lower}_days_to_expiry", (chain.expiry - day).days),
    ]


def _price(leg: Leg | None) -> float | None:
    return None if leg is None else leg.price


def _oi(leg: Leg | None) -> int | None:
    return None if leg is None or leg.quote is None else leg.quote.oi


_STATS_INT = frozenset({"strikes"})
_STATS_TEXT = frozenset({"expiry", "anomaly"})
_STATS_SKIP = frozenset({"ts", "index", "bucket"})  # the time and the tags


def analytics_lines(stats: Sequence[BucketStats], ns: int) -> list[str]:
    """opchain's ``chain_analytics``: each analytics row's cells exactly as the file has them
    (:func:`opchain.store.stats.format_stats`), an empty cell left out."""
    out = []
    for row in stats:
        cells = format_stats(row).split(",")
        fields = []
        for name, cell in zip(STATS_COLUMNS, cells, strict=True):
            if name in _STATS_SKIP or cell == "":
                continue
            if name in _STATS_TEXT:
                fields.append(f"{name}={string_field(cell)}")
            elif name in _STATS_INT:
                fields.append(f"{name}={cell}i")
            elif cell not in ("inf", "-inf", "nan"):
                fields.append(f"{name}={cell}")
        tags = f",bucket={escape_key(row.bucket)},index={escape_key(row.index)}"
        found = line("chain_analytics", tags, fields, ns)
        if found:
            out.append(found)
    return out


def strike_lines(
    chain: ChainSlice, solved: Solved, previous_oi: Mapping[OiKey, int], ns: int
) -> list[str]:
    """opchain's ``chain_strike``: one point per listed strike of the chain with a quote on
    either side: both sides' price, IV and Greeks (theta per calendar day, vega per vol
    point), volume, OI and its change since the previous close. (The hot loop of a full
    chain: each side's fields are one comprehension, no call per field.)"""
    index, expiry, legs = chain.index, chain.expiry, chain.legs
    iv, delta, gamma, theta, vega = (
        solved.iv, solved.delta, solved.gamma, solved.theta, solved.vega
    )  # fmt: skip
    sides: dict[int, list[str]] = {}
    strikes: dict[int, float] = {}
    for n, leg in enumerate(legs):
        q, strike = leg.quote, leg.strike
        if strike is None or q is None:
            continue
        vol, d, t, v = iv[n], delta[n], theta[n], vega[n]
        floats = (
            q.last_price,
            None if vol is None else round(vol, IV_DECIMALS),
            None if d is None else round(d, IV_DECIMALS),
            gamma[n],
            None if t is None else t / DAYS_PER_YEAR,
            None if v is None else v / VOL_POINT,
        )
        before = previous_oi.get((index, expiry, strike, leg.side)) if previous_oi else None
        ints = (q.volume, q.oi, None if before is None or q.oi is None else q.oi - before)
        names = _CALL if leg.side == "CE" else _PUT
        part = _fields(names[0], floats, names[1], ints)
        found = sides.get(leg.offset)
        if found is None:
            sides[leg.offset] = [part] if part else []
            strikes[leg.offset] = strike
        elif part:
            found.append(part)
    head = f"chain_strike,bucket={escape_key(chain.bucket)},index={escape_key(chain.index)}"
    common = ",".join(
        [
            f
            for f in (
                fl("atm_strike", chain.atm_strike),
                fl("forward", _rounded(solved.forward, 2)),
            )
            if f
        ]
    )
    return [
        f"{head},offset={offset} strike={float(strikes[offset])!r},{common}"
        + "".join("," + p for p in sides[offset])
        + f" {ns}"
        for offset in sorted(sides)
    ]


def _names(prefix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    floats = ("last_price", "iv", "delta", "gamma", "theta", "vega")
    return (
        tuple(f"{prefix}{name}=" for name in floats),
        tuple(f"{prefix}{name}=" for name in ("volume", "oi", "oi_change")),
    )


_CALL, _PUT = _names("call_"), _names("put_")


# -- health -------------------------------------------------------------------------------

WRITER_OK = frozenset({"ok"})  # writer states that leave monitor_status ok


def health_lines(
    cycle: Cycle, writer: WriterStatsLike | None, broker: str, tags: Tags
) -> list[str]:
    """OP's health measurements for one cycle, from its :class:`~opchain.merge.cycle.LoopStats`
    and the writer's stats (``influx_write_stats`` only with a writer): ``monitor_status``,
    ``pipeline_tick``, ``broker_health``, ``influx_write_stats``."""
    loop = cycle.loop
    snapshot = cycle.snapshot
    ns = timestamp_ns(snapshot.ts)
    env, host = escape_key(tags.env), escape_key(tags.host)
    common = f",app={escape_key(tags.app)},env={env},host={host}"
    duration = loop.collect_ms + loop.merge_ms
    overview = len(snapshot.indices)
    w = writer
    degraded = loop.lost > 0 or loop.missed > 0 or (w is not None and w.state not in WRITER_OK)
    status = "degraded" if degraded else "ok"
    keys = len(snapshot.indices) + loop.legs
    quoted = sum(1 for chain in snapshot.chains for leg in chain.legs if leg.quote is not None)
    out = [
        line(
            "monitor_status",
            f"{common},status={status}",
            [
                fl("loop_duration_ms", duration),
                it("legs_count", loop.legs),
                it("overview_count", overview),
                fl("lag_sec_index_overview", loop.lag_s),
                fl("lag_sec_atm_option_quote", loop.lag_s),
                it("errors_in_tick", loop.flagged),
                it("kite_429_count", loop.rate_limited),
                it("kite_error_count", loop.failed),
                it("influx_points_attempted", w.points_attempted if w else None),
                it("influx_points_written", w.points_written if w else None),
                it("influx_points_rejected", w.points_rejected if w else None),
                it("json_write_errors", 0),
            ],
            ns,
        ),
        line(
            "pipeline_tick",
            common,
            [
                fl("loop_duration_ms", duration),
                fl("atm_collect_ms", loop.collect_ms),
                fl("overview_collect_ms", loop.collect_ms),  # one call brings both
                it("kite_quote_calls", loop.quote_calls),
                fl("kite_batch_size_avg", keys / loop.quote_calls if loop.quote_calls else None),
                it("records_written_index_overview", overview),
                it("records_written_atm_legs", quoted),
                it("json_files_written", 0),
                it("influx_points_written", w.points_written if w else None),
            ],
            ns,
        ),
        line(
            "broker_health",
            f",api={escape_key(broker)},env={env},host={host}",
            [
                fl(
                    "quote_latency_ms",
                    loop.collect_ms / loop.quote_calls if loop.quote_calls else None,
                ),
                it("http_429_count", loop.rate_limited),
                fl(
                    "error_rate_percent",
                    100.0 * loop.failed / loop.requests if loop.requests else None,
                ),
            ],
            ns,
        ),
    ]
    if w is not None:
        out.append(
            line(
                "influx_write_stats",
                f",env={env},host={host},measurement=all",
                [
                    it("points_attempted", w.points_attempted),
                    it("points_written", w.points_written),
                    it("points_rejected", w.points_rejected),
                    fl("flush_latency_ms", w.flush_latency_ms),
                    it("batch_queue_depth", w.queue_points),
                    it("spool_bytes", w.spool_bytes),
                    it("spool_points", w.spool_points),
                ],
                ns,
            )
        )
    return [found for found in out if found]


# -- weekday masters ------------------------------------------------------------------------

Series = tuple[str, str, str]  # index, bucket, offset label


def master_lines(
    masters: Iterable[tuple[Series, Mapping[str, Cell]]], day: date, tags: Tags
) -> list[str]:
    """OP's ``weekday_master_updates``: each minute of each series' weekday master as ``day``
    closed it (``masters``: the series and the master's cells), at that minute of ``day``."""
    weekday = WEEKDAYS[day.weekday()]
    common = f",app={escape_key(tags.app)},env={escape_key(tags.env)}"
    out = []
    for (index, bucket, offset), cells in masters:
        head = (
            f"weekday_master_updates{common},expiry_code={escape_key(bucket)}"
            f",host={escape_key(tags.host)},index={escape_key(index)}"
            f",strike_offset={escape_key(offset)},weekday={weekday}"
        )
        for minute in sorted(cells):
            c = cells[minute]
            if c.n <= 0:
                continue
            hour, _, mins = minute.partition(":")
            at = datetime(day.year, day.month, day.day, int(hour), int(mins), tzinfo=IST)
            out.append(
                f"{head} avg_tot={round(c.total / c.n / 100, 6)!r},min_tot={c.low / 100!r},"
                f"max_tot={c.high / 100!r},n_tot={c.n}i {timestamp_ns(at)}"
            )
    return out
