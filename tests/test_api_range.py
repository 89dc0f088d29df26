"""Range reads of the analytics and overview series (``/series/{index}/...``) over a recorded
stretch of a session: paging gives every row of the files once, in order; ``from``/``to``
bound it; a cursor continues across days and, polled later, gives only the rows written since;
bad parameters are 422; a damaged line is left out."""

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from opchain.api.app import create_app
from opchain.market.clock import VirtualClock
from opchain.market.ist import at
from opchain.settings import Settings
from opchain.store import layout

from .apidata import KEY, copy_of, recorded
from .apiserver import running
from .sessions import DAY

HEADERS = {"X-API-Key": KEY}
NEXT_DAY = DAY + timedelta(days=1)
ANALYTICS = "/series/NIFTY/analytics"
OVERVIEW = "/series/NIFTY/overview"
MAX_PAGES = 100  # more than any paging here needs


@pytest.fixture
def data(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_of(recorded(tmp_path_factory), tmp_path / "data")


@contextmanager
def _client(data: Path, today: date = DAY) -> Iterator[httpx.Client]:
    """A client of the API over ``data``, its clock in the afternoon of ``today``."""
    config = Settings(data_dir=data, api_keys=KEY, api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    clock = VirtualClock(at(today, time(15, 0)))
    with (
        running(create_app(config, clock=clock)) as server,
        httpx.Client(base_url=server.url, headers=HEADERS) as client,
    ):
        yield client


@pytest.fixture
def client(data: Path) -> Iterator[httpx.Client]:
    with _client(data) as c:
        yield c


def _analytics_file(data: Path, day: date = DAY) -> Path:
    return layout.analytics_file(layout.analytics_root(data), "NIFTY", "this_week", day)


def _overview_file(data: Path, day: date = DAY) -> Path:
    return layout.overview_file(layout.overview_root(data), "NIFTY", day)


def _stamps(path: Path) -> list[str]:
    """The ts cells of a file's rows, in file order."""
    return [line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]]


def _copy_day(path: Path, target: Path, days: int = 1) -> None:
    """The file again as another day's, every ts moved on by ``days``."""
    lines = path.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        ts, rest = line.split(",", 1)
        out.append(f"{(datetime.fromisoformat(ts) + timedelta(days=days)).isoformat()},{rest}")
    target.write_text("\n".join(out) + "\n")


def _all(client: httpx.Client, url: str, **params: Any) -> tuple[list[dict[str, Any]], int, str]:
    """Every row, page by page while ``next`` is given: the rows, the pages, the last poll
    (at most MAX_PAGES pages: a cursor that does not move on fails, not hangs)."""
    rows: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while pages < MAX_PAGES:
        got = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert got.status_code == 200, got.text
        body = got.json()
        assert len(body["rows"]) <= params.get("limit", 1000)
        rows += body["rows"]
        pages += 1
        if body["next"] is None:
            return rows, pages, body["poll"]
        cursor = body["next"]
    raise AssertionError(f"still a next page after {MAX_PAGES}")


@pytest.mark.parametrize(
    ("url", "params", "file"),
    [
        (ANALYTICS, {"bucket": "this_week"}, _analytics_file),
        (OVERVIEW, {}, _overview_file),
    ],
)
def test_paging_by_7_gives_every_row_once_in_order(
    client: httpx.Client, data: Path, url: str, params: dict[str, str], file: Any
) -> None:
    stamps = _stamps(file(data))
    assert len(stamps) > 7 and len(stamps) % 7  # more than a page, the last not full
    rows, pages, _ = _all(client, url, **params, limit=7)
    assert [r["ts"] for r in rows] == stamps
    assert pages == len(stamps) // 7 + 1
    # the default range is today's session so far: the same rows in one page
    assert [r["ts"] for r in client.get(url, params=params).json()["rows"]] == stamps


def test_rows_carry_the_files_columns(client: httpx.Client, data: Path) -> None:
    header = _analytics_file(data).read_text().splitlines()[0].split(",")
    first = client.get(ANALYTICS, params={"bucket": "this_week", "limit": 1}).json()["rows"][0]
    assert list(first) == header
    assert first["index"] == "NIFTY" and first["bucket"] == "this_week"
    assert isinstance(first["spot"], float) and isinstance(first["strikes"], int)


def test_from_and_to_bound_the_rows(client: httpx.Client, data: Path) -> None:
    stamps = _stamps(_analytics_file(data))
    got = client.get(
        ANALYTICS, params={"bucket": "this_week", "from": stamps[3], "to": stamps[10]}
    ).json()
    assert [r["ts"] for r in got["rows"]] == stamps[3:11]
    # a time without an offset is IST, a date alone is its whole day
    naive = stamps[5][:19]
    got = client.get(ANALYTICS, params={"bucket": "this_week", "from": naive, "to": str(DAY)})
    assert [r["ts"] for r in got.json()["rows"]] == stamps[5:]
    got = client.get(ANALYTICS, params={"bucket": "this_week", "from": str(NEXT_DAY)})
    assert got.json() == {"index": "NIFTY", "bucket": "this_week", "rows": [], "next": None,
                          "poll": None}  # fmt: skip


def test_paging_runs_across_days(data: Path) -> None:
    first = _overview_file(data)
    _copy_day(first, _overview_file(data, NEXT_DAY))
    stamps = _stamps(first) + _stamps(_overview_file(data, NEXT_DAY))
    with _client(data, today=NEXT_DAY) as client:
        rows, _, _ = _all(client, OVERVIEW, limit=7, **{"from": str(DAY), "to": str(NEXT_DAY)})
        assert [r["ts"] for r in rows] == stamps
        # the default is today only
        today = client.get(OVERVIEW).json()["rows"]
        assert [r["ts"] for r in today] == _stamps(_overview_file(data, NEXT_DAY))


def test_polling_with_the_last_cursor_gives_only_what_was_added(
    client: httpx.Client, data: Path
) -> None:
    path = _overview_file(data)
    rows, _, poll = _all(client, OVERVIEW, limit=7)
    assert len(rows) == len(_stamps(path))
    assert client.get(OVERVIEW, params={"cursor": poll}).json()["rows"] == []
    last = path.read_text().splitlines()[-1]
    ts, rest = last.split(",", 1)
    later = (datetime.fromisoformat(ts) + timedelta(seconds=1)).isoformat()
    with path.open("a") as f:
        f.write(f"{later},{rest}\n")
    got = client.get(OVERVIEW, params={"cursor": poll, "limit": 7}).json()
    assert [r["ts"] for r in got["rows"]] == [later]
    assert got["next"] is None and got["poll"] != poll
    assert client.get(OVERVIEW, params={"cursor": got["poll"]}).json()["rows"] == []


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": "abcd"}, "cursor"),  # base64, but of no timestamp
        ({"cursor": base64.urlsafe_b64encode(b"2026-11-20T10:00:00").decode()}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"from": "2026-11-31"}, "from"),
        ({"from": "2026-11-20 10:00"}, "from"),
        ({"to": "2026-11-20T25:00"}, "to"),
        ({"from": "2026-11-21", "to": "2026-11-20"}, "from"),
        ({"bucket": "weekly"}, "bucket"),
    ],
)
def test_a_bad_parameter_is_422_in_one_sentence(
    client: httpx.Client, params: dict[str, Any], word: str
) -> None:
    got = client.get(ANALYTICS, params={"bucket": "this_week", **params})
    assert got.status_code == 422
    detail = got.json()["detail"]
    assert detail.startswith(word) and "\n" not in detail


def test_keys_apply(client: httpx.Client) -> None:
    assert client.get(OVERVIEW, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/series/BANKEX/overview").status_code == 404  # not configured


def test_a_damaged_line_is_skipped(data: Path) -> None:
    path = _analytics_file(data)
    lines = path.read_text().splitlines(keepends=True)
    stamps = _stamps(path)
    lines[4] = "garbage,1,2\n"
    lines[6] = "2026-11-20T09:16:00" + lines[6][len(stamps[5]) :]  # ts without its offset
    path.write_text("".join(lines))
    with _client(data) as client:
        rows, _, _ = _all(client, ANALYTICS, bucket="this_week", limit=7)
    assert [r["ts"] for r in rows] == stamps[:3] + stamps[4:5] + stamps[6:]
