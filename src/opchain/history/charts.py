"""The charts traders ask for, computed from a day's recorded files (docs/api.md "Charts").

Every function reads one day (a day being recorded too: the raw journals beside the parts,
the CSVs as far as they are written) and returns plain records, series aligned on the day's
recorded cycles. Nothing is written.

- :func:`straddles`: straddles and strangles of chosen strikes of one expiry, their combined
  premium and its VWAP through the day, and the rolling ATM straddle.
- :func:`oi_window`, :func:`oi_change`: open interest by strike over a time window, and its
  change through the day for chosen strikes.
- :func:`pcr_day`, :func:`pcr_days`: PCR and max pain through a day, and each day's last.
- :func:`vix_day`: the index's ATM IV and iv30 against INDIA VIX, their spread and the rolling
  correlation of their minute changes.

Prices are float rupees, rounded to the paisa; a VWAP is computed exactly in paise (integers)
and rounded half up to the paisa. Bad input (an unknown expiry, a strike never recorded, a day
without data) raises :class:`ChartError`, one sentence.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc

from opchain.market.ist import IST
from opchain.merge.stats import BucketStats
from opchain.store import layout
from opchain.store import rawparts as parts
from opchain.store.raw import RawStore
from opchain.store.recorded import raw_days, read_overview, read_stats

MAX_STRATEGIES = 6
VIX = "INDIAVIX"  # the overview file of INDIA VIX (market.indices)
DEFAULT_WINDOW = 30  # minutes of changes in a rolling correlation
# Each contract's (strike, side) quotes by cycle (epoch ms): last price, cumulative volume, and
# its last known volume at an earlier cycle.
Quotes = dict[tuple[float, str], dict[int, tuple[float | None, int | None, int | None]]]
_LEGS = ["ts", "bucket", "expiry", "strike", "side", "last_price", "volume", "oi", "atm_strike"]


class ChartError(ValueError):
    """What was asked for is not in the recorded data; the message is one sentence."""


@dataclass(frozen=True)
class Strategy:
    """A straddle (``put_strike == call_strike``) or a strangle: the PE of one strike and the
    CE of another."""

    put_strike: float
    call_strike: float

    @property
    def kind(self) -> str:
        return "straddle" if self.put_strike == self.call_strike else "strangle"

    @property
    def label(self) -> str:
        if self.kind == "straddle":
            return f"{_num(self.call_strike)} straddle"
        return f"{_num(self.put_strike)}PE/{_num(self.call_strike)}CE strangle"


@dataclass(frozen=True)
class PremiumSeries:
    label: str
    kind: str
    put_strike: float | None  # None: the rolling ATM straddle (the strike moves)
    call_strike: float | None
    premium: list[float | None]  # CE + PE last price at each cycle (None: a leg unpriced)
    vwap: list[float | None]  # cumulative VWAP of the premium (None: no volume yet)
    strike: list[float | None]  # the ATM strike of each cycle (rolling); the CE's otherwise


@dataclass(frozen=True)
class Straddles:
    day: date
    expiry: date
    bucket: str
    ts: list[datetime]
    strategies: list[PremiumSeries]
    atm: PremiumSeries


# ------------------------------------------------------------------------------ raw legs


def legs_of_day(raw_root: Path, day: date, index: str, columns: Sequence[str] = _LEGS) -> pa.Table:
    """Every recorded leg of an index on a day (these columns and ``ts``), from its parts and
    journals."""
    folder = layout.raw_folder(raw_root, day, index)
    columns = list(dict.fromkeys(["ts", *columns]))  # a window is read by its cycles' times
    tables = [parts.read_window(folder, label, columns) for label in parts.window_labels(folder)]
    if not tables:
        return parts.FILE_SCHEMA.empty_table().select(columns)
    return pa.concat_tables(tables)


def recorded_days(raw_root: Path, index: str) -> list[date]:
    """The days the raw store holds legs of the index, oldest first."""
    return [d for d in raw_days(raw_root) if layout.raw_folder(raw_root, d, index).is_dir()]


def expiries(table: pa.Table) -> dict[date, tuple[str, list[float]]]:
    """Each expiry of a day's legs with its bucket and its recorded strikes."""
    pairs = table.select(["expiry", "bucket", "strike"]).group_by(["expiry", "bucket", "strike"])
    found: dict[date, tuple[str, set[float]]] = {}
    for row in pairs.aggregate([]).to_pylist():
        found.setdefault(row["expiry"], (row["bucket"], set()))[1].add(row["strike"])
    return {e: (b, sorted(s)) for e, (b, s) in sorted(found.items())}


