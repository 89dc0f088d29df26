"""``opchain verify`` (issue 17): a clean simulated day scores 100 for every index; a copy with
gaps, a duplicated row, damaged lines and a lost raw part scores lower, each finding named."""

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from opchain.history.verify import WEIGHTS, Facts, score

from .sessions import DAY, record
from .test_cli import HEAVY, LOADED, one_line_error

OPCHAIN = [sys.executable, "-m", "opchain"]
INDICES = ["BANKNIFTY", "NIFTY", "SENSEX"]
CLEAN = Facts(session_minutes=375, covered=(375, 375), duplicates=0, legs=1000, bad_quotes=0,
              cycles=750, cycles_without_raw=0, bad_lines=0, bad_files=0)  # fmt: skip


def opchain(*args: str) -> "subprocess.CompletedProcess[str]":
    env = os.environ | {"COLUMNS": "200"}  # the table's rows on one line each
    return subprocess.run(
        [*OPCHAIN, "verify", *args], capture_output=True, text=True, check=False, env=env
    )


# --- the score: a pure function ---------------------------------------------------------------


def test_the_weights_make_100_and_a_clean_day_has_them_all() -> None:
    assert sum(WEIGHTS.values()) == 100
    assert score(CLEAN) == (100.0, WEIGHTS)


def test_each_part_costs_what_the_docs_say() -> None:
    # half of one file's minutes missing of two files: a quarter of coverage's 50
    assert score(replace(CLEAN, covered=(375, 187)))[1]["coverage"] == 37.4
    assert score(replace(CLEAN, duplicates=3))[1]["duplicates"] == 7.0
    assert score(replace(CLEAN, duplicates=30))[1]["duplicates"] == 0.0  # never below 0
    assert score(replace(CLEAN, bad_lines=2, bad_files=0))[1]["parse"] == 6.0
    assert score(replace(CLEAN, bad_files=1))[1]["parse"] == 0.0
    assert score(replace(CLEAN, cycles_without_raw=75))[1]["raw"] == 9.0
    assert score(replace(CLEAN, cycles=0))[1]["raw"] == 0.0  # no split row: nothing backs it
    # up to 1 % of the legs stale or crossed is free; at 6 % the part is gone
    assert score(replace(CLEAN, bad_quotes=10))[1]["quotes"] == 10.0
    assert score(replace(CLEAN, bad_quotes=35))[1]["quotes"] == 5.0
    assert score(replace(CLEAN, bad_quotes=600))[1]["quotes"] == 0.0


def test_the_score_is_floored_so_that_only_a_perfect_day_is_100() -> None:
    total, parts = score(replace(CLEAN, cycles_without_raw=1))  # 1 of 750 cycles: 0.013 lost
    assert total == 99.9 and parts["raw"] == 9.9
    total, _ = score(replace(CLEAN, covered=(375, 0), duplicates=99, bad_quotes=1000,
                             cycles_without_raw=750, bad_files=3))  # fmt: skip
    assert total == 35.0  # half the coverage is left, and the profiles
    assert score(replace(CLEAN, profiles=56, bad_profiles=2))[1]["profiles"] == 9.6


