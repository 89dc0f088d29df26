"""NSE's participant-wise open interest (docs/participants.md): NSE's file as NSE serves it,
imported with ``opchain participants import``, fetched with ``opchain participants fetch`` from a
local server standing in for NSE's archive, read back through ``/participants`` and shown by
the dashboard in headless Chromium with the API's values."""

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.api.app import create_app
from opchain.settings import Settings
from opchain.store import layout
from opchain.store.participants import (
    COUNTS,
    FIELDS,
    PARTICIPANTS,
    ParticipantsError,
    decode,
    encode,
    file_name,
    load,
    parse,
    stored_days,
)

from .apiserver import running

OPCHAIN = [sys.executable, "-m", "opchain"]
HANG = 120  # s: a guard against a command that hangs, not a timing

# NSE's file of 19 Jun 2026 as NSE serves it: the title quoted NSE's odd way and padded with
# empty cells, the stray tabs in two header names, CRLF line ends (docs/participants.md).
NSE_FILE = (
    b'""Participant wise Open Interest (no. of contracts) in Equity Derivatives as on Jun 19, '
    b'2026"",,,,,,,,,,,,,,\r\n'
    b"Client Type,Future Index Long,Future Index Short,Future Stock Long,Future Stock Short\t,"
    b"Option Index Call Long,Option Index Put Long,Option Index Call Short,Option Index Put Short,"
    b"Option Stock Call Long,Option Stock Put Long,Option Stock Call Short,Option Stock Put Short,"
    b"Total Long Contracts\t,Total Short Contracts\r\n"
    b"Client,238409,76124,3299193,282940,3119888,2416378,2974782,3193601,2663304,863992,1441716,"
    b"1227636,12601164,9196799\r\n"
    b"DII,84100,11589,459287,4594205,12434,22666,430,135,816,36008,421905,17617,615311,5045881\r\n"
    b"FII,39587,266010,4108754,3474848,640164,1157965,940484,528275,302448,430391,476136,294863,"
    b"6679309,5980616\r\n"
    b"Pro,46731,55104,1027166,542407,1216287,1043549,1073078,918547,1273667,1216947,1900478,"
    b"1007222,5824347,5496836\r\n"
    b"TOTAL,408827,408827,8894400,8894400,4988774,4640558,4988774,4640558,4240235,2547338,"
    b"4240235,2547338,25720132,25720132\r\n"
)
DAY = date(2026, 6, 19)
NSE_NAME = "fao_participant_oi_19062026.csv"
FII_ROW = [39587, 266010, 4108754, 3474848, 640164, 1157965, 940484, 528275, 302448, 430391,
           476136, 294863, 6679309, 5980616]  # fmt: skip
# NSE's file of 16 Sep 2026 (LF line ends, spaces in place of the tabs, as a copy of it has
# them): its TOTAL misses the sum of the four rows by a contract in two columns, and three
# rows' totals miss theirs by one (NSE's rounding: docs/participants.md).
NSE_SEP_16 = (
    b'""Participant wise Open Interest (no. of contracts) in Equity Derivatives as on Sep 16, '
    b'2026"",,,,,,,,,,,,,,\n'
    b"Client Type,Future Index Long,Future Index Short,Future Stock Long,Future Stock Short       ,"
    b"Option Index Call Long,Option Index Put Long,Option Index Call Short,Option Index Put Short,"
    b"Option Stock Call Long,Option Stock Put Long,Option Stock Call Short,Option Stock Put Short,"
    b"Total Long Contracts      ,Total Short Contracts\n"
    b"Client,289936,56634,3445234,228230,3011455,2259579,2713125,2870213,2876957,831918,1453842,"
    b"1227293,12715079,8549336\n"
    b"DII,40557,28011,360574,4613178,5539,50325,1963,0,4956,45256,401796,24249,507207,5069197\n"
    b"FII,47446,335549,3454477,2918400,598953,1136529,887159,556367,208469,401867,463506,202412,"
    b"5847742,5363394\n"
    b"Pro,72202,29947,899938,400415,924260,858812,937961,878666,975180,1111455,1746418,936542,"
    b"4841847,4929948\n"
    b"TOTAL,450141,450141,8160223,8160223,4540207,4305245,4540207,4305245,4065562,2390496,"
    b"4065562,2390496,23911875,23911875\n"
)
HEADER_LINE = NSE_FILE.split(b"\r\n")[1].decode()
LONGS = (0, 2, 4, 5, 8, 9)  # NSE's long columns after Client Type, 0-based; then the short
SHORTS = (1, 3, 6, 7, 10, 11)


