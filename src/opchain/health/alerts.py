"""Alerts: which checks are worth waking someone for, sent by e-mail and webhook, once.

An alert has a key (``kite_token``, ``stale_data``, ``disk_low``, ``sink_down:redis``,
``component_down:broker``). :func:`decide` turns each round's firing alerts into notices: a
key is not sent again within ``alert_repeat_minutes`` of its last notice, unless it got worse
(a warning that became critical), and a key that stops firing after a notice gets one
``resolved`` notice. The last-sent time outlives a resolution, so an alert flapping on and
off every round is still sent at most once a window.

A channel that fails (mail server down, webhook 500) is logged and counted, never raised: the
monitor must outlive its own alerting.
"""

import asyncio
import logging
import smtplib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from opchain.health.checks import Check, redact
from opchain.health.metrics import Metrics
from opchain.health.state import State
from opchain.market import calendar
from opchain.market.ist import to_ist
from opchain.settings import Settings

log = logging.getLogger(__name__)

Severity = Literal["warning", "critical"]
SEVERITY_RANK: dict[Severity, int] = {"warning": 0, "critical": 1}
SINKS = ("influxdb", "redis")
LOGIN_EXCHANGE = "NSE"  # whose sessions the morning login is due for (BSE's hours are the same)
LOGIN_LEAD = timedelta(minutes=30)  # the login is due this long before the open


@dataclass(frozen=True)
class Alert:
    key: str
    severity: Severity
    summary: str
    detail: str


@dataclass(frozen=True)
class Notice:
    alert: Alert
    status: Literal["firing", "resolved"]
    at: datetime


@dataclass
class Sent:
    """What was last sent for a key: when, how severe, and whether it still owes a
    ``resolved``."""

    at: datetime
    severity: Severity
    open: bool


def login_due(now: datetime) -> bool:
    """Whether a missing or dying Kite login is worth an alert at ``now``: from half an hour
    before a session's open to its close. Kite's tokens all die at 06:00 IST, so at night and
    on a closed day a token expiring, or expired until the morning login, is the routine, not
    news. A day the calendar cannot say anything about is due (better one alert too many)."""
    now = to_ist(now)
    try:
        day = calendar.session(LOGIN_EXCHANGE, now.date())
    except calendar.CalendarUnavailable:
        return True
    return day is not None and day.open - LOGIN_LEAD <= now < day.close


def alerts_for(checks: list[Check], states: dict[str, State], now: datetime) -> list[Alert]:
    """The alerts the checks and component states call for at ``now``: token expiring or
    expired while a session is due, stale data in a session, disk low, a configured sink down,
    a component down."""
    alerts = []
    for c in checks:
        if c.name == "kite_token" and c.status != "ok" and login_due(now):
            expired = c.status == "down"
            what = "Kite login expired or missing" if expired else "Kite login expires soon"
            alerts.append(Alert("kite_token", "critical" if expired else "warning", what, c.detail))
        elif c.name == "storage" and c.status == "down":
            alerts.append(Alert("stale_data", "critical", "No new data in the session", c.detail))
        elif c.name == "disk" and c.status != "ok":
            severity: Severity = "critical" if c.status == "down" else "warning"
            alerts.append(Alert("disk_low", severity, "Disk space low", c.detail))
        elif c.name in SINKS and c.status == "down":
            alerts.append(Alert(f"sink_down:{c.name}", "critical", f"{c.name} down", c.detail))
    for name, s in states.items():
        if s["status"] == "down":
            alerts.append(Alert(f"component_down:{name}", "critical", f"{name} down", s["detail"]))
    return alerts


def decide(
    memory: dict[str, Sent], firing: list[Alert], now: datetime, repeat: timedelta
) -> list[Notice]:
    """The notices to send now for this round's firing alerts; ``memory`` is updated."""
    notices = []
    by_key = {a.key: a for a in firing}
    for key, alert in by_key.items():
        sent = memory.get(key)
        worse = sent is not None and SEVERITY_RANK[alert.severity] > SEVERITY_RANK[sent.severity]
        if sent is None or worse or now - sent.at >= repeat:
            notices.append(Notice(alert, "firing", now))
            memory[key] = Sent(now, alert.severity, open=True)
    for key, sent in memory.items():
        if sent.open and key not in by_key:
            sent.open = False
            resolved = Alert(key, sent.severity, f"resolved: {key}", "no longer firing")
            notices.append(Notice(resolved, "resolved", now))
    return notices


async def send(
    settings: Settings, notices: list[Notice], http: httpx.AsyncClient, metrics: Metrics | None
) -> None:
    """Send each notice on every configured channel; a failure is logged and counted."""
    for notice in notices:
        if settings.alert_webhook_url:
            await _attempt("webhook", post_webhook(http, settings.alert_webhook_url, notice),
                           metrics, redact(settings.alert_webhook_url))  # fmt: skip
        if settings.alert_smtp_host and settings.alert_email_to:
            mail = asyncio.to_thread(send_email, settings, notice)
            await _attempt("email", mail, metrics, f"{settings.alert_smtp_host}")


async def post_webhook(http: httpx.AsyncClient, url: str, notice: Notice) -> None:
    """POST the notice as JSON; anything but a 2xx is a failure."""
    response = await http.post(url, json=as_json(notice))
    response.raise_for_status()


def send_email(settings: Settings, notice: Notice) -> None:
    """Mail the notice through the configured server (STARTTLS and login when set)."""
    assert settings.alert_smtp_host
    message = EmailMessage()
    message["Subject"] = subject(notice)
    message["From"] = settings.alert_email_from
    message["To"] = ", ".join(settings.alert_email_to)
    a = notice.alert
    message.set_content(
        f"{a.summary}\n\n{a.detail}\n\nkey: {a.key}\nseverity: {a.severity}\n"
        f"status: {notice.status}\nat: {notice.at.isoformat()}\n"
    )
    with smtplib.SMTP(settings.alert_smtp_host, settings.alert_smtp_port, timeout=10) as smtp:
        if settings.alert_smtp_tls:
            smtp.starttls()
        if settings.alert_smtp_user and settings.alert_smtp_password is not None:
            smtp.login(settings.alert_smtp_user, settings.alert_smtp_password.get_secret_value())
        smtp.send_message(message)


def subject(notice: Notice) -> str:
    a = notice.alert
    if notice.status == "resolved":
        return f"[opchain] RESOLVED {a.key}"
    return f"[opchain] {a.severity.upper()} {a.summary}"


def as_json(notice: Notice) -> dict[str, str]:
    a = notice.alert
    return {"key": a.key, "status": notice.status, "severity": a.severity,
            "summary": a.summary, "detail": a.detail, "at": notice.at.isoformat()}  # fmt: skip


async def _attempt(
    channel: str, job: Coroutine[Any, Any, None], metrics: Metrics | None, where: str
) -> None:
    try:
        await job
    except Exception as err:  # whatever the channel does, the monitor goes on
        log.warning("alert by %s to %s failed: %s: %s", channel, where, type(err).__name__, err)
        if metrics is not None:
            metrics.alert_failures.labels(channel).inc()
        return
    if metrics is not None:
        metrics.alerts_sent.labels(channel).inc()
