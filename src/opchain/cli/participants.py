"""``opchain participants import`` and ``fetch``: NSE's participant-wise open interest, from
files or from NSE's archive (``OPCHAIN_PARTICIPANTS_URL``), kept under the data directory."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .console import check_data_dir, console, fail, load_settings, os_failure, out

if TYPE_CHECKING:
    import httpx

    from opchain.store.participants import Day

# NSE's archive wants what a browser sends: its User-Agent, and NSE's site as the Referer (a
# script's default User-Agent is refused; docs/participants.md).
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
REFERER = "https://www.nseindia.com/"
TIMEOUT = 30.0
EXCHANGE = "NSE"

app = typer.Typer(
    name="participants",
    help="NSE's participant-wise open interest (Client, DII, FII, Pro): import, fetch.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", "-d", help="Data directory (env OPCHAIN_DATA_DIR).")
]


def _error(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)


def _keep(data_dir: Path, found: Day, what: str, durable: bool) -> None:
    from opchain.store.participants import store

    kept = store(data_dir, found, durable)
    said = {
        "new": "stored",
        "same": "already stored, the same: unchanged",
        "replaced": "stored, replacing a different copy kept before",
    }[kept]
    out.print(f"{what}: {found.day} {said}", soft_wrap=True, highlight=False)


@app.command("import")
def import_files(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="NSE's fao_participant_oi_DDMMYYYY.csv files"),
    ],
    data_dir: DataDir = None,
) -> None:
    """Check NSE's participant-wise open interest files and keep each day (a bad file is one
    line, file and line, and nothing of it is kept; the others are imported all the same)."""
    from opchain.store.participants import MAX_BYTES, ParticipantsError, parse
    from opchain.store.regular import open_file

    settings = load_settings(data_dir=data_dir)
    check_data_dir(settings.data_dir)
    bad = 0
    for path in files:
        try:
            with open_file(path) as f:  # a FIFO or a device is refused, not waited on
                data = f.read(MAX_BYTES + 1)
            found = parse(data, str(path))
        except ParticipantsError as err:
            bad += 1
            _error(str(err))
            continue
        except OSError as err:
            bad += 1
            _error(f"{path}: {err.strerror or err}")
            continue
        try:
            _keep(settings.data_dir, found, str(path), settings.durable_writes)
        except OSError as err:  # the data directory's fault, not the file's: said, and stop
            os_failure(err, then=f" ({path} and the files after it not imported)")
    if bad:  # each said in its one line above; the summary is a result
        out.print(f"{len(files) - bad} of {len(files)} files imported; {bad} refused, nothing "
                  "of them kept")  # fmt: skip
        raise typer.Exit(2)


def _get(client: httpx.Client, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    return response.status_code, response.content


@app.command()
def fetch(
    start: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (default: --to)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (default: the last trading day)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download days already kept again.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Download NSE's participant-wise open interest of each trading day from `--from` to
    `--to` from OPCHAIN_PARTICIPANTS_URL and keep it, as `import` does. Days kept already are
    skipped (`--force`: downloaded again); a day without a file (404) is said, not a failure."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from opchain.market import calendar
    from opchain.market.ist import IST
    from opchain.store.participants import ParticipantsError, file_name, parse, stored_days

    settings = load_settings(data_dir=data_dir)
    check_data_dir(settings.data_dir)
    today = datetime.now(IST).date()
    try:
        last = end.date() if end else calendar.last_trading_day(EXCHANGE, today)
        first = start.date() if start else last
        if first > last:
            fail(f"--from {first} is after --to {last}")
        days = [d for d in _days(first, last) if calendar.is_trading_day(EXCHANGE, d)]
    except calendar.CalendarUnavailable as err:
        fail(f"{err}")
    if not days:
        fail(f"no trading day from {first} to {last}")
    kept = set(stored_days(settings.data_dir))
    base = settings.participants_url.rstrip("/")
    failed = missing = skipped = 0
    headers = {"User-Agent": USER_AGENT, "Referer": REFERER, "Accept": "text/csv,*/*"}
    with (
        httpx.Client(headers=headers, timeout=TIMEOUT, follow_redirects=True) as client,
        Progress(
            TextColumn("participants {task.description}"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=True, disable=len(days) < 2,
        ) as progress,
    ):  # fmt: skip
        task = progress.add_task("", total=len(days))
        for day in days:
            progress.update(task, description=str(day))
            name = file_name(day)
            url = f"{base}/{name}"
            if day in kept and not force:
                skipped += 1
                out.print(f"{day}: already stored, skipped (--force downloads it again)")
                progress.advance(task)
                continue
            try:
                status, body = _get(client, url)
            except httpx.HTTPError as err:
                failed += 1
                reason = " ".join(str(err).split())  # one line, whatever httpx says
                _error(f"{day}: {url}: {type(err).__name__}: {reason}")
                progress.advance(task)
                continue
            if status == 404:
                missing += 1
                out.print(f"{day}: no file at {url} (404): not published yet, or no session")
            elif status != 200:
                failed += 1
                _error(f"{day}: {url} answered HTTP {status}")
            else:
                try:
                    _keep(
                        settings.data_dir, parse(body, url, name), str(day), settings.durable_writes
                    )
                except ParticipantsError as err:
                    failed += 1
                    _error(str(err))
            progress.advance(task)
    fetched = len(days) - failed - missing - skipped
    summary = (f"{len(days)} trading days: {fetched} fetched, {skipped} already stored, "
               f"{missing} without a file, {failed} failed")  # fmt: skip
    out.print(summary)
    if failed:  # each said in its one line above
        raise typer.Exit(2)


def _days(first: date, last: date) -> list[date]:
    from datetime import timedelta

    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
