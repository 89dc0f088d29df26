"""``opchain influx backfill``: a recorded day rebuilt from the files gives the live run's points,
and writing it twice leaves InfluxDB as once."""

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opchain.cli.app import app
from opchain.market.ist import IST
from opchain.merge.cycle import Cycle
from opchain.model import ChainSlice
from opchain.outputs.influx.backfill import (
    backfill,
    count_cycles,
    recorded_cycles,
    recorded_days,
)
from opchain.outputs.influx.points import Tags, cycle_lines
from opchain.outputs.influx.writer import InfluxWriter
from opchain.settings import Settings
from opchain.store.raw import RawStore
from opchain.store.recorded import raw_cycles
from opchain.store.stats import format_stats

from .cycles import record_live
from .lineproto import count, parse
from .servers_health import influxd_server
from .sessions import DAY

TAGS = Tags(env="test", host="here")
UNTIL = datetime(2026, 11, 20, 9, 17, tzinfo=IST)  # four cycles
MEASUREMENTS = {
    "atm_option_quote": "days_to_expiry",
    "index_overview": "last_price",
    "chain_analytics": "strikes",
    "chain_strike": "strike",
}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Cycle]]:
    """A recorded full-chain simulated session (its first cycles) and its live cycles."""
    data_dir = tmp_path_factory.mktemp("backfill")
    cycles = record_live(data_dir, until=UNTIL, full_chain=True)
    settings = Settings(data_dir=data_dir, full_chain=True)
    return settings, cycles


def test_recorded_cycles_give_the_live_points(day: tuple[Settings, list[Cycle]]) -> None:
    """Every measurement exactly: the raw legs hold the quotes as they came, the analytics
    file's cells are what chain_analytics writes, and the vols and Greeks are solved again on
    the same legs by the same vectorized solve (chain_strike is equal, not merely close)."""
    settings, live = day
    rebuilt = list(recorded_cycles(settings, DAY))
    assert [c.snapshot.ts for c in rebuilt] == [c.snapshot.ts for c in live]
    assert len(rebuilt) == 4
    for was, now in zip(live, rebuilt, strict=True):
        mine, theirs = cycle_lines(was, TAGS), cycle_lines(now, TAGS)
        assert sorted(mine) == sorted(theirs)  # (the order of the indices is a set's)
        found = Counter(parse(x).measurement for x in theirs)
        assert set(found) == set(MEASUREMENTS)
        assert found["chain_strike"] > 1000
        assert sorted(now.rows) == sorted(was.rows)
        assert sorted(map(format_stats, now.stats)) == sorted(map(format_stats, was.stats))
        assert now.snapshot.indices.keys() == was.snapshot.indices.keys()


def test_days_and_counts(day: tuple[Settings, list[Cycle]], tmp_path: Path) -> None:
    settings, _ = day
    assert recorded_days(settings) == [DAY]
    assert count_cycles(settings, DAY) == 4
    empty = Settings(data_dir=tmp_path)
    assert recorded_days(empty) == []
    assert list(recorded_cycles(empty, DAY)) == []


def test_backfill_twice_leaves_one_point_per_cycle(
    day: tuple[Settings, list[Cycle]], tmp_path: Path
) -> None:
    settings, live = day
    wanted = Counter(parse(x).measurement for c in live for x in cycle_lines(c, TAGS))
    steps: list[tuple[int, int]] = []
    with influxd_server(tmp_path) as (url, _):
        sink = InfluxWriter(settings.model_copy(update={"influxdb_url": url}), tmp_path / "spool")
        try:
            first = backfill(settings, [DAY], sink, lambda d, n, total: steps.append((n, total)))
            assert (first.cycles, first.points, first.days) == (4, sum(wanted.values()), [DAY])
            assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
            assert sink.drain(60)
            for measurement, field in MEASUREMENTS.items():
                assert count(url, "opchain", measurement, field) == wanted[measurement]
            backfill(settings, [DAY], sink)
            assert sink.drain(60)
            for measurement, field in MEASUREMENTS.items():
                assert count(url, "opchain", measurement, field) == wanted[measurement]
            assert sink.stats().points_written == 2 * sum(wanted.values())
        finally:
            sink.close(5)


