"""Kite's wire formats against Zerodha's own sample payloads (tests/captures/kite)."""

import base64
import contextlib
import json
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opchain.brokers.kite.wire import (
    Tick,
    WireError,
    decode_frame,
    decode_packet,
    decode_quote,
    encode_frame,
    encode_ltp,
    encode_ohlc,
    encode_packet,
    encode_quote,
)
from opchain.market.ist import IST
from opchain.model import DepthLevel, Quote

MOCKS = Path(__file__).parent / "captures" / "kite"  # Zerodha's official sample payloads


def mock(name: str) -> Any:
    return json.loads((MOCKS / name).read_text())


def packet(name: str) -> bytes:
    return base64.b64decode((MOCKS / name).read_text())


def test_quote_mock_decodes_to_its_exact_values() -> None:
    body = mock("quote.json")["data"]["NSE:INFY"]
    q = decode_quote("NSE:INFY", body)
    assert q.instrument_token == 408065
    assert q.timestamp == datetime(2021, 6, 8, 15, 45, 56, tzinfo=IST)
    assert q.last_trade_time == datetime(2021, 6, 8, 15, 45, 52, tzinfo=IST)
    assert (q.last_price, q.last_quantity, q.average_price) == (1412.95, 5, 1412.47)
    assert (q.volume, q.buy_quantity, q.sell_quantity) == (7360198, 0, 5191)
    assert (q.oi, q.oi_day_high, q.oi_day_low) == (0, 0, 0)
    assert (q.open, q.high, q.low, q.close) == (1396.0, 1421.75, 1395.55, 1389.65)
    # The mock pads both sides to five levels with zeros: no buyers, one seller.
    assert q.bids == () and q.asks == (DepthLevel(1412.95, 5191, 13),)
    assert q.bid is None and q.ask == 1412.95


def test_quote_encodes_back_to_the_mock() -> None:
    body = mock("quote.json")["data"]["NSE:INFY"]
    again = encode_quote(decode_quote("NSE:INFY", body))
    assert list(again) == list(body)  # same fields, same order
    # Circuit limits and Kite's own net_change are not modelled (opchain computes the change).
    unmodelled = {"lower_circuit_limit", "upper_circuit_limit", "net_change"}
    assert {k: v for k, v in again.items() if k not in unmodelled} == {
        k: v for k, v in body.items() if k not in unmodelled
    }


def test_ltp_and_ohlc_mocks_are_reproduced() -> None:
    ohlc = mock("ohlc.json")["data"]["NSE:INFY"]
    q = Quote(
        408065, None, None, 1075.0, 0, 0.0, 0, 0, 0, 0, 0, 0,
        1085.8, 1085.9, 1070.9, 1075.8,
    )  # fmt: skip
    assert encode_ohlc(q) == ohlc
    assert encode_ltp(q._replace(last_price=1074.35)) == mock("ltp.json")["data"]["NSE:INFY"]


def _as_mock(tick: Tick) -> dict[str, Any]:
    """A decoded tick in the field names of Zerodha's JSON tick mocks."""
    q = tick.quote
    out: dict[str, Any] = {
        "mode": tick.mode,
        "tradable": tick.tradable,
        "instrument_token": q.instrument_token,
        "last_price": q.last_price,
    }
    if tick.mode == "ltp":
        return out
    out |= {
        "last_quantity": q.last_quantity,
        "average_price": q.average_price,
        "volume": q.volume,
        "buy_quantity": q.buy_quantity,
        "sell_quantity": q.sell_quantity,
        "ohlc": {"open": q.open, "high": q.high, "low": q.low, "close": q.close},
    }
    if tick.mode == "full":
        assert q.timestamp is not None and q.last_trade_time is not None
        out |= {
            "last_trade_time": q.last_trade_time.isoformat(),
            "oi": q.oi,
            "oi_day_high": q.oi_day_high,
            "oi_day_low": q.oi_day_low,
            "timestamp": q.timestamp.isoformat(),
        }
    if tick.mode == "full":
        side = [{"price": x.price, "quantity": x.quantity, "orders": x.orders} for x in q.bids]
        other = [{"price": x.price, "quantity": x.quantity, "orders": x.orders} for x in q.asks]
        out["depth"] = {"buy": side, "sell": other}
    return out


