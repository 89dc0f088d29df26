"""A day's premium per session minute from a split file, read whole with numpy (a rebuild's
fast path, :func:`opchain.store.masters.build`).

:func:`read_day` gives what ``build`` adds to the profiles for one split file: each session
minute's last premium in paise, the time of the row it came from, and the days to expiry. A
clean file of opchain's own (its known columns, ASCII, every line whole, every cell of the
columns read in the form opchain writes) is read here at once: lines and cells found by their
separators, timestamps, prices and counts checked and converted with array operations. Any file
this path is not sure of, down to one odd cell, is refused as a whole and read by the tolerant
line-by-line reader (:func:`opchain.store.opdata.read_premiums`), which skips a bad line only and
says which; so a damaged line still costs that line alone, and both ways give the same
:class:`Day` for every file the fast one accepts.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from opchain.profiles.minutes import SESSION_MINUTES, last_per_minute, minute_of
from opchain.store.csvrows import MAX_LINE, Problem
from opchain.store.opdata import OpSplit, Premium, read_premiums
from opchain.store.regular import open_file

Ints = NDArray[np.int64]

_NEEDED = ("ts", "expiry", "call_last_price", "put_last_price", "total_premium", "days_to_expiry")
_TS = b"0000-00-00T00:00:00+05:30"  # opchain's timestamps: IST, whole seconds
_DIGITS = np.frombuffer(_TS, np.uint8) == ord("0")
_FIXED = np.frombuffer(_TS, np.uint8)
_FIRST = 9 * 60 + 15  # 09:15, the session's first minute
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_IST = _EPOCH.astimezone(timezone(timedelta(hours=5, minutes=30)))
_IST_SECONDS = 19800  # +05:30
_MAX_DIGITS = 10  # rupees: more is not a price (and float rounding stays exact below it)
_INDEX = {minute: i for i, minute in enumerate(SESSION_MINUTES)}


class Day(NamedTuple):
    """What one split file adds to its profiles."""

    minutes: Ints  # session minute numbers (0 is 09:15), ascending, each once
    paise: Ints  # the minute's last premium
    stamps: Ints  # the time of the row it is from, microseconds since the epoch
    dte: int | None  # days to expiry (of the first row that says)
    usable: bool  # False: nothing could be read, the day is not closed


def read_days(splits: Sequence[OpSplit]) -> list[tuple[Day, list[Problem]]]:
    """Each file's :class:`Day` and what could not be read in it: the clean files of opchain's
    together (:func:`read_fast`), any other by the tolerant reader."""
    datas: list[bytes | None] = []
    for split in splits:
        try:
            with open_file(split.path) as f:
                datas.append(f.read())
        except OSError:
            datas.append(None)  # the tolerant reader says why
    fast = read_fast([(d, s.day) for d, s in zip(datas, splits, strict=True) if d is not None])
    found = iter(fast)
    done: list[tuple[Day, list[Problem]]] = []
    for data, split in zip(datas, splits, strict=True):
        day = None if data is None else next(found)
        if day is not None:
            done.append((day, []))
            continue
        premiums, problems = read_premiums(split)
        done.append((from_premiums(premiums, split.day, bool(premiums) or not problems), problems))
    return done


def from_premiums(premiums: Sequence[Premium], day: date, usable: bool) -> Day:
    """A :class:`Day` from the tolerant reader's rows, as ``add_day_part`` takes them."""
    rows = [(p.ts, p.paise) for p in premiums]
    minutes = last_per_minute(rows)
    stamps = {minute_of(ts): ts for ts, value in rows if value is not None}
    order = sorted(minutes)
    return Day(
        np.array([_INDEX[m] for m in order], dtype=np.int64),
        np.array([minutes[m] for m in order], dtype=np.int64),
        np.array([micros(stamps[m]) for m in order], dtype=np.int64),
        _dte(premiums, day),
        usable,
    )


def micros(moment: datetime) -> int:
    """An aware time as microseconds since the epoch (exact)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def moment(micros: int) -> datetime:
    """:func:`micros` back to a time, at IST's offset."""
    return _EPOCH_IST + timedelta(microseconds=micros)


