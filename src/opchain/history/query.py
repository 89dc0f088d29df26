"""The archive as named DuckDB views, read-only: what ``opchain query`` and ``opchain export``
run their SQL over.

Views (columns typed: times are ``TIMESTAMP WITH TIME ZONE``, shown in IST):

- ``raw``: the raw legs, every closed window's Parquet part (never a journal), with ``date``
  and ``index`` from the path (hive partitioning);
- ``splits``: every split CSV, with ``index``, ``bucket``, ``offset`` and ``date`` from its
  path, then the file's columns (``index`` is the path's); a file of an earlier version (no
  delta columns) reads with them empty, and OP's old names (``timestamp``, ``ts_ist``,
  ``tp_sum``) read as opchain's;
- ``analytics``: every analytics CSV;
- ``overview``: every overview CSV, ``index`` from its path;
- ``profiles``: the weekday masters and DTE profiles, with ``index``, ``bucket``, ``offset``,
  ``kind`` (``weekday`` or ``dte``) and ``key`` (``mon``..``fri`` or ``dteNN``) from the path;
- ``participants``: NSE's participant-wise open interest as kept (``opchain participants``), a
  row per day and participant, ``date`` from the file's name.

The files are found when the connection is made (``store.layout`` names where); a view over no
files exists and is empty. A line of a CSV that is not a row of its file (a torn last line, a
cell that does not read as its column's type) is left out, as every reader of the archive
leaves it out.

Read-only, two ways: :func:`run_select` runs one ``SELECT`` statement and nothing else (no
``COPY``, ``ATTACH``, ``INSTALL``, ``CREATE``...), and the connection is an in-memory database
whose file access is closed (``enable_external_access = false``) except for exactly the files
the views read (``allowed_paths``) and the one file the caller writes, with extensions never
installed or loaded and the configuration then locked (``lock_configuration``), so no
statement can open it again.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opchain.profiles.master import HEADER as PROFILE_HEADER
from opchain.store import layout
from opchain.store.overview import COLUMNS as OVERVIEW_COLUMNS
from opchain.store.participants import FIELDS as PARTICIPANT_FIELDS
from opchain.store.rawparts import FILE_SCHEMA
from opchain.store.regular import regular_file
from opchain.store.splits import COLUMNS as SPLIT_COLUMNS
from opchain.store.splits import OLD_NAMES

if TYPE_CHECKING:
    import duckdb

VIEWS = ("raw", "splits", "analytics", "overview", "profiles", "participants")
TIME_ZONE = "Asia/Kolkata"

_TS = "TIMESTAMPTZ"


def _typed(
    columns: Iterable[str], text: set[str], integers: set[str], times: Collection[str] = ("ts",)
) -> dict[str, str]:
    """DuckDB's type of each CSV column: times, the expiry a date, the named text and integer
    columns, every other a double (given, so DuckDB guesses nothing from a file's first rows)."""

    def one(column: str) -> str:
        if column in times:
            return _TS
        if column == "expiry":
            return "DATE"
        return "VARCHAR" if column in text else "BIGINT" if column in integers else "DOUBLE"

    return {column: one(column) for column in columns}


_SPLIT_TYPES = _typed(
    SPLIT_COLUMNS,
    text={"index", "expiry_code", "strike_offset"},
    integers={"call_volume", "put_volume", "call_oi", "put_oi", "days_to_expiry"},
)
_OVERVIEW_TYPES = _typed(
    OVERVIEW_COLUMNS, text={"index", "name"}, integers=set(), times=("ts", "exchange_ts")
)
_PROFILE_TYPES = _typed(
    PROFILE_HEADER.split(","), text={"time_bucket"}, integers={"n_tot"}, times=("last_updated",)
)
_ARROW_TYPES = {"timestamp[ms, tz=Asia/Kolkata]": _TS, "string": "VARCHAR", "date32[day]": "DATE",
                "int16": "SMALLINT", "int64": "BIGINT", "double": "DOUBLE"}  # fmt: skip
_RAW_TYPES = {"date": "DATE", "index": "VARCHAR"} | {
    f.name: _ARROW_TYPES[str(f.type)] for f in FILE_SCHEMA
}


@dataclass(frozen=True)
class Roots:
    """Where the archive's files are (``Settings``' roots: split files and profiles may live
    outside the data directory)."""

    data_dir: Path
    split_root: Path
    profiles_root: Path

    def all(self) -> tuple[Path, ...]:
        d = self.data_dir
        return (
            layout.raw_root(d),
            self.split_root,
            layout.analytics_root(d),
            layout.overview_root(d),
            self.profiles_root,
            layout.participants_root(d),
        )


class Refused(ValueError):
    """A statement that is not one SELECT, or a file the caller may not write."""


def connect(
    roots: Roots, writes: Path | None = None, views: Collection[str] = VIEWS
) -> "duckdb.DuckDBPyConnection":
    """An in-memory DuckDB with the archive's ``views`` (:func:`views_in` a statement: only
    those are found and bound), its file access then closed to all but the files they read
    and ``writes`` (module docstring)."""
    import duckdb

    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    con.execute(f"SET TimeZone = '{TIME_ZONE}'")
    read: list[Path] = []
    for name, (sql, files) in _views(roots, views).items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
        read += files
    allowed = [str(p) for p in read]
    if writes is not None:  # DuckDB replaces an existing file through tmp_<name> beside it
        allowed += [str(writes), str(writes.with_name(f"tmp_{writes.name}"))]
    con.execute(f"SET allowed_paths = {_list(allowed)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def views_in(sql: str) -> set[str]:
    """The archive's views a statement reads (all of them when DuckDB cannot tell without
    the views: a join ``USING`` their columns)."""
    import duckdb

    try:
        return duckdb.connect(":memory:").get_table_names(sql) & set(VIEWS)
    except duckdb.Error:
        return set(VIEWS)


def check_select(sql: str) -> str:
    """``sql`` if it is exactly one SELECT statement (``WITH``, ``FROM``-first, ``VALUES``,
    ``DESCRIBE``, ``SUMMARIZE`` are SELECTs), without its trailing semicolon; else
    :class:`Refused`. A statement DuckDB cannot parse raises DuckDB's error."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise Refused(f"one SELECT statement is run, not {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise Refused(
            f"only a SELECT is run, not a {kind.name} statement: the archive is read-only "
            "(--csv or --parquet writes the answer to a file)"
        )
    return sql.strip().rstrip(";").strip()


def check_output(path: Path, roots: Roots) -> None:
    """:class:`Refused` when ``path`` is inside a folder the views read."""
    where = path.resolve()
    for root in roots.all():
        if where.is_relative_to(root.resolve()):
            raise Refused(f"{path} is inside {root}, which is the archive: write elsewhere")


def copy_to(con: "duckdb.DuckDBPyConnection", sql: str, path: Path, fmt: str) -> int:
    """Write ``sql``'s rows (one SELECT, :func:`check_select`) to ``path`` as CSV (with a
    header) or Parquet through DuckDB's COPY; returns the rows written."""
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
    found = con.execute(f"COPY ({sql}) TO {_literal(str(path))} ({options})").fetchone()
    return int(found[0]) if found else 0


@dataclass
class Answer:
    columns: list[str]
    types: list[str]
    first: list[tuple[Any, ...]]  # the first rows, up to the number asked for
    rows: int  # how many rows the answer has


def run_select(con: "duckdb.DuckDBPyConnection", sql: str, show: int) -> Answer:
    """Run one SELECT (:func:`check_select`); the first ``show`` rows and the count, the
    answer streamed (never held whole)."""
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description or []]
    types = [str(d[1]) for d in cursor.description or []]
    first: list[tuple[Any, ...]] = []
    rows = 0
    while batch := cursor.fetchmany(max(show, 10_000)):
        if len(first) < show:
            first += batch[: show - len(first)]
        rows += len(batch)
    return Answer(columns, types, first, rows)


