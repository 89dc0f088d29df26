"""The minute's profile work stays off the minute's snapshot and is cheap (issue 13, case 23):
the update runs once the cycle on the minute boundary has handed its snapshot on, and a live
update rewrites a share of the profiles, in turn, not all 140 every minute. Benchmarked in
``benchmarks/minute_work.py`` (BENCHMARKS.md)."""

import asyncio
import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opchain.brokers.sim import SimBroker
from opchain.market import calendar
from opchain.market.clock import VirtualClock
from opchain.settings import Settings
from opchain.store import profiles
from opchain.store.masters import MasterStream

from .sessions import DAY, record, tree_bytes


def test_the_profile_update_follows_the_boundary_cycles_snapshot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On main the update ran first, and the snapshot of each minute's first cycle waited."""
    from opchain.pipeline import record_session

    events: list[tuple[str, datetime]] = []
    update = MasterStream.update

    def noted(
        self: MasterStream, series: object, now: datetime | None = None, final: bool = False
    ) -> int:
        if now is not None:
            events.append(("profiles", now))
        return update(self, series, now=now, final=final)  # type: ignore[arg-type]

    monkeypatch.setattr(MasterStream, "update", noted)
    settings = Settings(data_dir=tmp_path, cadence_seconds=30)
    session = calendar.session("NSE", DAY)
    assert session is not None
    clock = VirtualClock(session.open)
    until = session.open + timedelta(minutes=5)
    asyncio.run(
        record_session(
            settings, SimBroker(clock, 7), clock, DAY, until=until,
            on_cycle=lambda cycle: events.append(("snapshot", cycle.snapshot.ts)),
        )
    )  # fmt: skip
    boundaries = [session.open + timedelta(minutes=k) for k in range(1, 5)]
    assert [e for e in events if e[0] == "profiles"] == [("profiles", t) for t in boundaries]
    for ts in boundaries:
        assert events.index(("snapshot", ts)) < events.index(("profiles", ts))


def test_a_live_update_saves_a_share_of_the_profiles_in_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each minute saves a fifth of the profiles (on main: every one of them, every minute),
    each is saved every fifth minute, and closing the day saves them all: the files equal
    those of a day that saved everything every minute."""
    source = tmp_path / "source"
    record(source, until=datetime.fromisoformat(f"{DAY}T09:36:00+05:30"), cadence_seconds=60)
    series = sorted(
        (p.parts[-4], p.parts[-3], p.parts[-2])
        for p in (source / "csv_data").glob(f"*/*/*/{DAY}.csv")
    )
    saved: list[Path] = []
    real_save = profiles.save

    def counted(path: Path, *args: object, **kwargs: object) -> str:
        saved.append(path)
        return real_save(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(profiles, "save", counted)
    every: dict[str, bytes] = {}
    for share in (5, 1):
        adv = tmp_path / f"adv{share}"
        stream = MasterStream(source / "csv_data", adv, DAY, save_every=0.0, save_share=share)
        per_minute = []
        for minute in range(1, 21):
            saved.clear()
            now = datetime.fromisoformat(f"{DAY}T09:15:00+05:30") + timedelta(minutes=minute)
            stream.update(series, now=now)
            per_minute.append(len({p for p in saved if "earlier_days" not in p.parts}))
        profiles_in_all = 2 * len(series)
        if share == 5:
            assert max(per_minute) == math.ceil(profiles_in_all / 5)
            assert sum(per_minute) == 4 * profiles_in_all  # each every fifth minute
        else:
            assert per_minute == [profiles_in_all] * 20
        stream.update(series, final=True)
        every[str(share)] = b"".join(tree_bytes(adv, "*.csv*").values())
    assert every["5"] == every["1"]