def nse_file(day: date, shift: int = 0) -> bytes:
    """A file in NSE's layout for ``day``: NSE_FILE's, FII's index futures longer by ``shift``
    contracts and Client's shorter (so TOTAL's long and short columns grow alike, and NSE's
    own rounding in the totals stays as it was)."""
    lines = NSE_FILE.decode().split("\r\n")
    rows = {}
    for line in lines[2:7]:
        label, *cells = line.split(",")
        rows[label] = [int(c) for c in cells]
    for label, column, total in (("FII", 0, 12), ("Client", 1, 13)):
        rows[label][column] += shift
        rows[label][total] += shift
    for column in (0, 1, 12, 13):
        rows["TOTAL"][column] += shift
    title = lines[0].replace("Jun 19, 2026", f"{day:%b %d, %Y}")
    body = [",".join([label, *map(str, cells)]) for label, cells in rows.items()]
    return ("\r\n".join([title, lines[1], *body]) + "\r\n").encode()


def opchain(
    args: list[str], env: dict[str, str] | None = None
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([*OPCHAIN, *args], capture_output=True, text=True, check=False,
                          env=env, timeout=HANG)  # fmt: skip


def errors(done: "subprocess.CompletedProcess[str]") -> list[str]:
    """The error lines a command printed (no traceback anywhere)."""
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), done.stderr
    return lines


# ---------------------------------------------------------------- NSE's file


def test_nses_file_is_read_to_its_exact_values() -> None:
    found = parse(NSE_FILE, NSE_NAME)
    assert found.day == DAY
    assert [p.participant for p in found.positions] == list(PARTICIPANTS)
    fii = found.positions[2]
    assert [getattr(fii, name) for name in COUNTS] == FII_ROW
    assert (fii.net_index_futures, fii.net_index_calls, fii.net_index_puts) == (
        39587 - 266010, 640164 - 940484, 1157965 - 528275)  # fmt: skip


def test_the_generated_files_are_nses_layout() -> None:
    assert nse_file(DAY) == NSE_FILE
    assert parse(nse_file(date(2026, 11, 20), 500), "x.csv").positions[2].future_index_long == 40087


def test_nses_rounding_in_the_totals_is_accepted_and_no_more() -> None:
    """NSE's TOTAL of 16 Sep 2026 is a contract off the rows' sum in two columns, as is its
    file of 19 Jun in one; two contracts more is a file that does not add up."""
    found = parse(NSE_SEP_16, "fao_participant_oi_16092026.csv")
    assert found.day == date(2026, 9, 16)
    assert found.positions[3].option_stock_put_short == 936542
    off = NSE_SEP_16.replace(
        b"4540207,4305245,4540207,4305245,", b"4540207,4305245,4540210,4305245,"
    )
    with pytest.raises(ParticipantsError, match="Option Index Call Long is 4540207 but Option "
                       "Index Call Short is 4540210"):  # fmt: skip
        parse(off, "x.csv")
    both = NSE_SEP_16.replace(b"4540207,4305245,4540207,", b"4540210,4305245,4540210,")
    with pytest.raises(ParticipantsError, match="line 7: TOTAL Option Index Call Long is 4540210, "
                       "not the sum of the four rows, 4540207"):  # fmt: skip
        parse(both, "x.csv")


@pytest.mark.parametrize(
    "variant",
    [
        NSE_FILE.replace(b"\r\n", b"\n"),  # LF line ends
        b"\xef\xbb\xbf" + NSE_FILE,  # a byte-order mark
        NSE_FILE.replace(b"\t,", b"      ,"),  # spaces instead of the tabs
        NSE_FILE.replace(b"Client,238409,", b'Client,"2,38,409",').replace(
            b"DII,84100,", b'DII,"84,100",'
        ),  # quoted numbers, thousands separators
        NSE_FILE.replace(b"\r\n", b",,\r\n"),  # trailing empty cells everywhere
        NSE_FILE + b",,,,,,,,,,,,,,\r\n\r\n",  # an empty line of cells at the end
        NSE_FILE.split(b"\r\n", 1)[1],  # no title (NSE left it out some days): the name's day
    ],
)
def test_what_nses_files_vary_in_is_read_alike(variant: bytes) -> None:
    assert parse(variant, f"/in/{NSE_NAME}") == parse(NSE_FILE, NSE_NAME)