def export_sql(
    start: date, end: date, index: str, bucket: str | None = None, offset: str | None = None
) -> str:
    """The split rows of ``index`` (``bucket``, ``offset``) from ``start`` to ``end``, sorted
    by time (then bucket and offset), as a SELECT over the ``splits`` view."""
    where = [f"date BETWEEN DATE '{start.isoformat()}' AND DATE '{end.isoformat()}'"]
    where.append(f'"index" = {_literal(index)}')
    if bucket is not None:
        where.append(f"bucket = {_literal(bucket)}")
    if offset is not None:
        where.append(f'"offset" = {_literal(offset)}')
    return f'SELECT * FROM splits WHERE {" AND ".join(where)} ORDER BY ts, bucket, "offset"'


# The views.


def _views(roots: Roots, names: Collection[str]) -> dict[str, tuple[str, list[Path]]]:
    """Each view's SELECT and the files it reads, for the views ``names``."""
    d = roots.data_dir
    found: dict[str, tuple[str, list[Path]]] = {}
    if "raw" in names:
        raw = _files(layout.raw_root(d), layout.RAW_PARTS)
        found["raw"] = (_raw(raw), raw)
    if "splits" in names:
        splits = _files(roots.split_root, layout.SPLIT_FILES)
        found["splits"] = (_splits(splits), splits)
    if "analytics" in names:
        analytics = _files(layout.analytics_root(d), layout.ANALYTICS_FILES)
        found["analytics"] = (_csv(analytics, _analytics_types(), {}), analytics)
    if "overview" in names:
        overview = _files(layout.overview_root(d), layout.OVERVIEW_FILES)
        found["overview"] = (_overview(overview), overview)
    if "profiles" in names:
        weekday = _files(roots.profiles_root, layout.WEEKDAY_MASTERS)
        dte = _files(roots.profiles_root, layout.DTE_PROFILES)
        found["profiles"] = (_profiles(weekday, dte), [*weekday, *dte])
    if "participants" in names:
        kept = _files(layout.participants_root(d), layout.PARTICIPANT_FILES)
        found["participants"] = (_participants(kept), kept)
    return found


