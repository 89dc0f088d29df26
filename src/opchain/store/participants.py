"""NSE's participant-wise open interest (``fao_participant_oi_<DDMMYYYY>.csv``): read as NSE
writes it, checked, and kept one clean file a day under the data directory (docs/participants.md).

NSE's file: a title line naming the day (``as on Nov 27, 2026``; NSE quotes it oddly and pads it
with empty cells), the header (two names carry stray whitespace, tabs or spaces), the rows
``Client``, ``DII``, ``FII``, ``Pro`` and ``TOTAL``. What must hold, or the file is refused: in
TOTAL every long column equals its short one (every contract has a buyer and a seller); TOTAL
is the sum of the four rows, and each row's ``Total Long Contracts`` and ``Total Short
Contracts`` the sums of its long and short columns, each to within the rounding NSE's own files
show (a contract or two: each figure is rounded on its own, so a sum of n rounded figures may
miss the rounded total by up to (n + 1) / 2; docs/participants.md has the files that show it).

opchain's own file, ``participants/<YYYY-MM-DD>.csv``: a header of :data:`FIELDS` and the four
participants' rows, plain integers. No network here: ``cli.participants`` downloads.
"""

import csv
import io
import re
from dataclasses import astuple, dataclass, fields
from datetime import date
from pathlib import Path
from typing import Literal

from opchain.store import layout
from opchain.store.appendlog import write_atomic
from opchain.store.regular import open_regular

PARTICIPANTS = ("Client", "DII", "FII", "Pro")
TOTAL = "TOTAL"
TITLE_START = "participant wise open interest"
NAME = re.compile(r"fao_participant_oi_([0-9]{8})\b", re.IGNORECASE)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_AS_ON = re.compile(r"as\s+on\s+([A-Za-z]{3})[A-Za-z]*\.?\s*([0-9]{1,2})\s*,?\s*([0-9]{4})", re.I)
_AS_ON_DASHED = re.compile(
    r"as\s+on\s+([0-9]{1,2})[-/ ]([A-Za-z]{3})[A-Za-z]*[-/ ]([0-9]{4})", re.I
)
_NUMBER = re.compile(r"[0-9]+")
MAX_BYTES = 1_000_000  # NSE's file is about 1 kB: anything this large is another file


@dataclass(frozen=True)
class Position:
    """One participant's open interest on one day, in contracts (NSE's columns in order)."""

    participant: str
    future_index_long: int
    future_index_short: int
    future_stock_long: int
    future_stock_short: int
    option_index_call_long: int
    option_index_put_long: int
    option_index_call_short: int
    option_index_put_short: int
    option_stock_call_long: int
    option_stock_put_long: int
    option_stock_call_short: int
    option_stock_put_short: int
    total_long: int
    total_short: int

    @property
    def net_index_futures(self) -> int:
        return self.future_index_long - self.future_index_short

    @property
    def net_index_calls(self) -> int:
        return self.option_index_call_long - self.option_index_call_short

    @property
    def net_index_puts(self) -> int:
        return self.option_index_put_long - self.option_index_put_short


FIELDS = tuple(f.name for f in fields(Position))
COUNTS = FIELDS[1:]
# NSE's header, the names stripped of the stray whitespace NSE leaves in two of them
HEADER = ("Client Type", "Future Index Long", "Future Index Short", "Future Stock Long",
          "Future Stock Short", "Option Index Call Long", "Option Index Put Long",
          "Option Index Call Short", "Option Index Put Short", "Option Stock Call Long",
          "Option Stock Put Long", "Option Stock Call Short", "Option Stock Put Short",
          "Total Long Contracts", "Total Short Contracts")  # fmt: skip
_LONGS = tuple(f for f in COUNTS[:-2] if f.endswith("_long"))
_SHORTS = tuple(f for f in COUNTS[:-2] if f.endswith("_short"))
_PAIRS = (*zip(_LONGS, _SHORTS, strict=True), ("total_long", "total_short"))


@dataclass(frozen=True)
class Day:
    day: date
    positions: tuple[Position, ...]  # Client, DII, FII, Pro


class ParticipantsError(ValueError):
    """A file that is not NSE's participant-wise open interest, as one line: file, line, what."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source} line {line}: {reason}")
        self.source, self.line, self.reason = source, line, reason


def _cells(text: str) -> list[str]:
    """A CSV line's cells, stripped, the empty cells at its end dropped."""
    cells = [c.strip() for c in next(csv.reader([text]), [])]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _title_day(text: str) -> date | None:
    found = _AS_ON.search(text)
    if found is not None:
        month, day, year = found[1], found[2], found[3]
    elif (dashed := _AS_ON_DASHED.search(text)) is not None:
        day, month, year = dashed[1], dashed[2], dashed[3]
    else:
        return None
    if month.lower() not in _MONTHS:
        return None
    try:
        return date(int(year), _MONTHS.index(month.lower()) + 1, int(day))
    except ValueError:
        return None