def _bad(old: bytes, new: bytes, count: int = 1) -> bytes:
    assert old in NSE_FILE
    return NSE_FILE.replace(old, new, count)


BAD = {
    "wrong header": (
        _bad(b"Future Index Short", b"Future Index Shrt"),
        2,
        "column 3 is 'Future Index Shrt', not 'Future Index Short'",
    ),
    "not a number": (
        _bad(b"DII,84100,", b"DII,84l00,"),
        4,
        "Future Index Long is '84l00', not a whole number",
    ),
    "negative": (
        _bad(b"Pro,46731,", b"Pro,-46731,"),
        6,
        "Future Index Long is '-46731', not a whole number",
    ),
    "a missing row": (
        _bad(NSE_FILE.split(b"\r\n")[4] + b"\r\n", b""),
        5,
        "expected the FII row, found 'Pro'",
    ),
    "TOTAL not the sum": (
        _bad(b"TOTAL,408827,408827,", b"TOTAL,418827,418827,"),
        7,
        "TOTAL Future Index Long is 418827, not the sum of the four rows, 408827",
    ),
    "TOTAL long not short": (
        _bad(b"TOTAL,408827,408827,", b"TOTAL,408827,408828,"),
        7,
        "TOTAL Future Index Long is 408827 but Future Index Short is 408828",
    ),
    "a row's total not its sum": (
        _bad(b"6679309,5980616", b"6679313,5980616"),
        5,
        "the FII row's Total Long Contracts is 6679313, not the sum of its columns, 6679309",
    ),
    "truncated": (NSE_FILE[: NSE_FILE.index(b"Pro,") + 20], 6, "the Pro row has 3 numbers, not 14"),
    "cut after a row": (
        NSE_FILE[: NSE_FILE.index(b"TOTAL")],
        7,
        "the file ends before the TOTAL row",
    ),
    "empty": (b"", 1, "the file is empty"),
    "only the title": (b"\r\n" + NSE_FILE.split(b"\r\n")[0] + b"\r\n", 3, "ends before the header"),
    "no title, no day": (NSE_FILE.split(b"\r\n", 1)[1], 1, "no day: neither a title"),
    "wrong date": (
        _bad(b"Jun 19, 2026", b"Jun 18, 2026"),
        1,
        "the title's day 2026-06-18 is not the file name's 2026-06-19",
    ),
    "no date": (_bad(b"as on Jun 19, 2026", b"as on Jun 31, 2026"), 1, "the title names no day"),
    "a short row": (
        _bad(b",1227636,12601164,9196799", b",1227636,12601164"),
        3,
        "the Client row has 13 numbers, not 14",
    ),
    "a line after TOTAL": (NSE_FILE + b"FII,1,2\r\n", 8, "a line after the TOTAL row"),
    "not text": (_bad(b"Pro,", b"Pro\xff,"), 6, "not text"),
}


def bad_name(case: str) -> str:
    """The name a bad file is given: NSE's, but where its day would save it."""
    return "participants.csv" if case == "no title, no day" else NSE_NAME


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_refused_naming_the_file_and_line(case: str) -> None:
    data, line, says = BAD[case]
    name = bad_name(case)
    with pytest.raises(ParticipantsError) as raised:
        parse(data, f"in/{name}")
    assert str(raised.value).startswith(f"in/{name} line {line}: "), str(raised.value)
    assert says in str(raised.value)


# ---------------------------------------------------------------- import


def test_import_says_each_bad_file_in_its_one_line_and_keeps_nothing(tmp_path: Path) -> None:
    folders = []
    for n, case in enumerate(BAD):
        folder = tmp_path / f"case{n:02d}"
        folder.mkdir()
        (folder / bad_name(case)).write_bytes(BAD[case][0])
        folders.append(folder / bad_name(case))
    data = tmp_path / "data"
    done = opchain(["participants", "import", *map(str, folders), "-d", str(data)])
    assert done.returncode == 2
    lines = errors(done)
    assert len(lines) == len(BAD)
    for line, path, (_, at, says) in zip(lines, folders, BAD.values(), strict=True):
        assert line.startswith(f"error: {path} line {at}: ") and says in line, line
    assert f"0 of {len(BAD)} files imported; {len(BAD)} refused" in done.stdout
    assert not layout.participants_root(data).exists()


