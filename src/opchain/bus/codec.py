"""A cycle's snapshot as bytes for a stream entry, and back, exactly (``decode(encode(s)) == s``,
every float bit for bit, every datetime with its own zone so ``isoformat()`` is the same).

A worker rebuilds from these bytes the very snapshot the collector saw, so the files it writes
are the files ``opchain run`` writes. The layout is columnar: every quote of the cycle (index
quotes first, then the legs') in one table, a column per field (numpy arrays, little-endian),
no field name repeated per leg. Prices go as steps in whole paise where that is exact
(:func:`_prices`), 64-bit integers byte-shuffled: a full-chain cycle of three indices is about
90 kB, a third of what a plain binary layout compresses to (``benchmarks/bus_codec.py``). A
leg's instrument travels as its token: the worker has the day's instruments dump. Datetimes go
as microseconds since the epoch and a zone (a ZoneInfo by key, a fixed offset as such).

Bytes: ``MAGIC``, then zlib (level 1) of: a 4-byte length, a small JSON head (counts, the
string table, the time zones, the chains' names, the snapshot's times), then the columns in
the order :func:`encode_snapshot` writes them. Anything else, or damage, is a ValueError.
"""

import json
import struct
import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from opchain.model import ChainSlice, DepthLevel, Instrument, Leg, Quote, Snapshot