def _dte(premiums: Sequence[Premium], day: date) -> int | None:
    for p in premiums:
        if p.days_to_expiry is not None:
            return p.days_to_expiry
        if p.expiry is not None:
            return (p.expiry - day).days
    return None


def read_fast(files: Sequence[tuple[bytes, date]]) -> list[Day | None]:
    """The :class:`Day` of each clean split file of opchain's (module docstring) among these
    (its bytes and day); None for a file it is not sure is one. The files of one header are
    read together, as one array."""
    days: list[Day | None] = [None] * len(files)
    groups: dict[bytes, list[int]] = {}
    for i, (data, _) in enumerate(files):
        if not data.endswith(b"\n") or not data.isascii():
            continue
        if b"\x00" in data or b'"' in data or b"\r" in data:
            continue
        end = data.index(b"\n")
        if end + 1 < len(data):  # a header alone: the tolerant reader
            groups.setdefault(data[:end], []).append(i)
    for first_line, chosen in groups.items():
        header = first_line.decode("ascii").split(",")
        if len(set(header)) != len(header) or any(c != c.strip().lower() or not c for c in header):
            continue
        if any(c not in header for c in _NEEDED):
            continue
        while chosen:
            found, refused = _read_group([files[i] for i in chosen], header)
            if not refused:
                for i, day in zip(chosen, found, strict=True):
                    days[i] = day
                break
            chosen = [i for n, i in enumerate(chosen) if n not in refused]
    return days