def name_day(name: str) -> date | None:
    """The day a file name ``fao_participant_oi_DDMMYYYY.csv`` names, if it names one."""
    found = NAME.search(name)
    if found is None:
        return None
    digits = found[1]
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        return None


def file_name(day: date) -> str:
    """NSE's name for a day's file."""
    return f"fao_participant_oi_{day.strftime('%d%m%Y')}.csv"


def _count(source: str, line: int, column: str, cell: str) -> int:
    digits = cell.replace(",", "").replace(" ", "")
    if not _NUMBER.fullmatch(digits):
        shown = repr(cell) if cell else "empty"
        raise ParticipantsError(source, line, f"{column} is {shown}, not a whole number")
    return int(digits)


def _row(source: str, line: int, cells: list[str], label: str) -> Position:
    if len(cells) != len(HEADER):
        raise ParticipantsError(
            source, line, f"the {label} row has {len(cells) - 1} numbers, not {len(COUNTS)}"
        )
    counts = {
        name: _count(source, line, HEADER[i + 1], cells[i + 1]) for i, name in enumerate(COUNTS)
    }
    return Position(participant=label, **counts)


def rounding(parts: int) -> int:
    """How far the rounded total of ``parts`` figures may lie from the sum of the figures
    each rounded on its own: half a contract each, and half for the total."""
    return (parts + 1) // 2


def _check_row(source: str, line: int, row: Position) -> None:
    for total, parts in (("total_long", _LONGS), ("total_short", _SHORTS)):
        summed = sum(getattr(row, f) for f in parts)
        if abs(getattr(row, total) - summed) > rounding(len(parts)):
            column = HEADER[FIELDS.index(total)]
            raise ParticipantsError(
                source, line, f"the {row.participant} row's {column} is "
                f"{getattr(row, total)}, not the sum of its columns, {summed}"
            )  # fmt: skip


def _check_total(source: str, line: int, total: Position, rows: list[Position]) -> None:
    for long, short in _PAIRS:
        if getattr(total, long) != getattr(total, short):
            raise ParticipantsError(
                source, line, f"TOTAL {HEADER[FIELDS.index(long)]} is {getattr(total, long)} "
                f"but {HEADER[FIELDS.index(short)]} is {getattr(total, short)}: they must be equal"
            )  # fmt: skip
    for i, name in enumerate(COUNTS):
        summed = sum(getattr(r, name) for r in rows)
        if abs(getattr(total, name) - summed) > rounding(len(rows)):
            raise ParticipantsError(
                source, line, f"TOTAL {HEADER[i + 1]} is {getattr(total, name)}, not the sum "
                f"of the four rows, {summed}"
            )  # fmt: skip


