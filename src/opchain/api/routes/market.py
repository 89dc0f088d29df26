"""``/market-status`` and ``/indices``: is the market open, and where each index stands."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from opchain.api.deps import ERRORS, guard, hub_of, settings_of
from opchain.api.live import Hub, vix_overview
from opchain.api.models import Indices, MarketStatus
from opchain.market import calendar
from opchain.market.clock import Clock
from opchain.market.indices import INDICES
from opchain.market.ist import to_ist
from opchain.settings import Settings
from opchain.store.live import encode

router = APIRouter(dependencies=[Depends(guard)], responses=ERRORS, tags=["market"])


def market_status(exchange: str, now: datetime) -> dict[str, Any]:
    """Today's session on ``exchange`` and the next open after ``now``; None where the
    published calendar does not reach."""
    now = to_ist(now)
    try:
        today = calendar.session(exchange, now.date())
    except calendar.CalendarUnavailable:
        today = None
    next_open: datetime | None = None
    if today is not None and now < today.open:
        next_open = today.open
    else:
        try:
            day = calendar.next_trading_day(exchange, now.date())
            upcoming = calendar.session(exchange, day)
            next_open = upcoming.open if upcoming else None
        except calendar.CalendarUnavailable:
            next_open = None
    return {
        "now": now.isoformat(),
        "exchange": exchange,
        "is_open": today is not None and today.open <= now < today.close,
        "session": None
        if today is None
        else {"open": today.open.isoformat(), "close": today.close.isoformat()},
        "next_open": None if next_open is None else next_open.isoformat(),
    }


@router.get("/market-status", response_model=MarketStatus)
async def status(
    request: Request, settings: Annotated[Settings, Depends(settings_of)]
) -> dict[str, Any]:
    """Whether the exchange of the configured indices is open now, and when it next opens."""
    clock: Clock = request.app.state.clock
    return market_status(INDICES[settings.indices[0]].exchange, clock.now())


@router.get("/indices", response_model=Indices)
async def indices(
    hub: Annotated[Hub, Depends(hub_of)], settings: Annotated[Settings, Depends(settings_of)]
) -> Response:
    """Each configured index's overview with a line per bucket, and INDIA VIX."""
    messages = hub.messages()
    found = [messages[i]["overview"] for i in settings.indices if i in messages]
    vix = vix_overview(messages)
    body = {"indices": found + ([vix] if vix is not None else [])}
    return Response(encode(body), media_type="application/json")
