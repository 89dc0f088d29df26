"""The API over a data directory someone has damaged: symlinks out of it, FIFOs and devices
where data files belong, torn, garbled and non-UTF-8 split, profile, analytics and live files,
a master row that counts no day. Nothing is served from outside the data directory, no answer
hangs, no answer is a 500, and a damaged file costs at most its own data, named in the answer.

Each test runs a real server on a random port over a copy of the recorded stretch of DAY
(``apidata``); requests carry a timeout so that a server stuck on a FIFO fails the test, and
every FIFO is opened for writing at the end so that a stuck reader lets go.
"""

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from opchain.api.app import create_app
from opchain.api.live import Hub
from opchain.api.routes.files import last_cell
from opchain.settings import Settings
from opchain.store.live import live_path, read_live

from .apidata import KEY, copy_of, recorded
from .apiserver import Running, running
from .sessions import DAY
from .test_api import _cycles

GIVE_UP = 30.0  # seconds an answer may take before the test calls the server stuck
TODAY = DAY.isoformat()
SERIES = "csv_data/NIFTY/this_week"
MASTERS = "data_adv/weekday_masters/NIFTY/this_week"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return recorded(tmp_path_factory)


@contextlib.contextmanager
def _fifos(*paths: Path) -> Iterator[None]:
    """FIFOs at ``paths`` (replacing what is there), released when the block ends."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        os.mkfifo(path)
    try:
        yield
    finally:
        for path in paths:  # a reader blocked in open() gets its end of file, a later one a file
            try:
                writer: int | None = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # nobody is reading it
                writer = None
            path.unlink()
            path.write_bytes(b"")
            if writer is not None:
                os.close(writer)


@contextlib.contextmanager
def _serving(folder: Path, poll: bool = True) -> Iterator[tuple[Running, httpx.Client, Hub]]:
    hub = Hub(folder)
    with running(create_app(Settings(data_dir=folder), hub)) as server:
        if poll:
            server.on_loop(hub.poll)
        with httpx.Client(base_url=server.url, timeout=GIVE_UP) as client:
            yield server, client, hub


def _no_500(client: httpx.Client, path: str) -> httpx.Response:
    answer = client.get(path)
    assert answer.status_code < 500, (path, answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith(("application/json", "text/csv")), path
    return answer


# Files that are not what they seem.


def test_nothing_that_resolves_outside_the_data_directory_is_served(
    data: Path, tmp_path: Path
) -> None:
    folder = copy_of(data, tmp_path / "data")
    secret = tmp_path / "secret.csv"
    secret.write_text("ts,SECRET\n1,SECRET\n")
    links = {
        f"{SERIES}/atm/2026-11-19.csv": secret,
        f"{SERIES}/atm/2026-11-18.csv": Path("/etc/passwd"),
        f"{MASTERS}/atm/mon.csv": secret,
        "data_adv/dte_profiles/NIFTY/this_week/atm/dte09.csv": secret,
        f"{SERIES}/atm/2026-11-17.csv": folder / SERIES / "atm" / f"{TODAY}.csv",  # inside: fine
    }
    for link, target in links.items():
        (folder / link).symlink_to(target)
    with _serving(folder) as (_, client, _hub):
        for path in (
            "/splits/NIFTY/this_week/atm/2026-11-19.csv",
            "/splits/NIFTY/this_week/atm/2026-11-18.csv",
            "/splits/NIFTY?date=2026-11-19",
            "/profiles/NIFTY/this_week/atm?date=2026-11-19",
            "/profiles/NIFTY/this_week/atm?date=2026-11-18",
            "/profiles/NIFTY/this_week/atm/weekday/mon",
            "/profiles/NIFTY/this_week/atm/dte/9",
        ):
            answer = _no_500(client, path)
            assert answer.status_code == 404, (path, answer.text)
            assert b"SECRET" not in answer.content and b"root:" not in answer.content, path
        inside = client.get("/splits/NIFTY/this_week/atm/2026-11-17.csv")
        assert inside.status_code == 200
        assert inside.content == (folder / SERIES / "atm" / f"{TODAY}.csv").read_bytes()


def test_fifos_and_devices_where_files_belong_hang_no_answer(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    (folder / SERIES / "atm" / "2026-11-17.csv").symlink_to("/dev/zero")
    analytics = folder / "analytics" / "NIFTY"
    (analytics / "next_week" / f"{TODAY}.csv").unlink()
    (analytics / "next_week" / f"{TODAY}.csv").symlink_to("/dev/zero")
    fifos = [
        folder / SERIES / "atm" / "2026-11-19.csv",
        folder / SERIES / "atm_p1" / f"{TODAY}.csv",
        folder / MASTERS / "atm" / "mon.csv",
        folder / MASTERS / "atm" / "fri.csv.ledger",
        analytics / "this_week" / f"{TODAY}.csv",
        folder / "live" / "SENSEX.json",
    ]
    with _serving(folder, poll=False) as (server, client, hub), _fifos(*fifos):
        assert sorted(server.on_loop(hub.poll, GIVE_UP)) == ["BANKNIFTY", "NIFTY"]  # no SENSEX
        expected = {
            "/splits/NIFTY/this_week/atm/2026-11-19.csv": 404,
            "/splits/NIFTY/this_week/atm/2026-11-17.csv": 404,
            "/splits/NIFTY/this_week/atm_p1/" + TODAY + ".csv": 404,
            "/profiles/NIFTY/this_week/atm?date=2026-11-19": 404,
            "/profiles/NIFTY/this_week/atm_p1": 404,  # its only day is a FIFO: no data
            "/profiles/NIFTY/this_week/atm/weekday/mon": 404,
            "/profiles/NIFTY/this_week/atm/weekday/fri": 200,  # its ledger is no file
            "/analytics/NIFTY/pcr": 200,
            "/option-chain/SENSEX": 404,
            "/splits/NIFTY?date=" + TODAY: 200,
        }
        got = {path: _no_500(client, path).status_code for path in expected}
        assert got == expected
        assert client.get("/profiles/NIFTY/this_week/atm/weekday/fri").json()["applied"] == []
        listed = client.get(f"/splits/NIFTY?date={TODAY}").json()["files"]
        assert ("this_week", "atm_p1") not in {(f["bucket"], f["offset"]) for f in listed}
        series = client.get("/analytics/NIFTY/pcr").json()["series"]
        assert {p["bucket"] for p in series} == {"this_month", "next_month"}


def test_a_fifo_among_the_health_states_hangs_no_answer(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    with _serving(folder) as (_, client, _hub), _fifos(folder / "health" / "collector.json"):
        answer = client.get("/health")
        assert answer.status_code == 503  # a state that cannot be read is down
        collector = answer.json()["checks"]["collector"]
        assert collector["status"] == "down"
        assert "collector.json" in collector["detail"]


# Damaged contents.


def test_a_damaged_raw_part_of_an_earlier_day_costs_only_the_oi_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The previous close's OI comes from the raw parts (the session's history, carried by
    each cycle to the Hub); a zero-byte part of yesterday leaves the OI change blank, with a
    warning, and the rest is served."""
    part = tmp_path / "raw" / "date=2026-11-19" / "index=NIFTY" / "part-1515.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"")
    hub = Hub(tmp_path)
    hub.publish(_cycles(1, tmp_path)[-1])
    message = hub.message("NIFTY")
    assert message is not None
    legs = [leg for c in message["chains"] for r in c["rows"] for leg in (r["call"], r["put"])]
    assert legs and all(leg["oi_change"] is None for leg in legs if leg is not None)
    assert all(leg["oi"] is not None for leg in legs if leg is not None)
    assert hub.message("BANKNIFTY") is not None
    warnings = [r.getMessage() for r in caplog.records if "part" in r.getMessage()]
    assert warnings == [
        f"{part}: not a readable Parquet part: Parquet file size is 0 bytes; the previous close "
        "OI of NIFTY is left blank"
    ]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_master_row_that_counts_no_day_has_no_mean(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    master = folder / MASTERS / "atm" / "fri.csv"
    lines = _lines(master)
    minute = lines[1].split(b",")[0].decode()
    lines[1] = f"{minute},0,0.00,0.000000,0.00,0.00,2026-11-20T03:45:30Z\n".encode()
    master.write_bytes(b"".join(lines))
    with _serving(folder) as (_, client, _hub):
        rows = _no_500(client, "/profiles/NIFTY/this_week/atm/weekday/fri").json()["rows"]
        assert rows[0] == rows[0] | {"minute": minute, "n": 0, "avg": None, "min": None}
        assert all(row["avg"] is not None for row in rows[1:])
        view = _no_500(client, "/profiles/NIFTY/this_week/atm").json()
        first = next(m for m in view["minutes"] if m["minute"] == minute)
        # the day is the profile's only one: there is no earlier day to compare with
        assert (first["weekday_days"], first["weekday_avg"], first["weekday_max"]) == (
            None,
            None,
            None,
        )
        assert first["today"] is not None


def test_a_damaged_split_file_costs_only_its_own_rows(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    with _serving(folder) as (_, client, _hub):
        before = client.get("/profiles/NIFTY/this_week/atm").json()
        assert before["skipped"] == []
    split = folder / SERIES / "atm" / f"{TODAY}.csv"
    lines = _lines(split)
    header = lines[0]
    damaged = [
        *lines[:3],
        b"garbage\n",  # line 4
        lines[3].replace(b",", b",\x00", 1),  # a NUL in a cell: no row (store.csvrows)
        b"2026-11-20T09:16:00+05:30,NIFTY\x00,x\n",  # line 6: a NUL and too few cells
        b"\xff\xfe not utf-8," * 3 + b"\n",  # line 7
        header,  # a repeated header: its cells are no numbers
        lines[4].rstrip(b"\n") + b",extra,cells\n",  # line 9: a copy with too many cells
        *lines[4:],
    ]
    split.write_bytes(b"".join(damaged))
    # another series: its header torn away
    other = folder / SERIES / "atm_p1" / f"{TODAY}.csv"
    other.write_bytes(b"garbage\n" + b"".join(_lines(other)[1:]))
    with _serving(folder) as (_, client, _hub):
        after = _no_500(client, "/profiles/NIFTY/this_week/atm").json()
        assert after["minutes"] == before["minutes"]  # the damaged lines held no last tick
        assert after["skipped"] == [  # line 8 repeats the header; line 5 holds a NUL
            f"csv_data/NIFTY/this_week/atm/{TODAY}.csv: 6 damaged line(s) left out "
            "(line 4, 5, 6, 7, 8, 9)"
        ]
        torn = _no_500(client, "/profiles/NIFTY/this_week/atm_p1").json()
        assert all(m["today"] is None for m in torn["minutes"])
        assert torn["weekday_days"] == 0  # the profile holds only this day: no earlier one
        assert len(torn["skipped"]) == 1
        assert torn["skipped"][0].startswith(f"csv_data/NIFTY/this_week/atm_p1/{TODAY}.csv: ")
        raw = _no_500(client, f"/splits/NIFTY/this_week/atm/{TODAY}.csv")
        assert raw.content == split.read_bytes()  # served as it is on disk


def test_a_damaged_profile_costs_only_its_own_rows(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    master = folder / MASTERS / "atm" / "fri.csv"
    lines = _lines(master)
    minute = lines[2].split(b",")[0].decode()
    lines[2] = f"{minute},1,abc,x,y,z,2026-11-20T03:46:30Z\n".encode()
    master.write_bytes(b"".join(lines))
    with _serving(folder) as (_, client, _hub):
        view = _no_500(client, "/profiles/NIFTY/this_week/atm").json()
        damaged = next(m for m in view["minutes"] if m["minute"] == minute)
        assert damaged["today"] is not None  # today's premiums are served
        # a profile that cannot be read is not compared with (its ledger no longer says
        # which days its rows hold), and the answer says so
        assert all(m["weekday_avg"] is None for m in view["minutes"])
        where = "data_adv/weekday_masters/NIFTY/this_week/atm/fri.csv"
        assert view["skipped"] == [f"{where}: not compared with (it does not match its ledger)"]
        whole = _no_500(client, "/profiles/NIFTY/this_week/atm/weekday/fri").json()
        assert minute not in [row["minute"] for row in whole["rows"]]
        assert len(whole["rows"]) == len(lines) - 2
        assert whole["skipped"] == [
            f"{where}: 1 damaged line(s) left out (line 3: invalid literal for int() with "
            "base 10: 'abc')"
        ]
        assert whole["applied"] == [TODAY]
        ledger = master.with_name("fri.csv.ledger")
        ledger.write_bytes(b"\xff\n")
        unknown = _no_500(client, "/profiles/NIFTY/this_week/atm/weekday/fri").json()
        assert unknown["applied"] == [] and len(unknown["rows"]) == len(lines) - 2
        assert unknown["skipped"][1].startswith(f"{where}.ledger: ")


def test_damaged_live_files_cost_only_their_index(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    sensex = folder / "live" / "SENSEX.json"
    message = json.loads(sensex.read_bytes())
    del message["chains"][0]["rows"]
    sensex.write_text(json.dumps(message))
    banknifty = folder / "live" / "BANKNIFTY.json"
    banknifty.write_bytes(banknifty.read_bytes().replace(b'"spot":', b'"spot":NaN,"x":', 1))
    with _serving(folder) as (_, client, _hub):
        for index in ("SENSEX", "BANKNIFTY"):
            for path in (f"/option-chain/{index}", f"/analytics/{index}/term-structure"):
                assert _no_500(client, path).status_code == 404, path
        indices = _no_500(client, "/indices").json()["indices"]
        assert [o["index"] for o in indices] == ["NIFTY", "INDIAVIX"]
        assert _no_500(client, "/option-chain/NIFTY").status_code == 200


def test_a_damaged_analytics_file_costs_only_its_lines(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    with _serving(folder) as (_, client, _hub):
        before = client.get("/analytics/NIFTY/pcr").json()["series"]
    path = folder / "analytics" / "NIFTY" / "this_week" / f"{TODAY}.csv"
    lines = _lines(path)
    noise = [b"garbage\n", b"a,\x00b\n", b'"unclosed,quote\n', lines[0], b"\xff\xfe\n"]
    path.write_bytes(b"".join([*lines[:2], *noise, *lines[2:]]))
    with _serving(folder) as (_, client, _hub):
        after = _no_500(client, "/analytics/NIFTY/pcr").json()["series"]
    assert after == before


# And whatever else a client may ask of such a directory.


def _damage_everything(folder: Path) -> None:
    split = folder / SERIES / "atm" / f"{TODAY}.csv"
    split.write_bytes(split.read_bytes() + b"garbage\n\x00,\xff\n")
    (folder / SERIES / "atm_p1" / f"{TODAY}.csv").write_bytes(b"garbage\n1,2\n")
    (folder / SERIES / "atm_m1" / f"{TODAY}.csv").write_bytes(b"")
    torn = folder / SERIES / "atm_p2" / f"{TODAY}.csv"
    torn.write_bytes(torn.read_bytes()[:-7])
    (folder / SERIES / "atm" / "2026-11-19.csv").symlink_to("/etc/passwd")
    master = folder / MASTERS / "atm" / "fri.csv"
    lines = _lines(master)
    lines[1] = lines[1].replace(b",1,", b",0,", 1)
    lines[2] = b"09:16,1,nan,inf,-inf,x,2026\n"
    master.write_bytes(b"".join(lines))
    (folder / MASTERS / "atm_m1" / "fri.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    (folder / MASTERS / "atm_p1" / "fri.csv.ledger").write_bytes(b"not a date\n")
    (folder / "data_adv/dte_profiles/NIFTY/this_week/atm/dte03.csv").write_bytes(b"")
    analytics = folder / "analytics" / "NIFTY" / "this_week" / f"{TODAY}.csv"
    analytics.write_bytes(analytics.read_bytes() + b"\x00\n" + b'"x\n')
    (folder / "live" / "SENSEX.json").write_text('{"type": "snapshot", "index": "SENSEX"}')
    (folder / "live" / "BANKNIFTY.json").write_bytes(b'{"type": "snapshot", "ts": NaN}')
    participants = folder / "participants"  # NSE's participant-wise OI, kept by day
    participants.mkdir()
    (participants / "2026-11-19.csv").write_bytes(b"participant,future_index_long\nFII,x\n")
    (participants / "2026-11-20.csv").write_bytes(b"\xff\xfe\x00garbage\n")
    (participants / "notes.csv").write_text("not a day's file\n")


def test_no_500_and_no_schema_violation_over_damaged_files(data: Path, tmp_path: Path) -> None:
    folder = copy_of(data, tmp_path / "data")
    _damage_everything(folder)
    config = Settings(data_dir=folder, api_keys=KEY, api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    hub = Hub(folder)
    hub.poll()
    app = create_app(config, hub)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    explicit = [
        "/profiles/NIFTY/this_week/atm", "/profiles/NIFTY/this_week/atm_p1",
        "/profiles/NIFTY/this_week/atm_m1", "/profiles/NIFTY/this_week/atm_p2",
        "/profiles/NIFTY/this_week/atm/weekday/fri", "/profiles/NIFTY/this_week/atm_m1/weekday/fri",
        "/profiles/NIFTY/this_week/atm_p1/weekday/fri", "/profiles/NIFTY/this_week/atm/dte/3",
        "/splits/NIFTY", f"/splits/NIFTY/this_week/atm/{TODAY}.csv",
        "/splits/NIFTY/this_week/atm/2026-11-19.csv", "/analytics/NIFTY/pcr",
        "/analytics/SENSEX/pcr", "/analytics/BANKNIFTY/gex", "/option-chain/SENSEX", "/indices",
        "/participants",
    ]  # fmt: skip
    with (
        running(app) as server,
        httpx.Client(base_url=server.url, timeout=GIVE_UP, headers={"X-API-Key": KEY}) as client,
    ):
        for path in explicit:
            _no_500(client, path)
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # a range read's cursor and from/to may be schema-valid and still 422: there,
            # schemathesis is not asked to expect acceptance (tests/test_api_schema.py)
            ranged = case.operation.path.startswith(("/series/", "/participants"))
            case.call_and_validate(
                headers={"X-API-Key": KEY},
                excluded_checks=[positive_data_acceptance] if ranged else None,
            )

        check()


@pytest.mark.parametrize(
    "tail", [b"\xff\xfe\n", b"@@@\n", b"\x00\n", b"ts,days_to_expiry\n", b"1,"]
)
def test_a_last_cell_is_the_last_good_rows(
    tail: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged last line of a split file made its days to expiry unknown (a non-UTF-8 one
    or a NUL was None, silently): the last good row's is the answer, the bad line named."""
    path = tmp_path / f"{TODAY}.csv"
    path.write_bytes(b"ts,days_to_expiry\n2026-11-20T09:15:00+05:30,3\n" + tail)
    assert last_cell(path, "days_to_expiry", tmp_path) == "3"
    assert last_cell(path, "no_such_column", tmp_path) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == (tail != b"1,")  # a torn last line may be a row being written
    assert all(s.startswith(f"{path}:3: ") for s in said), said


def test_a_live_file_that_is_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    """``read_live`` opened whatever was at the path: a FIFO blocked it until a writer came."""
    path = live_path(tmp_path, "NIFTY")
    got: list[object] = []
    with _fifos(path):
        reader = threading.Thread(target=lambda: got.append(read_live(path)), daemon=True)
        reader.start()
        reader.join(GIVE_UP)  # a guard: it returns at once, or it waits for a writer
        waited = reader.is_alive()
    reader.join()  # let go by _fifos when it waited
    assert not waited, "read_live waited on a FIFO"
    assert got == [None]


def test_a_damaged_ledger_is_named_without_the_servers_path(data: Path, tmp_path: Path) -> None:
    """Today's profile compared with a master whose ledger has a bad line: the answer said
    why with the server's own absolute path to the ledger in it."""
    folder = copy_of(data, tmp_path / "data")
    ledger = folder / MASTERS / "atm" / "fri.csv.ledger"
    ledger.write_bytes(ledger.read_bytes() + b"@@@\n")
    with _serving(folder) as (_, client, _hub):
        answer = _no_500(client, f"/profiles/NIFTY/this_week/atm?date={TODAY}")
    assert answer.status_code == 200
    skipped = answer.json()["skipped"]
    assert any(f"{MASTERS}/atm/fri.csv.ledger:3: not a date" in s for s in skipped), skipped
    assert str(tmp_path) not in answer.text
