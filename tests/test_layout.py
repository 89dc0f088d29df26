"""The data directory's layout is named in one module (src/opchain/store/layout.py)."""

import re
from datetime import date
from pathlib import Path

import opchain
from opchain.store import layout

SRC = Path(opchain.__file__).parent
FOLDERS = ("instruments", "raw", "overview", "analytics", "live", "health", "spool", "cache",
           "participants")  # fmt: skip
SPELLED = re.compile(r"""/\s*["'](""" + "|".join(FOLDERS) + r""")["']""")


def test_no_module_but_layout_joins_a_data_folder_name() -> None:
    found = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path != Path(layout.__file__)
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if SPELLED.search(line)
    ]
    assert found == []


def test_every_path_is_under_the_data_directory() -> None:
    data = Path("/data")
    day = date(2026, 11, 20)
    paths = [
        layout.instruments_path(data, day),
        layout.overview_path(data, "NIFTY", day),
        layout.analytics_path(data, "NIFTY", "this_week", day),
        layout.live_path(data, "NIFTY"),
        layout.health_path(data, "collector"),
        layout.influx_spool_dir(data),
        layout.kite_cache_dir(data),
        layout.raw_root(data),
        layout.split_root(data),
        layout.profiles_root(data),
        layout.participants_path(data, day),
    ]
    assert all(p.is_relative_to(data) and p != data for p in paths)
    assert layout.influx_spool_dir(data) == data / "spool" / "influx"
