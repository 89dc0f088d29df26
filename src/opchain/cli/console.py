"""What every command shares: the two consoles, one-line errors, settings, clocks.

Nothing here imports more than typer and rich at start-up: ``opchain --help`` and ``opchain
version`` load no settings library, web framework or numeric library (a command imports what it
uses, in its body).
"""

import logging
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from opchain.market.ist import IST

if TYPE_CHECKING:
    from opchain.market.clock import Clock
    from opchain.settings import Settings

console = Console(stderr=True)  # progress, notices and errors
out = Console()  # results
log = logging.getLogger("opchain")
MAX_SPEED = 1e6  # a simulated day in a tenth of a second; beyond, clock arithmetic overflows


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> "Settings":
    """The settings, and the calendar with the holidays file they name installed."""
    from pydantic import ValidationError

    from opchain.market import calendar
    from opchain.market.holiday_file import HolidayFileError
    from opchain.settings import Settings, read_holidays_file

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        fail(f"bad settings: {problems}")
    tables = calendar.BUILT_IN
    if settings.holidays_file is not None:
        try:
            tables = calendar.with_supplied(read_holidays_file(settings.holidays_file))
        except HolidayFileError as err:
            fail(f"{err} (OPCHAIN_HOLIDAYS_FILE)")
    calendar.install(tables)
    _finish_swaps(settings)
    return settings


def _finish_swaps(settings: "Settings") -> None:
    """Finish (or undo) a set of files a killed ``opchain replay`` was putting in place
    (``store.swap``), before the command reads or writes the day files."""
    from opchain.store import layout, swap

    root = layout.swap_root(settings.data_dir)
    if root.is_dir():
        try:
            lines = swap.finish(root, settings.durable_writes)
        except OSError as err:
            console.print(f"[yellow]warning:[/] {say_os_error(err, root)}", soft_wrap=True)
            return
        for line in lines:
            console.print(f"[yellow]note:[/] {line}", soft_wrap=True)


def check_number(
    option: str, value: float, low: float = 0.0, high: float = math.inf, above: bool = False
) -> None:
    """One clear line unless ``value`` is a finite number from ``low`` (exclusive when
    ``above``) to ``high``."""
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        bounds = f"more than {low:g}" if above else f"at least {low:g}"
        bounds += f" and at most {high:g}" if high < math.inf else ""
        fail(f"{option} must be {bounds}, not {value:g}")


def make_clock(start: datetime | None, speed: float) -> "Clock":
    """Real time, or a simulated market's clock from ``start`` at ``speed``."""
    from opchain.market.clock import ScaledClock, WallClock

    if not 0 < speed <= MAX_SPEED:  # NaN too
        fail(f"--speed must be a positive number up to {MAX_SPEED:g} (1 = real time, 60 = a "
             f"minute a second), not {speed:g}")  # fmt: skip
    if start is not None:
        return ScaledClock(start if start.tzinfo else start.replace(tzinfo=IST), speed)
    if speed != 1.0:
        return ScaledClock(datetime.now(IST), speed)
    return WallClock()


def check_data_dir(path: Path) -> None:
    """One clear line when ``path`` cannot be a data directory: it, or a folder above it, is a
    file. (A directory that cannot be written today may be writable tomorrow: the commands
    that write say so when they try.)"""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return
        if folder.exists():
            where = "is" if folder == path else f"is under {folder}, which is"
            fail(f"data directory {path} {where} a file, not a directory")


def say_os_error(err: OSError, where: Path | None = None) -> str:
    """An operating-system error as one line naming the file (or ``where``, when the error
    came from a write that does not know its file, as a full disk's flush)."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        other = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{other}: {reason}"
    return f"{where}: {reason}" if where is not None else reason


def os_failure(err: OSError, where: Path | None = None, then: str = "") -> NoReturn:
    """Fail with one line for an operating-system error (and ``then``, what to do about it);
    the traceback goes to the debug log (``opchain -v``)."""
    log.debug("stopped by an operating-system error", exc_info=err)
    fail(say_os_error(err, where) + then)
