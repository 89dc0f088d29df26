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

Warnings go to the log, at most one per file per run: the first read that finds damage in a
file names its first bad line and counts the others; later ones (the same file read again by
another reader, or followed as it grows) log at debug level only. Nothing here writes or
repairs a file: the rows are the user's.
"""

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from opchain.store.opmasters import Problem, show
from opchain.store.regular import NotRegularFile, open_file

log = logging.getLogger(__name__)

T = TypeVar("T")
# Given a file's header (its cells), the parser of its rows: cells to a record, ValueError (or
# IndexError, KeyError) on a cell that does not parse. It raises ValueError itself when the
# header lacks what the reader needs; the file is then not read at all.
ParserFor = Callable[[list[str]], Callable[[list[str]], T]]

_TAIL_CHUNK = 64 * 1024  # bytes read from the end of a file for its last line
_warned: set[Path] = set()


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

    def read(self) -> list[T]:
        data = None if self.dead else _read_from(self.path, self.offset)
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
        report(problems)
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
    path: Path, offset: int, first: int | None = None, last: int | None = None
) -> bytes | None:
    """Bytes of a regular file from ``offset`` (or its ``first`` or ``last`` bytes); None when
    there is no such file. Anything else at the path (a folder, a FIFO, a device) reads as
    nothing, with a warning: reading it could block or never end."""
    try:
        with open_file(path) as f:
            if last is not None:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - last))
                return f.read()
            f.seek(offset)
            return f.read() if first is None else f.read(first)
    except NotRegularFile:
        report([Problem(path, None, "not a regular file; not read")])
        return None
    except FileNotFoundError:
        return None
    except OSError as err:
        report([Problem(path, None, f"cannot be read ({err.strerror or err})")])
        return None


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
