"""End of day: close the day in every profile, and score how well the day was recorded.

:func:`reconcile` adds whatever minutes of the day the live updates had not added yet (all of
them when nothing ran live) and closes the day in every ledger, so the profiles equal a rebuild
from the split files; run again, it changes nothing. :func:`report` writes one line per series
to ``<adv>/eod/<YYYY-MM-DD>.csv``: minutes recorded against the session's, the gaps, and the
outliers (minutes whose change is a robust five-sigma jump of at least ``MIN_JUMP`` of the
premium).
"""

from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from pathlib import Path

import numpy as np

from opchain.analytics.history import MIN_JUMP, anomalies
from opchain.profiles.minutes import SESSION_MINUTES, last_per_minute
from opchain.store.appendlog import write_atomic
from opchain.store.masters import MasterStream, Series
from opchain.store.opdata import OpSplit, Problem, read_premiums

REPORT_COLUMNS = "index,bucket,offset,minutes,coverage_pct,gaps,outliers"
THRESHOLD = 5.0  # robust z-score of an outlier


def day_series(csv_root: Path, day: date) -> list[Series]:
    """Every series with a split file for ``day``."""
    name = f"{day.isoformat()}.csv"
    return sorted((p.parts[-4], p.parts[-3], p.parts[-2]) for p in csv_root.glob(f"*/*/*/{name}"))


@dataclass
class Reconciled:
    """What :func:`reconcile` did: the minutes it added, the split files' bad lines (left
    out), and the profiles it could not update (left as they were: not one save)."""

    added: int
    problems: list[Problem]
    blocked: list[Problem]


def reconcile(csv_root: Path, adv_root: Path, day: date, durable: bool = True) -> Reconciled:
    """Close ``day`` in every profile its split files feed."""
    stream = MasterStream(csv_root, adv_root, day, durable, problems=[], strict=True)
    added = stream.update(day_series(csv_root, day), final=True)
    assert stream.problems is not None
    return Reconciled(added, stream.problems, list(stream.book.blocked.values()))


@dataclass(frozen=True, slots=True)
class SeriesQuality:
    series: Series
    minutes: int  # session minutes with a premium
    gaps: tuple[tuple[str, str], ...]  # runs of missing minutes, first and last
    outliers: tuple[str, ...]  # minutes whose change was a jump

    @property
    def coverage(self) -> float:
        return 100.0 * self.minutes / len(SESSION_MINUTES)


def quality(
    csv_root: Path, day: date, problems: list[Problem] | None = None
) -> list[SeriesQuality]:
    """Coverage, gaps and outliers of every series of ``day``; what could not be read is
    added to ``problems``."""
    scores = []
    for series in day_series(csv_root, day):
        path = csv_root.joinpath(*series, f"{day.isoformat()}.csv")
        split = OpSplit(path, *series, day)
        premiums, found = read_premiums(split)
        if problems is not None:
            problems += found
        ticks = last_per_minute(
            (p.ts, None if p.paise is None else (p.paise, p.strikes)) for p in premiums
        )
        minutes = {minute: paise for minute, (paise, _) in ticks.items()}
        values = np.array([minutes.get(m, np.nan) for m in SESSION_MINUTES], dtype=np.float64)
        strikes = [ticks[m][1] if m in ticks else None for m in SESSION_MINUTES]
        outliers = _outliers(values, strikes)
        scores.append(SeriesQuality(series, len(minutes), _gaps(minutes), outliers))
    return scores


def report(
    csv_root: Path, adv_root: Path, day: date, problems: list[Problem] | None = None
) -> tuple[Path, list[SeriesQuality]]:
    """Write the day's quality report; returns its path and the scores."""
    scores = quality(csv_root, day, problems)
    lines = [REPORT_COLUMNS]
    for s in scores:
        gaps = " ".join(a if a == b else f"{a}-{b}" for a, b in s.gaps)
        lines.append(
            f"{','.join(s.series)},{s.minutes},{s.coverage:.1f},{gaps},{' '.join(s.outliers)}"
        )
    path = adv_root / "eod" / f"{day.isoformat()}.csv"
    write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path, scores


def _gaps(minutes: dict[str, int]) -> tuple[tuple[str, str], ...]:
    runs: list[tuple[str, str]] = []
    start = None
    for i, minute in enumerate(SESSION_MINUTES):
        if minute in minutes:
            if start is not None:
                runs.append((SESSION_MINUTES[start], SESSION_MINUTES[i - 1]))
                start = None
        elif start is None:
            start = i
    if start is not None:
        runs.append((SESSION_MINUTES[start], SESSION_MINUTES[-1]))
    return tuple(runs)


def _outliers(values: np.ndarray, strikes: list[str | None]) -> tuple[str, ...]:
    """Minutes whose change from the minute before is a jump against the 30 changes before,
    and at least ``MIN_JUMP`` of the premium (a move that is large only against a quiet
    half hour is no jump; the scale never goes below one tick, 5 paise, either).

    A change across a strike roll (the series' strikes differ from the minute before's: the
    ATM moved, so ``atm_p2`` is now another option) is no jump and is left out.
    """
    changes = np.concatenate([[np.nan], np.diff(values)])
    rolled = [a is not None and b is not None and a != b for a, b in pairwise([None, *strikes])]
    changes[np.array(rolled, dtype=bool)] = np.nan
    span = 31  # the latest change and 30 before it
    padded = np.concatenate([np.full(span - 1, np.nan), changes])
    windows = np.lib.stride_tricks.sliding_window_view(padded, span)  # one per minute
    before = np.concatenate([[np.nan], values[:-1]])
    scale = np.maximum(5.0, np.nan_to_num(MIN_JUMP * before / THRESHOLD))  # paise
    flagged = anomalies(windows, span - 1, THRESHOLD, min_scale=scale, differenced=True).flagged
    return tuple(m for m, jump in zip(SESSION_MINUTES, flagged.tolist(), strict=True) if jump)