def test_import_keeps_good_files_and_refuses_a_bad_one_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = tmp_path / NSE_NAME
    good.write_bytes(NSE_FILE)
    other = tmp_path / file_name(date(2026, 11, 20))
    other.write_bytes(nse_file(date(2026, 11, 20), 700))
    bad = tmp_path / file_name(date(2026, 11, 23))
    bad.write_bytes(BAD["TOTAL not the sum"][0].replace(b"Jun 19", b"Nov 23"))
    done = opchain(["participants", "import", str(good), str(bad), str(other), "-d", str(data)])
    assert done.returncode == 2
    assert errors(done) == [f"error: {bad} line 7: TOTAL Future Index Long is 418827, not the sum "
                            "of the four rows, 408827"]  # fmt: skip
    assert "2 of 3 files imported; 1 refused" in done.stdout
    assert stored_days(data) == [DAY, date(2026, 11, 20)]
    assert not layout.participants_path(data, date(2026, 11, 23)).exists()
    assert load(data, DAY) == parse(NSE_FILE, NSE_NAME)
    kept = layout.participants_path(data, DAY).read_text()
    assert kept.splitlines()[0] == ",".join(FIELDS)
    assert kept.splitlines()[3] == "FII," + ",".join(map(str, FII_ROW))


def test_importing_a_day_again_keeps_one_copy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = tmp_path / "a" / NSE_NAME
    first.parent.mkdir()
    first.write_bytes(NSE_FILE)
    assert opchain(["participants", "import", str(first), "-d", str(data)]).returncode == 0
    path = layout.participants_path(data, DAY)
    before = path.stat().st_mtime_ns, path.read_bytes()
    again = opchain(["participants", "import", str(first), "-d", str(data)])
    assert again.returncode == 0 and "the same: unchanged" in again.stdout
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    changed = tmp_path / "b" / NSE_NAME
    changed.parent.mkdir()
    changed.write_bytes(nse_file(DAY, 1000))
    replaced = opchain(["participants", "import", str(changed), "-d", str(data)])
    assert replaced.returncode == 0 and "replacing a different copy" in replaced.stdout
    assert load(data, DAY).positions[2].future_index_long == 39587 + 1000
    assert sorted(p.name for p in layout.participants_root(data).iterdir()) == ["2026-06-19.csv"]


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / NSE_NAME
    fifo = tmp_path / "fao_participant_oi_20112026.csv"
    os.mkfifo(fifo)  # opened to read, it would wait for a writer for ever
    large = tmp_path / "fao_participant_oi_23112026.csv"
    large.write_bytes(NSE_FILE + b"," * 1_000_000)
    done = opchain(["participants", "import", str(missing), str(fifo), str(large),
                    "-d", str(tmp_path / "data")])  # fmt: skip
    assert done.returncode == 2
    assert errors(done) == [
        f"error: {missing}: No such file or directory",
        f"error: {fifo}: not a regular file",
        f"error: {large} line 1: more than 1,000,000 bytes: not NSE's file",
    ]
    assert "0 of 3 files imported; 3 refused" in done.stdout


def test_a_data_directory_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    good = tmp_path / NSE_NAME
    good.write_bytes(NSE_FILE)
    blocked = tmp_path / "data"
    blocked.mkdir()
    (blocked / "participants").write_text("a file where the folder goes")
    done = opchain(["participants", "import", str(good), "-d", str(blocked)])
    (line,) = errors(done)
    assert done.returncode == 2
    assert str(blocked / "participants") in line and f"({good} and the files after it" in line
    a_file = tmp_path / "file"
    a_file.write_text("")
    for command in (["import", str(good)], ["fetch", "--from", "2026-11-27"]):
        done = opchain(["participants", *command, "-d", str(a_file)])
        assert errors(done) == [f"error: data directory {a_file} is a file, not a directory"]
        assert done.returncode == 2


# ---------------------------------------------------------------- fetch from a local "NSE"