def _analytics_types() -> dict[str, str]:
    # merge.stats brings the numeric libraries: imported only when the view is asked for
    from opchain.merge.stats import BucketStats

    return _typed(BucketStats._fields, text={"index", "bucket", "anomaly"}, integers={"strikes"})


def _files(root: Path, pattern: str) -> list[Path]:
    """The files of one kind under ``root``, only regular files inside it (``store.regular``:
    a link out of the data directory, a FIFO, is never opened)."""
    return [p for p in layout.archive_files(root, pattern) if regular_file(p, root) is not None]


def _raw(files: list[Path]) -> str:
    if not files:
        return _empty(_RAW_TYPES)
    columns = ", ".join(_name(c) for c in _RAW_TYPES)
    hive = "{'date': 'DATE', 'index': 'VARCHAR'}"
    return (
        f"SELECT {columns} FROM read_parquet({_list(map(str, files))}, hive_partitioning = true,"
        f" hive_types = {hive}, union_by_name = true)"
    )


def _splits(files: list[Path]) -> str:
    path = {"index": "VARCHAR", "bucket": "VARCHAR", "offset": "VARCHAR", "date": "DATE"}
    types = {**path, **{c: t for c, t in _SPLIT_TYPES.items() if c != "index"}}
    if not files:
        return _empty(types)
    at = {"index": -4, "bucket": -3, "offset": -2}
    derived = {c: f"_parts[{i}]" for c, i in at.items()}
    derived["date"] = "CAST(regexp_extract(_parts[-1], '^(.*)\\.csv$', 1) AS DATE)"
    return _csv(files, types, derived)


def _overview(files: list[Path]) -> str:
    return _csv(files, _OVERVIEW_TYPES, {"index": "_parts[-2]"})


