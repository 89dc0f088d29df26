"""Kite Connect's wire formats <-> opchain's records, with no I/O (research/kite.md §2).

- REST: the ``{"status": "success", "data": ...}`` envelope and its error twin; the quote
  objects of ``/quote``, ``/quote/ohlc`` and ``/quote/ltp``.
- Ticker: binary frames (a packet count, then length-prefixed packets) and the packets inside:
  8 bytes (ltp), 28/32 (index), 44 (quote) and 184 (full), big-endian, prices in paise.

Decoding is strict and says what is wrong: a bad quote raises :class:`WireError` naming the
instrument and the field, and the caller drops that quote alone. Encoding is what the fake Kite
server speaks, in the field order of Zerodha's own sample payloads.
"""

import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from opchain.market.ist import IST
from opchain.model import DepthLevel, Quote

DEPTH_LEVELS = 5
INDICES_SEGMENT = 9  # instrument_token & 0xff for indices: no depth, no trades


class WireError(ValueError):
    """A payload that is not what Kite sends; the message names the item and the field."""


# --- REST -----------------------------------------------------------------------------------


def decode_quote(key: str, body: object) -> Quote:
    """One entry of a ``/quote`` response's ``data`` map."""
    if not isinstance(body, dict):
        raise WireError(f"quote {key}: expected an object, got {_kind(body)}")
    try:
        ohlc = _object(body, "ohlc")
        depth = _object(body, "depth")
        return Quote(
            instrument_token=_int(body, "instrument_token"),
            timestamp=_time(body, "timestamp"),
            last_trade_time=_time(body, "last_trade_time"),
            last_price=_float(body, "last_price"),
            last_quantity=_int(body, "last_quantity"),
            average_price=_float(body, "average_price"),
            volume=_int(body, "volume"),
            buy_quantity=_int(body, "buy_quantity"),
            sell_quantity=_int(body, "sell_quantity"),
            oi=_int(body, "oi"),
            oi_day_high=_int(body, "oi_day_high"),
            oi_day_low=_int(body, "oi_day_low"),
            open=_float(ohlc, "open", "ohlc."),
            high=_float(ohlc, "high", "ohlc."),
            low=_float(ohlc, "low", "ohlc."),
            close=_float(ohlc, "close", "ohlc."),
            bids=_levels(depth, "buy"),
            asks=_levels(depth, "sell"),
        )
    except _FieldError as err:
        raise WireError(f"quote {key}: {err}") from None


def encode_quote(q: Quote) -> dict[str, Any]:
    """A ``/quote`` entry, as Kite sends it.

    Kite pads each side of the book to five levels with zeros and sends ``null`` depth and an
    empty ``last_trade_time`` for indices; ``net_change`` is last price minus previous close
    (which Kite itself gets wrong for indices, so opchain never reads it).
    """
    index = q.instrument_token & 0xFF == INDICES_SEGMENT
    return {
        "instrument_token": q.instrument_token,
        "timestamp": _time_text(q.timestamp),
        "last_trade_time": _time_text(q.last_trade_time),
        "last_price": q.last_price,
        "last_quantity": q.last_quantity,
        "buy_quantity": q.buy_quantity,
        "sell_quantity": q.sell_quantity,
        "volume": q.volume,
        "average_price": q.average_price,
        "oi": q.oi,
        "oi_day_high": q.oi_day_high,
        "oi_day_low": q.oi_day_low,
        "net_change": round(q.last_price - q.close, 2) if q.close else 0,
        "lower_circuit_limit": 0 if index else _circuit(q.close, 0.5),
        "upper_circuit_limit": 0 if index else _circuit(q.close, 2.0),
        "ohlc": _ohlc(q),
        "depth": {"buy": None, "sell": None}
        if index
        else {"buy": _padded(q.bids), "sell": _padded(q.asks)},
    }


def encode_ltp(q: Quote) -> dict[str, Any]:
    return {"instrument_token": q.instrument_token, "last_price": q.last_price}


def encode_ohlc(q: Quote) -> dict[str, Any]:
    return {**encode_ltp(q), "ohlc": _ohlc(q)}


def success(data: object) -> dict[str, Any]:
    return {"status": "success", "data": data}


def error(message: str, error_type: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "data": None, "error_type": error_type}


def _ohlc(q: Quote) -> dict[str, float]:
    return {"open": q.open, "high": q.high, "low": q.low, "close": q.close}