@dataclass
class Archive:
    """NSE's archive on a loopback port: the files it has, the requests it saw."""

    files: dict[str, bytes]
    seen: list[tuple[str, str]] = field(default_factory=list)
    referers: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def archive() -> Iterator[Archive]:
    served = Archive(files={})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.seen.append((self.path, self.headers.get("User-Agent", "")))
            served.referers.append(self.headers.get("Referer", ""))
            name = self.path.rsplit("/", 1)[-1]
            body = served.files.get(name) if self.path.startswith("/content/nsccl/") else None
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Type", "text/csv" if body else "text/html")
            payload = body if body is not None else b"<html>Not Found</html>"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/content/nsccl"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "OPCHAIN_PARTICIPANTS_URL": url}


def test_fetch_takes_the_trading_days_of_a_range(tmp_path: Path, archive: Archive) -> None:
    """19 Nov (kept already), 20 Nov, the weekend, 23 Nov (no file yet: 404), 24 Nov (a
    holiday), 25 Nov."""
    data = tmp_path / "data"
    stored = tmp_path / file_name(date(2026, 11, 19))
    stored.write_bytes(nse_file(date(2026, 11, 19), 100))
    assert opchain(["participants", "import", str(stored), "-d", str(data)]).returncode == 0
    for day, shift in ((date(2026, 11, 19), 999), (date(2026, 11, 20), 200),
                       (date(2026, 11, 25), 300)):  # fmt: skip
        archive.files[file_name(day)] = nse_file(day, shift)
    done = opchain(["participants", "fetch", "--from", "2026-11-19", "--to", "2026-11-25",
                    "-d", str(data)], env=env_for(archive.url))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert errors(done) == []
    asked = [path.rsplit("/", 1)[-1] for path, _ in archive.seen]
    assert asked == ["fao_participant_oi_20112026.csv", "fao_participant_oi_23112026.csv",
                     "fao_participant_oi_25112026.csv"]  # fmt: skip
    assert all(agent.startswith("Mozilla/5.0") for _, agent in archive.seen)
    assert set(archive.referers) == {"https://www.nseindia.com/"}
    assert "2026-11-23: no file at" in done.stdout and "(404)" in done.stdout
    assert "2026-11-19: already stored, skipped" in done.stdout
    assert "4 trading days: 2 fetched, 1 already stored, 1 without a file, 0 failed" in done.stdout
    assert stored_days(data) == [date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 25)]
    assert load(data, date(2026, 11, 19)).positions[2].future_index_long == 39587 + 100
    assert load(data, date(2026, 11, 25)).positions[2].future_index_long == 39587 + 300
    forced = opchain(["participants", "fetch", "--from", "2026-11-19", "--to", "2026-11-19",
                      "--force", "-d", str(data)], env=env_for(archive.url))  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert "replacing a different copy" in forced.stdout
    assert load(data, date(2026, 11, 19)).positions[2].future_index_long == 39587 + 999


def test_fetch_says_each_failed_day_and_keeps_the_others(tmp_path: Path, archive: Archive) -> None:
    data = tmp_path / "data"
    bad = nse_file(date(2026, 11, 26)).replace(b"TOTAL,408827,408827", b"TOTAL,408820,408820")
    archive.files[file_name(date(2026, 11, 26))] = bad
    archive.files[file_name(date(2026, 11, 27))] = nse_file(date(2026, 11, 27), 50)
    done = opchain(["participants", "fetch", "--from", "2026-11-26", "--to", "2026-11-27",
                    "-d", str(data)], env=env_for(archive.url))  # fmt: skip
    assert done.returncode == 2
    (line,) = errors(done)
    assert line.startswith(f"error: {archive.url}/fao_participant_oi_26112026.csv line 7: TOTAL")
    assert stored_days(data) == [date(2026, 11, 27)]
    assert "1 failed" in done.stdout


def test_fetch_from_nowhere_is_one_line_a_day(tmp_path: Path) -> None:
    sock = socket.socket()  # a port nothing listens on: bound, then closed
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    done = opchain(["participants", "fetch", "--from", "2026-11-26", "--to", "2026-11-27",
                    "-d", str(tmp_path)], env=env_for(f"http://127.0.0.1:{port}/x"))  # fmt: skip
    assert done.returncode == 2
    lines = errors(done)
    assert [line.split(":")[1].strip() for line in lines] == ["2026-11-26", "2026-11-27"]
    assert all("ConnectError" in line for line in lines)


