"""The Kite Connect REST client (httpx): instruments, batched quotes, the session's health.

- ``/quote`` takes at most 500 instruments and one request a second per API key; the client
  splits larger asks into batches and spaces quote-family requests on its clock, so a cycle of
  the whole watched chain is one call, not one per strike.
- Transient failures are retried with exponential backoff and full jitter, driven by the kind
  of failure (freqtrade's retrier): 429, 5xx, timeouts, connection errors, HTML error pages and
  malformed JSON. A quote call inside a collection cycle has until the next cycle is due
  (:func:`opchain.brokers.pacing.until`): no attempt starts, and none waits for an answer,
  past that; it gives up with :class:`Transient` (a
  :class:`~opchain.brokers.base.QuoteUnavailable`) saying why, and the cycle is lost, not
  the collector. A ``TokenException`` is not transient: it raises :class:`TokenExpired` at once,
  so an expired session stops collection instead of starting a retry storm. Other Kite errors
  (bad input, no permission) raise :class:`KiteError` without retries.
- A quote that does not parse is dropped alone, with its reason logged; its neighbours stay.
"""

import logging
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from opchain.brokers import pacing
from opchain.brokers.base import QuoteUnavailable
from opchain.market.clock import Clock, WallClock, wall_seconds
from opchain.market.instruments import parse_dump
from opchain.model import Instrument, Quote

from . import wire
from .session import checksum

log = logging.getLogger(__name__)

ROOT = "https://api.kite.trade"
QUOTE_BATCH = 500
# Seconds between quote-family requests: Kite allows one a second, counted at its end when each
# request arrives. The network moves arrivals by milliseconds (calls sent 1.000 s apart arrived
# 0.987 s apart and drew 429s): a tenth of a second of margin (BENCHMARKS.md, "Quote pacing").
QUOTE_INTERVAL = 1.1
MIN_ANSWER = 0.1  # wall seconds: an attempt with less time left before its deadline is futile


class KiteError(Exception):
    """An error answer from Kite: its ``error_type`` (``InputException``, ...) and HTTP status."""

    def __init__(self, message: str, error_type: str = "GeneralException", status: int = 0):
        super().__init__(message)
        self.error_type, self.status = error_type, status


class TokenExpired(KiteError):
    """The access token is invalid or expired (Kite's ``TokenException``): log in again."""


class Transient(KiteError, QuoteUnavailable):
    """A failure worth retrying: rate limit, server error, timeout, garbled answer. ``reason``
    names the kind in a few words."""

    def __init__(
        self,
        message: str,
        error_type: str = "GeneralException",
        status: int = 0,
        reason: str = "unavailable",
        attempts: int = 1,
    ):
        KiteError.__init__(self, message, error_type, status)
        self.reason, self.attempts = reason, attempts


