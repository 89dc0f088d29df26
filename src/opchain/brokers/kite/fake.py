"""A fake Kite Connect server: Kite's REST and WebSocket wire formats over the simulated market.

So faithful that Zerodha's own ``kiteconnect`` client, pointed at it with ``root=``, cannot tell
it from the real API (research/kite.md §2.10): the login redirect with a one-shot
``request_token``; ``POST /session/token`` checking ``sha256(api_key + request_token +
api_secret)``; access tokens that expire at 06:00 IST the next morning; ``X-Kite-Version: 3`` and
``Authorization: token api_key:access_token`` on every call; the success and error envelopes
with Kite's HTTP codes and ``error_type`` names; instruments dumps as CSV; ``/quote`` (at most
500 instruments), ``/quote/ltp`` and ``/quote/ohlc`` (at most 1,000), unknown instruments left
out, and one quote-family request a second per API key (429 ``NetworkException`` beyond). The
ticker's WebSocket is on the root path (:mod:`.fake_ticker`).

Trouble can be scripted (:class:`Faults`): shares of quote requests answered 429, 5xx, with an
HTML gateway page, with truncated JSON, with a garbled quote, or stalled past the client's
timeout; a latency on every answer; the access token expiring at a given time; ticker
connections cut or silenced after a frame. Every request (and WebSocket upgrade) is recorded in
:attr:`FakeKite.requests` for tests to inspect.

Like Kite it answers every day: on a weekend or a holiday the dump and the quotes are those of
the last trading day as it closed (quotes stamped with that day's times). Every error is Kite's
JSON envelope, never plain text: an unknown route is a 404 and anything unexpected (such as a
day in a year the simulator has no holiday table for) a 500 ``GeneralException`` saying what.
"""

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from opchain.brokers.sim import SimBroker, SimMarket
from opchain.market import calendar
from opchain.market.clock import Clock
from opchain.market.indices import DEFAULT_INDICES
from opchain.market.instruments import format_dump
from opchain.market.ist import trading_date
from opchain.model import Quote

from . import wire
from .fake_ticker import FakeTicker
from .session import checksum, token_expiry

log = logging.getLogger(__name__)

QUOTE_LIMIT = {"/quote": 500, "/quote/ltp": 1000, "/quote/ohlc": 1000}
QUOTE_RATE = 1.0  # quote-family requests per second per API key
_ENCODERS: dict[str, Callable[[Quote], dict[str, Any]]] = {
    "/quote": wire.encode_quote,
    "/quote/ltp": wire.encode_ltp,
    "/quote/ohlc": wire.encode_ohlc,
}


FAULTS = ("too_many", "server_error", "html", "malformed", "garbled", "stall")


@dataclass
class Faults:
    """Scripted trouble on the quote endpoints. ``script`` names the faults of the next
    requests in order (``"ok"`` for none); after it runs out, each request draws one fault
    with the given shares. ``seed`` makes the draws repeatable."""

    too_many: float = 0.0  # 429 NetworkException "Too many requests"
    server_error: float = 0.0  # 500/502/503 in Kite's error envelope
    html: float = 0.0  # a 502 gateway page in text/html
    malformed: float = 0.0  # 200 with JSON cut short
    garbled: float = 0.0  # 200, but one quote has a string where a price should be
    stall: float = 0.0  # no answer for ``stall_seconds`` (wall time)
    stall_seconds: float = 2.0
    latency: float = 0.0  # wall seconds before every answer
    token_expires_at: datetime | None = None  # every access token dies then
    script: list[str] = field(default_factory=list)
    ws_drop: float = 0.0  # share of ticker frames after which the connection is cut
    ws_stall: float = 0.0  # share of ticker frames after which the connection goes silent
    ws_script: list[str] = field(default_factory=list)  # per frame: ok, drop, stall, mute, garbled
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.ws_rng = random.Random(self.seed + 1)

    def draw(self) -> str:
        if self.script:
            return self.script.pop(0)
        u, edge = self.rng.random(), 0.0
        for name in FAULTS:
            edge += getattr(self, name)
            if u < edge:
                return name
        return "ok"

    def draw_ws(self) -> str:
        """The fault of the next ticker frame (:mod:`.fake_ticker`)."""
        if self.ws_script:
            return self.ws_script.pop(0)
        u = self.ws_rng.random()
        return "drop" if u < self.ws_drop else "stall" if u < self.ws_drop + self.ws_stall else "ok"


@dataclass
class Recorded:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    at: datetime  # on the server's clock, when the request arrived
    status: int | None = None  # None until answered (a stalled request may never be)
    fault: str = ""  # the scripted trouble it met ("ok": none; "": not drawn, rate-limited)