def _read_group(
    files: Sequence[tuple[bytes, date]], header: list[str]
) -> tuple[list[Day | None], set[int]]:
    """The days of files of one header, or the files (their numbers) to leave out: whose
    lines do not all have the header's cells (the cells of the others cannot be found
    until they are left out)."""
    skip = len(",".join(header)) + 1
    body = np.frombuffer(b"".join(memoryview(d)[skip:] for d, _ in files) + _PAD, np.uint8)
    size = len(body) - len(_PAD)
    sizes = np.array([len(d) - skip for d, _ in files], np.int64)
    ends = np.flatnonzero(body[:size] == ord("\n"))
    file_of = np.searchsorted(np.cumsum(sizes), ends, side="right")  # each row's file
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    long = (ends - starts) >= MAX_LINE // 2
    commas = np.flatnonzero(body[:size] == ord(","))
    k = len(header) - 1
    count = np.diff(np.searchsorted(commas, ends), prepend=0)
    wrong = (count != k) | long
    if wrong.any():
        return [], set(np.unique(file_of[wrong]).tolist())
    cut = commas.reshape(len(ends), k)

    def cell(name: str) -> tuple[Ints, Ints]:
        j = header.index(name)
        begin = starts if j == 0 else cut[:, j - 1] + 1
        return begin, (ends if j == k else cut[:, j])

    first = np.flatnonzero(np.diff(file_of, prepend=-1))  # each file's first row
    rows = np.diff(first, append=len(ends))
    dates = np.array([(d - date(1970, 1, 1)).days for _, d in files], np.int64)
    prefix = np.frombuffer(b"".join(d.isoformat().encode("ascii") for _, d in files), np.uint8)
    ts, good = _timestamps(
        body, *cell("ts"), np.repeat(dates, rows), prefix.reshape(-1, 10)[file_of]
    )
    dte, counted = _counts(body, *cell("days_to_expiry"))
    good &= counted & _same_date(body, *cell("expiry"), np.repeat(first, rows))
    prices = [_paise(body, *cell(c)) for c in _NEEDED[2:5]]
    for _, ok in prices:
        good &= ok
    call, put, total = (paise for paise, _ in prices)
    file_ok = np.logical_and.reduceat(good, first)
    minute = (ts // 60_000_000 + _IST_SECONDS // 60) % 1440 - _FIRST
    valid = (call > 0) & (put > 0) & (total > 0) & (minute >= 0) & (minute < len(SESSION_MINUTES))
    at = np.flatnonzero(valid & file_ok[file_of])[::-1]  # newest first: unique keeps the first
    keys, where = np.unique(file_of[at] * len(SESSION_MINUTES) + minute[at], return_index=True)
    last = at[where]
    bounds = np.searchsorted(keys // len(SESSION_MINUTES), np.arange(len(files) + 1))
    days: list[Day | None] = []
    for n in range(len(files)):
        if not file_ok[n]:
            days.append(None)
            continue
        some = slice(bounds[n], bounds[n + 1])
        picked = last[some]
        days.append(
            Day(
                keys[some] % len(SESSION_MINUTES),
                total[picked],
                ts[picked],
                int(dte[first[n]]),
                True,
            )
        )
    return days, set()


_PAD = bytes(32)  # after the last row, so that fixed-width reads never run off the end


def _matrix(body: NDArray[np.uint8], begin: Ints, width: int) -> NDArray[np.uint8]:
    return body[np.add.outer(begin, np.arange(width))]


def _timestamps(
    body: NDArray[np.uint8], begin: Ints, end: Ints, dates: Ints, prefix: NDArray[np.uint8]
) -> tuple[Ints, NDArray[np.bool_]]:
    """Microseconds since the epoch, and which rows are ``<their day>THH:MM:SS+05:30``."""
    text = _matrix(body, begin, len(_TS))
    digits = text[:, _DIGITS] - np.uint8(ord("0"))
    hour, minute, second = (
        digits[:, i].astype(np.int64) * 10 + digits[:, i + 1] for i in (8, 10, 12)
    )
    good = (end - begin == len(_TS)) & (text[:, :10] == prefix).all(axis=1)
    good &= (digits <= 9).all(axis=1) & (text[:, ~_DIGITS] == _FIXED[~_DIGITS]).all(axis=1)
    good &= (hour < 24) & (minute < 60) & (second < 60)
    seconds = dates * 86400 - _IST_SECONDS + hour * 3600 + minute * 60 + second
    return seconds * 1_000_000, good


def _counts(body: NDArray[np.uint8], begin: Ints, end: Ints) -> tuple[Ints, NDArray[np.bool_]]:
    """Counts written in digits (up to 6), and which rows are."""
    size = end - begin
    text = _matrix(body, begin, 6) - np.uint8(ord("0"))
    inside = np.arange(6) < size[:, None]
    good = (size >= 1) & (size <= 6) & ((text <= 9) | ~inside).all(axis=1)
    value = np.where(inside, text, 0).astype(np.int64)
    powers = 10 ** np.clip(size[:, None] - 1 - np.arange(6), 0, None)
    return (value * powers).sum(axis=1), good


def _same_date(body: NDArray[np.uint8], begin: Ints, end: Ints, first: Ints) -> NDArray[np.bool_]:
    """Which rows hold the same valid ``YYYY-MM-DD`` as their file's first row."""
    text = _matrix(body, begin, 10)
    good: NDArray[np.bool_] = (end - begin == 10) & (text == text[first]).all(axis=1)
    for row in np.unique(first).tolist():
        try:
            date.fromisoformat(bytes(text[row]).decode("ascii"))
        except ValueError:
            good[first == row] = False
    return good


def _paise(body: NDArray[np.uint8], begin: Ints, end: Ints) -> tuple[Ints, NDArray[np.bool_]]:
    """Prices written ``123``, ``123.4`` or ``123.45`` (or empty) in paise, 0 for an empty
    cell, and which rows are written so. ``round(float(text) * 100)`` is exactly these."""
    size = end - begin
    widest = _MAX_DIGITS + 3
    number = np.zeros(len(begin), np.int64)  # the digits, the point left out
    decimals = np.zeros(len(begin), np.int64)  # digits after the point
    points = np.zeros(len(begin), np.int64)
    good = size <= widest
    for column in range(min(int(size.max()), widest)):
        inside = column < size
        char = body[begin + column]
        digit = inside & (char - np.uint8(ord("0")) <= 9)
        point = inside & (char == ord("."))
        good &= digit | point | ~inside
        number = np.where(digit, number * 10 + (char - ord("0")), number)
        decimals += digit & (points > 0)
        points += point
    whole = size - points - decimals  # digits before the point
    good &= (points == 0) | ((points == 1) & (decimals >= 1) & (decimals <= 2) & (whole >= 1))
    good &= whole <= _MAX_DIGITS
    paise: Ints = number * 10 ** np.clip(2 - decimals, 0, 2)
    return paise, good