def test_a_range_backwards_or_without_trading_days_is_one_line(tmp_path: Path) -> None:
    backwards = opchain(["participants", "fetch", "--from", "2026-11-27", "--to", "2026-11-26",
                         "-d", str(tmp_path)])  # fmt: skip
    assert backwards.returncode == 2 and errors(backwards) == [
        "error: --from 2026-11-27 is after --to 2026-11-26"]  # fmt: skip
    weekend = opchain(["participants", "fetch", "--from", "2026-11-28", "--to", "2026-11-29",
                       "-d", str(tmp_path)])  # fmt: skip
    assert weekend.returncode == 2 and errors(weekend) == [
        "error: no trading day from 2026-11-28 to 2026-11-29"]  # fmt: skip


# ---------------------------------------------------------------- the API


def kept_days(data: Path) -> dict[date, int]:
    """Three days kept by the importer, FII's index futures moved differently each day."""
    shifts = {date(2026, 11, 20): 0, date(2026, 11, 23): 2500, date(2026, 11, 25): -1200}
    folder = data.parent / "nse"
    folder.mkdir(exist_ok=True)
    paths = []
    for day, shift in shifts.items():
        path = folder / file_name(day)
        path.write_bytes(nse_file(day, shift))
        paths.append(str(path))
    done = opchain(["participants", "import", *paths, "-d", str(data)])
    assert done.returncode == 0, done.stderr
    return shifts


@contextmanager
def api(data: Path) -> Iterator[httpx.Client]:
    """The API over ``data`` under a real server on a loopback port."""
    with (
        running(create_app(Settings(data_dir=data))) as served,
        httpx.Client(base_url=served.url, timeout=HANG) as client,
    ):
        yield client


def test_the_api_answers_the_imported_values_and_their_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shifts = kept_days(data)
    with api(data) as client:
        answers_the_imported_values(client, shifts)


def answers_the_imported_values(client: httpx.Client, shifts: dict[date, int]) -> None:
    body = client.get("/participants").json()
    assert [d["date"] for d in body["days"]] == ["2026-11-20", "2026-11-23", "2026-11-25"]
    assert [d["previous"] for d in body["days"]] == [None, "2026-11-20", "2026-11-23"]
    for answered in body["days"]:
        day = date.fromisoformat(answered["date"])
        expected = parse(nse_file(day, shifts[day]), file_name(day))
        for row, position in zip(answered["rows"], expected.positions, strict=True):
            assert {k: row[k] for k in FIELDS} == {k: getattr(position, k) for k in FIELDS}
            assert (
                row["net_index_futures"] == position.future_index_long - position.future_index_short
            )
    first, second, third = body["days"]
    assert all(row["change"] is None for row in first["rows"])
    fii, client_row = second["rows"][2], second["rows"][0]
    assert fii["change"] == {"net_index_futures": 2500, "net_index_calls": 0, "net_index_puts": 0}
    assert client_row["change"]["net_index_futures"] == -2500
    assert third["rows"][2]["change"]["net_index_futures"] == -3700
    one = client.get("/participants", params={"from": "2026-11-25", "to": "2026-11-25"}).json()
    assert one["days"] == [third]  # the change still against the day kept before
    assert client.get("/participants", params={"from": "2026-12-01"}).json() == {"days": []}
    backwards = client.get("/participants", params={"from": "2026-11-25", "to": "2026-11-20"})
    assert backwards.status_code == 422 and "after" in backwards.json()["detail"]
    assert client.get("/participants", params={"to": "2026-02-30"}).status_code == 422


def test_a_damaged_kept_day_is_left_out_and_named_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    kept_days(data)
    damaged = layout.participants_path(data, date(2026, 11, 23))
    damaged.write_text("junk\n")
    with caplog.at_level("WARNING", logger="opchain.api.routes.participants"), api(data) as client:
        body = client.get("/participants").json()
        again = client.get("/participants", params={"from": "2026-11-25"}).json()
    assert [(d["date"], d["previous"]) for d in body["days"]] == [
        ("2026-11-20", None), ("2026-11-25", "2026-11-20")]  # fmt: skip
    assert again["days"] == body["days"][1:]  # its change against the last readable day
    assert again["days"][0]["rows"][2]["change"]["net_index_futures"] == -1200
    named = [r.getMessage() for r in caplog.records if str(damaged) in r.getMessage()]
    assert len(named) == 1 and "not opchain's participants header" in named[0]


