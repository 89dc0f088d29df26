"""Alerts: which checks fire, de-duplication (a property over any sequence of rounds), delivery
to a real local SMTP server and a real webhook receiver, failing channels that must not stop
anything, and the monitor running rounds on a virtual clock."""

import asyncio
import itertools
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opchain.brokers.kite.session import StoredToken, save_token
from opchain.health import state
from opchain.health.alerts import Alert, Notice, Sent, alerts_for, decide, send
from opchain.health.checks import Check
from opchain.health.metrics import Metrics
from opchain.health.monitor import monitor
from opchain.health.supervisor import supervise
from opchain.market.clock import VirtualClock
from opchain.market.ist import IST
from opchain.settings import Settings

from .servers_health import closed_port, smtp_server, webhook_receiver

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
REPEAT = timedelta(minutes=60)
SECRET = "pw-do-not-log-7f3a"


def alert(key: str = "disk_low", severity: str = "warning") -> Alert:
    return Alert(key, severity, f"{key} summary", f"{key} detail")  # type: ignore[arg-type]


def counted(metrics: Metrics, name: str, channel: str) -> float:
    value = metrics.registry.get_sample_value(name, {"channel": channel})
    return value or 0.0


# --- what fires -----------------------------------------------------------------------------


def test_alerts_for_token_staleness_disk_sinks_and_components() -> None:
    checks = [
        Check("kite_token", "degraded", "expires 10:20", NOW),
        Check("storage", "down", "nothing for 300 s", NOW),
        Check("disk", "degraded", "2 GB free", NOW),
        Check("redis", "down", "refused", NOW),
        Check("influxdb", "ok", "fine", NOW),
        Check("memory", "down", "full", NOW),  # no alert rule: shown in /health only
    ]
    states = {
        "broker": state.State(component="broker", status="down", detail="token", since=""),
        "api": state.State(component="api", status="degraded", detail="slow", since=""),
    }
    found = {a.key: a.severity for a in alerts_for(checks, states, NOW)}
    assert found == {
        "kite_token": "warning",
        "stale_data": "critical",
        "disk_low": "warning",
        "sink_down:redis": "critical",
        "component_down:broker": "critical",
    }
    expired = alerts_for([Check("kite_token", "down", "expired", NOW)], {}, NOW)
    assert [(a.key, a.severity) for a in expired] == [("kite_token", "critical")]


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (datetime(2026, 11, 20, 5, 30, tzinfo=IST), False),  # the nightly expiry: routine
        (datetime(2026, 11, 20, 8, 44, tzinfo=IST), False),  # before the morning login is due
        (datetime(2026, 11, 20, 8, 45, tzinfo=IST), True),  # half an hour before the open
        (datetime(2026, 11, 20, 15, 29, tzinfo=IST), True),
        (datetime(2026, 11, 20, 15, 30, tzinfo=IST), False),  # closed
        (datetime(2026, 11, 21, 10, 0, tzinfo=IST), False),  # a Saturday
        (datetime(2026, 11, 24, 10, 0, tzinfo=IST), False),  # Guru Nanak Jayanti, a holiday
        (datetime(2027, 3, 2, 10, 0, tzinfo=IST), True),  # a year without a table: alert
    ],
)
def test_a_kite_login_alerts_only_while_a_session_is_due(at: datetime, due: bool) -> None:
    """Kite's tokens die at 06:00 IST every day: an expiring token at 05:30 and an expired one
    until the morning login are the routine; from half an hour before the open they are news."""
    for status in ("degraded", "down"):
        fired = alerts_for([Check("kite_token", status, "expires or expired", at)], {}, at)
        assert [a.key for a in fired] == (["kite_token"] if due else []), (status, at)


# --- de-duplication -------------------------------------------------------------------------


def test_decide_repeats_after_the_window_escalates_at_once_and_resolves_once() -> None:
    memory: dict[str, Sent] = {}

    def at(minutes: int, *firing: Alert) -> list[tuple[str, str, str]]:
        notices = decide(memory, list(firing), NOW + timedelta(minutes=minutes), REPEAT)
        return [(n.alert.key, n.status, n.alert.severity) for n in notices]

    assert at(0, alert()) == [("disk_low", "firing", "warning")]
    assert at(30, alert()) == []
    assert at(59, alert()) == []
    assert at(60, alert()) == [("disk_low", "firing", "warning")]
    assert at(61, alert(severity="critical")) == [("disk_low", "firing", "critical")]
    assert at(62, alert(severity="warning")) == []  # calmer is not news
    assert at(63) == [("disk_low", "resolved", "critical")]
    assert at(64) == []
    assert at(65, alert(severity="critical")) == []  # flapping: still within the window
    assert at(66) == []  # and nothing was sent for that episode, so nothing resolves
    assert at(121, alert(severity="critical")) == [("disk_low", "firing", "critical")]


