"""The data directory's layout: the one module that knows where each kind of file lives.

Every writer and reader (the pipeline, its outputs, health, the API, the CLI) asks here, so a
folder is named once. Under ``data_dir``::

    instruments/<YYYY-MM-DD>.csv                 the day's instruments dump
    csv_data/<INDEX>/<bucket>/<offset>/...       split CSVs (default; ``csv_split_root``)
    data_adv/...                                 weekday masters, DTE profiles (``adv_root``)
    overview/<INDEX>/<YYYY-MM-DD>.csv            the index overview
    analytics/<INDEX>/<bucket>/<YYYY-MM-DD>.csv  per-bucket chain analytics
    raw/...                                      raw Parquet parts and journals (store.raw)
    live/<INDEX>.json                            the latest Live message, for ``opchain serve``
    health/<component>.json                      each component's last reported state
    cache/kite/                                  the Kite instruments cache
    spool/influx/                                points InfluxDB has not taken yet
    spool/bus/                                   cycles a collector could not publish yet
    bus/fence/<INDEX>                            the newest lease token of a bus partition
    .swap/<name>/                                a set of files being replaced as one (store.swap)
    participants/<YYYY-MM-DD>.csv                NSE's participant-wise open interest of a day
"""

from datetime import date
from pathlib import Path

# What a reader of the whole archive (``opchain query``) globs for, under each root: the file
# names alone (a hidden temporary file, a journal or a ``.damaged`` part never matches).
SPLIT_FILES = "*/*/*/*.csv"  # <INDEX>/<bucket>/<offset>/<YYYY-MM-DD>.csv under split_root
OVERVIEW_FILES = "*/*.csv"  # <INDEX>/<YYYY-MM-DD>.csv under overview_root
ANALYTICS_FILES = "*/*/*.csv"  # <INDEX>/<bucket>/<YYYY-MM-DD>.csv under analytics_root
RAW_PARTS = "date=*/index=*/part-*.parquet"  # closed windows under raw_root (store.rawparts)
WEEKDAY_MASTERS = "weekday_masters/*/*/*/*.csv"  # <mon..fri>.csv under profiles_root
DTE_PROFILES = "dte_profiles/*/*/*/dte*.csv"  # dte<NN>.csv under profiles_root


def instruments_path(data_dir: Path, day: date) -> Path:
    return data_dir / "instruments" / f"{day.isoformat()}.csv"


def split_root(data_dir: Path) -> Path:
    """The split CSVs' default root (``Settings.split_root`` unless ``csv_split_root``)."""
    return data_dir / "csv_data"


def profiles_root(data_dir: Path) -> Path:
    """The profiles' default root (``Settings.profiles_root`` unless ``adv_root``)."""
    return data_dir / "data_adv"


def raw_root(data_dir: Path) -> Path:
    return data_dir / "raw"


RAW_FOLDERS = "date=*/index=*"  # one day and index under raw_root: its parts and journals


def raw_folder(root: Path, day: date, index: str) -> Path:
    """One day and index of the raw store under ``root`` (Hive-style, as DuckDB reads it)."""
    return root / f"date={day.isoformat()}" / f"index={index}"


def raw_folder_key(folder: Path) -> tuple[str, str]:
    """The ISO date and the index a raw folder (one of ``RAW_FOLDERS``) holds."""
    return folder.parent.name.removeprefix("date="), folder.name.removeprefix("index=")


def overview_root(data_dir: Path) -> Path:
    return data_dir / "overview"


def overview_file(root: Path, index: str, day: date) -> Path:
    """An overview file under its root (``overview_root``)."""
    return root / index / f"{day.isoformat()}.csv"


def overview_path(data_dir: Path, index: str, day: date) -> Path:
    return overview_file(overview_root(data_dir), index, day)


def analytics_root(data_dir: Path) -> Path:
    return data_dir / "analytics"


def analytics_file(root: Path, index: str, bucket: str, day: date) -> Path:
    """An analytics file under its root (``analytics_root``)."""
    return root / index / bucket / f"{day.isoformat()}.csv"


def analytics_path(data_dir: Path, index: str, bucket: str, day: date) -> Path:
    return analytics_file(analytics_root(data_dir), index, bucket, day)


def live_root(data_dir: Path) -> Path:
    return data_dir / "live"


def live_path(data_dir: Path, index: str) -> Path:
    return live_root(data_dir) / f"{index}.json"


def health_root(data_dir: Path) -> Path:
    return data_dir / "health"


def health_path(data_dir: Path, component: str) -> Path:
    return health_root(data_dir) / f"{component}.json"


def kite_cache_dir(data_dir: Path) -> Path:
    return data_dir / "cache" / "kite"


def influx_spool_dir(data_dir: Path) -> Path:
    """Where the InfluxDB output keeps the points the server has not acknowledged yet."""
    return data_dir / "spool" / "influx"


def bus_spool_dir(data_dir: Path) -> Path:
    """Where a bus collector keeps the cycles Redis has not taken yet (``opchain collect``)."""
    return data_dir / "spool" / "bus"


def fence_path(data_dir: Path, partition: str) -> Path:
    """The newest lease token a worker took for a partition: an older owner that finds a newer
    one here stops writing (``opchain worker``)."""
    return data_dir / "bus" / "fence" / partition


def swap_root(data_dir: Path) -> Path:
    """Where sets of files are staged before they replace the old ones together (``store.swap``;
    ``opchain replay``). Hidden: no reader of the archive globs into it."""
    return data_dir / ".swap"


PARTICIPANT_FILES = "*.csv"  # <YYYY-MM-DD>.csv under participants_root


def participants_root(data_dir: Path) -> Path:
    """NSE's participant-wise open interest, one file a day (``store.participants``)."""
    return data_dir / "participants"


def participants_path(data_dir: Path, day: date) -> Path:
    return participants_root(data_dir) / f"{day.isoformat()}.csv"


def archive_files(root: Path, pattern: str) -> list[Path]:
    """The files of one kind under ``root`` (``pattern``: one of the globs above), sorted;
    names starting with ``.`` or ``_`` (temporary files, journals) are never among them, nor
    anything that is not a regular file."""
    found = (p for p in root.glob(pattern) if not p.name.startswith((".", "_")))
    return sorted(p for p in found if p.is_file())
