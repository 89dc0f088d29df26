"""``/charts/{index}/...``: the charts of a recorded day (today's too, as it is recorded):
straddles and strangles with their VWAP and the rolling ATM straddle, OI by strike over a
window and OI change through the day, PCR and max pain through a day and across days, ATM IV
and iv30 against INDIA VIX. The computation is :mod:`opchain.history.charts`; this module reads
the parameters, picks the default day, and turns what is not recorded into a 404."""

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import StringConstraints

from opchain.api.chartmodels import (
    ChartContracts,
    OiChangeChart,
    OiChart,
    PcrChart,
    PcrDaysChart,
    StraddleChart,
    VixChartView,
)
from opchain.api.deps import (
    DATE_PATTERN,
    ERRORS,
    BucketName,
    DayQuery,
    Index,
    day_text,
    guard,
    settings_of,
)
from opchain.history import charts
from opchain.market.ist import at
from opchain.settings import Settings
from opchain.store import layout

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["charts"])
SettingsDep = Annotated[Settings, Depends(settings_of)]
T = TypeVar("T")

STRIKE = r"[0-9]{1,6}(\.[0-9]{1,2})?"
STRATEGY_PATTERN = rf"^{STRIKE}(-{STRIKE})?$"
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
MAX_STRIKES = 10
ExpiryQuery = Annotated[
    str | None,
    Query(
        pattern=DATE_PATTERN,
        max_length=10,
        description="The expiry, YYYY-MM-DD (default: the nearest recorded that day)",
        json_schema_extra={"format": "date"},
    ),
]
ChartBucket = Annotated[BucketName, Query(description="The expiry bucket")]


def _computed(make: Callable[[], T]) -> T:
    try:
        return make()
    except charts.ChartError as err:
        raise HTTPException(404, str(err)) from None


def _raw_day(settings: Settings, index: str, day: date | None) -> date:
    """The day asked for, or the latest the raw store holds legs of the index."""
    if day is not None:
        return day
    days = charts.recorded_days(layout.raw_root(settings.data_dir), index)
    if not days:
        raise HTTPException(404, f"there are no recorded legs of {index}")
    return days[-1]


def _analytics_day(settings: Settings, index: str, bucket: str, day: date | None) -> date:
    if day is not None:
        return day
    days = charts.analytics_days(layout.analytics_root(settings.data_dir), index, bucket)
    if not days:
        raise HTTPException(404, f"there are no analytics of {index} {bucket}")
    return days[-1]


def _strategy(text: str) -> charts.Strategy:
    put, _, call = text.partition("-")
    return charts.Strategy(put_strike=float(put), call_strike=float(call or put))


def _stamps(values: list[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


@router.get("/charts/{index}/contracts", response_model=ChartContracts)
def contracts(index: Index, settings: SettingsDep, day: DayQuery = None) -> dict[str, Any]:
    """The days with recorded legs of the index, and the expiries and strikes of one (default:
    the latest): what the charts' pickers offer."""
    root = layout.raw_root(settings.data_dir)
    day = _raw_day(settings, index, day)
    found = charts.expiries(charts.legs_of_day(root, day, index, ["expiry", "bucket", "strike"]))
    if not found:
        raise HTTPException(404, f"there are no recorded legs of {index} on {day}")
    return {
        "index": index,
        "date": day.isoformat(),
        "days": [d.isoformat() for d in charts.recorded_days(root, index)],
        "expiries": [
            {"expiry": e.isoformat(), "bucket": b, "strikes": s} for e, (b, s) in found.items()
        ],
    }


StrategyText = Annotated[str, StringConstraints(pattern=STRATEGY_PATTERN, max_length=20)]
StrikeText = Annotated[str, StringConstraints(pattern=rf"^{STRIKE}$", max_length=10)]


@router.get("/charts/{index}/straddles", response_model=StraddleChart)
def straddles(
    index: Index,
    settings: SettingsDep,
    day: DayQuery = None,
    expiry: ExpiryQuery = None,
    s: Annotated[
        list[StrategyText] | None,
        Query(
            max_length=charts.MAX_STRATEGIES,
            description="A strategy: `26400` (the straddle of that strike) or `26300-26500` "
            "(a strangle: the PE of the first strike, the CE of the second); up to 6",
        ),
    ] = None,
) -> dict[str, Any]:
    """Combined premium and its VWAP (docs/api.md) of each strategy at every recorded cycle of
    the day, and the rolling ATM straddle."""
    root = layout.raw_root(settings.data_dir)
    day = _raw_day(settings, index, day)
    strategies = [_strategy(t) for t in s or []]
    found = _computed(
        lambda: charts.straddles(root, day, index, day_text(expiry, "expiry"), strategies)
    )
    return {
        "index": index,
        "date": found.day.isoformat(),
        "expiry": found.expiry.isoformat(),
        "bucket": found.bucket,
        "ts": _stamps(found.ts),
        "strategies": [vars(p) for p in found.strategies],
        "atm": vars(found.atm),
    }


def _clock(name: str, text: str | None, day: date) -> datetime | None:
    if text is None:
        return None
    try:
        return at(day, time.fromisoformat(text))
    except ValueError:
        raise HTTPException(422, f"{name}: {text} is not a time of day") from None


@router.get("/charts/{index}/oi", response_model=OiChart)
def oi(
    index: Index,
    settings: SettingsDep,
    day: DayQuery = None,
    expiry: ExpiryQuery = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=TIME_PATTERN,
            max_length=8,
            description="The window's start, HH:MM[:SS] IST (default: the day's first cycle)",
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            pattern=TIME_PATTERN,
            max_length=8,
            description="The window's end, HH:MM[:SS] IST (default: the day's last cycle)",
        ),
    ] = None,
) -> dict[str, Any]:
    """Call and put OI of every recorded strike at the window's last cycle, and their change
    from its first."""
    root = layout.raw_root(settings.data_dir)
    day = _raw_day(settings, index, day)
    start, end = _clock("from", from_, day), _clock("to", to, day)
    found = _computed(
        lambda: charts.oi_window(root, day, index, day_text(expiry, "expiry"), start, end)
    )
    return {
        "index": index,
        "date": found.day.isoformat(),
        "expiry": found.expiry.isoformat(),
        "bucket": found.bucket,
        "start": found.start.isoformat(),
        "end": found.end.isoformat(),
        "rows": [vars(r) for r in found.rows],
    }