def _lines(data: bytes, source: str) -> list[tuple[int, str]]:
    """The file's lines that hold anything, with their numbers (from 1)."""
    if len(data) > MAX_BYTES:
        raise ParticipantsError(source, 1, f"more than {MAX_BYTES:,} bytes: not NSE's file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ParticipantsError(source, line, "not text (a byte that is not UTF-8)") from None
    lines = [(n, t) for n, t in enumerate(text.splitlines(), 1) if t.strip(' \t,"')]
    if not lines:
        raise ParticipantsError(source, 1, "the file is empty")
    return lines


def _day(source: str, first_line: int, first: str, named: date | None) -> tuple[date, bool]:
    """The file's day, and whether ``first`` is the title that names it."""
    if not first.strip(' \t"').lower().startswith(TITLE_START):
        if named is None:
            raise ParticipantsError(
                source, first_line, "no day: neither a title 'as on Mon D, YYYY' nor a file "
                "name fao_participant_oi_DDMMYYYY.csv"
            )  # fmt: skip
        return named, False
    titled = _title_day(first)
    if titled is None:
        raise ParticipantsError(source, first_line, "the title names no day ('as on Mon D, YYYY')")
    if named is not None and named != titled:
        raise ParticipantsError(
            source, first_line, f"the title's day {titled} is not the file name's {named}"
        )
    return titled, True


def _check_header(source: str, line: int, text: str) -> None:
    cells = _cells(text)
    for i, expected in enumerate(HEADER):
        got = cells[i] if i < len(cells) else None
        if got is None or got.lower() != expected.lower():
            raise ParticipantsError(
                source, line, f"not NSE's header: column {i + 1} is "
                f"{'missing' if got is None else repr(got)}, not {expected!r}"
            )  # fmt: skip
    if len(cells) > len(HEADER):
        raise ParticipantsError(
            source, line, f"not NSE's header: {len(cells)} columns, not {len(HEADER)}"
        )


def parse(data: bytes, source: str, name: str | None = None) -> Day:
    """NSE's file ``data`` as a checked :class:`Day`; ParticipantsError naming ``source`` and
    the line otherwise. The day comes from the title, or the file ``name``
    (``fao_participant_oi_DDMMYYYY.csv``; default: ``source``'s last part); both: they agree."""
    lines = _lines(data, source)
    named = name_day(name if name is not None else Path(source).name)
    first_line = lines[0][0]
    day, titled = _day(source, *lines[0], named)
    if titled:
        lines = lines[1:]
    if not lines:
        raise ParticipantsError(source, first_line + 1, "the file ends before the header")
    header_line, header = lines[0]
    _check_header(source, header_line, header)
    rows: list[Position] = []
    body = lines[1:]
    last = header_line
    for i, label in enumerate((*PARTICIPANTS, TOTAL)):
        if i >= len(body):
            raise ParticipantsError(
                source, last + 1, f"the file ends before the {label} row (cut short?)"
            )
        last, line_text = body[i]
        cells = _cells(line_text)
        found = cells[0] if cells else ""
        if found.lower() != label.lower():
            raise ParticipantsError(source, last, f"expected the {label} row, found {found!r}")
        row = _row(source, last, cells, label)
        if label == TOTAL:
            _check_total(source, last, row, rows)
        _check_row(source, last, row)
        rows.append(row)
    if len(body) > len(rows):
        extra_line, _ = body[len(rows)]
        raise ParticipantsError(source, extra_line, "a line after the TOTAL row")
    return Day(day=day, positions=tuple(rows[:-1]))


def encode(day: Day) -> bytes:
    """opchain's file of a day: the header of :data:`FIELDS`, a row per participant."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows(astuple(p) for p in day.positions)
    return buffer.getvalue().encode()


def decode(data: bytes, day: date, source: str) -> Day:
    """opchain's own file back (ParticipantsError when it is not one)."""
    text = data.decode("utf-8", errors="replace").splitlines()
    if not text or tuple(_cells(text[0])) != FIELDS:
        raise ParticipantsError(source, 1, "not opchain's participants header")
    positions = []
    for n, line in enumerate(text[1:], 2):
        cells = _cells(line)
        if len(cells) != len(FIELDS) or cells[0] not in PARTICIPANTS:
            raise ParticipantsError(source, n, "not a participant's row")
        counts = {f: _count(source, n, f, c) for f, c in zip(COUNTS, cells[1:], strict=True)}
        positions.append(Position(participant=cells[0], **counts))
    if [p.participant for p in positions] != list(PARTICIPANTS):
        raise ParticipantsError(source, len(text) + 1, "not the four participants' rows")
    return Day(day=day, positions=tuple(positions))


Stored = Literal["new", "same", "replaced"]


def store(data_dir: Path, day: Day, durable: bool = True) -> Stored:
    """Keep ``day`` (crash-safe: the old file or the new one, never half): ``new``, ``same``
    (the stored copy is identical: nothing written) or ``replaced`` (it differed)."""
    path = layout.participants_path(data_dir, day.day)
    data = encode(day)
    try:
        old: bytes | None = path.read_bytes()
    except FileNotFoundError:
        old = None
    if old == data:
        return "same"
    write_atomic(path, data, durable)
    return "new" if old is None else "replaced"


def stored_days(data_dir: Path) -> list[date]:
    """The days kept, oldest first (files not named ``YYYY-MM-DD.csv`` are passed over)."""
    found = []
    for path in layout.archive_files(layout.participants_root(data_dir), layout.PARTICIPANT_FILES):
        try:
            found.append(date.fromisoformat(path.stem))
        except ValueError:
            continue
    return sorted(found)


def load(data_dir: Path, day: date) -> Day:
    """A kept day (FileNotFoundError, or ParticipantsError for a damaged file)."""
    root = layout.participants_root(data_dir)
    path = layout.participants_path(data_dir, day)
    with open_regular(path, root) as f:
        data = f.read()
    return decode(data, day, str(path))
