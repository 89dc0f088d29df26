"""``opchain health``: the checks and the components' states, as a table or as JSON.

The exit code is the verdict, for scripts and cron: 0 ok, 1 degraded, 2 down.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from opchain.market.ist import IST

from .console import check_data_dir, fail, load_settings, out

COLOURS = {"ok": "green", "degraded": "yellow", "down": "bold red"}


def health(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print /health's JSON instead.")] = False,
) -> None:
    """Check the Kite login, the newest stored data, disk, CPU, memory and the configured
    InfluxDB and Redis, and show what running components reported in `<data>/health/`.
    Exits 0 when all is ok, 1 when something is degraded, 2 when something is down."""
    import asyncio

    from opchain.health import state
    from opchain.health.checks import check_all
    from opchain.health.summary import EXIT_CODES, summarize

    settings = load_settings(data_dir=data_dir)
    check_data_dir(settings.data_dir)
    now = datetime.now(IST)
    try:
        checks = asyncio.run(check_all(settings, now))
    except OSError as err:
        fail(f"cannot check {settings.data_dir}: {err}")
    found = summarize(checks, state.read(settings.data_dir))
    if as_json:
        out.print_json(json.dumps(found))
    else:
        colour = COLOURS[found["status"]]
        table = Table(title=f"opchain health at {now:%Y-%m-%d %H:%M:%S} IST: "
                            f"[{colour}]{found['status']}[/]")  # fmt: skip
        for column in ("check", "status", "since", "detail"):
            table.add_column(column, overflow="fold")
        for name, entry in found["checks"].items():
            since = entry["since"][:19].replace("T", " ")
            status = f"[{COLOURS[entry['status']]}]{entry['status']}[/]"
            table.add_row(name, status, since, entry["detail"])
        out.print(table)
    raise typer.Exit(EXIT_CODES[found["status"]])


def monitor(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
    ] = None,
) -> None:
    """Watch a data directory and send opchain's alerts (`OPCHAIN_ALERT_WEBHOOK_URL`, mail by
    `OPCHAIN_ALERT_SMTP_HOST`): the checks of `opchain health` and the states of every component
    that writes there, every 30 s, as `opchain run` does beside its collector. For the
    scale-out, where the collector, workers and API instances run apart: run exactly one
    (several would send every alert several times). Ctrl-C or SIGTERM stops it."""
    import asyncio
    from urllib.parse import urlsplit

    from opchain.health.monitor import INTERVAL
    from opchain.health.monitor import monitor as watch
    from opchain.market.clock import WallClock

    settings = load_settings(data_dir=data_dir)
    check_data_dir(settings.data_dir)
    channels = []
    if settings.alert_webhook_url:  # its host only: a webhook's path is often its secret
        channels.append(f"webhook to {urlsplit(settings.alert_webhook_url).hostname}")
    if settings.alert_smtp_host and settings.alert_email_to:
        channels.append(f"mail to {', '.join(settings.alert_email_to)}")
    if not channels:
        fail("no alert channel configured: set OPCHAIN_ALERT_WEBHOOK_URL, or "
             "OPCHAIN_ALERT_SMTP_HOST and OPCHAIN_ALERT_EMAIL_TO")  # fmt: skip
    by = " and ".join(channels)
    said = f"monitoring {settings.data_dir} every {INTERVAL:g} s; alerts by {by}"
    out.print(said, markup=False, highlight=False, soft_wrap=True)
    try:
        asyncio.run(watch(settings, WallClock()))
    except KeyboardInterrupt:
        out.print("stopped")