@router.get("/charts/{index}/oi-change", response_model=OiChangeChart)
def oi_change(
    index: Index,
    settings: SettingsDep,
    strikes: Annotated[
        list[StrikeText],
        Query(min_length=1, max_length=MAX_STRIKES, description="Strikes, up to 10"),
    ],
    day: DayQuery = None,
    expiry: ExpiryQuery = None,
) -> dict[str, Any]:
    """Each chosen strike's CE and PE OI change at every recorded cycle of the day, from the
    previous recorded day's close when the raw store has it (``base_is``), else from the
    day's first cycle."""
    root = layout.raw_root(settings.data_dir)
    day = _raw_day(settings, index, day)
    chosen = list(dict.fromkeys(float(s) for s in strikes))
    found = _computed(
        lambda: charts.oi_change(root, day, index, day_text(expiry, "expiry"), chosen)
    )
    return {
        "index": index,
        "date": found.day.isoformat(),
        "expiry": found.expiry.isoformat(),
        "bucket": found.bucket,
        "ts": _stamps(found.ts),
        "series": [vars(s) for s in found.series],
    }


def _pcr_columns(points: list[charts.PcrPoint]) -> dict[str, list[Any]]:
    return {
        "ts": [p.ts.isoformat() for p in points],
        "expiry": [p.expiry for p in points],
        "spot": [p.spot for p in points],
        "pcr_oi": [p.pcr_oi for p in points],
        "pcr_volume": [p.pcr_volume for p in points],
        "max_pain": [p.max_pain for p in points],
    }


@router.get("/charts/{index}/pcr", response_model=PcrChart)
def pcr(
    index: Index, settings: SettingsDep, bucket: ChartBucket = BucketName.this_week,
    day: DayQuery = None,
) -> dict[str, Any]:  # fmt: skip
    """PCR (by OI and by volume) and max pain of a bucket at every cycle of the day."""
    root = layout.analytics_root(settings.data_dir)
    day = _analytics_day(settings, index, bucket.value, day)
    points = _computed(lambda: charts.pcr_day(root, index, bucket.value, day))
    return {"index": index, "bucket": bucket.value, "date": day.isoformat(), **_pcr_columns(points)}


@router.get("/charts/{index}/pcr-days", response_model=PcrDaysChart)
def pcr_days(
    index: Index,
    settings: SettingsDep,
    bucket: ChartBucket = BucketName.this_week,
    from_: Annotated[
        str | None,
        Query(alias="from", pattern=DATE_PATTERN, max_length=10, description="The first day, "
              "YYYY-MM-DD (default: 30 days before `to`)", json_schema_extra={"format": "date"}),
    ] = None,
    to: Annotated[
        str | None,
        Query(pattern=DATE_PATTERN, max_length=10, json_schema_extra={"format": "date"},
              description="The last day, YYYY-MM-DD (default: the latest with analytics)"),
    ] = None,
) -> dict[str, Any]:  # fmt: skip
    """Each recorded day's last PCR and max pain of a bucket, from `from` to `to`."""
    root = layout.analytics_root(settings.data_dir)
    last = day_text(to, "to") or _analytics_day(settings, index, bucket.value, None)
    first = day_text(from_, "from") or last - timedelta(days=30)
    found = _computed(lambda: charts.pcr_days(root, index, bucket.value, first, last))
    return {
        "index": index,
        "bucket": bucket.value,
        "dates": [d.isoformat() for d, _ in found],
        **_pcr_columns([p for _, p in found]),
    }


@router.get("/charts/{index}/vix", response_model=VixChartView)
def vix(
    index: Index,
    settings: SettingsDep,
    bucket: ChartBucket = BucketName.this_week,
    day: DayQuery = None,
    window: Annotated[
        int, Query(ge=2, le=375, description="Minutes of changes in the rolling correlation")
    ] = charts.DEFAULT_WINDOW,
) -> dict[str, Any]:
    """The bucket's ATM IV and the index's iv30 (vol points) against INDIA VIX at every cycle,
    their spreads, and the rolling correlation of their minute changes."""
    data = settings.data_dir
    day = _analytics_day(settings, index, bucket.value, day)
    found = _computed(
        lambda: charts.vix_day(
            layout.analytics_root(data), layout.overview_root(data), index, bucket.value, day,
            window,
        )
    )  # fmt: skip
    body = vars(found) | {"ts": _stamps(found.ts), "minutes": _stamps(found.minutes)}
    return {
        "index": index,
        "bucket": bucket.value,
        "date": day.isoformat(),
        "window": window,
        **body,
    }
