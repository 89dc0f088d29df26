"""The cadence a broker's limits can keep, and how much of the chain a cycle can see.

A cycle makes its quote calls one ``interval`` apart (Kite: one a second, with a margin), so a
cadence is a promise only when a cycle's calls fit in it. This decides, before the first cycle:

- whether the analytics see the whole chain (every listed strike of each watched expiry) or
  the band of watched offsets: the whole chain whenever its calls fit the cadence (at the
  default 30 s they do; streaming ticks, a read covers every instrument), unless the settings
  say which;
- the cadence actually kept: the one asked for when the cycle's calls fit it, else the
  shortest whole number of seconds they fit in, with what would keep the one asked for.

Each decision is said in a line the run prints first.
"""

import math
from typing import NamedTuple


class CadencePlan(NamedTuple):
    cadence: float  # seconds between cycles, as kept
    full_chain: bool
    calls: int  # quote calls a cycle makes (the market staying inside the band)
    notes: tuple[str, ...]  # what the run says first


def plan_cadence(
    asked: float,
    full_chain: bool | None,
    calls_full: int,
    calls_band: int,
    interval: float,
    broker: str,
) -> CadencePlan:
    """The plan for a cadence of ``asked`` seconds with a broker (``broker``, its name) that
    allows one quote call each ``interval`` seconds; ``full_chain`` None: decide here."""
    notes = []
    fits_full = calls_full * interval <= asked
    full = fits_full if full_chain is None else full_chain
    calls = calls_full if full else calls_band
    if full:
        notes.append(f"Analytics over the whole chain: {_calls(calls)} a cycle.")
    else:
        why = (
            "as set (OPCHAIN_FULL_CHAIN=false)"
            if full_chain is False
            else f"the whole chain needs {_calls(calls_full)} a cycle, one each {interval:g} s: "
            f"{calls_full * interval:g} s, more than the {asked:g} s cadence; a cadence of "
            f"{_whole(calls_full * interval):g} s{_or_ticks(broker)} would give it"
        )
        notes.append(f"Analytics over the watched band of strikes only: {why}.")
    cadence = asked
    if calls * interval > asked:
        cadence = _whole(calls * interval)
        ways = [f"a cadence of {cadence:g} s or more", "fewer legs"]
        if full:
            ways[1] = "fewer legs (OPCHAIN_FULL_CHAIN=false)"
        if broker == "kite":
            ways.insert(0, "streaming ticks (--ticks)")
        notes.append(
            f"A {asked:g} s cadence cannot be kept: a cycle needs {_calls(calls)} and {broker} "
            f"allows one each {interval:g} s. Recording every {cadence:g} s instead; "
            f"{', '.join(ways[:-1])} or {ways[-1]} would keep a promise the limits allow."
        )
    return CadencePlan(cadence, full, calls, tuple(notes))


def _calls(n: int) -> str:
    return f"{n} quote call{'s' if n != 1 else ''}"


def _whole(seconds: float) -> float:
    return float(math.ceil(seconds - 1e-9))


def _or_ticks(broker: str) -> str:
    return " or streaming ticks (--ticks)" if broker == "kite" else ""
