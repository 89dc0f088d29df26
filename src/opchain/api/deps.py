"""What every data endpoint depends on: the key check, the rate limit, and the parameters,
each validated before it is used, so that nothing a client sends becomes part of a file path
except an enum member, a strict offset label or a real date."""

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import APIKeyHeader

from opchain.api.keys import identify
from opchain.api.limits import RateLimiter
from opchain.api.live import Hub
from opchain.api.models import Error
from opchain.settings import Settings


class IndexName(StrEnum):
    """The indices opchain knows (``market.indices.INDICES``; a test keeps them equal)."""

    NIFTY = "NIFTY"
    BANKNIFTY = "BANKNIFTY"
    SENSEX = "SENSEX"
    FINNIFTY = "FINNIFTY"
    MIDCPNIFTY = "MIDCPNIFTY"
    BANKEX = "BANKEX"


class BucketName(StrEnum):
    """The expiry buckets (``store.opmasters.BUCKETS``)."""

    this_week = "this_week"
    next_week = "next_week"
    this_month = "this_month"
    next_month = "next_month"


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"


# atm, atm_p1, atm_m2, atm_p1m1: the split folders' names (1..99 strikes out).
OFFSET_PATTERN = r"^atm(_[pm][1-9][0-9]?|_p[1-9][0-9]?m[1-9][0-9]?)?$"
_PAIR = re.compile(r"atm_p([0-9]+)m([0-9]+)")
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "No key, or a wrong one."},
    404: {"model": Error, "description": "Nothing of that name, or no data yet."},
    422: {"model": Error, "description": "A parameter is not valid."},
    429: {"model": Error, "description": "Too many requests; see Retry-After."},
    503: {"model": Error, "description": "The file the answer is made of cannot be read."},
}

api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="One of OPCHAIN_API_KEYS")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def client_of(key: str | None, host: str | None, state: Any) -> tuple[bool, str | bytes]:
    """Whether the request may pass the key check, and the client to charge for it: the key's
    digest when it is a known key, else the address (so guessing keys is rate limited too)."""
    known: tuple[bytes, ...] = state.key_digests
    address = host or "unknown"
    if not known:
        return True, address
    found = identify(key, known)
    return found is not None, found if found is not None else address


def guard(request: Request, key: Annotated[str | None, Depends(api_key)] = None) -> None:
    """401 without a valid key (when keys are configured), 429 past the client's rate."""
    state = request.app.state
    allowed, client = client_of(key, request.client.host if request.client else None, state)
    limiter: RateLimiter = state.limiter
    wait = limiter.take(client)
    if wait is not None:
        raise HTTPException(
            429,
            f"too many requests; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if not allowed:
        raise HTTPException(
            401,
            "a valid API key is required in the X-API-Key header",
            headers={"WWW-Authenticate": "APIKey"},
        )


def index_param(
    index: Annotated[IndexName, Path(description="An index key")],
    settings: Annotated[Settings, Depends(settings_of)],
) -> str:
    if index.value not in settings.indices:
        raise HTTPException(404, f"{index.value} is not one of the configured indices")
    return str(index.value)


Index = Annotated[str, Depends(index_param)]
BucketQuery = Annotated[
    BucketName | None, Query(description="The expiry bucket (default: the nearest)")
]
Offset = Annotated[
    str,
    Path(pattern=OFFSET_PATTERN, max_length=12, description="A split folder: atm, atm_p1, ..."),
]


def day_text(text: str | None, name: str = "date") -> date | None:
    """A strict YYYY-MM-DD date (already matched by the pattern), 422 naming the parameter
    ``name`` when it is no day."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{name}: {text} is not a calendar date") from None


def date_query(
    date: Annotated[
        str | None,
        Query(
            pattern=DATE_PATTERN,
            max_length=10,
            description="YYYY-MM-DD (default: the latest day with data)",
            json_schema_extra={"format": "date"},
        ),
    ] = None,
) -> date | None:
    return day_text(date)


def offset_exists(offset: str) -> bool:
    """A pair label names one step out on both sides (atm_p2m2, not atm_p2m1)."""
    pair = _PAIR.fullmatch(offset)
    return pair is None or pair[1] == pair[2]


DayQuery = Annotated[date | None, Depends(date_query)]