@pytest.mark.parametrize("mode", ["quote", "full"])
def test_ticker_packet_mocks_decode_to_the_json_mocks(mode: str) -> None:
    raw = packet(f"ticker_{mode}.packet")
    tick = decode_packet(raw)
    # "change" is derived by the client, not sent; the quote mock's own value (5.9) does not
    # even match its last price and close (1573.15 - 1567.8), so it is left out.
    expected = {k: v for k, v in mock(f"ticker_{mode}.json").items() if k != "change"}
    assert _as_mock(tick) == expected
    assert encode_packet(tick.quote, mode) == raw  # and back, byte for byte


def test_ltp_packet() -> None:
    expected = mock("ticker_ltp.json")
    raw = struct.pack(">II", expected["instrument_token"], 157315)
    assert _as_mock(decode_packet(raw)) == expected


def test_index_packets_order_ohlc_high_low_open_close() -> None:
    q = Quote(
        256265, datetime(2026, 11, 20, 10, 0, tzinfo=IST), None, 26010.55, 0, 0.0, 0, 0, 0,
        0, 0, 0, 25950.0, 26050.25, 25900.5, 25980.0,
    )  # fmt: skip
    raw = encode_packet(q, "full")
    assert len(raw) == 32
    assert struct.unpack(">IIIIII", raw[:24])[2:] == (2605025, 2590050, 2595000, 2598000)
    tick = decode_packet(raw)
    assert not tick.tradable and tick.quote == q
    assert len(encode_packet(q, "quote")) == 28


def test_frames_carry_several_packets_and_heartbeats_carry_none() -> None:
    packets = [packet("ticker_quote.packet"), packet("ticker_full.packet")]
    ticks = decode_frame(encode_frame(packets))
    assert [t.mode for t in ticks] == ["quote", "full"]
    assert decode_frame(b"\x00") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"last_price": "1412.95"}, "field 'last_price': expected a number, got str '1412.95'"),
        ({"volume": None}, "field 'volume': expected an integer, got NoneType None"),
        ({"timestamp": "08/06/2021"}, "field 'timestamp': expected 'YYYY-MM-DD HH:MM:SS'"),
        ({"ohlc": [1, 2]}, "field 'ohlc': expected an object, got list"),
        ({"depth": {"buy": [{"price": 1}]}}, "field 'depth.buy[0].quantity': expected an int"),
    ],
)
def test_bad_quotes_name_the_instrument_and_field(change: dict[str, Any], message: str) -> None:
    body = mock("quote.json")["data"]["NSE:INFY"] | change
    with pytest.raises(WireError, match=r"^quote NSE:INFY: ") as err:
        decode_quote("NSE:INFY", body)
    assert message in str(err.value)


def test_a_missing_field_is_named() -> None:
    body = dict(mock("quote.json")["data"]["NSE:INFY"])
    del body["last_price"]
    with pytest.raises(WireError, match="'last_price': expected a number, got nothing"):
        decode_quote("NSE:INFY", body)
    with pytest.raises(WireError, match="expected an object, got str '<html>"):
        decode_quote("NSE:INFY", "<html><body>502 Bad Gateway</body></html>")


def test_truncated_packets_and_frames_are_clear_errors() -> None:
    full = packet("ticker_full.packet")
    with pytest.raises(WireError, match="183 bytes is no known packet size"):
        decode_packet(full[:-1])
    frame = encode_frame([full])
    with pytest.raises(WireError, match="184 bytes announced, 100 present"):
        decode_frame(frame[:104])


@given(st.binary(max_size=400))
def test_no_bytes_crash_the_frame_decoder(data: bytes) -> None:
    with contextlib.suppress(WireError):  # a clear error is fine; any other exception is not
        decode_frame(data)