def _error(args: list[str]) -> str:
    """The one line a failed command printed (exit code 2)."""
    result = CliRunner().invoke(app, ["influx", "backfill", *args])
    assert result.exit_code == 2, result.output
    (said,) = result.output.strip().splitlines()
    assert said.startswith("error: ")
    return said


def test_the_command_says_what_is_wrong_in_one_line(
    day: tuple[Settings, list[Cycle]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = day
    monkeypatch.chdir(tmp_path)  # no .env of the machine's
    for name in ("INFLUXDB_URL", "OPCHAIN_INFLUXDB_URL", "OPCHAIN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data = ["-d", str(settings.data_dir)]
    assert "no InfluxDB URL is set" in _error(data)
    monkeypatch.setenv("OPCHAIN_INFLUXDB_URL", "http://127.0.0.1:9")
    bad = _error(["--from", "2026-11-21", "--to", "2026-11-20", *data])
    assert "--from 2026-11-21 is after --to 2026-11-20" in bad
    assert "no recorded days" in _error(["-d", str(tmp_path / "none")])
    later = _error(["--from", "2026-11-23", *data])
    assert "no recorded day from 2026-11-23 to the last (recorded: 2026-11-20 to 2026-11-20)" in (
        later
    )


def test_the_command_fills_influxdb(
    day: tuple[Settings, list[Cycle]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, live = day
    wanted = Counter(parse(x).measurement for c in live for x in cycle_lines(c, TAGS))
    with influxd_server(tmp_path) as (url, _):
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("OPCHAIN_INFLUXDB_URL", url)
        args = ["influx", "backfill", "-d", str(settings.data_dir), "--from", "2026-11-20"]
        for _ in range(2):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            assert f"1 day, 4 cycles: {sum(wanted.values())} points written, 0 rejected" in (
                result.output
            )
            for measurement, field in MEASUREMENTS.items():
                assert count(url, "opchain", measurement, field) == wanted[measurement]


def test_a_day_being_recorded_is_read_from_its_journals(
    day: tuple[Settings, list[Cycle]], tmp_path: Path
) -> None:
    """Beside a recorder (or after a killed one) the open window is only in journals: read
    as they are, nothing folded or moved."""
    _, live = day
    store = RawStore(tmp_path / "raw")
    try:
        for cycle in live:
            store.add(cycle.snapshot)
        assert list((tmp_path / "raw").rglob("_journal-*.arrows"))
        assert not list((tmp_path / "raw").rglob("*.parquet"))
        found = list(raw_cycles(tmp_path / "raw", DAY))
        assert not list((tmp_path / "raw").rglob("*.parquet"))
    finally:
        store.close()
    assert [f.ts for f in found] == [c.snapshot.ts for c in live]
    for raw, cycle in zip(found, live, strict=True):
        assert _legs(raw.chains) == _legs(list(cycle.snapshot.chains))


def _legs(chains: list[ChainSlice]) -> list[object]:
    return sorted(
        (c.index, c.bucket, c.expiry, c.spot, c.atm_strike,
         [(leg.offset, leg.side, leg.strike, leg.flag, leg.price,
           leg.quote and (leg.quote.oi, leg.quote.volume, leg.quote.close, leg.quote.bid))
          for leg in c.legs])
        for c in chains
    )  # fmt: skip


def test_oi_change_since_the_previous_recorded_close(tmp_path: Path) -> None:
    """With an earlier day recorded, OI change is against its close, as the live run had it."""
    before = datetime(2026, 11, 19, 9, 16, tzinfo=IST)
    record_live(tmp_path, until=before, day=before.date())
    live = record_live(tmp_path, until=datetime(2026, 11, 20, 9, 16, tzinfo=IST))
    settings = Settings(data_dir=tmp_path)
    rebuilt = list(recorded_cycles(settings, DAY))
    assert len(live) == len(rebuilt) == 2
    for was, now in zip(live, rebuilt, strict=True):
        assert was.previous_oi and now.previous_oi == was.previous_oi
        assert sorted(cycle_lines(now, TAGS)) == sorted(cycle_lines(was, TAGS))
    lines = cycle_lines(rebuilt[-1], TAGS)
    changed = [p for p in map(parse, lines) if "oi_change" in p.fields]
    assert {p.measurement for p in changed} == {"atm_option_quote"}
    strikes = [p for p in map(parse, lines) if "call_oi_change" in p.fields]
    assert strikes
