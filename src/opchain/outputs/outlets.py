"""The outputs of one session, opened together: where a restart resumes, what each cycle goes
to, and closing every one of them whichever fails."""

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from opchain.merge.cycle import Cycle
from opchain.outputs.base import Factory, Output, Session


@dataclass
class Written:
    """What a session's report says its outputs wrote, filled by each output's optional
    ``summary(written)`` once it is closed."""

    rows_added: int = 0  # split rows
    files: dict[tuple[str, str, str, date], int] = field(default_factory=dict)  # split rows
    raw_parts: int = 0


@dataclass
class Outlets:
    """The opened outputs, in the listed order. ``day_over`` is what they are closed with."""

    outputs: list[Output] = field(default_factory=list)
    day_over: bool = False

    def reach(self) -> datetime | None:
        """Where a restarted session resumes: the earliest reach of the durable outputs (None:
        one of them holds nothing of the day, or there is no durable output)."""
        reaches = [out.reach() for out in self.outputs if out.durable]
        if not reaches or any(r is None for r in reaches):
            return None
        return min(r for r in reaches if r is not None)

    def write(self, cycle: Cycle) -> None:
        for out in self.outputs:
            out.write(cycle)

    def settle(self) -> None:
        """The work of the cycle that can wait until it is out (an output's optional
        ``settle()``: the profiles' minute)."""
        for out in self.outputs:
            settle = getattr(out, "settle", None)
            if settle is not None:
                settle()

    def written(self) -> Written:
        """Ask each closed output that keeps a summary for it."""
        written = Written()
        for out in self.outputs:
            summary = getattr(out, "summary", None)
            if summary is not None:
                summary(written)
        return written


@contextmanager
def opened(session: Session, listed: Sequence[tuple[str, Factory]]) -> Iterator[Outlets]:
    """Open every listed output the settings leave on (a factory's None is skipped); on the
    way out close each, the last opened first, whichever of them fails."""
    outlets = Outlets()
    with ExitStack() as closing:
        for _, factory in listed:
            out = factory(session)
            if out is not None:
                outlets.outputs.append(out)
                closing.callback(_close, out, outlets)
        yield outlets


def _close(out: Output, outlets: Outlets) -> None:
    out.close(outlets.day_over)
