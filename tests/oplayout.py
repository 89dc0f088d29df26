"""A small, realistic OP data directory for tests, and the truth of what was written into it.

The files are what OP's scripts wrote (research notes, kite.md §1.4–1.7): the minute merge's
split CSVs through ``csv.DictWriter`` (CRLF line ends, ``str(float)`` prices, ``tp_sum`` counting
a missing leg as 0, two rows a minute), the advanced split's ``ts_ist ... total_premium`` files,
opchain's own split files, and the three weekday-master formats. A few files are damaged the way
real ones get damaged: a line torn by a crash, an empty file, junk lines, a stray file, a
folder named ``NIFTY 50``, a file named after a host's date that was not IST's.

:class:`OpTruth` records every row's premium in paise and every line a reader must report,
computed from the integer paise the builder drew, never by parsing the files back.
"""

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from opchain.market.ist import SESSION_OPEN, at
from opchain.model import SplitRow
from opchain.store.opdata import Cell, Premium
from opchain.store.splits import COLUMNS, format_row

BUCKETS = ("this_week", "next_week", "this_month", "next_month")
INDEX_BUCKETS = {"NIFTY": BUCKETS, "BANKNIFTY": ("this_month", "next_month"), "SENSEX": BUCKETS}
OFFSETS = ("atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2", "atm_p1m1", "atm_p2m2")
OP_HEADER = (
    "timestamp,index,expiry_code,strike_offset,call_strike,put_strike,call_last_price,"
    "put_last_price,call_iv,put_iv,call_volume,put_volume,call_oi,put_oi,tp_sum,group"
)
ADV_HEADER = "ts_ist,index,expiry_code,strike_offset,ce_ltp,pe_ltp,total_premium"
VARIANTS = ("op", "adv", "adv-naive", "opchain")
DAMAGES = ("torn", "junk", "empty", "NIFTY 50")
# Lines that are no row: NUL bytes after a power cut, a quote never closed, bytes not UTF-8.
JUNK = (b"\x00" * 24, b'ERROR "quote failed, retrying', b"\xff\xfe\xfd,1,2,3")
_ATM = {"NIFTY": (24500, 50), "BANKNIFTY": (55000, 100), "SENSEX": (80000, 100)}
_TO_EXPIRY = {"this_week": 1, "next_week": 8, "this_month": 8, "next_month": 36}
_HALF_MINUTES = 750  # 09:15:00 to 15:29:30


@dataclass
class SplitTruth:
    index: str
    bucket: str
    offset: str
    day: date
    variant: str  # one of VARIANTS
    damage: str | None = None  # one of DAMAGES, "off-day", or None
    premiums: list[Premium] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)  # lines a reader must report
    off_day_line: int | None = None  # the first row dated off the file's day


@dataclass
class MasterTruth:
    kind: str
    index: str
    bucket: str
    offset: str | None
    weekday: str | None
    cells: dict[str, Cell]
    ledger: tuple[date, ...]


@dataclass
class OpTruth:
    root: Path
    splits: dict[Path, SplitTruth] = field(default_factory=dict)
    strays: list[Path] = field(default_factory=list)  # in csv_data, but no split file
    masters: dict[Path, MasterTruth] = field(default_factory=dict)
    master_problems: set[tuple[Path, int | None]] = field(default_factory=set)


def build_op_tree(root: Path, days: list[date], seed: int = 1) -> OpTruth:
    """Write an OP directory under ``root`` with split files for ``days`` (two offsets per
    index and bucket a day, every offset, variant and damage at least once) and old masters."""
    rng = random.Random(seed)
    truth = OpTruth(root)
    plans = _plans(days, rng)
    for plan in plans:
        _write_split(truth, plan, rng)
    stray = root / "data" / "csv_data" / "NIFTY" / "this_week" / "atm" / "notes.csv"
    stray.write_text("remember to renew the Kite token\n")
    truth.strays.append(stray)
    _write_masters(truth, days[0], rng)
    return truth