class KiteError(Exception):
    """An error Kite answers with: HTTP status, ``error_type`` and message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class FakeKite:
    clock: Clock
    api_key: str = "opchain_fake_key"
    api_secret: str = "opchain_fake_secret"
    seed: int = 7
    glitch_rate: float = 0.0  # the simulator's share of glitched quotes
    redirect_url: str = "http://127.0.0.1:5010/kite/callback"
    enforce_rate_limit: bool = True
    faults: Faults = field(default_factory=Faults)
    requests: list[Recorded] = field(default_factory=list)
    _request_tokens: set[str] = field(default_factory=set)
    _access_tokens: dict[str, datetime] = field(default_factory=dict)  # token -> expiry
    _last_quote_call: datetime | None = None
    _keys: tuple[date | None, dict[int, str]] = (None, {})
    tables: calendar.Tables | None = None  # the exchange's calendar (default: the installed)
    indices: tuple[str, ...] = DEFAULT_INDICES  # listed besides the default ones (OPCHAIN_INDICES)

    def __post_init__(self) -> None:
        self._sim = SimBroker(
            self.clock, self.seed, self.glitch_rate, pace=0.0, tables=self.tables,
            indices=self.indices,
        )  # fmt: skip
        self.ticker = FakeTicker(self)

    def app(self) -> Starlette:
        routes = [
            Route("/connect/login", self._guard(self.login, auth=False, version=False)),
            Route("/session/token", self._guard(self.session, auth=False), methods=["POST"]),
            Route("/user/profile", self._guard(self.profile)),
            Route("/instruments", self._guard(self.instruments)),
            Route("/instruments/{exchange}", self._guard(self.instruments)),
            *(Route(path, self._guard(self.quote)) for path in QUOTE_LIMIT),
            WebSocketRoute("/", self.stream),
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})

    def market(self) -> SimMarket:
        """The simulated market standing on the day of this server's clock: that day's, or on a
        closed day the last trading day's (read at each call, so a test may set ``clock`` and
        nothing else)."""
        return self._sim.market(trading_date(self.clock.now()))

    def keys_by_token(self, market: SimMarket) -> dict[int, str]:
        """Instrument keys (``NFO:NIFTY...``) by instrument token, for the market's day."""
        if self._keys[0] != market.day:
            self._keys = (market.day, {i.instrument_token: i.key for i in market.instruments})
        return self._keys[1]

    def issue_access_token(self, expires: datetime | None = None) -> str:
        """A valid access token, as a completed login would give (for tests of other parts);
        ``expires`` overrides Kite's 06:00 the next morning (a test spanning days)."""
        token = secrets.token_hex(16)
        self._access_tokens[token] = expires or token_expiry(self.clock.now())
        return token

    # --- endpoints ------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.query_params.get("api_key") != self.api_key:
            raise KiteError(400, "InputException", "Invalid `api_key`.")
        token = secrets.token_hex(16)
        self._request_tokens.add(token)
        query = urlencode({"action": "login", "type": "login", "status": "success",
                           "request_token": token})  # fmt: skip
        return RedirectResponse(f"{self.redirect_url}?{query}", status_code=302)

    async def session(self, request: Request) -> Response:
        # Kite's clients post form-encoded bodies; parse_qs reads them without another package.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        api_key, request_token = form.get("api_key", ""), form.get("request_token", "")
        given = form.get("checksum", "")
        expected = checksum(api_key, request_token, self.api_secret)
        if api_key != self.api_key or not secrets.compare_digest(given, expected):
            raise KiteError(403, "TokenException", "Invalid `checksum`.")
        if request_token not in self._request_tokens:
            raise KiteError(403, "TokenException", "Token is invalid or has expired.")
        self._request_tokens.discard(request_token)  # one use only
        access_token = self.issue_access_token()
        return _ok(
            {
                **_PROFILE,
                "api_key": self.api_key,
                "access_token": access_token,
                "public_token": secrets.token_hex(8),
                "enctoken": secrets.token_hex(8),
                "refresh_token": "",
                "silo": "",
                "login_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
            }
        )

    async def profile(self, request: Request) -> Response:
        return _ok({**_PROFILE, "avatar_url": None})

    async def instruments(self, request: Request) -> Response:
        rows = self.market().instruments
        exchange = request.path_params.get("exchange")
        if exchange is not None:
            rows = [r for r in rows if r.exchange == exchange.upper()]
        return PlainTextResponse(format_dump(rows), media_type="text/csv")

    async def quote(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        keys = request.query_params.getlist("i")
        if not keys:
            raise KiteError(400, "InputException", "No instruments given.")
        limit = QUOTE_LIMIT[path]
        if len(keys) > limit:
            raise KiteError(
                400, "InputException", f"Too many tokens requested. Max permitted is {limit}."
            )
        self._rate_limit()
        fault = self.faults.draw()
        request.state.record.fault = fault
        if fault == "too_many":
            raise KiteError(429, "NetworkException", "Too many requests")
        if fault == "server_error":
            status = self.faults.rng.choice([500, 502, 503])
            raise KiteError(status, "GeneralException", "Something went wrong on our side.")
        if fault == "html":
            return Response(_GATEWAY_PAGE, 502, media_type="text/html")
        if fault == "stall":
            await asyncio.sleep(self.faults.stall_seconds)
        market = self.market()
        by_token = self.keys_by_token(market)
        wanted = {key: by_token.get(int(key), key) if key.isdigit() else key for key in keys}
        quotes = market.quotes(list(set(wanted.values())), self.clock.now())
        encode = _ENCODERS[path]
        data = {key: encode(quotes[k]) for key, k in wanted.items() if k in quotes}
        if fault == "garbled" and data:
            first = next(iter(data))
            data[first] = {**data[first], "last_price": "N/A"}
        if fault == "malformed":
            text = JSONResponse(wire.success(data)).body
            return Response(text[: len(text) // 2], 200, media_type="application/json")
        return _ok(data)

    async def stream(self, ws: WebSocket) -> None:
        """The ticker: credentials checked at the upgrade (HTTP 403 if bad), then ticks."""
        api_key = ws.query_params.get("api_key", "")
        credentials = f"token {api_key}:{ws.query_params.get('access_token', '')}"
        record = Recorded("WS", "/", tuple(ws.query_params.multi_items()), self.clock.now())
        self.requests.append(record)

        def valid() -> bool:
            try:
                self.authorise(credentials)
            except KiteError:
                return False
            return True

        if not valid():
            record.status = 403
            await ws.close()  # before the accept: the upgrade is refused with HTTP 403
            return
        record.status = 101
        await self.ticker.serve(ws, api_key, valid)

    # --- plumbing -------------------------------------------------------------------------

    def _guard(
        self,
        endpoint: Callable[[Request], Awaitable[Response]],
        auth: bool = True,
        version: bool = True,
    ) -> Callable[[Request], Awaitable[Response]]:
        """Headers checked, errors in Kite's envelope, every request recorded."""

        async def handle(request: Request) -> Response:
            record = Recorded(
                request.method,
                request.url.path,
                tuple(request.query_params.multi_items()),
                self.clock.now(),
            )
            self.requests.append(record)
            request.state.record = record
            try:
                if version and request.headers.get("x-kite-version") != "3":
                    raise KiteError(400, "InputException", "Invalid or missing X-Kite-Version.")
                if auth:
                    self.authorise(request.headers.get("authorization", ""))
                if self.faults.latency:
                    await asyncio.sleep(self.faults.latency)
                response = await endpoint(request)
            except KiteError as err:
                response = JSONResponse(wire.error(err.message, err.error_type), err.status)
            except Exception as err:  # Kite's envelope whatever broke, never a bare 500 page
                log.exception("fake Kite: %s %s failed", request.method, request.url.path)
                message = f"Something went wrong on our side: {err}"
                response = JSONResponse(wire.error(message, "GeneralException"), 500)
            record.status = response.status_code
            return response

        return handle

    def authorise(self, header: str) -> None:
        scheme, _, credentials = header.partition(" ")
        api_key, _, token = credentials.partition(":")
        expiry = self._access_tokens.get(token)
        if scheme != "token" or api_key != self.api_key or expiry is None:
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        dies = self.faults.token_expires_at
        if self.clock.now() >= expiry or (dies is not None and self.clock.now() >= dies):
            raise KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")

    def _rate_limit(self) -> None:
        now = self.clock.now()
        last = self._last_quote_call
        too_soon = last is not None and (now - last).total_seconds() < 1.0 / QUOTE_RATE
        if self.enforce_rate_limit and too_soon:
            raise KiteError(429, "NetworkException", "Too many requests")
        self._last_quote_call = now


_GATEWAY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>"


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, a method not allowed) in Kite's envelope."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "Route not found" if status == 404 else str(getattr(exc, "detail", exc))
    return JSONResponse(wire.error(message, "GeneralException"), status)


def _ok(data: object) -> Response:
    return JSONResponse(wire.success(data))


_PROFILE: dict[str, Any] = {
    "user_id": "OP0001",
    "user_type": "individual",
    "email": "trader@example.com",
    "user_name": "opchain fake",
    "user_shortname": "fake",
    "broker": "ZERODHA",
    "exchanges": ["BFO", "MCX", "NSE", "CDS", "BSE", "BCD", "MF", "NFO"],
    "products": ["CNC", "NRML", "MIS", "BO", "CO"],
    "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
    "meta": {"demat_consent": "physical"},
}