def _padded(levels: tuple[DepthLevel, ...]) -> list[dict[str, float | int]]:
    shown = [{"price": x.price, "quantity": x.quantity, "orders": x.orders} for x in levels]
    return shown + [{"price": 0, "quantity": 0, "orders": 0}] * (DEPTH_LEVELS - len(shown))


def _circuit(close: float, factor: float) -> float:
    return round(max(0.05, round(close * factor / 0.05) * 0.05), 2)


def _time_text(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


class _FieldError(Exception):
    pass


def _object(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _FieldError(f"field {name!r}: expected an object, got {_kind(value)}")
    return value


def _float(body: Mapping[str, Any], name: str, where: str = "") -> float:
    value = body.get(name, _MISSING)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError(f"field '{where}{name}': expected a number, got {_kind(value)}")
    return float(value)


def _int(body: Mapping[str, Any], name: str, where: str = "") -> int:
    value = body.get(name, _MISSING)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FieldError(f"field '{where}{name}': expected an integer, got {_kind(value)}")
    return value


def _time(body: Mapping[str, Any], name: str) -> datetime | None:
    """Kite's ``YYYY-MM-DD HH:MM:SS`` in IST (no zone given); empty or null: none."""
    value = body.get(name, _MISSING)
    if value in ("", None):
        return None
    if not isinstance(value, str) or len(value) != 19:
        raise _FieldError(f"field {name!r}: expected 'YYYY-MM-DD HH:MM:SS', got {_kind(value)}")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=IST)
    except ValueError:
        raise _FieldError(f"field {name!r}: not a time: {value!r}") from None


def _levels(depth: Mapping[str, Any], side: str) -> tuple[DepthLevel, ...]:
    """A side of the book without Kite's zero padding (a level with no orders is no level)."""
    rows = depth.get(side)
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise _FieldError(f"field 'depth.{side}': expected a list, got {_kind(rows)}")
    levels = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _FieldError(f"field 'depth.{side}[{n}]': expected an object, got {_kind(row)}")
        where = f"depth.{side}[{n}]."
        level = DepthLevel(
            _float(row, "price", where), _int(row, "quantity", where), _int(row, "orders", where)
        )
        if level != (0, 0, 0):
            levels.append(level)
    return tuple(levels)


_MISSING = object()


def _kind(value: object) -> str:
    if value is _MISSING:
        return "nothing (missing)"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


# --- Ticker ---------------------------------------------------------------------------------


class Tick(NamedTuple):
    """One ticker packet: its mode (``ltp``, ``quote``, ``full``) and what it carried.

    Fields a mode does not carry are zero or None in ``quote`` (an ltp tick has only the token
    and the last price). Index packets carry no depth, volume or trades.
    """

    mode: str
    tradable: bool
    quote: Quote


_QUOTE = struct.Struct(">IIIIIIIIIII")  # 44 bytes: token .. close
_FULL_TAIL = struct.Struct(">IIIII")  # 44..64: last trade time, oi, oi high, oi low, exch. time
_LEVEL = struct.Struct(">IIH2x")  # quantity, price, orders, padding
_INDEX = struct.Struct(">IIIIIIi")  # 28 bytes: token, last, high, low, open, close, change
_PACKET_SIZES = {8: "ltp", 28: "quote", 32: "full", 44: "quote", 184: "full"}


def divisor(token: int) -> float:
    """Prices travel as integers: paise for most segments, finer for currency (CDS, BCD)."""
    segment = token & 0xFF
    return {3: 10_000_000.0, 6: 10_000.0, 12: 10_000.0}.get(segment, 100.0)


def decode_frame(frame: bytes) -> list[Tick]:
    """A binary WebSocket message: ``uint16`` count, then per packet ``uint16`` length + bytes.

    Frames shorter than two bytes are heartbeats and carry no packets.
    """
    if len(frame) < 2:
        return []
    (count,) = struct.unpack_from(">H", frame, 0)
    ticks, at = [], 2
    for n in range(count):
        if at + 2 > len(frame):
            raise WireError(f"ticker frame: packet {n + 1} of {count}: frame ends at byte {at}")
        (length,) = struct.unpack_from(">H", frame, at)
        packet = frame[at + 2 : at + 2 + length]
        if len(packet) != length:
            raise WireError(
                f"ticker frame: packet {n + 1} of {count}: {length} bytes announced, "
                f"{len(packet)} present"
            )
        ticks.append(decode_packet(packet))
        at += 2 + length
    return ticks


def encode_frame(packets: list[bytes]) -> bytes:
    parts = [struct.pack(">H", len(packets))]
    for packet in packets:
        parts += [struct.pack(">H", len(packet)), packet]
    return b"".join(parts)


def decode_packet(packet: bytes) -> Tick:
    """One packet, by its length (the offsets of pykiteconnect's parser, research/kite.md)."""
    mode = _PACKET_SIZES.get(len(packet))
    if mode is None:
        raise WireError(f"ticker packet: {len(packet)} bytes is no known packet size")
    token, last = struct.unpack_from(">II", packet, 0)
    d = divisor(token)
    tradable = token & 0xFF != INDICES_SEGMENT
    if len(packet) == 8:
        return Tick(mode, tradable, _bare(token, last / d))
    if len(packet) in (28, 32):  # index packets, whatever the token says
        _, _, high, low, opening, close, _ = _INDEX.unpack_from(packet, 0)
        stamp = _epoch(struct.unpack_from(">I", packet, 28)[0]) if len(packet) == 32 else None
        return Tick(
            mode,
            tradable,
            _bare(token, last / d)._replace(
                timestamp=stamp, open=opening / d, high=high / d, low=low / d, close=close / d
            ),
        )
    (_, _, qty, avg, volume, buys, sells, opening, high, low, close) = _QUOTE.unpack_from(packet)
    quote = Quote(
        token, None, None, last / d, qty, avg / d, volume, buys, sells, 0, 0, 0,
        opening / d, high / d, low / d, close / d,
    )  # fmt: skip
    if len(packet) == 184:
        trade_time, oi, oi_high, oi_low, stamp = _FULL_TAIL.unpack_from(packet, 44)
        levels = [_LEVEL.unpack_from(packet, 64 + 12 * k) for k in range(10)]
        book = [DepthLevel(price / d, qty, orders) for qty, price, orders in levels]
        quote = quote._replace(
            timestamp=_epoch(stamp),
            last_trade_time=_epoch(trade_time),
            oi=oi,
            oi_day_high=oi_high,
            oi_day_low=oi_low,
            bids=tuple(x for x in book[:5] if x != (0, 0, 0)),
            asks=tuple(x for x in book[5:] if x != (0, 0, 0)),
        )
    return Tick(mode, tradable, quote)


def encode_packet(q: Quote, mode: str) -> bytes:
    """The packet the ticker sends for ``q`` in ``mode`` (``ltp``, ``quote``, ``full``)."""
    d = divisor(q.instrument_token)

    def paise(value: float) -> int:
        return round(value * d)

    token, last = q.instrument_token, paise(q.last_price)
    if mode == "ltp":
        return struct.pack(">II", token, last)
    if token & 0xFF == INDICES_SEGMENT:
        change = paise(q.last_price - q.close) if q.close else 0
        packet = _INDEX.pack(
            token, last, paise(q.high), paise(q.low), paise(q.open), paise(q.close), change
        )
        if mode == "full":
            packet += struct.pack(">I", _seconds(q.timestamp))
        return packet
    packet = _QUOTE.pack(
        token, last, q.last_quantity, paise(q.average_price), q.volume, q.buy_quantity,
        q.sell_quantity, paise(q.open), paise(q.high), paise(q.low), paise(q.close),
    )  # fmt: skip
    if mode == "quote":
        return packet
    packet += _FULL_TAIL.pack(
        _seconds(q.last_trade_time), q.oi, q.oi_day_high, q.oi_day_low, _seconds(q.timestamp)
    )
    for side in (q.bids, q.asks):
        levels = list(side[:DEPTH_LEVELS]) + [DepthLevel(0.0, 0, 0)] * (DEPTH_LEVELS - len(side))
        packet += b"".join(_LEVEL.pack(x.quantity, paise(x.price), x.orders) for x in levels)
    return packet


def _bare(token: int, last: float) -> Quote:
    return Quote(token, None, None, last, 0, 0.0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)


def _epoch(seconds: int) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC).astimezone(IST) if seconds else None


def _seconds(moment: datetime | None) -> int:
    return math.floor(moment.timestamp()) if moment is not None else 0