def _of_expiry(table: pa.Table, expiry: date) -> pa.Table:
    return table.filter(pc.equal(table.column("expiry"), pa.scalar(expiry, pa.date32())))


def _stamp(millis: int) -> datetime:
    return datetime.fromtimestamp(millis // 1000, IST) + timedelta(milliseconds=millis % 1000)


def _millis(table: pa.Table) -> list[int]:
    # a raw leg always has its cycle's time (store.raw writes it)
    return cast(list[int], table.column("ts").cast(pa.int64()).to_pylist())


def _cycles(table: pa.Table) -> list[int]:
    """The recorded cycles (epoch ms) of some legs, in time order."""
    return sorted(cast(list[int], pc.unique(table.column("ts")).cast(pa.int64()).to_pylist()))


def _at_cycles(table: pa.Table, cycles: Iterable[int]) -> pa.Table:
    """The legs of these cycles."""
    stamps = table.column("ts").cast(pa.int64())
    return table.filter(pc.is_in(stamps, pa.array(sorted(set(cycles)), pa.int64())))


def _day_table(raw_root: Path, day: date, index: str, expiry: date | None) -> pa.Table:
    """The legs of one expiry of the day (default: the nearest recorded); ChartError when the
    day or the expiry has none."""
    table = legs_of_day(raw_root, day, index)
    if table.num_rows == 0:
        raise ChartError(f"there are no recorded legs of {index} on {day}")
    if expiry is None:
        expiry = pc.min(table.column("expiry")).as_py()
    assert expiry is not None  # a leg has one
    legs = _of_expiry(table, expiry)
    if legs.num_rows == 0:
        raise ChartError(f"expiry {expiry} of {index} was not recorded on {day}")
    return legs


# ------------------------------------------------------------------ straddles, strangles


def straddles(
    raw_root: Path, day: date, index: str, expiry: date | None, chosen: Sequence[Strategy]
) -> Straddles:
    """The chosen straddles and strangles of one expiry (default: the nearest) and the rolling
    ATM straddle, at every recorded cycle of the day."""
    if len(chosen) > MAX_STRATEGIES:
        raise ChartError(f"at most {MAX_STRATEGIES} strategies at once, not {len(chosen)}")
    table = _day_table(raw_root, day, index, expiry)
    expiry = table.column("expiry")[0].as_py()
    strikes = set(pc.unique(table.column("strike")).to_pylist())
    for strategy in chosen:
        for strike in (strategy.put_strike, strategy.call_strike):
            if strike not in strikes:
                raise ChartError(
                    f"strike {_num(strike)} of {index} {expiry} was not recorded on {day}"
                )
    cycles = _cycles(table)
    per_cycle = table.group_by("ts").aggregate([("atm_strike", "max")])
    atm_at: dict[int, float | None] = dict(
        zip(_millis(per_cycle), per_cycle.column("atm_strike_max").to_pylist(), strict=True)
    )
    wanted = {s.put_strike for s in chosen} | {s.call_strike for s in chosen}
    wanted |= {k for k in atm_at.values() if k is not None}
    kept = table.filter(pc.is_in(table.column("strike"), pa.array(sorted(wanted), pa.float64())))
    found: dict[tuple[float, str], dict[int, tuple[float | None, int | None]]] = {}
    for ts, strike, side, last, volume in zip(
        _millis(kept),
        *(kept.column(c).to_pylist() for c in ("strike", "side", "last_price", "volume")),
        strict=True,
    ):
        found.setdefault((strike, side), {})[ts] = (last, volume)
    quotes: Quotes = {key: _with_volume_before(q) for key, q in found.items()}
    series = [
        _premium(
            strategy.label,
            strategy.kind,
            cycles,
            [(strategy.put_strike, strategy.call_strike)] * len(cycles),
            quotes,
        )
        for strategy in chosen
    ]
    atm_strikes = [atm_at[ts] for ts in cycles]
    atm = _premium("ATM straddle", "rolling", cycles, [(k, k) for k in atm_strikes], quotes)
    bucket = table.column("bucket")[0].as_py()
    return Straddles(
        day=day, expiry=expiry, bucket=bucket, ts=[_stamp(t) for t in cycles],
        strategies=series, atm=atm,
    )  # fmt: skip


def _premium(
    label: str,
    kind: str,
    cycles: list[int],
    pairs: list[tuple[float | None, float | None]],
    quotes: Quotes,
) -> PremiumSeries:
    """Combined premium (PE of the pair's first strike + CE of its second) and its VWAP.

    The weight of a cycle is the volume both legs traded since the day's previous recorded
    cycle: each leg's cumulative day volume minus its last one recorded earlier in the day (a
    decrease, or a volume not known either time, is no volume). The VWAP at a cycle is the sum
    of premium × weight over the day's cycles so far divided by the sum of weights; None until
    some volume traded with both legs priced."""
    premiums: list[float | None] = []
    vwaps: list[float | None] = []
    numerator = denominator = 0  # paise × volume, volume: exact integers
    for ts, (put_strike, call_strike) in zip(cycles, pairs, strict=True):
        price: int | None = 0
        weight = 0
        for strike, side in ((put_strike, "PE"), (call_strike, "CE")):
            found = quotes.get((strike, side), {}) if strike is not None else {}
            last, volume, before = found.get(ts, (None, None, None))
            if last is None or last <= 0 or price is None:
                price = None  # untraded (Kite's 0) or not quoted
            else:
                price += round(last * 100)
            if volume is not None and before is not None and volume > before:
                weight += volume - before
        premiums.append(None if price is None else price / 100)
        if price is not None and weight:
            numerator += price * weight
            denominator += weight
        vwaps.append(_paise(numerator, denominator))
    first = pairs[0] if pairs else (None, None)
    rolling = kind == "rolling"
    return PremiumSeries(
        label=label, kind=kind,
        put_strike=None if rolling else first[0], call_strike=None if rolling else first[1],
        premium=premiums, vwap=vwaps, strike=[p[1] for p in pairs],
    )  # fmt: skip


def _with_volume_before(
    found: dict[int, tuple[float | None, int | None]],
) -> dict[int, tuple[float | None, int | None, int | None]]:
    """A contract's quotes by cycle, each with its last known cumulative volume at an earlier
    recorded cycle of the day (None: none known)."""
    out: dict[int, tuple[float | None, int | None, int | None]] = {}
    known = None
    for at in sorted(found):
        last, volume = found[at]
        out[at] = (last, volume, known)
        if volume is not None:
            known = volume
    return out


def _paise(numerator: int, denominator: int) -> float | None:
    """numerator / denominator paise, rounded half up to the paisa, in rupees."""
    if denominator == 0:
        return None
    rounded, _ = divmod(2 * numerator + denominator, 2 * denominator)
    return rounded / 100


# ------------------------------------------------------------------------------- OI


@dataclass(frozen=True)
class OiRow:
    strike: float
    call_oi: int | None  # at the window's end
    put_oi: int | None
    call_oi_change: int | None  # since the window's start (None: not recorded at both)
    put_oi_change: int | None


@dataclass(frozen=True)
class OiWindow:
    day: date
    expiry: date
    bucket: str
    start: datetime  # the window's first recorded cycle
    end: datetime  # its last
    rows: list[OiRow]


def oi_window(
    raw_root: Path,
    day: date,
    index: str,
    expiry: date | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> OiWindow:
    """Call and put OI of every recorded strike at the last cycle of ``[start, end]`` and their
    change from the first cycle of that window (default: the whole day)."""
    table = _day_table(raw_root, day, index, expiry)
    cycles = _cycles(table)
    low = -math.inf if start is None else start.timestamp() * 1000
    high = math.inf if end is None else end.timestamp() * 1000
    inside = [t for t in cycles if low <= t <= high]
    if not inside:
        raise ChartError(f"no cycle of {index} was recorded between those times on {day}")
    first, last = inside[0], inside[-1]
    edges = _at_cycles(table, (first, last))
    oi: dict[tuple[int, float, str], int | None] = {}
    for ts, strike, side, value in zip(
        _millis(edges),
        *(edges.column(c).to_pylist() for c in ("strike", "side", "oi")),
        strict=True,
    ):
        oi[ts, strike, side] = value
    rows = []
    for strike in sorted({k[1] for k in oi}):
        ends = {s: oi.get((last, strike, s)) for s in ("CE", "PE")}
        starts = {s: oi.get((first, strike, s)) for s in ("CE", "PE")}
        change = {
            s: None if ends[s] is None or starts[s] is None else ends[s] - starts[s]  # type: ignore[operator]
            for s in ("CE", "PE")
        }
        rows.append(
            OiRow(strike=strike, call_oi=ends["CE"], put_oi=ends["PE"],
                  call_oi_change=change["CE"], put_oi_change=change["PE"])
        )  # fmt: skip
    return OiWindow(
        day=day, expiry=table.column("expiry")[0].as_py(), bucket=table.column("bucket")[0].as_py(),
        start=_stamp(first), end=_stamp(last), rows=rows,
    )  # fmt: skip


@dataclass(frozen=True)
class OiChangeSeries:
    strike: float
    side: str  # CE or PE
    base: int | None  # what the change is from
    base_is: str  # "previous_close" (the last recorded day's close) or "first_cycle" (today's)
    change: list[int | None]  # OI − base at each cycle (None: not recorded then)


@dataclass(frozen=True)
class OiChange:
    day: date
    expiry: date
    bucket: str
    ts: list[datetime]
    series: list[OiChangeSeries]


def oi_change(
    raw_root: Path, day: date, index: str, expiry: date | None, strikes: Sequence[float]
) -> OiChange:
    """Each chosen strike's CE and PE OI change through the day: from the contract's OI at the
    close of the index's previous recorded day when the raw store has it, else from its first
    recorded OI of the day."""
    table = _day_table(raw_root, day, index, expiry)
    expiry = table.column("expiry")[0].as_py()
    known = set(pc.unique(table.column("strike")).to_pylist())
    for strike in strikes:
        if strike not in known:
            raise ChartError(f"strike {_num(strike)} of {index} {expiry} was not recorded on {day}")
    cycles = _cycles(table)
    kept = table.filter(pc.is_in(table.column("strike"), pa.array(list(strikes), pa.float64())))
    oi: dict[tuple[float, str], dict[int, int | None]] = {}
    for ts, strike, side, value in zip(
        _millis(kept), *(kept.column(c).to_pylist() for c in ("strike", "side", "oi")), strict=True
    ):
        oi.setdefault((strike, side), {})[ts] = value
    store = RawStore(raw_root)
    try:
        closing = store.closing_oi(index, day)
    finally:
        store.close()
    series = []
    for strike in strikes:
        for side in ("CE", "PE"):
            found = oi.get((strike, side), {})
            base = closing.get((index, expiry, strike, side))
            base_is = "previous_close"
            if base is None:
                base_is = "first_cycle"
                base = next((found[t] for t in cycles if found.get(t) is not None), None)
            change = [
                None if base is None or found.get(t) is None else found[t] - base  # type: ignore[operator]
                for t in cycles
            ]
            series.append(
                OiChangeSeries(strike=strike, side=side, base=base, base_is=base_is, change=change)
            )
    return OiChange(
        day=day, expiry=expiry, bucket=table.column("bucket")[0].as_py(),
        ts=[_stamp(t) for t in cycles], series=series,
    )  # fmt: skip


# -------------------------------------------------------------------- PCR, max pain, VIX


def analytics_rows(analytics_root: Path, index: str, bucket: str, day: date) -> list[BucketStats]:
    """The analytics file's rows of an index, bucket and day (none when there is no file)."""
    return read_stats(layout.analytics_file(analytics_root, index, bucket, day))


def analytics_days(analytics_root: Path, index: str, bucket: str) -> list[date]:
    folder = layout.analytics_file(analytics_root, index, bucket, date.min).parent
    found = []
    for path in folder.glob("*.csv") if folder.is_dir() else []:
        try:
            found.append(date.fromisoformat(path.stem))
        except ValueError:
            continue
    return sorted(found)


@dataclass(frozen=True)
class PcrPoint:
    ts: datetime
    expiry: str
    spot: float | None
    pcr_oi: float | None
    pcr_volume: float | None
    max_pain: float | None


def pcr_day(analytics_root: Path, index: str, bucket: str, day: date) -> list[PcrPoint]:
    """PCR (OI and volume) and max pain of a bucket at each cycle of the day."""
    rows = analytics_rows(analytics_root, index, bucket, day)
    if not rows:
        raise ChartError(f"there are no analytics of {index} {bucket} on {day}")
    return [_pcr_point(r) for r in rows]


def pcr_days(
    analytics_root: Path, index: str, bucket: str, first: date, last: date
) -> list[tuple[date, PcrPoint]]:
    """Each recorded day's last PCR and max pain of a bucket, ``first`` to ``last``."""
    found = []
    for day in analytics_days(analytics_root, index, bucket):
        if first <= day <= last:
            rows = analytics_rows(analytics_root, index, bucket, day)
            if rows:
                found.append((day, _pcr_point(rows[-1])))
    if not found:
        raise ChartError(f"there are no analytics of {index} {bucket} from {first} to {last}")
    return found


def _pcr_point(row: BucketStats) -> PcrPoint:
    return PcrPoint(
        ts=datetime.fromisoformat(row.ts), expiry=row.expiry, spot=_finite(row.spot),
        pcr_oi=_finite(row.pcr_oi), pcr_volume=_finite(row.pcr_volume),
        max_pain=_finite(row.max_pain),
    )  # fmt: skip


@dataclass(frozen=True)
class VixChart:
    ts: list[datetime]
    atm_iv: list[float | None]  # vol points (the file's decimal × 100)
    iv30: list[float | None]
    vix: list[float | None]  # INDIA VIX's last value at or before the cycle
    atm_spread: list[float | None]  # atm_iv − vix, vol points
    iv30_spread: list[float | None]
    minutes: list[datetime]  # each minute's last cycle
    atm_correlation: list[float | None]  # of the minute changes, over the last `window`
    iv30_correlation: list[float | None]


def vix_day(
    analytics_root: Path, overview_root: Path, index: str, bucket: str, day: date, window: int
) -> VixChart:
    """The index's ATM IV (of one bucket) and iv30 against INDIA VIX through a day.

    Both IVs are in vol points, as VIX is (an annualized volatility in percent). The rolling
    correlation at a minute is Pearson's r of the minute changes of the two series over the
    last ``window`` changes (each minute's value: its last cycle's), None until there are that
    many or when either series did not move."""
    rows = analytics_rows(analytics_root, index, bucket, day)
    if not rows:
        raise ChartError(f"there are no analytics of {index} {bucket} on {day}")
    vix_rows = read_overview(layout.overview_file(overview_root, VIX, day))
    if not vix_rows:
        raise ChartError(f"there is no INDIA VIX recorded on {day}")
    ts = [datetime.fromisoformat(r.ts) for r in rows]
    atm = [_vol_points(r.atm_iv) for r in rows]
    iv30 = [_vol_points(r.iv30) for r in rows]
    vix, at = [], 0
    latest: float | None = None
    for moment in ts:
        while at < len(vix_rows) and vix_rows[at][0] <= moment:
            latest = vix_rows[at][1].last_price
            at += 1
        vix.append(latest)
    minutes: dict[datetime, int] = {}
    for i, moment in enumerate(ts):
        minutes[moment.replace(second=0, microsecond=0)] = i  # the minute's last cycle
    last_of = list(minutes.values())
    atm_m, vix_m = [atm[i] for i in last_of], [vix[i] for i in last_of]
    return VixChart(
        ts=ts, atm_iv=atm, iv30=iv30, vix=vix,
        atm_spread=[_spread(a, v) for a, v in zip(atm, vix, strict=True)],
        iv30_spread=[_spread(a, v) for a, v in zip(iv30, vix, strict=True)],
        minutes=[ts[i] for i in last_of],
        atm_correlation=rolling_correlation(atm_m, vix_m, window),
        iv30_correlation=rolling_correlation([iv30[i] for i in last_of], vix_m, window),
    )  # fmt: skip


def rolling_correlation(
    xs: Sequence[float | None], ys: Sequence[float | None], window: int
) -> list[float | None]:
    """At each point, Pearson's r of the last ``window`` changes of both series (a change
    between two points either of whose values is unknown breaks the window), to 4 decimals."""
    out: list[float | None] = [None]
    dx = [_diff(xs[i], xs[i - 1]) for i in range(1, len(xs))]
    dy = [_diff(ys[i], ys[i - 1]) for i in range(1, len(ys))]
    for end in range(1, len(xs)):
        if end < window:
            out.append(None)
            continue
        a, b = dx[end - window : end], dy[end - window : end]
        out.append(_pearson(a, b))
    return out


def _pearson(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    if any(v is None for v in a) or any(v is None for v in b):
        return None
    xs = [float(v) for v in a if v is not None]
    ys = [float(v) for v in b if v is not None]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return round(sxy / math.sqrt(sxx * syy), 4)


def _diff(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def _vol_points(value: float) -> float | None:
    return None if not math.isfinite(value) else round(value * 100, 4)


def _spread(iv: float | None, vix: float | None) -> float | None:
    return None if iv is None or vix is None else round(iv - vix, 4)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _num(strike: float) -> str:
    return str(int(strike)) if strike == int(strike) else str(strike)