Round = tuple[int, dict[str, str]]  # (minutes since the previous round, firing key -> severity)
rounds = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["warning", "critical"])),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(rounds)
def test_no_key_is_sent_twice_in_a_window_unless_it_got_worse(script: list[Round]) -> None:
    memory: dict[str, Sent] = {}
    now = NOW
    log: list[Notice] = []
    firing_since_resolved: dict[str, bool] = {}
    for gap, firing in script:
        now += timedelta(minutes=gap)
        alerts = [alert(k, s) for k, s in firing.items()]
        notices = decide(memory, alerts, now, REPEAT)
        keys = [n.alert.key for n in notices]
        assert len(keys) == len(set(keys))  # at most one notice per key per round
        for n in notices:
            key = n.alert.key
            if n.status == "resolved":
                assert key not in firing and firing_since_resolved.get(key)
                firing_since_resolved[key] = False
            else:
                assert key in firing
                firing_since_resolved[key] = True
        for key in firing:  # liveness: a firing key has had a notice within the window
            last = max(
                n.at for n in [*log, *notices] if n.alert.key == key and n.status == "firing"
            )
            assert now - last < REPEAT or last == now
        log += notices
    for key in {n.alert.key for n in log}:
        sent = [n for n in log if n.alert.key == key and n.status == "firing"]
        for before, after in itertools.pairwise(sent):
            worse = before.alert.severity == "warning" and after.alert.severity == "critical"
            assert after.at - before.at >= REPEAT or worse


# --- delivery -------------------------------------------------------------------------------


def notices_now(*status: str) -> list[Notice]:
    return [Notice(alert("kite_token", "critical"), s, NOW) for s in status]  # type: ignore[arg-type]


def test_email_reaches_a_real_smtp_server(tmp_path: Path) -> None:
    metrics = Metrics()
    with smtp_server() as box:
        settings = Settings(
            data_dir=tmp_path,
            alert_smtp_host="127.0.0.1",
            alert_smtp_port=box.port,
            alert_email_to="ops@example.com, b@example.com",
        )
        asyncio.run(send_with_client(settings, notices_now("firing", "resolved"), metrics))
    assert len(box.messages) == 2
    first = box.messages[0]
    assert first.mail_from == "opchain@localhost"
    assert first.rcpt_tos == ["ops@example.com", "b@example.com"]
    body = first.content.decode() if isinstance(first.content, bytes) else str(first.content)
    assert "Subject: [opchain] CRITICAL kite_token summary" in body
    assert "kite_token detail" in body
    resolved = box.messages[1].content
    assert b"Subject: [opchain] RESOLVED kite_token" in (
        resolved if isinstance(resolved, bytes) else b""
    )
    assert counted(metrics, "opchain_alerts_sent_total", "email") == 2


def test_smtp_login_works_and_a_refused_one_never_logs_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    with smtp_server(password=SECRET) as box:
        common = dict(
            data_dir=tmp_path,
            alert_smtp_host="127.0.0.1",
            alert_smtp_port=box.port,
            alert_email_to="ops@example.com",
            alert_smtp_user="opchain",
        )
        good = Settings(**common, alert_smtp_password=SECRET)  # type: ignore[arg-type]
        asyncio.run(send_with_client(good, notices_now("firing"), metrics))
        assert len(box.messages) == 1 and box.logins == ["opchain"]
        bad = Settings(**common, alert_smtp_password=SECRET + "-wrong")  # type: ignore[arg-type]
        with caplog.at_level(logging.DEBUG):
            asyncio.run(send_with_client(bad, notices_now("firing"), metrics))
    assert len(box.messages) == 1
    assert counted(metrics, "opchain_alert_failures_total", "email") == 1
    assert "alert by email" in caplog.text and "SMTPAuthenticationError" in caplog.text
    assert SECRET not in caplog.text


def test_the_webhook_gets_json(tmp_path: Path) -> None:
    metrics = Metrics()
    with webhook_receiver() as hook:
        settings = Settings(data_dir=tmp_path, alert_webhook_url=hook.url)
        asyncio.run(send_with_client(settings, notices_now("firing", "resolved"), metrics))
    assert hook.received == [
        {
            "key": "kite_token",
            "status": "firing",
            "severity": "critical",
            "summary": "kite_token summary",
            "detail": "kite_token detail",
            "at": NOW.isoformat(),
        },
        {
            "key": "kite_token",
            "status": "resolved",
            "severity": "critical",
            "summary": "kite_token summary",
            "detail": "kite_token detail",
            "at": NOW.isoformat(),
        },
    ]
    assert counted(metrics, "opchain_alerts_sent_total", "webhook") == 2


def test_failing_channels_are_logged_and_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    with webhook_receiver(status=500) as hook:
        settings = Settings(
            data_dir=tmp_path,
            alert_webhook_url=hook.url,
            alert_smtp_host="127.0.0.1",
            alert_smtp_port=closed_port(),
            alert_email_to="ops@example.com",
        )
        asyncio.run(send_with_client(settings, notices_now("firing"), metrics))
    assert len(hook.received) == 1  # it was asked, and said 500
    assert counted(metrics, "opchain_alert_failures_total", "webhook") == 1
    assert counted(metrics, "opchain_alert_failures_total", "email") == 1
    assert "alert by webhook" in caplog.text and "alert by email" in caplog.text


