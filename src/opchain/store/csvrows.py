"""Reading opchain's own daily CSVs (split, analytics, overview) when any line may be damaged.

A disk that filled up, a power cut, an editor, a script appending to the wrong file: any line
of a file may be anything. Every reader of these files goes through here, and a line that is
not a row of its file costs that line only: it is skipped, and the log says which file and
which line. A line is not a row when it

- is not UTF-8 text, or holds a NUL byte (what a power cut can leave),
- has another number of cells than the file's header (opchain never quotes a cell, so a comma
  always separates two),
- is the header again, or
- has a cell its reader cannot parse (a timestamp without its offset, a number that is not).

Line 1 is the file's header, and columns are found by name: a file written by an earlier
version (fewer columns, the newest ones missing) reads as it is. A last line without its
newline is not a line yet (the writer may be in the middle of it, or was killed there and the
next writer cuts it) and is left out.

OP's files (``opchain import``, ``rebuild-masters`` over OP's split files) are read by
:func:`read_rows`, with the same tests a line and a few of OP's habits allowed: a header in any
case, with a byte-order mark; blank lines; a quoted cell. Files are read only when they are
regular files (``store.regular``: a FIFO would block, ``/dev/zero`` would never end), and a line
longer than ``MAX_LINE`` bytes is skipped without being held in memory.

Warnings go to the log, at most one per file per run: the first read that finds damage in a
file names its first bad line and counts the others; later ones (the same file read again by
another reader, or followed as it grows) log at debug level only. Nothing here writes or
repairs a file: the rows are the user's.
"""

import csv
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

from opchain.store.regular import NotRegularFile, open_file

log = logging.getLogger(__name__)

T = TypeVar("T")
# Given a file's header (its cells), the parser of its rows: cells to a record, ValueError (or
# IndexError, KeyError) on a cell that does not parse. It raises ValueError itself when the
# header lacks what the reader needs; the file is then not read at all.
ParserFor = Callable[[list[str]], Callable[[list[str]], T]]

_TAIL_CHUNK = 64 * 1024  # bytes read from the end of a file for its last line
MAX_LINE = 1 << 20  # bytes: no line of a data file comes near (a split row is ~250)
_warned: set[Path] = set()


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that could not be read: the file, the line (1-based) when one line is to
    blame, and one sentence saying what is wrong."""

    path: Path
    line: int | None
    reason: str


def show(text: str) -> str:
    """A cell for a message: quoted, and cut short when it is long junk."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def cells(raw: bytes) -> list[str] | str:
    """The cells of one line (without its newline), or why it is not a line of CSV text."""
    if b"\x00" in raw:
        return "a NUL byte (a write lost in a crash?)"
    try:
        text = raw.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return text.split(",")


def row_problem(found: list[str] | str, header: list[str]) -> str | None:
    """Why a line's cells are not a row of a file with this header (None: they are)."""
    if isinstance(found, str):
        return found
    if found == header:
        return "the header again"
    if found == [""]:
        return "an empty line"
    if len(found) != len(header):
        return f"{len(found)} cells where the header has {len(header)}"
    return None