def _plans(days: list[date], rng: random.Random) -> list[SplitTruth]:
    pairs = [(i, b) for i, buckets in INDEX_BUCKETS.items() for b in buckets]
    plans = []
    for d, day in enumerate(days):
        for p, (index, bucket) in enumerate(pairs):
            for offset in dict.fromkeys(("atm", OFFSETS[(d * len(pairs) + p) % len(OFFSETS)])):
                plans.append(SplitTruth(index, bucket, offset, day, "op"))
    nifty = [plan for plan in plans if plan.index == "NIFTY"]
    renamed = rng.choice(nifty)
    renamed.damage = "NIFTY 50"
    others = rng.sample([plan for plan in plans if plan is not renamed], 6)
    for plan, variant in zip(others[:3], VARIANTS[1:], strict=True):
        plan.variant = variant
    for plan, damage in zip(others[3:], DAMAGES[:3], strict=True):
        plan.damage = damage
    shifted = SplitTruth("SENSEX", "next_month", "atm_p1", min(days) - timedelta(days=1), "op")
    shifted.damage = "off-day"  # a host whose date was behind IST's at 09:15 IST
    return [*plans, shifted]


def _write_split(truth: OpTruth, plan: SplitTruth, rng: random.Random) -> None:
    folder = "NIFTY 50" if plan.damage == "NIFTY 50" else plan.index
    path = truth.root / "data" / "csv_data" / folder / plan.bucket / plan.offset
    path = path / f"{plan.day.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    truth.splits[path] = plan
    rows_day = plan.day + timedelta(days=1) if plan.damage == "off-day" else plan.day
    if plan.damage == "empty":
        path.write_bytes(b"")
        return
    writer = {"op": _op_lines, "adv": _adv_lines, "adv-naive": _adv_lines, "opchain": _own_lines}
    header, lines, newline = writer[plan.variant](plan, rows_day, rng)
    lines = [header, *lines]
    if plan.damage == "off-day":
        plan.off_day_line = 2
    if plan.damage == "torn":
        cut = rng.randrange(100, len(lines) - 1)  # the process died writing line cut + 1
        lines, plan.premiums = [*lines[:cut], lines[cut][:37]], plan.premiums[: cut - 1]
        plan.bad_lines.append(cut + 1)
        path.write_bytes(newline.join(lines))
        return
    if plan.damage == "junk":
        for where in sorted(rng.sample(range(2, len(lines)), len(JUNK)), reverse=True):
            lines.insert(where, JUNK[len(plan.bad_lines)])
            plan.bad_lines.append(where + 1)
        plan.bad_lines = _shifted(plan.bad_lines)
    path.write_bytes(newline.join(lines) + newline)


def _shifted(inserted_at: list[int]) -> list[int]:
    """Line numbers of lines inserted bottom-up, once the ones above them are in."""
    ordered = sorted(inserted_at)
    return [line + k for k, line in enumerate(ordered)]


def _prices(rng: random.Random, start: int, n: int) -> list[int]:
    """A random walk in paise on the 5-paise tick, never below one tick."""
    walk, price = [], start
    for _ in range(n):
        price = max(5, price + 5 * rng.randint(-4, 4))
        walk.append(price)
    return walk


def _legs(plan: SplitTruth, n: int, rng: random.Random) -> tuple[list[int], list[int]]:
    away = {"atm": 0, "atm_p1m1": 1, "atm_p2m2": 2}.get(plan.offset, 0)
    start = 18000 + 1500 * BUCKETS.index(plan.bucket) - 2500 * away + rng.randrange(0, 2000, 5)
    return _prices(rng, start, n), _prices(rng, start + rng.randrange(-500, 500, 5), n)


def _strikes(plan: SplitTruth) -> tuple[float, float]:
    atm, step = _ATM[plan.index]
    tail = plan.offset.removeprefix("atm").removeprefix("_")
    if len(tail) == 4:  # p1m1: the CALL one step up, the PUT one step down
        return float(atm + int(tail[1]) * step), float(atm - int(tail[3]) * step)
    steps = int(tail[1:]) * (1 if tail.startswith("p") else -1) if tail else 0
    return float(atm + steps * step), float(atm + steps * step)