async def send_with_client(settings: Settings, notices: list[Notice], metrics: Metrics) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await send(settings, notices, http, metrics)


# --- the monitor ----------------------------------------------------------------------------


def test_the_monitor_warns_escalates_repeats_and_resolves_a_token(tmp_path: Path) -> None:
    """Rounds every 5 minutes from 10:00; the login dies at 10:50; the repeat window is 15
    minutes. Whoever gets the critical alert logs in again, and the next round resolves it."""
    token_file = tmp_path / "token.json"

    def login(expires: datetime) -> None:
        save_token(token_file, StoredToken("k", "t", "AB1234", "A B", NOW, expires))

    login(NOW + timedelta(minutes=50))
    received: list[dict[str, Any]] = []

    def on_post(body: dict[str, Any]) -> None:
        if body["key"] == "kite_token":
            received.append(body)
            if body["severity"] == "critical" and body["status"] == "firing":
                login(NOW + timedelta(hours=20))

    metrics = Metrics()
    with webhook_receiver(on_post=on_post) as hook:
        settings = Settings(
            data_dir=tmp_path,
            broker="kite",
            kite_api_key="k",
            kite_token_file=token_file,
            alert_webhook_url=hook.url,
            alert_repeat_minutes=15,
            disk_min_free_gb=0,
        )
        clock = VirtualClock(NOW)
        asyncio.run(monitor(settings, clock, metrics, interval=300, rounds=14))
    got = [(b["at"][11:16], b["status"], b["severity"]) for b in received]
    assert got == [
        ("10:20", "firing", "warning"),
        ("10:35", "firing", "warning"),
        ("10:50", "firing", "critical"),
        ("10:55", "resolved", "critical"),
    ]
    assert clock.now() == NOW + timedelta(minutes=65)  # 14 rounds, 13 waits
    stale = [b for b in hook.received if b["key"] == "stale_data"]
    assert [b["at"][11:16] for b in stale] == ["10:00", "10:15", "10:30", "10:45", "11:00"]
    up = metrics.registry.get_sample_value("opchain_component_up", {"component": "storage"})
    assert up == 0  # a session with no data stored


def test_a_collector_started_mid_session_is_not_stale_until_it_stalls(tmp_path: Path) -> None:
    """Issue 13, case 14: the monitor beside a collector started at 14:26 with nothing stored
    today sent a CRITICAL stale_data in its first round ("nothing stored for 18660 s"). Now
    the rounds (every 30 s) are quiet for stale_seconds; a collector that never stores is
    stale from the first round after that, and the alert names the start."""
    start = datetime(2026, 11, 20, 14, 26, tzinfo=IST)
    clock = VirtualClock(start)
    running = asyncio.Event()

    async def never_stores() -> None:
        running.set()
        await asyncio.Event().wait()

    async def run(settings: Settings) -> None:
        collector = asyncio.create_task(supervise("collector", never_stores, tmp_path, clock))
        await running.wait()
        await monitor(settings, clock, interval=30, rounds=7)
        collector.cancel()

    with webhook_receiver() as hook:
        asyncio.run(run(Settings(data_dir=tmp_path, alert_webhook_url=hook.url)))
    stale = [b for b in hook.received if b["key"] == "stale_data"]
    assert [(b["at"][11:19], b["status"]) for b in stale] == [("14:28:30", "firing")]
    assert "the collector started at 14:26:00" in stale[0]["detail"]
    assert "nothing stored for 150 s" in stale[0]["detail"]


def test_the_monitor_outlives_every_channel_failing(tmp_path: Path) -> None:
    metrics = Metrics()
    dead = f"http://127.0.0.1:{closed_port()}/hook"
    settings = Settings(
        data_dir=tmp_path,
        alert_webhook_url=dead,
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=closed_port(),
        alert_email_to="ops@example.com",
    )
    clock = VirtualClock(NOW)  # in a session, nothing stored: stale data fires at once
    asyncio.run(monitor(settings, clock, metrics, interval=60, rounds=3))
    assert clock.now() == NOW + timedelta(minutes=2)
    assert counted(metrics, "opchain_alert_failures_total", "webhook") >= 1
    assert counted(metrics, "opchain_alert_failures_total", "email") >= 1


def test_a_round_that_breaks_is_one_line_a_round_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13, case 18's sibling: a round that breaks (here the metrics) logged its whole
    traceback every 30 s on the terminal; now one line, the traceback at debug level."""

    class Broken(Metrics):
        def set_health(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a gauge went away")

    caplog.set_level(logging.DEBUG, logger="opchain.health.monitor")
    settings = Settings(data_dir=tmp_path)
    asyncio.run(monitor(settings, VirtualClock(NOW), Broken(), interval=30, rounds=3))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "health monitor round failed: RuntimeError: a gauge went away"
    ] * 3
    assert all(r.exc_info is None for r in warnings)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.exc_info)
