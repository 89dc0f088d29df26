"""``opchain query`` and ``opchain export``: SQL over the archive's DuckDB views, read-only
(:mod:`opchain.history.query`)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .console import fail, load_settings, out

if TYPE_CHECKING:
    import duckdb

    from opchain.history.query import Roots

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]


def query(
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One SELECT over the views.")],
    data_dir: DataDir = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the answer to this CSV file.")
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="Write the answer to this Parquet file.")
    ] = None,
    rows: Annotated[int, typer.Option("--rows", help="Rows shown on the terminal.")] = 20,
) -> None:
    """Run one SELECT over DuckDB views of the archive: `raw` (the raw legs), `splits`,
    `analytics`, `overview` and `profiles` (weekday masters and DTE profiles), times in IST.
    Prints the first rows and how many there are, or writes them all with `--csv` or
    `--parquet`. Read-only: any other statement is refused."""
    if csv is not None and parquet is not None:
        fail("--csv and --parquet: choose one")
    if rows < 0:
        fail(f"--rows must be at least 0, not {rows}")
    target = csv or parquet
    roots = _roots(data_dir)
    con, select = _open(roots, sql, target)
    if target is not None:
        written = _copy(con, select, target, "csv" if csv is not None else "parquet")
        out.print(f"{written} rows written to {target}")
        return
    from opchain.history.query import run_select

    answer = _run(lambda: run_select(con, select, rows))
    table = Table(*answer.columns, show_lines=False)
    for row in answer.first:
        table.add_row(*(_cell(v) for v in row))
    if answer.columns:
        out.print(table)
    shown = f" (the first {len(answer.first)} shown)" if len(answer.first) < answer.rows else ""
    out.print(f"{answer.rows} {'row' if answer.rows == 1 else 'rows'}{shown}")


def export(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day.")],
    index: Annotated[str, typer.Option("--index", help="NIFTY, BANKNIFTY, ...")],
    bucket: Annotated[str | None, typer.Option("--bucket", help="this_week, ...")] = None,
    offset: Annotated[str | None, typer.Option("--offset", help="atm, atm_p1, ...")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="The file (default: splits-INDEX-FROM-TO.csv|.parquet)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the split rows of an index (a bucket, an offset) from one day to another as one
    CSV or Parquet file, sorted by time: the `splits` view of `opchain query`."""
    if fmt not in ("csv", "parquet"):
        fail(f"--format is csv or parquet, not {fmt!r}")
    first, last = start.date(), end.date()
    if first > last:
        fail(f"--from {first} is after --to {last}")
    target = out_file or Path(f"splits-{index}-{first}-{last}.{fmt}")
    from opchain.history.query import export_sql

    roots = _roots(data_dir)
    con, select = _open(roots, export_sql(first, last, index, bucket, offset), target)
    written = _copy(con, select, target, fmt)
    out.print(f"{written} rows written to {target}")


def _roots(data_dir: Path | None) -> Roots:
    from opchain.history.query import Roots

    settings = load_settings(data_dir=data_dir)
    return Roots(settings.data_dir, settings.split_root, settings.profiles_root)


def _open(roots: Roots, sql: str, target: Path | None) -> tuple[duckdb.DuckDBPyConnection, str]:
    """The connection and the checked statement; a refused or unparsable one is one line."""
    from opchain.history.query import Refused, check_output, check_select, connect, views_in

    try:
        select = _run(lambda: check_select(sql))
        if target is not None:
            check_output(target, roots)
    except Refused as err:
        fail(f"refused: {err}")
    writes = target.resolve() if target is not None else None
    return connect(roots, writes, _run(lambda: views_in(select))), select


def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path, fmt: str) -> int:
    from opchain.history.query import copy_to

    written: int = _run(lambda: copy_to(con, select, target.resolve(), fmt))
    return written


def _run(step: Any) -> Any:
    """``step()``, a DuckDB error as one line (DuckDB's own first line), exit code 2."""
    import duckdb

    try:
        return step()
    except duckdb.Error as err:
        fail(f"bad SQL: {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