def _op_lines(plan: SplitTruth, day: date, rng: random.Random) -> tuple[bytes, list[bytes], bytes]:
    """OP's minute merge through csv.DictWriter: every 30 s, str(float) prices, a leg with no
    price written empty (or 0.0 when Kite said 0) and ``tp_sum`` = the other leg."""
    calls, puts = _legs(plan, _HALF_MINUTES, rng)
    one_leg = rng.randrange(_HALF_MINUTES)
    call_k, put_k = _strikes(plan)
    group = plan.offset if plan.offset.endswith(("p1m1", "p2m2")) else plan.bucket
    lines = []
    for k, (c, p) in enumerate(zip(calls, puts, strict=True)):
        ts = at(day, SESSION_OPEN) + timedelta(seconds=30 * k)
        call, put = c / 100, p / 100
        call_text, put_text = repr(call), repr(put)
        if k == one_leg:
            if rng.random() < 0.5:
                call, call_text = 0.0, rng.choice(["", "0.0"])
            else:
                put, put_text = 0.0, rng.choice(["", "0.0"])
        lines.append(
            f"{ts.isoformat()},{plan.index},{plan.bucket},{plan.offset},{call_k!r},{put_k!r},"
            f"{call_text},{put_text},,,{1000 + 7 * k},{900 + 5 * k},{150000 - k},{140000 + k},"
            f"{call + put!r},{group}".encode()
        )
        paise = None if k == one_leg else c + p
        plan.premiums.append(Premium(ts, paise, None, None, f"{call_k!r}|{put_k!r}"))
    return OP_HEADER.encode(), lines, b"\r\n"


def _adv_lines(plan: SplitTruth, day: date, rng: random.Random) -> tuple[bytes, list[bytes], bytes]:
    """OP's advanced split: one row a minute, %.6f prices, the total blank without both legs;
    timestamps with +05:30, or naive (meaning IST) in the ``adv-naive`` variant."""
    calls, puts = _legs(plan, _HALF_MINUTES // 2, rng)
    one_leg = rng.randrange(len(calls))
    lines = []
    for k, (c, p) in enumerate(zip(calls, puts, strict=True)):
        ts = at(day, SESSION_OPEN) + timedelta(minutes=k)
        stamp = ts.isoformat() if plan.variant == "adv" else ts.strftime("%Y-%m-%d %H:%M:%S")
        ce, pe, total = f"{c / 100:.6f}", f"{p / 100:.6f}", f"{c / 100 + p / 100:.6f}"
        if k == one_leg:
            ce, total = "", ""
        line = f"{stamp},{plan.index},{plan.bucket},{plan.offset},{ce},{pe},{total}"
        lines.append(line.encode())
        plan.premiums.append(Premium(ts, None if k == one_leg else c + p, None, None))
    return ADV_HEADER.encode(), lines, b"\r\n"


def _own_lines(plan: SplitTruth, day: date, rng: random.Random) -> tuple[bytes, list[bytes], bytes]:
    """opchain's own split rows (``ts``, ``expiry``, ``total_premium``, ``days_to_expiry``)."""
    calls, puts = _legs(plan, _HALF_MINUTES, rng)
    one_leg = rng.randrange(_HALF_MINUTES)
    expiry = day + timedelta(days=_TO_EXPIRY[plan.bucket])
    dte = (expiry - day).days
    call_k, put_k = _strikes(plan)
    lines = []
    for k, (c, p) in enumerate(zip(calls, puts, strict=True)):
        ts = at(day, SESSION_OPEN) + timedelta(seconds=30 * k)
        call = None if k == one_leg else c / 100
        total = None if call is None else call + p / 100
        row = SplitRow(
            ts, plan.index, plan.bucket, expiry, plan.offset, float(_ATM[plan.index][0]),
            24512.35, call_k, put_k, call, p / 100, 0.12, 0.13, 1000, 900, 150000, 140000,
            total, dte,
        )  # fmt: skip
        lines.append(format_row(row).encode())
        strikes = f"{call_k!r}|{put_k!r}"
        plan.premiums.append(Premium(ts, None if call is None else c + p, expiry, dte, strikes))
    return ",".join(COLUMNS).encode(), lines, b"\n"


def _write_masters(truth: OpTruth, day: date, rng: random.Random) -> None:
    adv = truth.root / "data_adv" / "weekday_masters"
    for index, bucket, offset, weekday, ledger in (
        ("NIFTY", "this_week", "atm", "wed", "2025-08-06\n\n2025-08-13\n"),
        ("NIFTY", "this_week", "atm_p1m1", "thu", "2025-08-07\n2025-02-30\n"),
        ("BANKNIFTY", "this_month", "atm", "mon", None),
    ):
        path = adv / index / bucket / offset / f"{weekday}.csv"
        cells = _write_adv_master(path, rng)
        days = _write_ledger(truth, path, ledger)
        truth.masters[path] = MasterTruth("adv", index, bucket, offset, weekday, cells, days)
    stray = adv / "NIFTY" / "this_week" / "atm" / ".tmp_k2j3hq.csv"  # a crashed atomic write
    stray.write_bytes(b"time_bucket,n_tot\r\n")
    truth.master_problems.add((stray, None))
    bulk = truth.root / "WEEKDAY" / "NIFTY" / "this_week" / "atm"
    path = bulk / "WEEKDAY_NIFTY_this_week_atm_MASTER.csv"
    cells = _write_bulk_master(path, day, rng)
    days = _write_ledger(truth, path, f"{day.isoformat()}\n")
    truth.masters[path] = MasterTruth("bulk", "NIFTY", "this_week", "atm", None, cells, days)
    path = truth.root / "data" / "MASTER" / "NIFTY" / "Wednesday" / "NIFTY_this_week_master_avg.csv"
    cells = _write_avg_master(path, [day - timedelta(days=7), day], rng)
    truth.masters[path] = MasterTruth("avg", "NIFTY", "this_week", None, "wed", cells, ())


def _minutes() -> list[str]:
    start = datetime.combine(date(2025, 1, 1), SESSION_OPEN)
    return [(start + timedelta(minutes=k)).strftime("%H:%M") for k in range(_HALF_MINUTES // 2)]


def _write_adv_master(path: Path, rng: random.Random) -> dict[str, Cell]:
    lines = ["time_bucket,n_tot,sum_tot,avg_tot,min_tot,max_tot,last_updated"]
    cells: dict[str, Cell] = {}
    for minute in _minutes():
        seen = [rng.randrange(5, 40000, 5) / 100 for _ in range(rng.randint(1, 4))]
        texts = [f"{v:.6f}" for v in (sum(seen), sum(seen) / len(seen), min(seen), max(seen))]
        lines.append(f"{minute},{len(seen)},{','.join(texts)},2025-08-13T10:00:03Z")
        total, mean, low, high = (float(t) for t in texts)
        cells[minute] = Cell(len(seen), mean, total, low, high)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines) + "\r\n", newline="")
    return cells


def _write_bulk_master(path: Path, day: date, rng: random.Random) -> dict[str, Cell]:
    lines = ["HH:MM,HIST_AVG,COUNTER,LAST_UPDATED"]
    cells: dict[str, Cell] = {}
    for minute in _minutes():
        mean, n = f"{rng.randrange(5, 40000, 5) / 100:.6f}", rng.randint(1, 9)
        lines.append(f"{minute},{mean},{n},{day.isoformat()}")
        cells[minute] = Cell(n, float(mean), None, None, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines) + "\r\n", newline="")
    return cells