def test_encode_is_the_kept_file(tmp_path: Path) -> None:
    found = parse(NSE_FILE, NSE_NAME)
    assert encode(found).decode().splitlines()[1].startswith("Client,238409,76124,")


def test_participants_against_its_schema_over_days_kept(tmp_path: Path) -> None:
    """``/participants`` (days kept, changes, empty ranges) against the OpenAPI schema, as
    tests/test_api_schema.py checks the others (it has no participant data)."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    data = tmp_path / "data"
    kept_days(data)
    config = Settings(data_dir=data, api_keys="k", api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    app = create_app(config)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    (operation,) = [
        found.ok() for found in schema.get_all_operations() if found.ok().path == "/participants"
    ]
    answered: list[int] = []

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=150, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            headers={"X-API-Key": "k"}, excluded_checks=[positive_data_acceptance]
        )
        answered.append(len(response.json().get("days", [])))

    check()
    assert len(answered) >= 100 and max(answered) == 3  # some cases answered every day kept


# ---------------------------------------------------------------- the dashboard


def grouped(value: int, change: bool = False) -> str:
    """``value`` as the panel shows it: grouped the Indian way (12,34,567), a real minus sign,
    a plus sign on a rise when it is a change."""
    digits = str(abs(value))
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    text = ",".join(([head] if head else []) + groups + [tail])
    return ("\u2212" if value < 0 else "+" if change and value > 0 else "") + text


def test_grouped() -> None:
    assert [grouped(v) for v in (0, 999, 1000, -123456, 12345678)] == [
        "0", "999", "1,000", "\u2212" + "1,23,456", "1,23,45,678"]  # fmt: skip
    assert grouped(2500, change=True) == "+2,500"


@pytest.mark.e2e
def test_the_dashboard_panel_shows_the_apis_values(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    assert chromium.exists(), "the dashboard tests need Debian's chromium at /usr/bin/chromium"
    data = tmp_path / "data"  # nothing kept yet: the panel says so, and nothing failed
    config = Settings(data_dir=data, api_keys="k")  # type: ignore[arg-type]
    with (
        running(create_app(config)) as served,
        httpx.Client(base_url=served.url, headers={"X-API-Key": "k"}) as client,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        context.add_init_script("localStorage.setItem('opchain.apiKey', 'k')")
        other_hosts: list[str] = []

        def only_the_api(route: Any) -> None:
            if route.request.url.startswith(served.url + "/"):
                route.continue_()
            else:
                other_hosts.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_api)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page_errors: list[str] = []
        page.on("pageerror", lambda err: page_errors.append(str(err)))
        page.goto(f"{served.url}/")
        page.wait_for_function(
            "document.querySelector('#participants-facts').textContent.includes('no days kept')"
        )
        assert page.locator("#panel-participants > .panel-msg").is_hidden()
        assert page.locator("#participants-table tr").count() == 0
        kept_days(data)
        body = client.get("/participants").json()
        page.reload()
        page.wait_for_function(
            "document.querySelectorAll('#participants-table tr[data-participant]').length === 4"
        )
        latest = body["days"][-1]
        assert page.get_attribute("#participants-facts", "data-date") == latest["date"]
        for row in latest["rows"]:
            line = page.locator(f"#participants-table tr[data-participant='{row['participant']}']")
            for name in ("net_index_futures", "net_index_calls", "net_index_puts"):
                cell = line.locator(f"[data-field='{name}']")
                assert int(cell.get_attribute("data-value") or "") == row[name]
                assert cell.inner_text() == grouped(row[name])
                moved = line.locator(f"[data-field='{name}_change']")
                assert int(moved.get_attribute("data-value") or "") == row["change"][name]
                assert moved.inner_text() == grouped(row["change"][name], change=True)
        fii = page.locator("#participants-table tr[data-participant='FII']")
        assert fii.locator("[data-field='net_index_futures_change']").inner_text() == (
            "\u2212" + "3,700"
        )
        # the chart: a line per participant over the three days, the futures, then the calls
        page.wait_for_selector("#participants-chart .uplot")
        assert page.locator("#participants-chart .u-legend .u-series").count() == 5
        for mode, field in (("futures", "net_index_futures"), ("calls", "net_index_calls")):
            page.click(f"#participants-mode button[data-mode='{mode}']")
            page.wait_for_function(
                f"document.querySelector('#participants-chart').dataset.mode === '{mode}'"
            )
            drawn = json.loads(page.get_attribute("#participants-chart", "data-series") or "")
            assert drawn == {
                name: [next(r[field] for r in d["rows"] if r["participant"] == name)
                       for d in body["days"]]
                for name in ("Client", "DII", "FII", "Pro")
            }  # fmt: skip
            assert page.get_attribute(f"#participants-mode button[data-mode='{mode}']",
                                      "aria-pressed") == "true"  # fmt: skip
        assert page.locator("#panel-participants > .panel-msg").is_hidden()
        # on a phone the panel fits the screen: nothing of it sticks out to the right
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_function(
            "document.querySelector('#participants-chart .uplot').getBoundingClientRect().right"
            " <= document.documentElement.clientWidth"
        )
        widest = page.evaluate(
            """() => Math.max(...[...document.querySelectorAll('#panel-participants *')]
                 .filter(e => e.getClientRects().length)
                 .map(e => e.getBoundingClientRect().right))"""
        )
        assert widest <= 390.5
        assert page_errors == [] and other_hosts == []
        browser.close()


# ---------------------------------------------------------------- any file NSE could write


@st.composite
def nse_days(draw: st.DrawFn) -> tuple[date, dict[str, list[int]]]:
    """A day and four participants' twelve columns; the totals follow from them."""
    day = draw(st.dates(date(2012, 1, 1), date(2026, 12, 31)))
    counts = st.integers(0, 50_000_000)
    rows = {label: draw(st.lists(counts, min_size=12, max_size=12)) for label in PARTICIPANTS}
    return day, rows


