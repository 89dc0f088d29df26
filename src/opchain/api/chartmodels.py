"""The JSON shapes of the charts (``/charts/...``, docs/api.md "Charts"): series as columns,
each list aligned with the answer's ``ts``."""

from typing import Literal

from pydantic import BaseModel

Num = float | None
Count = int | None


class ExpiryStrikes(BaseModel):
    expiry: str
    bucket: str
    strikes: list[float]


class ChartContracts(BaseModel):
    index: str
    date: str
    days: list[str]
    expiries: list[ExpiryStrikes]


class Premium(BaseModel):
    label: str
    kind: Literal["straddle", "strangle", "rolling"]
    put_strike: Num
    call_strike: Num
    strike: list[Num]
    premium: list[Num]
    vwap: list[Num]


class StraddleChart(BaseModel):
    index: str
    date: str
    expiry: str
    bucket: str
    ts: list[str]
    strategies: list[Premium]
    atm: Premium


class OiStrike(BaseModel):
    strike: float
    call_oi: Count
    put_oi: Count
    call_oi_change: Count
    put_oi_change: Count


class OiChart(BaseModel):
    index: str
    date: str
    expiry: str
    bucket: str
    start: str
    end: str
    rows: list[OiStrike]


class OiChangeLine(BaseModel):
    strike: float
    side: Literal["CE", "PE"]
    base: Count
    base_is: Literal["previous_close", "first_cycle"]
    change: list[Count]


class OiChangeChart(BaseModel):
    index: str
    date: str
    expiry: str
    bucket: str
    ts: list[str]
    series: list[OiChangeLine]


class PcrChart(BaseModel):
    index: str
    bucket: str
    date: str
    ts: list[str]
    expiry: list[str]
    spot: list[Num]
    pcr_oi: list[Num]
    pcr_volume: list[Num]
    max_pain: list[Num]


class PcrDaysChart(BaseModel):
    index: str
    bucket: str
    dates: list[str]
    ts: list[str]
    expiry: list[str]
    spot: list[Num]
    pcr_oi: list[Num]
    pcr_volume: list[Num]
    max_pain: list[Num]


class VixChartView(BaseModel):
    index: str
    bucket: str
    date: str
    window: int
    ts: list[str]
    atm_iv: list[Num]
    iv30: list[Num]
    vix: list[Num]
    atm_spread: list[Num]
    iv30_spread: list[Num]
    minutes: list[str]
    atm_correlation: list[Num]
    iv30_correlation: list[Num]
