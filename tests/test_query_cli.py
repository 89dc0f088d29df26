"""``opchain query`` and ``opchain export`` (issue 17): SQL over DuckDB views of the archive,
each view answering what the files themselves hold, read-only."""

import csv
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from opchain.cli.app import app
from opchain.history.query import VIEWS, Roots, connect, run_select
from opchain.profiles.master import parse_profile
from opchain.store import layout
from opchain.store.csvrows import aware
from opchain.store.participants import load, parse, store
from opchain.store.rawparts import read_part
from opchain.store.splits import read_split
from tests.sessions import record
from tests.test_cli import HEAVY, LOADED, one_line_error
from tests.test_participants import nse_file

DAYS = (date(2026, 11, 19), date(2026, 11, 20))
OPCHAIN = [sys.executable, "-m", "opchain"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days, a snapshot every five minutes."""
    root = tmp_path_factory.mktemp("query") / "data"
    for day in DAYS:
        record(root, day=day, cadence_seconds=300)
        store(root, parse(nse_file(day), f"fao_participant_oi_{day:%d%m%Y}.csv"))
    return root


def _roots(data_dir: Path) -> Roots:
    return Roots(data_dir, layout.split_root(data_dir), layout.profiles_root(data_dir))


def _count(data_dir: Path, sql: str) -> int:
    answer = run_select(connect(_roots(data_dir)), sql, 1)
    return int(answer.first[0][0])


def _csv_rows(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def _opchain(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([*OPCHAIN, *args], capture_output=True, text=True, check=False)


def test_each_view_holds_the_rows_of_its_files(data: Path) -> None:
    raw = layout.archive_files(layout.raw_root(data), layout.RAW_PARTS)
    splits = layout.archive_files(layout.split_root(data), layout.SPLIT_FILES)
    analytics = layout.archive_files(layout.analytics_root(data), layout.ANALYTICS_FILES)
    overview = layout.archive_files(layout.overview_root(data), layout.OVERVIEW_FILES)
    adv = layout.profiles_root(data)
    profiles = [
        *layout.archive_files(adv, layout.WEEKDAY_MASTERS),
        *layout.archive_files(adv, layout.DTE_PROFILES),
    ]
    assert raw and splits and analytics and overview and profiles
    expected = {
        "raw": sum(read_part(p).num_rows for p in raw),
        "splits": sum(len(read_split(p)) for p in splits),
        "analytics": sum(_csv_rows(p) for p in analytics),
        "overview": sum(_csv_rows(p) for p in overview),
        "profiles": sum(len(parse_profile(p.read_text(encoding="utf-8"))) for p in profiles),
        "participants": 4 * len(DAYS),
    }
    assert all(expected.values())
    found = {view: _count(data, f"SELECT count(*) FROM {view}") for view in VIEWS}
    assert found == expected
    # per file, too: the path's columns name the file each row came from
    one = splits[0]
    index, bucket, offset = one.parts[-4:-1]
    sql = (f"SELECT count(*) FROM splits WHERE index = '{index}' AND bucket = '{bucket}' "
           f"AND \"offset\" = '{offset}' AND date = DATE '{one.stem}'")  # fmt: skip
    assert _count(data, sql) == len(read_split(one))
    raw_day = sum(read_part(p).num_rows for p in raw if f"date={DAYS[0]}" in str(p))
    assert _count(data, f"SELECT count(*) FROM raw WHERE date = DATE '{DAYS[0]}'") == raw_day
    fii = _count(data, f"SELECT future_index_long FROM participants WHERE participant = 'FII' "
                       f"AND date = DATE '{DAYS[1]}'")  # fmt: skip
    assert fii == load(data, DAYS[1]).positions[2].future_index_long > 0
    weekday = sum(1 for p in profiles if "weekday_masters" in p.parts)
    keys = _count(data, "SELECT count(DISTINCT (index, bucket, \"offset\", key)) FROM profiles "
                        "WHERE kind = 'weekday'")  # fmt: skip
    assert keys == weekday


def test_the_views_columns_are_typed(data: Path) -> None:
    con = connect(_roots(data))
    types = {}
    for view in VIEWS:
        answer = run_select(con, f"SELECT * FROM {view}", 0)
        types[view] = dict(zip(answer.columns, answer.types, strict=True))
    for view in ("raw", "splits", "analytics", "overview"):
        assert types[view]["ts"] == "TIMESTAMP WITH TIME ZONE", view
    assert types["profiles"]["last_updated"] == "TIMESTAMP WITH TIME ZONE"
    assert types["raw"]["date"] == "DATE" and types["raw"]["offset"] == "SMALLINT"
    assert types["splits"]["call_oi"] == "BIGINT" and types["splits"]["spot"] == "DOUBLE"
    assert types["splits"]["expiry"] == "DATE"
    assert types["profiles"]["n_tot"] == "BIGINT"
    first = run_select(con, "SELECT ts FROM splits ORDER BY ts LIMIT 1", 1).first[0][0]
    assert first == datetime.fromisoformat(f"{DAYS[0]}T09:15:00+05:30")
    assert str(first.tzinfo) == "Asia/Kolkata"  # shown in IST
    kinds = run_select(con, "SELECT DISTINCT kind FROM profiles ORDER BY 1", 5).first
    assert kinds == [("dte",), ("weekday",)]


def test_query_prints_a_table_and_the_row_count(data: Path) -> None:
    done = _opchain("query", "SELECT index, count(*) AS n FROM overview GROUP BY ALL ORDER BY 1",
                    "-d", str(data))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "NIFTY" in done.stdout and "INDIAVIX" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "4 rows"
    joined = _opchain("query", "SELECT count(*) FROM analytics JOIN overview USING (ts, index)",
                      "-d", str(data))  # fmt: skip
    rows = _count(data, "SELECT count(*) FROM analytics JOIN overview USING (ts, index)")
    assert rows == _count(data, "SELECT count(*) FROM analytics") > 0
    assert f"│ {rows} " in joined.stdout, joined.stderr
    many = _opchain("query", "SELECT * FROM splits", "-d", str(data), "--rows", "3")
    total = _count(data, "SELECT count(*) FROM splits")
    assert many.stdout.strip().splitlines()[-1] == f"{total} rows (the first 3 shown)"


def test_query_writes_csv_and_parquet(data: Path, tmp_path: Path) -> None:
    sql = "SELECT * FROM raw WHERE side = 'CE'"
    total = _count(data, "SELECT count(*) FROM raw WHERE side = 'CE'")
    runner = CliRunner()
    for option, name in (("--csv", "a.csv"), ("--parquet", "a.parquet")):
        done = runner.invoke(app, ["query", sql, "-d", str(data), option, str(tmp_path / name)])
        assert done.exit_code == 0, done.output
        assert f"{total} rows written" in done.output
    assert _csv_rows(tmp_path / "a.csv") == total
    # an existing file is replaced (DuckDB writes tmp_<name> beside it, then renames it)
    (tmp_path / "a.csv").write_text("old\n", encoding="utf-8")
    again = runner.invoke(app, ["query", sql, "-d", str(data), "--csv", str(tmp_path / "a.csv")])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.parquet"]
    assert pq.read_table(tmp_path / "a.parquet").num_rows == total


def test_export_equals_the_split_files_rows(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "nifty.csv"
    args = ["export", "--from", str(DAYS[0]), "--to", str(DAYS[1]), "--index", "NIFTY",
            "--bucket", "this_week", "--offset", "atm", "--out", str(out),
            "-d", str(data)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    files = [layout.split_root(data) / "NIFTY" / "this_week" / "atm" / f"{d}.csv" for d in DAYS]
    expected = [r for f in files for r in read_split(f)]
    with out.open(encoding="utf-8", newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == len(expected) > 0
    stamps = [aware(g["ts"].replace(" ", "T")) for g in got]
    assert stamps == sorted(stamps) == [r.ts for r in expected]
    for g, r in zip(got, expected, strict=True):
        assert g["index"] == r.index and g["bucket"] == r.expiry_code
        assert g["offset"] == r.strike_offset and g["expiry"] == r.expiry.isoformat()
        assert float(g["total_premium"]) == r.total_premium
        assert int(g["call_oi"]) == r.call_oi and float(g["spot"]) == r.spot
        assert (float(g["call_delta"]) if g["call_delta"] else None) == r.call_delta
    whole = tmp_path / "all.parquet"
    args = ["export", "--from", str(DAYS[1]), "--to", str(DAYS[1]), "--index", "SENSEX",
            "--format", "parquet", "--out", str(whole), "-d", str(data)]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    sensex = layout.archive_files(layout.split_root(data) / "SENSEX", layout.SPLIT_FILES[2:])
    rows = sum(len(read_split(p)) for p in sensex if p.stem == str(DAYS[1]))
    table = pq.read_table(whole)
    assert table.num_rows == rows > 0
    assert table.column("ts").to_pylist() == sorted(table.column("ts").to_pylist())


def test_a_fresh_directory_answers_empty(tmp_path: Path) -> None:
    for view in VIEWS:
        done = _opchain("query", f"SELECT * FROM {view}", "-d", str(tmp_path / "fresh"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "0 rows"
    assert _count(tmp_path, "SELECT count(*) FROM splits WHERE ts IS NOT NULL") == 0


def test_a_split_file_of_an_earlier_version_reads(tmp_path: Path) -> None:
    """A file without the delta columns (OP's, an older opchain's) reads with them empty."""
    folder = layout.split_root(tmp_path) / "NIFTY" / "this_week" / "atm"
    folder.mkdir(parents=True)
    header = ("ts,index,expiry_code,expiry,strike_offset,atm_strike,spot,call_strike,put_strike,"
              "call_last_price,put_last_price,call_iv,put_iv,call_volume,put_volume,call_oi,"
              "put_oi,total_premium,days_to_expiry")  # fmt: skip
    row = ("2026-11-19T09:15:00+05:30,NIFTY,this_week,2026-11-24,atm,26000.0,26010.5,26000.0,"
           "26000.0,120.5,110.0,0.14,0.15,10,20,1000,2000,230.5,5")  # fmt: skip
    (folder / "2026-11-19.csv").write_text(f"{header}\n{row}\n", encoding="utf-8")
    # and a file of today's columns whose vols and deltas are all empty: still numbers
    empty = "2026-11-20T09:15:00+05:30,NIFTY,this_week,2026-11-24,atm,26000.0,26010.5,26000.0,"
    empty += "26000.0,120.5,110.0,,,10,20,1000,2000,230.5,4,,"
    (folder / "2026-11-20.csv").write_text(
        f"{header},call_delta,put_delta\n{empty}\n", encoding="utf-8"
    )
    con = connect(_roots(tmp_path))
    sql = "SELECT ts, total_premium, call_delta, days_to_expiry FROM splits ORDER BY ts"
    found = run_select(con, sql, 5)
    assert found.first == [
        (datetime.fromisoformat("2026-11-19T09:15:00+05:30"), 230.5, None, 5),
        (datetime.fromisoformat("2026-11-20T09:15:00+05:30"), 230.5, None, 4),
    ]
    typed = run_select(con, "SELECT call_iv, call_delta FROM splits", 0).types
    assert typed == ["DOUBLE", "DOUBLE"]


def test_a_damaged_line_is_left_out_as_the_readers_leave_it_out(data: Path, tmp_path: Path) -> None:
    """A cell that does not read as its type, a torn last line: the line is not a row, whichever
    columns the query reads (``count(*)`` too), as ``read_split`` has it."""
    whole = layout.split_root(data) / "NIFTY" / "this_week" / "atm" / f"{DAYS[0]}.csv"
    lines = whole.read_text(encoding="utf-8").splitlines()
    folder = layout.split_root(tmp_path) / "NIFTY" / "this_week" / "atm"
    folder.mkdir(parents=True)
    damaged = folder / whole.name
    cells = lines[2].split(",")
    cells[6] = "abc"  # spot
    body = [lines[0], lines[1], ",".join(cells), *lines[3:6], lines[6][:40]]
    damaged.write_text("\n".join(body), encoding="utf-8")  # the last line torn: no newline
    rows = read_split(damaged)
    assert len(rows) == 4
    assert _count(tmp_path, "SELECT count(*) FROM splits") == len(rows)
    assert _count(tmp_path, "SELECT count(spot) FROM splits") == len(rows)


def test_only_closed_parts_are_raw_legs(data: Path, tmp_path: Path) -> None:
    """A journal, a part being written, a part set aside: none is read."""
    part = layout.archive_files(layout.raw_root(data), layout.RAW_PARTS)[0]
    folder = layout.raw_root(tmp_path) / part.parent.parent.name / part.parent.name
    folder.mkdir(parents=True)
    (folder / part.name).write_bytes(part.read_bytes())
    for name in ("_journal-0930.arrows", ".part-0930.parquet.tmp", "_part-0945.parquet.damaged"):
        (folder / name).write_bytes(part.read_bytes()[:100])
    assert _count(tmp_path, "SELECT count(*) FROM raw") == read_part(part).num_rows


def test_bad_sql_isone_line_error(data: Path) -> None:
    line = one_line_error(_opchain("query", "SELEC * FROM splits", "-d", str(data)))
    assert "Parser Error" in line
    line = one_line_error(_opchain("query", "SELECT nope FROM splits", "-d", str(data)))
    assert "nope" in line


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{data}/csv_data/x.csv'",
        "ATTACH '{data}/x.duckdb'",
        "INSTALL httpfs",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; COPY (SELECT 1) TO '{data}/x.csv'",
        "SET enable_external_access = true",
    ],
)
def test_a_write_is_refused(data: Path, sql: str) -> None:
    before = sorted(data.rglob("*"))
    line = one_line_error(_opchain("query", sql.format(data=data), "-d", str(data)))
    assert "refused" in line
    assert sorted(data.rglob("*")) == before


def test_files_outside_the_archive_are_closed(data: Path, tmp_path: Path) -> None:
    outside = tmp_path / "other.csv"
    outside.write_text("a\n1\n", encoding="utf-8")
    line = one_line_error(
        _opchain("query", f"SELECT * FROM read_csv('{outside}')", "-d", str(data))
    )
    assert "Permission Error" in line
    # and the answer is not written into the archive
    into = layout.split_root(data) / "answer.csv"
    line = one_line_error(_opchain("query", "SELECT 1", "-d", str(data), "--csv", str(into)))
    assert "inside" in line and not into.exists()


@pytest.mark.parametrize("command", ["query", "export"])
def test_help_loads_no_duckdb(command: str) -> None:
    """The commands import DuckDB and pyarrow in their bodies (tests/test_cli.py's rule)."""
    code = LOADED.format(args=[command, "--help"], heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in done.stdout
    assert done.stderr.splitlines()[-1] == ""


def test_a_link_out_of_the_archive_is_not_read(data: Path, tmp_path: Path) -> None:
    whole = layout.split_root(data) / "NIFTY" / "this_week" / "atm" / f"{DAYS[0]}.csv"
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(whole.read_bytes())
    folder = layout.split_root(tmp_path / "data") / "NIFTY" / "this_week" / "atm"
    folder.mkdir(parents=True)
    (folder / whole.name).symlink_to(outside)
    assert _count(tmp_path / "data", "SELECT count(*) FROM splits") == 0