def _profiles(weekday: list[Path], dte: list[Path]) -> str:
    path = {"index": "VARCHAR", "bucket": "VARCHAR", "offset": "VARCHAR", "kind": "VARCHAR",
            "key": "VARCHAR"}  # fmt: skip
    types = {**path, **_PROFILE_TYPES}
    if not weekday and not dte:
        return _empty(types)
    derived = {"index": "_parts[-4]", "bucket": "_parts[-3]", "offset": "_parts[-2]",
               "key": "regexp_extract(_parts[-1], '^(.*)\\.csv$', 1)"}  # fmt: skip
    parts = [
        _csv(files, types, derived | {"kind": f"'{kind}'"})
        for kind, files in (("weekday", weekday), ("dte", dte))
        if files
    ]
    return " UNION ALL ".join(parts)


def _participants(files: list[Path]) -> str:
    """NSE's participant-wise open interest as kept (``store.participants``), a row per day and
    participant, the day from the file's name."""
    types = {"date": "DATE"} | _typed(PARTICIPANT_FIELDS, text={"participant"}, integers=set(
        PARTICIPANT_FIELDS[1:]))  # fmt: skip
    derived = {"date": "CAST(regexp_extract(_parts[-1], '^(.*)\\.csv$', 1) AS DATE)"}
    return _csv(files, types, derived)


def _csv(files: list[Path], types: dict[str, str], derived: dict[str, str]) -> str:
    """A SELECT of ``types``' columns, in order, over these CSV files: a column from
    ``derived`` (SQL over ``_parts``, the file's path split at ``/``), else the file's (or an
    old name of it), else empty in every file.

    The files are read in groups of one header (read here, first line only: DuckDB then sniffs
    nothing, which for many small files is most of the time), the groups' rows put together.
    The cells are read as text and cast here, and a line with a cell that does not cast is
    left out whichever columns a query reads (DuckDB's typed reader would leave it out only
    when the query reads that column: ``count(*)`` would count it)."""
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        header = _header(path)
        if header:  # an empty file has no rows
            groups.setdefault(header, []).append(path)
    if not groups:
        return _empty(types)
    return " UNION ALL ".join(_group(h, paths, types, derived) for h, paths in groups.items())


def _group(
    header: tuple[str, ...], files: list[Path], types: dict[str, str], derived: dict[str, str]
) -> str:
    columns, valid = [], []
    for c, t in types.items():
        if c in derived:
            columns.append(f"{derived[c]} AS {_name(c)}")
            continue
        names = [n for n in (c, *(o for o, n2 in OLD_NAMES.items() if n2 == c)) if n in header]
        text = (
            "NULL"
            if not names
            else _name(names[0])
            if len(names) == 1
            else f"coalesce({', '.join(map(_name, names))})"
        )
        columns.append(f"TRY_CAST({text} AS {t}) AS {_name(c)}")
        if names and t != "VARCHAR":
            valid.append(f"({text} IS NULL OR TRY_CAST({text} AS {t}) IS NOT NULL)")
    read = "{" + ", ".join(f"{_literal(h)}: 'VARCHAR'" for h in header) + "}"
    source = (
        f"read_csv({_list(map(str, files))}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', columns = {read}, filename = '_file', ignore_errors = true)"
    )
    where = f" WHERE {' AND '.join(valid)}" if valid else ""
    return (
        f"SELECT {', '.join(columns)} FROM "
        f"(SELECT *, string_split(_file, '/') AS _parts FROM {source}){where}"
    )


def _header(path: Path) -> tuple[str, ...]:
    """A CSV file's column names, from its first line (none: an empty file, or a header with
    an empty or repeated name, which no file of the archive has)."""
    with path.open(encoding="utf-8", errors="replace") as f:
        names = tuple(c.strip() for c in f.readline().rstrip("\r\n").split(","))
    return names if all(names) and len(set(names)) == len(names) else ()


def _empty(types: dict[str, str]) -> str:
    columns = ", ".join(f"CAST(NULL AS {t}) AS {_name(c)}" for c, t in types.items())
    return f"SELECT {columns} WHERE false"


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_literal(i) for i in items) + "]"