def written(day: date, rows: dict[str, list[int]], style: dict[str, Any]) -> bytes:
    """The file NSE would write for ``rows``, in one of the ways copies of it vary."""

    def number(n: int) -> str:
        return f'"{n:,}"' if style["quoted"] else str(n)

    full = {label: [*cells, sum(cells[i] for i in LONGS), sum(cells[i] for i in SHORTS)]
            for label, cells in rows.items()}  # fmt: skip
    total = [sum(r[i] for r in full.values()) for i in range(14)]
    for long, short in (*zip(LONGS, SHORTS, strict=True), (12, 13)):
        total[long] = total[short] = max(total[long], total[short])  # NSE: long = short
    header = HEADER_LINE.replace("\t", style["gap"])
    lines = [f'""Participant wise Open Interest (no. of contracts) in Equity Derivatives as on '
             f'{day:%b %d, %Y}"",,,,,,,,,,,,,,'] if style["title"] else []  # fmt: skip
    lines.append(header)
    for label, cells in [*full.items(), ("TOTAL", total)]:
        lines.append(",".join([label, *map(number, cells)]) + style["trail"])
    end = style["end"]
    return style["bom"] + (end.join(lines) + end).encode()


STYLES = st.fixed_dictionaries({
    "quoted": st.booleans(), "gap": st.sampled_from(["\t", " ", "      ", ""]),
    "title": st.booleans(), "trail": st.sampled_from(["", ",", ",,,"]),
    "end": st.sampled_from(["\r\n", "\n"]), "bom": st.sampled_from([b"", b"\xef\xbb\xbf"]),
})  # fmt: skip


@given(found=nse_days(), style=STYLES)
@settings(max_examples=200, deadline=None)
def test_any_consistent_file_reads_back_to_its_rows(
    found: tuple[date, dict[str, list[int]]], style: dict[str, Any]
) -> None:
    day, rows = found
    # the four rows' long and short sides must match for TOTAL's long = short: balance them
    # on Pro, as the market does (every contract has two sides)
    for long, short in zip(LONGS, SHORTS, strict=True):
        gap = sum(r[long] for r in rows.values()) - sum(r[short] for r in rows.values())
        if gap > 0:
            rows["Pro"][short] += gap
        else:
            rows["Pro"][long] -= gap
    data = written(day, rows, style)
    parsed = parse(data, f"x/{file_name(day)}")
    assert parsed.day == day
    for position, label in zip(parsed.positions, PARTICIPANTS, strict=True):
        assert position.participant == label
        assert [getattr(position, name) for name in COUNTS[:12]] == rows[label]
    assert decode(encode(parsed), day, "kept") == parsed