def _write_avg_master(path: Path, days: list[date], rng: random.Random) -> dict[str, Cell]:
    """OP's pandas master: it merged on the full timestamp, so each date's 30-s rows stand
    apart (count 1, a few empty slots with count 0); a reader pools them per time of day."""
    lines = ["timestamp,avg_tp,count"]
    cells: dict[str, Cell] = {}
    for day in days:
        for k in range(_HALF_MINUTES):
            moment = at(day, SESSION_OPEN).replace(tzinfo=None) + timedelta(seconds=30 * k)
            value, n = rng.randrange(5, 40000, 5) / 100, int(rng.random() > 0.01)
            lines.append(f"{moment},{value if n else 0.0!r},{n}")
            key, cell = moment.strftime("%H:%M:%S"), Cell(n, value, None, None, None)
            old = cells.get(key)
            if n and old is not None:
                pooled = (old.mean * old.n + value * n) / (old.n + n)
                cell = Cell(old.n + n, pooled, None, None, None)
            if n:
                cells[key] = cell
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return cells


def _write_ledger(truth: OpTruth, master: Path, text: str | None) -> tuple[date, ...]:
    """Write a master's ledger; its well-formed days, and its bad lines as expected problems."""
    if text is None:
        return ()
    ledger = master.with_name(master.name + ".ledger")
    ledger.write_text(text)
    days = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            days += [date.fromisoformat(line)] if line else []
        except ValueError:
            truth.master_problems.add((ledger, number))
    return tuple(sorted(set(days)))