class KiteClient:
    def __init__(
        self,
        api_key: str,
        access_token: str,
        root: str = ROOT,
        clock: Clock | None = None,
        timeout: float = 7.0,
        attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key, self.root, self.clock = api_key, root, clock or WallClock()
        self._options: dict[str, Any] = dict(
            timeout=timeout, attempts=attempts, backoff=backoff, max_backoff=max_backoff,
            transport=transport, seed=seed,
        )  # fmt: skip
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self._jitter = random.Random(seed)
        self.timeout = timeout
        self._quote_pace = pacing.Pacer(self.clock, QUOTE_INTERVAL, from_sends=True)
        self.retries = 0  # transient failures retried so far
        self._http = httpx.AsyncClient(
            base_url=root,
            timeout=timeout,
            transport=transport,
            headers={"X-Kite-Version": "3", "User-Agent": "opchain"},
        )
        if access_token:  # none yet while logging in
            self._http.headers["Authorization"] = f"token {api_key}:{access_token}"

    def with_access_token(self, access_token: str) -> "KiteClient":
        """A client like this one (root, clock, transport, retries) with another token."""
        return KiteClient(self.api_key, access_token, self.root, self.clock, **self._options)

    async def create_session(self, request_token: str, api_secret: str) -> dict[str, Any]:
        """Exchange a login's ``request_token`` for the day's session (``access_token`` ...)."""
        form = {
            "api_key": self.api_key,
            "request_token": request_token,
            "checksum": checksum(self.api_key, request_token, api_secret),
        }
        response = await self._request("/session/token", form, expect="json", method="POST")
        data = response.json()["data"]
        if not isinstance(data, dict) or not data.get("access_token"):
            raise KiteError("POST /session/token: no access_token in the answer")
        return data

    async def profile(self) -> dict[str, Any]:
        data = await self._get_json("/user/profile")
        if not isinstance(data, dict):
            raise KiteError(f"/user/profile: expected an object, got {type(data).__name__}")
        return data

    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        path = f"/instruments/{exchange}" if exchange else "/instruments"
        response = await self._request(path, {}, expect="csv")
        return parse_dump(response.text, source=f"GET {path}")

    async def quote(self, keys: Sequence[str]) -> dict[str, Quote]:
        """Full quotes for ``keys``, in batches of 500; keys Kite does not know are absent."""
        unique = list(dict.fromkeys(keys))
        quotes: dict[str, Quote] = {}
        for start in range(0, len(unique), QUOTE_BATCH):
            batch = unique[start : start + QUOTE_BATCH]
            data = await self._get_json("/quote", {"i": batch}, paced=True)
            if not isinstance(data, dict):
                raise Transient(
                    f"/quote: expected an object of quotes, got {type(data).__name__}",
                    reason="malformed answer",
                )
            for key, body in data.items():
                try:
                    quotes[key] = wire.decode_quote(key, body)
                except wire.WireError as err:
                    log.warning("dropped a quote: %s", err)
        return quotes

    async def close(self) -> None:
        await self._http.aclose()

    # --- plumbing -------------------------------------------------------------------------

    async def _get_json(
        self, path: str, params: dict[str, Any] | None = None, paced: bool = False
    ) -> object:
        response = await self._request(path, params or {}, expect="json", paced=paced)
        return response.json()["data"]

    async def _request(
        self,
        path: str,
        params: dict[str, Any],
        expect: str,
        paced: bool = False,
        method: str = "GET",
    ) -> httpx.Response:
        deadline = pacing.deadline() if paced else None
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            timeout = self.timeout
            if deadline is not None:  # no attempt starts, or waits, past the cycle's deadline
                start = max(self.clock.now(), self._quote_pace.next_slot())
                left = wall_seconds(self.clock, (deadline - start).total_seconds())
                if left < MIN_ANSWER:
                    raise _gave_up(method, path, attempt - 1, last, "no time left in the cycle")
                timeout = min(timeout, left)
            if paced:
                await self._quote_pace.wait()
            try:
                if method == "POST":  # Kite takes form-encoded bodies
                    response = await self._http.post(path, data=params, timeout=timeout)
                else:
                    response = await self._http.get(path, params=params, timeout=timeout)
                return _checked(response, f"{method} {path}", expect)
            except (Transient, httpx.TimeoutException, httpx.TransportError) as err:
                last = err
                if attempt == self.attempts:
                    raise _gave_up(method, path, attempt, err) from err
                delay = self._jitter.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
                retry_at = self.clock.now() + timedelta(seconds=delay)
                if deadline is not None and retry_at >= deadline:
                    raise _gave_up(method, path, attempt, err, "no time left in the cycle") from err
                log.info("%s %s: %s; retry %d in %.2f s", method, path, _say(err), attempt, delay)
                self.retries += 1
                await self.clock.sleep_until(retry_at)
        raise AssertionError("unreachable")


def _gave_up(
    method: str, path: str, attempts: int, err: Exception | None, why: str = ""
) -> Transient:
    """The error a request that gave up raises: how many attempts, why it stopped, the last
    failure (its kind when it has no message: a timeout's is empty)."""
    tried = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    if why:
        tried += f" ({why})"
    message = f"{method} {path}: {tried}: {_say(err) if err else 'no attempt made'}"
    reason = _reason(err) if err is not None else why
    status = err.status if isinstance(err, KiteError) else 0
    return Transient(message, status=status, reason=reason, attempts=attempts)


def _reason(err: Exception) -> str:
    """A failure's kind in a few words: what a report counts lost cycles by."""
    if isinstance(err, Transient):
        return err.reason
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    return "connection failed"


def _say(err: Exception) -> str:
    """An error in words: Kite's own say what they are; a timeout's message may be empty."""
    if isinstance(err, KiteError):
        return str(err)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _checked(response: httpx.Response, request: str, expect: str) -> httpx.Response:
    """The response if it is a success of the expected kind; else the right exception."""
    kind = response.headers.get("content-type", "")
    where = f"{request}: HTTP {response.status_code}"
    if "json" in kind:
        try:
            body = response.json()
        except ValueError:
            raise Transient(
                f"{where}: malformed JSON", status=response.status_code, reason="malformed answer"
            ) from None
        if isinstance(body, dict) and (body.get("status") == "error" or "error_type" in body):
            error_type = str(body.get("error_type", "GeneralException"))
            message = f"{where}: {error_type}: {body.get('message', '')}"
            if error_type == "TokenException":
                raise TokenExpired(message, error_type, response.status_code)
            if response.status_code == 429 or response.status_code >= 500:
                reason = _status_reason(response.status_code)
                raise Transient(message, error_type, response.status_code, reason)
            if error_type in ("NetworkException", "DataException"):
                raise Transient(message, error_type, response.status_code, error_type)
            raise KiteError(message, error_type, response.status_code)
        if expect == "json" and response.is_success:
            if not isinstance(body, dict) or "data" not in body:
                raise Transient(
                    f"{where}: no data in the answer",
                    status=response.status_code,
                    reason="malformed answer",
                )
            return response
    elif expect == "csv" and "csv" in kind and response.is_success:
        return response
    # An HTML gateway page, an empty body, a status without Kite's envelope.
    status = response.status_code
    text = " ".join(response.text[:80].split())
    if status == 429 or status >= 500 or response.is_success or "html" in kind:
        reason = "error page (HTML)" if "html" in kind else _status_reason(status)
        raise Transient(
            f"{where}: unexpected {kind or 'no content type'}: {text!r}",
            status=status,
            reason=reason,
        )
    raise KiteError(f"{where}: unexpected {kind or 'no content type'}: {text!r}", status=status)


def _status_reason(status: int) -> str:
    if status == 429:
        return "rate limited (HTTP 429)"
    if status >= 500:
        return "server error (HTTP 5xx)"
    return "unexpected answer"