def aware(text: str) -> datetime:
    """A row's timestamp: ISO-8601 with its UTC offset (a naive time is refused: rows are
    compared with aware ones)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad timestamp {show(text)}") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {show(text)} has no UTC offset")
    return moment


@dataclass
class Follow(Generic[T]):
    """One CSV read as it grows: each :meth:`read` returns the records of the whole lines added
    since the one before, in file order, the bad ones left out and reported."""

    path: Path
    parser_for: ParserFor[T]
    offset: int = 0  # bytes consumed: whole lines only
    line: int = 0  # lines consumed
    header: list[str] | None = None
    parse: Callable[[list[str]], T] | None = field(default=None, repr=False)
    dead: bool = False  # the header cannot be read: nothing of this file is
    # Where the bad lines go: the log (one warning per file) when None, else this list
    sink: list[Problem] | None = field(default=None, repr=False)

    def read(self) -> list[T]:
        data = None if self.dead else _read_from(self.path, self.offset, sink=self.sink)
        return [] if data is None else self.feed(data)

    def feed(self, data: bytes) -> list[T]:
        """The records of the whole lines of ``data``, the file's bytes from :attr:`offset`
        (read by the caller, who may read it its own way)."""
        if self.dead:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        records: list[T] = []
        problems: list[Problem] = []
        for raw in data[:end].split(b"\n")[:-1]:
            self.line += 1
            found = cells(raw)
            if self.header is None:
                self._start(found, problems)
                if self.dead:
                    break
                continue
            why = row_problem(found, self.header)
            if why is None:
                assert self.parse is not None and not isinstance(found, str)
                try:
                    records.append(self.parse(found))
                    continue
                except (ValueError, IndexError, KeyError) as err:
                    why = str(err) or type(err).__name__
            problems.append(Problem(self.path, self.line, f"{why}; skipped"))
        if self.sink is None:
            report(problems)
        else:
            self.sink += problems
        return records

    def _start(self, found: list[str] | str, problems: list[Problem]) -> None:
        """Line 1: the header, and the parser it gives."""
        try:
            if isinstance(found, str):
                raise ValueError(f"the header is {found}")
            self.parse = self.parser_for(found)
            self.header = found
        except ValueError as err:
            self.dead = True
            problems.append(Problem(self.path, 1, f"{err}; the file is not read"))


def read_all(path: Path, parser_for: ParserFor[T]) -> list[T]:
    """Every good record of a file (none when it is missing or empty), bad lines reported."""
    return Follow(path, parser_for).read()


def last_record(path: Path, parser_for: ParserFor[T], finished: bool = False) -> T | None:
    """The record of the last line of a file that is a good row (None: no such line), without
    reading the whole file when that last line is good.

    Bad lines after it are reported. ``finished`` says the file is closed (a day that is over):
    text after its last newline is then a torn write, reported too; otherwise it may be a row
    being written and is left out silently.
    """
    header = read_header(path)
    if not isinstance(header, list):
        if header is not None:
            report([Problem(path, 1, f"the header is {header}; the file is not read")])
        elif finished and path.is_file():
            report([Problem(path, None, "empty file (no header, no rows)")])
        return None
    try:
        parse = parser_for(header)
    except ValueError as err:
        report([Problem(path, 1, f"{err}; the file is not read")])
        return None
    tail = _read_from(path, 0, last=_TAIL_CHUNK) or b""
    torn = not tail.endswith(b"\n")
    lines = tail[: tail.rfind(b"\n") + 1].split(b"\n")[:-1]  # the whole lines in it
    if len(lines) > 1 and not (torn and finished):  # the fast path: a good last line
        record = _parsed(cells(lines[-1]), header, parse)
        if not isinstance(record, _Bad):
            return record
    # Something is wrong near the end: read it all, to find the last good line and to name
    # the bad ones by number.
    data = _read_from(path, 0) or b""
    every = data.split(b"\n")
    problems = []
    if every[-1] and finished:
        problems.append(Problem(path, len(every), "torn last line (no newline at its end)"))
    found: T | None = None
    for number in range(len(every) - 1, 1, -1):  # every[number - 1] is line ``number``
        record = _parsed(cells(every[number - 1]), header, parse)
        if not isinstance(record, _Bad):
            found = record
            break
        problems.append(Problem(path, number, f"{record.reason}; skipped"))
    report(sorted(problems, key=lambda p: p.line or 0))
    return found


def last_stamp(path: Path) -> datetime | None:
    """The timestamp (the first cell) of a daily CSV's last good row: how far the file reaches
    (None: no good row, no file)."""
    return last_record(path, _stamps)


def count_rows(path: Path, data: bytes | None = None) -> int:
    """How many good rows a daily CSV holds (its damaged lines are not rows); ``data``: its
    bytes, when the caller has read them already."""
    follow = Follow(path, _stamps)
    return len(follow.read() if data is None else follow.feed(data))


def _stamps(header: list[str]) -> Callable[[list[str]], datetime]:
    return lambda found: aware(found[0])


def read_header(path: Path) -> list[str] | str | None:
    """The cells of a file's first line; None when the file is missing or empty; the reason
    when that line is not text (or not a whole line within the first 64 KiB)."""
    head = _read_from(path, 0, first=_TAIL_CHUNK)
    if not head:
        return None
    end = head.find(b"\n")
    if end < 0:
        return "not a line of text" if len(head) >= _TAIL_CHUNK else None
    return cells(head[:end])


@dataclass(frozen=True, slots=True)
class _Bad:
    reason: str


def _parsed(found: list[str] | str, header: list[str], parse: Callable[[list[str]], T]) -> T | _Bad:
    why = row_problem(found, header)
    if why is not None or isinstance(found, str):
        return _Bad(why or "not a row")
    try:
        return parse(found)
    except (ValueError, IndexError, KeyError) as err:
        return _Bad(str(err) or type(err).__name__)


def _read_from(
    path: Path,
    offset: int,
    first: int | None = None,
    last: int | None = None,
    sink: list[Problem] | None = None,
) -> bytes | None:
    """Bytes of a regular file from ``offset`` (or its ``first`` or ``last`` bytes); None when
    there is no such file. Anything else at the path (a folder, a FIFO, a device) reads as
    nothing, with a warning: reading it could block or never end."""
    f = _open(path)
    if isinstance(f, Problem):
        if sink is None:
            report([f])
        else:
            sink.append(f)
        return None
    if f is None:
        return None
    with f:
        if last is not None:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - last))
            return f.read()
        f.seek(offset)
        return f.read() if first is None else f.read(first)


def _open(path: Path) -> BinaryIO | Problem | None:
    """``path`` opened if it is a regular file; None when there is nothing there; else why not."""
    try:
        return open_file(path)
    except NotRegularFile:
        return Problem(path, None, "not a regular file; not read")
    except FileNotFoundError:
        if path.exists() or path.is_symlink():
            return Problem(path, None, "not a regular file; not read")
        return None
    except OSError as err:
        return Problem(path, None, f"cannot be read ({err.strerror or err})")


def lines(path: Path) -> Iterator[tuple[int, bytes | Problem]]:
    """Each whole line of a regular file (numbered from 1, without its newline), or the
    Problem that took its place: a line over ``MAX_LINE`` bytes (skipped unread), a torn last
    line (no newline), or the file itself (not there as a regular file: line 0)."""
    f = _open(path)
    if f is None:
        f = Problem(path, None, "no such file")
    if isinstance(f, Problem):
        yield 0, f
        return
    with f:
        number = 0
        while raw := f.readline(MAX_LINE + 1):
            number += 1
            if raw.endswith(b"\n"):
                yield number, raw[:-1]
            elif len(raw) <= MAX_LINE:
                yield number, Problem(path, number, "torn last line (no newline at its end)")
            else:
                while (more := f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                    pass  # the rest of the long line, dropped as it is read
                yield number, Problem(path, number, f"a line longer than {MAX_LINE} bytes")


Rows = list[tuple[int, list[str]]]  # (line number, cells) of the well-formed data lines


def read_rows(path: Path) -> tuple[list[str] | None, Rows, list[Problem]]:
    """The header (lower-cased, stripped) and the data lines of an OP or opchain CSV, line by
    line (module docstring): a bad line costs that line only, a torn last line is reported
    and left out (opchain's writer cuts it off), blank lines are passed over silently."""
    header: list[str] | None = None
    rows: Rows = []
    problems: list[Problem] = []
    for number, raw in lines(path):
        if isinstance(raw, Problem):
            problems.append(raw)
            continue
        found = _op_cells(raw)
        if found == [""] or (not isinstance(found, str) and not any(c.strip() for c in found)):
            continue
        if header is None:
            if isinstance(found, str):
                problems.append(Problem(path, number, f"the header is {found}"))
                continue
            header = [c.strip().lstrip("\ufeff").lower() for c in found]
            continue
        normal = found if isinstance(found, str) else [c.strip().lower() for c in found]
        why = row_problem(normal, header)
        if why is not None:
            problems.append(Problem(path, number, why))
        elif not isinstance(found, str):
            rows.append((number, found))
    if header is None and not problems:
        problems.append(Problem(path, None, "empty file"))
    return header, rows, problems


def _op_cells(raw: bytes) -> list[str] | str:
    """:func:`cells`, and a line with a quote read as CSV (OP's pandas quoted some cells)."""
    found = cells(raw)
    if isinstance(found, str) or '"' not in raw.decode("utf-8"):
        return found
    try:
        return next(csv.reader([raw.removesuffix(b"\r").decode("utf-8")]), [])
    except csv.Error:
        return "not a line of CSV (a stray quote)"


def report(problems: Iterable[Problem]) -> None:
    """Log what is wrong with a file: one warning per file per run (its first bad line, and
    how many more), everything else at debug level."""
    by_path: dict[Path, list[Problem]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    for path, found in by_path.items():
        if path in _warned:
            for p in found:
                log.debug("%s", describe(p))
            continue
        _warned.add(path)
        more = len(found) - 1
        tail = f" ({more} more bad line{'s' if more > 1 else ''} skipped too)" if more else ""
        log.warning("%s%s", describe(found[0]), tail)


def describe(problem: Problem) -> str:
    """``<path>:<line>: <reason>`` (``<path>: <reason>`` for the whole file), the form of
    every message about a file's contents (``opchain rebuild-masters`` prints the same)."""
    where = f":{problem.line}" if problem.line is not None else ""
    return f"{problem.path}{where}: {problem.reason}"