MAGIC = b"OPB1"  # opchain bus, snapshot layout 1
_LENGTH = struct.Struct("<I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_HUGE = 2.0**50  # at most this many rupees go as paise (exact in a float64)
_NONE = -1  # an absent value in an index column (tz, quote, string)

# Quote's fields by position (Quote is a NamedTuple: zip(*quotes) gives its columns at C speed).
_FLOATS = (3, 5, 12, 13, 14, 15)  # last_price, average_price, open, high, low, close
_INTS = (4, 6, 7, 8, 9, 10, 11)  # last_quantity, volume, buy/sell_quantity, oi, oi high/low
_QUOTE_FIELDS = len(Quote._fields)


class _Zones:
    """The time zones of one snapshot, by number: a ZoneInfo by its key, a fixed offset by its
    microseconds (and name, when it has one)."""

    def __init__(self) -> None:
        self.specs: list[Any] = []
        self._numbers: dict[tzinfo, int] = {}

    def number(self, zone: tzinfo | None) -> int:
        if zone is None:
            raise ValueError("a naive datetime cannot be sent: opchain needs aware times")
        found = self._numbers.get(zone)
        if found is None:
            found = self._numbers[zone] = len(self.specs)
            self.specs.append(_zone_spec(zone))
        return found


def _zone_spec(zone: tzinfo) -> Any:
    if isinstance(zone, ZoneInfo):
        if zone.key is None:
            raise ValueError("a time zone read from a file (no key) cannot be sent")
        return zone.key
    if isinstance(zone, timezone):
        return [zone.utcoffset(None) // _MICRO, zone.tzname(None)]
    raise ValueError(f"time zone {zone!r} cannot be sent (ZoneInfo or datetime.timezone only)")


def _zone(spec: Any) -> tzinfo:
    if isinstance(spec, str):
        return ZoneInfo(spec)
    offset, name = spec
    return timezone(timedelta(microseconds=offset), name)


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = []
        self._numbers: dict[str, int] = {}

    def number(self, text: str | None) -> int:
        if text is None:
            return _NONE
        found = self._numbers.get(text)
        if found is None:
            found = self._numbers[text] = len(self.table)
            self.table.append(text)
        return found


def _times(moments: tuple[datetime | None, ...], zones: _Zones) -> tuple[list[int], list[int]]:
    """Microseconds since the epoch and zone numbers (-1: None) of a column of datetimes."""
    micros: list[int] = []
    numbers: list[int] = []
    seen: dict[tuple[datetime, tzinfo | None], tuple[int, int]] = {}
    for moment in moments:
        if moment is None:
            micros.append(0)
            numbers.append(_NONE)
            continue
        key = (moment, moment.tzinfo)
        pair = seen.get(key)
        if pair is None:
            pair = seen[key] = ((moment - _EPOCH) // _MICRO, zones.number(moment.tzinfo))
        micros.append(pair[0])
        numbers.append(pair[1])
    return micros, numbers


def _moments(micros: list[int], numbers: list[int], zones: list[tzinfo]) -> list[datetime | None]:
    seen: dict[tuple[int, int], datetime] = {}
    out: list[datetime | None] = []
    for micro, number in zip(micros, numbers, strict=True):
        if number == _NONE:
            out.append(None)
            continue
        moment = seen.get((micro, number))
        if moment is None:
            moment = seen[(micro, number)] = (_EPOCH + micro * _MICRO).astimezone(zones[number])
        out.append(moment)
    return out


def _shuffled(array: Any) -> bytes:
    """An 8-byte column with its bytes grouped by significance (byte 0 of every value, then
    byte 1, ...): the high bytes, mostly alike, then compress well."""
    return np.ascontiguousarray(array).view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffled(data: bytes, count: int, dtype: str) -> Any:
    matrix = np.frombuffer(data, dtype=np.uint8).reshape(8, count)
    return np.ascontiguousarray(matrix.T).view(dtype).ravel()


def _prices(values: Any) -> bytes:
    """A float64 column, exactly. Prices are mostly whole paise: those travel as the change in
    paise from the value before (small integers, a tenth of the bytes once compressed); any
    other value (NaN, -0.0, a finer fraction, the huge) travels as its own 8 bytes, marked in a
    bitmap. Exact because a value goes as paise only when paise / 100 gives back its bits."""
    array = np.asarray(values, dtype="<f8").ravel()
    with np.errstate(invalid="ignore", over="ignore"):
        paise = np.round(array * 100)
        whole = (np.abs(array) < _HUGE) & ~np.signbit(array) & (paise / 100 == array)
    steps = np.diff(np.where(whole, paise, 0).astype("<i8"), prepend=0)
    others: bytes = array[~whole].tobytes()
    return _shuffled(steps) + np.packbits(~whole).tobytes() + others


def _unprices(reader: "_Reader", count: int) -> list[float]:
    paise = np.cumsum(_unshuffled(reader.take(count * 8), count, "<i8"))
    other = np.unpackbits(np.frombuffer(reader.take((count + 7) // 8), np.uint8))[:count]
    other = other.astype(bool)
    array = paise.astype("<f8") / 100
    array[other] = np.frombuffer(reader.take(int(other.sum()) * 8), dtype="<f8")
    out: list[float] = array.tolist()
    return out


def _ints(values: Any, dtype: str = "<i8") -> bytes:
    """An integer column; 64-bit ones byte-shuffled (their high bytes are mostly zeros)."""
    try:
        array = np.asarray(values, dtype=dtype)
        return _shuffled(array.ravel()) if dtype == "<i8" else array.tobytes()
    except OverflowError as err:
        raise ValueError(f"an integer does not fit the bus format ({dtype}): {err}") from err


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The bytes of a stream entry's ``snap`` field."""
    zones, strings = _Zones(), _Strings()
    quotes: list[Quote] = list(snapshot.indices.values())
    legs = [leg for chain in snapshot.chains for leg in chain.legs]
    leg_quote: list[int] = []
    for leg in legs:
        if leg.quote is None:
            leg_quote.append(_NONE)
        else:
            leg_quote.append(len(quotes))
            quotes.append(leg.quote)
    columns: list[bytes] = []
    # Quotes.
    fields = list(zip(*quotes, strict=True)) if quotes else [()] * _QUOTE_FIELDS
    columns.append(_ints(fields[0]))
    for position in (1, 2):
        micros, numbers = _times(fields[position], zones)
        columns += [_ints(micros), _ints(numbers, "<i2")]
    columns.append(_prices([fields[p] for p in _FLOATS]))
    columns.append(_ints([fields[p] for p in _INTS]))
    books: list[DepthLevel] = []
    for position in (16, 17):
        columns.append(_ints([len(book) for book in fields[position]], "<i4"))
        for book in fields[position]:
            books.extend(book)
    levels = list(zip(*books, strict=True)) if books else [(), (), ()]
    columns += [_prices(levels[0]), _ints([levels[1], levels[2]])]
    # Legs.
    parts = list(zip(*legs, strict=True)) if legs else [()] * len(Leg._fields)
    number = strings.number
    columns.append(_ints([[number(t) for t in parts[p]] for p in (0, 1, 4)] + [leg_quote], "<i4"))
    columns.append(_ints([[d.toordinal() for d in parts[2]], parts[3]]))
    columns.append(_ints([number(f) for f in parts[8]], "<i4"))
    columns.append(_prices([s if s is not None else 0.0 for s in parts[5]]))
    columns.append(_ints([[s is None for s in parts[5]], [i is None for i in parts[6]]], "<u1"))
    columns.append(_ints([0 if i is None else i.instrument_token for i in parts[6]]))
    # Chains and the snapshot's own times.
    chains = snapshot.chains
    columns.append(_prices([[c.spot for c in chains], [c.atm_strike for c in chains]]))
    times, time_zones = _times((snapshot.ts, snapshot.received_at), zones)
    head = {
        "quotes": len(quotes),
        "levels": len(books),
        "indices": list(snapshot.indices),
        "chains": [[c.index, c.bucket, c.expiry.toordinal(), len(c.legs)] for c in chains],
        "times": times,
        "time_zones": time_zones,
        "zones": zones.specs,
        "strings": strings.table,
    }
    text = json.dumps(head, separators=(",", ":")).encode()
    return MAGIC + zlib.compress(_LENGTH.pack(len(text)) + text + b"".join(columns), 1)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def ints(self, count: int, dtype: str = "<i8") -> list[int]:
        data = self.take(count * np.dtype(dtype).itemsize)
        if dtype == "<i8":
            found = _unshuffled(data, count, dtype)
        else:
            found = np.frombuffer(data, dtype=dtype)
        out: list[int] = found.tolist()
        return out

    def rows(self, rows: int, count: int, dtype: str = "<i8") -> list[list[int]]:
        flat = self.ints(rows * count, dtype)
        return [flat[r * count : (r + 1) * count] for r in range(rows)]

    def floats(self, rows: int, count: int) -> list[list[float]]:
        flat = _unprices(self, rows * count)
        return [flat[r * count : (r + 1) * count] for r in range(rows)]


def decode_snapshot(data: bytes, contracts: Mapping[int, Instrument]) -> Snapshot:
    """The snapshot :func:`encode_snapshot` was given; ``contracts`` maps each instrument token
    to its instrument (the day's dump). ValueError for bytes that are not one, or a token the
    dump does not hold."""
    if not isinstance(data, bytes | bytearray | memoryview) or bytes(data[:4]) != MAGIC:
        raise ValueError("not a bus snapshot (wrong magic: another format or version)")
    try:
        return _decode(zlib.decompress(bytes(data[4:])), contracts)
    except _MissingInstrument as err:
        raise ValueError(str(err)) from None
    except (zlib.error, ValueError, TypeError, KeyError, IndexError, ArithmeticError,
            AttributeError, struct.error) as err:  # fmt: skip
        raise ValueError(f"damaged bus snapshot: {type(err).__name__}: {err}") from err


class _MissingInstrument(Exception):
    pass


def _decode(raw: bytes, contracts: Mapping[int, Instrument]) -> Snapshot:
    reader = _Reader(raw)
    (length,) = _LENGTH.unpack(reader.take(_LENGTH.size))
    head = json.loads(reader.take(length))
    zones = [_zone(spec) for spec in head["zones"]]
    strings: list[str] = head["strings"]
    nq, nl = int(head["quotes"]), sum(int(c[3]) for c in head["chains"])
    # Quotes.
    tokens = reader.ints(nq)
    stamps = []
    for _ in range(2):
        micros = reader.ints(nq)
        stamps.append(_moments(micros, reader.ints(nq, "<i2"), zones))
    floats = reader.floats(len(_FLOATS), nq)
    ints = reader.rows(len(_INTS), nq)
    books: list[list[tuple[DepthLevel, ...]]] = []
    counts = [reader.ints(nq, "<i4")]
    counts.append(reader.ints(nq, "<i4"))
    nd = int(head["levels"])
    if sum(counts[0]) + sum(counts[1]) != nd:
        raise ValueError("depth counts do not add up")
    (prices,) = reader.floats(1, nd)
    sizes, orders = reader.rows(2, nd)
    levels = list(map(DepthLevel, prices, sizes, orders))
    at = 0
    for side in counts:
        book = []
        for count in side:
            book.append(tuple(levels[at : at + count]))
            at += count
        books.append(book)
    quotes = list(
        map(Quote, tokens, stamps[0], stamps[1], floats[0], ints[0], floats[1], ints[1], ints[2],
            ints[3], ints[4], ints[5], ints[6], floats[2], floats[3], floats[4], floats[5],
            books[0], books[1])
    )  # fmt: skip
    # Legs.
    index_n, bucket_n, side_n, quote_n = reader.rows(4, nl, "<i4")
    expiries, offsets = reader.rows(2, nl)
    flag_n = reader.ints(nl, "<i4")
    (strikes,) = reader.floats(1, nl)
    strike_none, instrument_none = reader.rows(2, nl, "<u1")
    instrument_tokens = reader.ints(nl)
    (spots, atms) = reader.floats(2, len(head["chains"]))
    if reader.at != len(raw):
        raise ValueError("trailing bytes")
    days: dict[int, date] = {}

    def day(ordinal: int) -> date:
        found = days.get(ordinal)
        if found is None:
            found = days[ordinal] = date.fromordinal(ordinal)
        return found

    def instrument(token: int) -> Instrument:
        try:
            return contracts[token]
        except KeyError:
            raise _MissingInstrument(
                f"instrument token {token} is not in the day's instruments: the snapshot was "
                "collected against another dump"
            ) from None

    legs = [
        Leg(
            index=strings[index_n[k]],
            bucket=strings[bucket_n[k]],
            expiry=day(expiries[k]),
            offset=offsets[k],
            side=strings[side_n[k]],  # type: ignore[arg-type]
            strike=None if strike_none[k] else strikes[k],
            instrument=None if instrument_none[k] else instrument(instrument_tokens[k]),
            quote=None if quote_n[k] == _NONE else quotes[quote_n[k]],
            flag=None if flag_n[k] == _NONE else strings[flag_n[k]],
        )
        for k in range(nl)
    ]
    chains = []
    at = 0
    for number, (index, bucket, expiry, count) in enumerate(head["chains"]):
        chains.append(
            ChainSlice(
                index=index,
                bucket=bucket,
                expiry=day(expiry),
                spot=spots[number],
                atm_strike=atms[number],
                legs=tuple(legs[at : at + count]),
            )
        )
        at += count
    ts, received_at = _moments(head["times"], head["time_zones"], zones)
    if ts is None or received_at is None:
        raise ValueError("a snapshot's times cannot be None")
    names: list[str] = head["indices"]
    return Snapshot(
        ts=ts,
        received_at=received_at,
        indices=dict(zip(names, quotes[: len(names)], strict=True)),
        chains=tuple(chains),
    )


def encode_loop(fields: Mapping[str, float | int]) -> bytes:
    """The collector's loop stats of a cycle, as JSON."""
    return json.dumps(dict(fields), separators=(",", ":")).encode()


def decode_loop(data: bytes) -> dict[str, float | int]:
    try:
        found = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"damaged loop stats: {err}") from err
    if not isinstance(found, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in found.values()
    ):
        raise ValueError("loop stats are not a JSON object of numbers")
    return found