# --- a recorded day ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole simulated session (the watched band, the default glitch rate: 0.1 % of the
    quotes crossed or stale), recorded once for the module."""
    data = tmp_path_factory.mktemp("clean")
    record(data, full_chain=False)
    return data


def test_a_clean_simulated_day_scores_100_for_every_index(clean: Path) -> None:
    done = opchain("-d", str(clean), "--json")
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert [(r["day"], r["index"]) for r in reports] == [(DAY.isoformat(), i) for i in INDICES]
    for r in reports:
        assert r["score"] == 100.0 and r["parts"] == WEIGHTS
        # the simulator's glitches are found and named, costing nothing under 1 %
        assert {f["kind"] for f in r["findings"]} <= {"stale", "crossed_book"}
        assert all(f["cost"] == 0 for f in r["findings"])
    shown = opchain("-d", str(clean))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("100.0") == 3


def damage(data: Path) -> None:
    """Rows of 10:00-10:04 deleted from NIFTY's split and overview files, a row duplicated, a
    garbage line and a non-UTF-8 line added, a raw part of SENSEX lost."""
    day = DAY.isoformat()
    for path in [*data.glob(f"csv_data/NIFTY/*/*/{day}.csv"), data / f"overview/NIFTY/{day}.csv"]:
        lines = path.read_bytes().splitlines(keepends=True)
        gone = [f"T10:0{m}:".encode() for m in range(5)]
        path.write_bytes(b"".join(line for line in lines if not any(g in line for g in gone)))
    split = data / f"csv_data/NIFTY/this_week/atm/{day}.csv"
    lines = split.read_bytes().splitlines(keepends=True)
    split.write_bytes(b"".join([*lines[:20], lines[19], *lines[20:]]))  # line 21 is line 20 again
    with (data / f"overview/BANKNIFTY/{day}.csv").open("ab") as f:
        f.write(b"garbage\n" + b"\xff\xfe not text\n")
    (data / f"raw/date={day}/index=SENSEX/part-1200.parquet").unlink()


def test_a_damaged_day_scores_lower_with_each_finding_named(clean: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    damage(data)
    day = DAY.isoformat()
    done = opchain("-d", str(data), "--json", "--date", day)
    assert done.returncode == 1, done.stderr
    reports = {r["index"]: r for r in json.loads(done.stdout)}
    costly = {i: [f for f in r["findings"] if f["cost"] > 0] for i, r in reports.items()}

    nifty = reports["NIFTY"]
    files = 28 + 1  # the split files of 4 buckets x 7 offsets, and the overview file
    assert nifty["parts"]["coverage"] == 49.3  # 50 x (1 - 5/375), floored
    gaps = [f for f in costly["NIFTY"] if f["kind"] == "gap"]
    assert len(gaps) == files and {f["minute"] for f in gaps} == {"10:00-10:04"}
    assert f"overview/NIFTY/{day}.csv" in {f["file"] for f in gaps}
    assert all(f["detail"] == "5 minutes without a row" for f in gaps)
    [twice] = [f for f in costly["NIFTY"] if f["kind"] == "duplicate"]
    assert (twice["file"], twice["line"], twice["minute"]) == (
        f"csv_data/NIFTY/this_week/atm/{day}.csv",
        21,
        "09:24",
    )
    assert nifty["parts"]["duplicates"] == 9.0
    # the rows gone from every split file: each of the 56 profiles they feed (a weekday master
    # and a DTE profile per file) is no longer what a rebuild gives, 10:00 the first minute
    wrong = [f for f in costly["NIFTY"] if f["kind"] == "profile"]
    assert len(wrong) == 56 and nifty["parts"]["profiles"] == 0.0
    assert all(f["detail"].startswith("5 minutes differ from a rebuild") for f in wrong)
    assert all(", the first 10:00: " in f["detail"] for f in wrong)
    assert nifty["score"] == 88.3

    banknifty = reports["BANKNIFTY"]
    bad = [(f["kind"], f["file"], f["line"]) for f in costly["BANKNIFTY"]]
    overview = f"overview/BANKNIFTY/{day}.csv"
    lines = len((clean / overview).read_bytes().splitlines())
    assert bad == [("parse", overview, lines + 1), ("parse", overview, lines + 2)]
    reasons = [f["detail"] for f in costly["BANKNIFTY"]]
    assert reasons == ["1 cells where the header has 11; skipped", "not UTF-8 text; skipped"]
    assert banknifty["parts"]["parse"] == 6.0 and banknifty["score"] == 96.0

    sensex = reports["SENSEX"]
    [lost] = [f for f in costly["SENSEX"] if f["kind"] == "no_raw"]
    assert lost["file"] == f"raw/date={day}/index=SENSEX" and lost["minute"] == "12:00-12:14"
    assert lost["detail"] == "30 split cycles without raw legs"
    assert sensex["parts"]["raw"] == 9.6 and sensex["score"] == 99.6  # 30 of 750 cycles

    shown = opchain("-d", str(data))  # the table: the worst finding of each
    assert shown.returncode == 1
    assert "96.0" in shown.stdout and "88.3" in shown.stdout and "99.6" in shown.stdout


def test_a_file_that_cannot_be_read_costs_the_whole_parse_part(clean: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    day = DAY.isoformat()
    (data / f"analytics/NIFTY/this_week/{day}.csv").write_bytes(b"\xff\xfe\x00 junk\n")
    part = data / f"raw/date={day}/index=SENSEX/part-0915.parquet"
    part.write_bytes(b"not parquet")
    done = opchain("-d", str(data), "--json")
    assert done.returncode == 1
    reports = {r["index"]: r for r in json.loads(done.stdout)}
    [nifty] = [f for f in reports["NIFTY"]["findings"] if f["kind"] == "parse"]
    assert nifty["file"] == f"analytics/NIFTY/this_week/{day}.csv" and nifty["line"] == 1
    assert "the file is not read" in nifty["detail"]
    assert reports["NIFTY"]["parts"]["parse"] == 0.0
    [sensex] = [f for f in reports["SENSEX"]["findings"] if f["kind"] == "parse"]
    assert sensex["file"] == f"raw/date={day}/index=SENSEX/part-0915.parquet"
    assert "not a readable Parquet part" in sensex["detail"]
    assert reports["SENSEX"]["parts"]["parse"] == 0.0
    assert reports["SENSEX"]["parts"]["raw"] < 10


def test_quotes_cost_points_above_one_percent_of_the_legs(clean: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    shutil.copytree(clean, data)
    folder = data / f"raw/date={DAY.isoformat()}/index=NIFTY"
    part = folder / "part-0915.parquet"  # the first of 25 windows: 4 % of the day's legs
    table = pq.read_table(part)
    crossed = pa.array(["crossed_book"] * table.num_rows, table.schema.field("flag").type)
    pq.write_table(table.set_column(table.schema.get_field_index("flag"), "flag", crossed), part)
    share = table.num_rows / sum(pq.read_metadata(p).num_rows for p in folder.glob("part-*"))
    done = opchain("-d", str(data), "--json")
    assert done.returncode == 1
    nifty = {r["index"]: r for r in json.loads(done.stdout)}["NIFTY"]
    expected = 10 * (1 - (share - 0.01) / 0.05)  # a few glitches elsewhere add a little
    assert 0 < nifty["parts"]["quotes"] <= expected < 10
    worst = max(nifty["findings"], key=lambda f: f["cost"])
    assert (worst["kind"], worst["file"], worst["minute"]) == (
        "crossed_book",
        str(part.relative_to(data)),
        "09:15",
    )
    assert worst["detail"] == f"{table.num_rows} crossed books (the first at 09:15)"
    shown = opchain("-d", str(data))
    [row] = [line for line in shown.stdout.splitlines() if "│ NIFTY " in line]
    assert f"crossed_book: {worst['file']} at 09:15: {worst['detail']}" in row


def test_min_score_lets_cron_accept_a_threshold(clean: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    damage(data)
    assert opchain("-d", str(data), "--min-score", "88.3").returncode == 0
    assert opchain("-d", str(data), "--min-score", "88.4").returncode == 1


def test_a_range_reports_every_recorded_day(clean: Path, tmp_path: Path) -> None:
    """A day whose files hold another day's rows (copied under 2026-11-19's names) covers none
    of its own session's minutes."""
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    day, before = DAY.isoformat(), "2026-11-19"
    for path in list(data.rglob(f"{day}.csv")):
        if "instruments" not in path.parts:
            shutil.copy(path, path.with_name(f"{before}.csv"))
    done = opchain("-d", str(data), "--from", before, "--to", day, "--json")
    assert done.returncode == 1
    reports = json.loads(done.stdout)
    assert [(r["day"], r["index"]) for r in reports] == [
        (d, i) for d in (before, day) for i in INDICES
    ]
    assert [r["score"] for r in reports[3:]] == [100.0] * 3
    for r in reports[:3]:
        assert r["parts"]["coverage"] == 0.0 and r["parts"]["raw"] == 0.0
        assert any(f["kind"] == "missing" and "raw" in f["file"] for f in r["findings"])
    last = json.loads(opchain("-d", str(data), "--json").stdout)  # default: the last day
    assert {r["day"] for r in last} == {day}
    one = json.loads(opchain("-d", str(data), "--json", "--from", before, "--to", before).stdout)
    assert {r["day"] for r in one} == {before}
    one = json.loads(opchain("-d", str(data), "--json", "--date", before).stdout)
    assert {r["day"] for r in one} == {before}


