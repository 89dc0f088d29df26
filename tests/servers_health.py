"""Throwaway servers for the health tests: redis-server and influxd (Debian's, on random
loopback ports, in temporary directories, stopped by their PID), a listener that never answers,
a local SMTP server (aiosmtpd) and a webhook receiver. Each waits for readiness by reading the
server's own "listening" line or by its own start-up handshake, never by sleeping."""

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .servers import serve_in_thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _until_line(command: list[str], ready: str, stream: str) -> Iterator[subprocess.Popen[str]]:
    """Start ``command``; return once it prints a line containing ``ready`` on ``stream``
    (stdout or stderr); stop it by its PID at the end."""
    pipe = {"stdout": subprocess.PIPE} if stream == "stdout" else {"stderr": subprocess.PIPE}
    process = subprocess.Popen(command, text=True, **pipe)  # type: ignore[call-overload]
    lines = process.stdout if stream == "stdout" else process.stderr
    assert lines is not None
    drain = threading.Thread(target=lines.read, daemon=True)  # so the pipe never fills up
    try:
        seen = []
        for line in iter(lines.readline, ""):  # blocks until the server speaks; "" at EOF
            seen.append(line)
            if ready in line:
                break
        else:
            raise RuntimeError(f"{command[0]} did not start: {''.join(seen[-5:])}")
        drain.start()
        yield process
    finally:
        stop(process)
        if drain.is_alive():
            drain.join()
        lines.close()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(
    folder: Path, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """redis-server on ``port`` (default: a random one), nothing saved; yields its URL and the
    process. Started again on the same port, it is the same Redis come back (empty)."""
    port = port or free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "notice",
    ]
    with _until_line(command, "Ready to accept connections", "stdout") as process:
        yield f"redis://127.0.0.1:{port}/0", process


INFLUXDB_CONF = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[logging]
  level = "info"
  suppress-logo = true
"""


@contextmanager
def influxd_server(folder: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Debian's influxd 1.6 on random ports in ``folder``; yields its URL and the process."""
    http = free_port()
    conf = folder / "influxdb.conf"
    conf.write_text(INFLUXDB_CONF.format(rpc=free_port(), http=http, dir=folder))
    command = ["influxd", "run", "-config", str(conf)]
    with _until_line(command, "Listening on HTTP", "stderr") as process:
        yield f"http://127.0.0.1:{http}", process


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers; yields it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound for a moment, then released)."""
    return free_port()


@dataclass
class Mailbox:
    port: int
    messages: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@contextmanager
def smtp_server(password: str | None = None) -> Iterator[Mailbox]:
    """aiosmtpd on a random loopback port; with ``password``, AUTH LOGIN/PLAIN accepts only
    that (over plain text, as on a trusted relay)."""
    box = Mailbox(free_port())

    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        box.logins.append(data.login.decode())
        return AuthResult(success=data.password.decode() == password, handled=False)

    options: dict[str, Any] = {}
    if password is not None:
        options = {"authenticator": check, "auth_require_tls": False}
    controller = Controller(box, hostname="127.0.0.1", port=box.port, **options)
    controller.start()  # returns once the server answers its own probe
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]]


@contextmanager
def webhook_receiver(
    status: int = 200, on_post: Callable[[dict[str, Any]], None] | None = None
) -> Iterator[Hook]:
    """An HTTP server on loopback that records every JSON body POSTed to ``/hook``, hands it
    to ``on_post`` (before answering) and answers ``status``."""
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        body = await request.json()
        received.append(body)
        if on_post is not None:
            on_post(body)
        return Response(status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve_in_thread(app) as root:
        yield Hook(f"{root}/hook", received)
