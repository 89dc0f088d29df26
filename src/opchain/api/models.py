"""The JSON shapes of docs/api.md as pydantic models: what the OpenAPI schema promises.

Handlers mostly return views built once per snapshot and encoded once (``Response`` bytes), so
these models document and bound the answers rather than build them; the schema tests
(tests/test_api_schema.py) check every answer against them.
"""

from typing import Literal

from pydantic import BaseModel

Num = float | None
Count = int | None


class Error(BaseModel):
    detail: str


class Side(BaseModel):
    last_price: Num
    bid: Num
    ask: Num
    bid_qty: Count
    ask_qty: Count
    volume: Count
    oi: Count
    oi_change: Count
    iv: Num
    delta: Num
    gamma: Num
    theta: Num
    vega: Num
    flag: str | None


class ChainRow(BaseModel):
    strike: float
    call: Side | None
    put: Side | None
    payout: Num
    gex_call: Num
    gex_put: Num
    gex_net: Num
    otm_iv: Num


class Chain(BaseModel):
    index: str
    bucket: str
    expiry: str
    ts: str
    spot: Num
    forward: Num
    atm_strike: Num
    dte: int
    years: float
    stats: dict[str, float | str | None]
    rows: list[ChainRow]


class BucketLine(BaseModel):
    bucket: str
    expiry: str
    atm_strike: Num
    atm_iv: Num
    pcr_oi: Num
    max_pain: Num
    straddle: Num


class Overview(BaseModel):
    index: str
    name: str
    ts: str
    last_price: Num
    open: Num
    high: Num
    low: Num
    prev_close: Num
    net_change: Num
    net_change_pct: Num
    buckets: list[BucketLine]


class Live(BaseModel):
    type: Literal["snapshot"]
    index: str
    ts: str
    overview: Overview
    vix: Overview | None
    chains: list[Chain]


class Indices(BaseModel):
    indices: list[Overview]


class Hours(BaseModel):
    open: str
    close: str


class MarketStatus(BaseModel):
    now: str
    exchange: str
    is_open: bool
    session: Hours | None
    next_open: str | None


class GreeksRow(BaseModel):
    strike: float
    side: Literal["CE", "PE"]
    iv: Num
    delta: Num
    gamma: Num
    theta: Num
    vega: Num


class GreeksView(BaseModel):
    index: str
    bucket: str
    expiry: str
    ts: str
    forward: Num
    rows: list[GreeksRow]


class PcrBucket(BaseModel):
    bucket: str
    expiry: str
    pcr_oi: Num
    pcr_volume: Num


class PcrPoint(BaseModel):
    ts: str
    bucket: str
    pcr_oi: Num
    pcr_volume: Num


class PcrView(BaseModel):
    index: str
    ts: str
    buckets: list[PcrBucket]
    series: list[PcrPoint]


class MaxPainView(BaseModel):
    index: str
    bucket: str
    expiry: str
    ts: str
    spot: Num
    max_pain: Num
    call_wall: Num
    put_wall: Num
    strikes: list[float]
    call_oi: list[Count]
    put_oi: list[Count]
    call_oi_change: list[Count]
    put_oi_change: list[Count]
    payout: list[Num]


class GexView(BaseModel):
    index: str
    bucket: str
    expiry: str
    ts: str
    spot: Num
    total: Num
    zero_gamma: Num
    strikes: list[float]
    call: list[Num]
    put: list[Num]
    net: list[Num]


class SmileView(BaseModel):
    index: str
    bucket: str
    expiry: str
    ts: str
    forward: Num
    atm_iv: Num
    strikes: list[float]
    call_iv: list[Num]
    put_iv: list[Num]
    otm_iv: list[Num]


class TermPoint(BaseModel):
    bucket: str
    expiry: str
    years: float
    atm_iv: Num
    forward: Num
    straddle: Num
    expected_move_pct: Num


class TermView(BaseModel):
    index: str
    ts: str
    iv30: Num
    iv_rank: Num
    iv_percentile: Num
    points: list[TermPoint]


class MinuteRow(BaseModel):
    minute: str
    today: Num
    weekday_avg: Num
    weekday_min: Num
    weekday_max: Num
    weekday_days: Count
    dte_avg: Num
    dte_min: Num
    dte_max: Num
    dte_days: Count


class ProfileView(BaseModel):
    index: str
    bucket: str
    offset: str
    date: str
    weekday: str
    dte: Count
    minutes: list[MinuteRow]
    weekday_days: int  # the days before ``date`` in the weekday master
    dte_days: Count  # the days before ``date`` in the DTE profile (None: no DTE)
    skipped: list[str]  # files (or their lines) that could not be read, one sentence each


class ProfileRow(BaseModel):
    minute: str
    n: int
    avg: Num  # None (and min, max) when the row counts no day
    min: Num
    max: Num
    last_updated: str


class ProfileFile(BaseModel):
    applied: list[str]
    rows: list[ProfileRow]
    skipped: list[str]  # lines (or the ledger) that could not be read, one sentence each


class SplitFile(BaseModel):
    bucket: str
    offset: str
    rows: int
    bytes: int
    url: str


class SplitList(BaseModel):
    date: str
    files: list[SplitFile]


class AnalyticsRow(BaseModel):
    """One row of an analytics file (``store.stats``): a column an older file lacks is null."""

    ts: str
    index: str | None
    bucket: str | None
    expiry: str | None
    strikes: Count
    spot: Num
    forward: Num
    atm_iv: Num
    pcr_oi: Num
    pcr_volume: Num
    max_pain: Num
    straddle: Num
    expected_move_pct: Num
    gex: Num
    zero_gamma: Num
    call_wall: Num
    put_wall: Num
    call_oi_change: Num
    put_oi_change: Num
    iv30: Num
    iv_rank: Num
    iv_percentile: Num
    anomaly: str | None


class OverviewRow(BaseModel):
    """One row of an overview file (``store.overview``)."""

    ts: str
    index: str | None
    name: str | None
    last_price: Num
    open: Num
    high: Num
    low: Num
    prev_close: Num
    net_change: Num
    net_change_pct: Num
    exchange_ts: str | None


class AnalyticsRange(BaseModel):
    index: str
    bucket: str
    rows: list[AnalyticsRow]
    next: str | None
    poll: str | None


class OverviewRange(BaseModel):
    index: str
    rows: list[OverviewRow]
    next: str | None
    poll: str | None
