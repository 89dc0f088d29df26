"""What every command shares: the two consoles, one-line errors, settings, clocks."""

import logging
from datetime import datetime
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from opchain.market import calendar
from opchain.market.clock import Clock, ScaledClock, WallClock
from opchain.market.holiday_file import HolidayFileError
from opchain.market.ist import IST
from opchain.settings import Settings, read_holidays_file

console = Console(stderr=True)  # progress, notices and errors
out = Console()  # results
log = logging.getLogger("opchain")


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """The settings, and the calendar with the holidays file they name installed."""
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
    return settings


def make_clock(start: datetime | None, speed: float) -> Clock:
    """Real time, or a simulated market's clock from ``start`` at ``speed``."""
    if start is not None:
        return ScaledClock(start if start.tzinfo else start.replace(tzinfo=IST), speed)
    if speed != 1.0:
        return ScaledClock(datetime.now(IST), speed)
    return WallClock()
