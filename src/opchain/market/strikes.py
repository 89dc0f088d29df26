"""ATM strike and strike offsets, measured on the listed strike grid (SPEC §3.1)."""

import bisect
from collections.abc import Sequence


def atm_strike(strikes: Sequence[float], spot: float) -> float:
    """The listed strike nearest to ``spot``; a tie between two strikes goes to the upper one.

    ``strikes`` must be sorted ascending and non-empty.
    """
    if not strikes:
        raise ValueError("no listed strikes to choose an ATM strike from")
    i = bisect.bisect_left(strikes, spot)
    if i == 0:
        return strikes[0]
    if i == len(strikes):
        return strikes[-1]
    below, above = strikes[i - 1], strikes[i]
    return above if above - spot <= spot - below else below


def strike_at_offset(strikes: Sequence[float], atm: float, offset: int) -> float | None:
    """The strike ``offset`` listed steps from ``atm`` (negative = below), None past the grid."""
    i = bisect.bisect_left(strikes, atm) + offset
    return strikes[i] if 0 <= i < len(strikes) else None


def offsets(width: int) -> tuple[int, ...]:
    """The symmetric offsets ``-width .. +width``."""
    if width < 0:
        raise ValueError(f"strike width must be >= 0, got {width}")
    return tuple(range(-width, width + 1))


def offset_label(offset: int) -> str:
    """``0 -> atm``, ``-1 -> atm_m1``, ``2 -> atm_p2``: OP's folder names."""
    if offset == 0:
        return "atm"
    return f"atm_{'p' if offset > 0 else 'm'}{abs(offset)}"


def pair_label(step: int) -> str:
    """The one-sided strangle of CALL at ``atm_p<step>`` and PUT at ``atm_m<step>``."""
    return f"atm_p{step}m{step}"


def parse_offset_label(label: str) -> int:
    """Inverse of :func:`offset_label`."""
    if label == "atm":
        return 0
    if label.startswith(("atm_p", "atm_m")) and label[5:].isdigit():
        value = int(label[5:])
        return value if label[4] == "p" else -value
    raise ValueError(f"not a strike offset label: {label!r} (expected atm, atm_pN or atm_mN)")
