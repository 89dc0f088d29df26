"""``opchain monitor``: the alerts of a data directory on their own (the scale-out has no
``opchain run`` to send them), from a real process to a real webhook receiver."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .servers_health import closed_port, webhook_receiver


def monitor(data_dir: Path, **env: str) -> "subprocess.Popen[str]":
    argv = [sys.executable, "-m", "opchain", "monitor", "-d", str(data_dir)]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPCHAIN_")}
    return subprocess.Popen(argv, env={**environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.e2e
def test_monitor_sends_an_alert_and_stops_on_sigterm(tmp_path: Path) -> None:
    running: list[subprocess.Popen[str]] = []

    def stop(body: dict[str, Any]) -> None:  # the first alert is in: a clean stop
        running[0].send_signal(signal.SIGTERM)

    with webhook_receiver(on_post=stop) as hook:
        influxdb = f"http://127.0.0.1:{closed_port()}"  # configured, not there: an alert
        process = monitor(
            tmp_path, OPCHAIN_ALERT_WEBHOOK_URL=hook.url, OPCHAIN_INFLUXDB_URL=influxdb
        )
        running.append(process)
        try:
            said, errors = process.communicate(timeout=120)
        except BaseException:
            process.kill()
            raise
    assert process.returncode == 0, errors
    assert said.splitlines() == [
        f"monitoring {tmp_path} every 30 s; alerts by webhook to 127.0.0.1",  # no secret path
        "stopped",
    ]
    assert hook.received[0]["key"] == "sink_down:influxdb"
    assert hook.received[0]["status"] == "firing"
    assert hook.received[0]["severity"] == "critical"


@pytest.mark.e2e
def test_monitor_without_an_alert_channel_is_one_line(tmp_path: Path) -> None:
    process = monitor(tmp_path)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 2
    assert errors.strip().splitlines() == [
        "error: no alert channel configured: set OPCHAIN_ALERT_WEBHOOK_URL, or "
        "OPCHAIN_ALERT_SMTP_HOST and OPCHAIN_ALERT_EMAIL_TO"
    ]