def test_a_missing_overview_file_costs_its_minutes(clean: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    overview = f"overview/SENSEX/{DAY.isoformat()}.csv"
    (data / overview).unlink()
    done = opchain("-d", str(data), "--json")
    assert done.returncode == 1
    sensex = {r["index"]: r for r in json.loads(done.stdout)}["SENSEX"]
    named = [(f["kind"], f["minute"]) for f in sensex["findings"] if f["file"] == overview]
    assert named == [("missing", None), ("gap", "09:15-15:29")]
    files = 4 * 7 + 1  # the split files of 4 buckets x 7 offsets, and the overview file
    assert sensex["parts"]["coverage"] == math.floor(500 * (files - 1) / files) / 10


def test_profiles_edited_by_hand_are_named_findings(clean: Path, tmp_path: Path) -> None:
    """A cell of a weekday master changed, the day taken out of a DTE profile's ledger: each a
    ``profile`` finding naming the file and what differs, costing its share of the part."""
    data = tmp_path / "data"
    shutil.copytree(clean, data)
    day = DAY.isoformat()
    master = data / "data_adv/weekday_masters/NIFTY/this_week/atm/fri.csv"
    lines = master.read_text().splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if line.startswith("10:00,")]
    cells = lines[at].split(",")
    cells[2:6] = ["1.00", "1.000000", "1.00", "1.00"]  # the sum, the mean, the low, the high
    master.write_text("".join([*lines[:at], ",".join(cells), *lines[at + 1 :]]))
    [dte] = (data / "data_adv/dte_profiles/NIFTY/next_week/atm_p1").glob("dte*.csv")
    ledger = dte.with_name(dte.name + ".ledger")
    ledger.write_text(ledger.read_text().replace(f"{day}\n", ""))
    done = opchain("-d", str(data), "--json", "--date", day)
    assert done.returncode == 1, done.stderr
    reports = {r["index"]: r for r in json.loads(done.stdout)}
    nifty = reports["NIFTY"]
    found = {f["file"]: f for f in nifty["findings"] if f["kind"] == "profile"}
    assert sorted(found) == [str(p.relative_to(data)) for p in (dte, master)]
    edited = found[str(master.relative_to(data))]["detail"]
    assert edited.startswith("changed since its last save (its ledger's hash differs); ")
    assert "1 minute differs from a rebuild from the split files, the first 10:00: " in edited
    assert f"'{','.join(cells).strip()}' where the rebuild has '{lines[at].strip()}'" in edited
    missing = found[str(dte.relative_to(data))]["detail"]
    assert missing == f"holds no {day} (its ledger: 0 days)"
    profiles = 28 * 2  # a weekday master and a DTE profile for each split file
    assert nifty["parts"]["profiles"] == math.floor(100 * (1 - 2 / profiles)) / 10  # 9.6
    assert nifty["score"] == 99.6
    assert [r["score"] for i, r in reports.items() if i != "NIFTY"] == [100.0, 100.0]


# --- bad input: one line, exit code 2 --------------------------------------------------------


def test_bad_input_is_one_line(clean: Path, tmp_path: Path) -> None:
    d = ["-d", str(clean)]
    assert "2026-11-23 is not recorded" in one_line_error(opchain(*d, "--date", "2026-11-23"))
    assert "recorded: 2026-11-20" in one_line_error(opchain(*d, "--date", "2026-11-23"))
    said = one_line_error(opchain(*d, "--from", "2026-11-21", "--to", "2026-11-20"))
    assert "--from 2026-11-21 is after --to 2026-11-20" in said
    said = one_line_error(opchain(*d, "--date", "2026-11-20", "--from", "2026-11-01"))
    assert "give one or the other" in said
    said = one_line_error(opchain(*d, "--from", "2026-12-01"))
    assert "no day from 2026-12-01 to the last is recorded" in said
    assert "no recorded day under" in one_line_error(opchain("-d", str(tmp_path)))
    bad = opchain(*d, "--date", "20-11-2026")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_help_loads_no_numeric_library() -> None:
    code = LOADED.format(args=["verify", "--help"], heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines()[-1] == ""
    assert "Usage" in done.stdout
