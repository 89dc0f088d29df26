"""What a client can make the API server hold, and whom it believes, against a real uvicorn
server on a random loopback port, over raw sockets (a client library would not misbehave).

Limits are injected short (``server(head_timeout=, max_head=)``) so that nothing waits for the
real ones; a socket timeout bounds every read, so a server that never answers fails the test
instead of hanging it.
"""

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from opchain.api.app import create_app
from opchain.api.server import HEAD_TIMEOUT, MAX_HEAD
from opchain.settings import Settings

from .apiserver import Running, running

GIVE_UP = 30.0  # seconds a read may block before the test calls the server silent
SHORT = 0.3  # the injected request deadline, seconds


def _address(server: Running) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


@contextmanager
def _socket(server: Running) -> Iterator[socket.socket]:
    with socket.create_connection(_address(server), timeout=GIVE_UP) as sock:
        yield sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert found, answer[:200]
    return int(found[1])


@pytest.fixture
def open_api(tmp_path: Path) -> Iterator[Running]:
    with running(create_app(Settings(data_dir=tmp_path)), head_timeout=SHORT) as server:
        yield server


def test_the_real_limits_are_what_the_docs_say() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"may be {MAX_HEAD // 1024} KiB together" in doc
    assert f"within {HEAD_TIMEOUT:g} s of the first byte" in doc


# A request that never finishes arriving.


def test_headers_sent_a_line_at_a_time_get_408_at_the_deadline(open_api: Running) -> None:
    """The deadline runs from the request's first byte: each new header line does not
    extend it (a slowloris client)."""
    with _socket(open_api) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(SHORT / 6)
        first = b""
        for _ in range(int(GIVE_UP / (SHORT / 6))):  # a line every 50 ms, for up to 30 s
            try:
                first = sock.recv(65536)
                break
            except TimeoutError:
                sock.sendall(b"X-Drip: 1\r\n")
        sock.settimeout(GIVE_UP)
        answer = first + _answer(sock)
    assert _status(answer) == 408
    assert answer.endswith(b"the request did not arrive whole in time")


def test_a_connection_that_sends_nothing_is_closed(open_api: Running) -> None:
    with _socket(open_api) as sock:
        assert _answer(sock) == b""


def test_each_request_on_a_kept_connection_has_its_own_deadline(open_api: Running) -> None:
    with _socket(open_api) as sock:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert _status(head) == 200
        length = int(re.search(rb"content-length: (\d+)", head, re.I)[1])  # type: ignore[index]
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < length:
            body += sock.recv(65536)
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")  # the next request stalls half-way
        assert _status(_answer(sock)) == 408


def test_a_request_sent_in_pieces_in_time_is_answered(open_api: Running) -> None:
    with _socket(open_api) as sock:
        for piece in (
            b"GET /openapi.json HT",
            b"TP/1.1\r\nHost: x\r\n",
            b"Connection: close\r\n\r\n",
        ):
            sock.sendall(piece)
        assert _status(_answer(sock)) == 200


# Oversized heads.


def test_a_request_head_over_the_limit_gets_400(tmp_path: Path) -> None:
    with running(create_app(Settings(data_dir=tmp_path)), max_head=1024) as server:
        with _socket(server) as sock:
            sock.sendall(b"GET /health?" + b"a" * 2048 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(_answer(sock)) == 400
        with _socket(server) as sock:  # headers count too
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 2048 + b"\r\n\r\n")
            assert _status(_answer(sock)) == 400
        assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_request_head_over_the_real_limit_gets_400_even_when_it_arrives_at_once(
    open_api: Running,
) -> None:
    with _socket(open_api) as sock:
        sock.sendall(b"GET /health?" + b"a" * (4 * MAX_HEAD) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(_answer(sock)) == 400


def _upgrade(target: bytes, extra: bytes = b"", method: bytes = b"GET") -> bytes:
    return (
        method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (_upgrade(b"/ws/live/NIFTY?key=" + b"a" * 10_240), 414),  # a 10 KB upgrade URL
        (_upgrade(b"/ws/live/NIFTY", b"".join(b"X-%d: 1\r\n" % i for i in range(130))), 431),
        (_upgrade(b"/ws/live/NIFTY", method=b"POST"), 405),
        (_upgrade(b"/ws/live/NIFTY", b"Content-Length: 2\r\n") + b"hi", 400),
    ],
    ids=["long-url", "many-headers", "not-get", "with-body"],
)
def test_a_websocket_handshake_the_server_cannot_parse_is_answered(
    open_api: Running, request_bytes: bytes, status: int
) -> None:
    """At the server's real limits: h11 passes these on, websockets refuses them."""
    assert len(request_bytes) < MAX_HEAD
    with _socket(open_api) as sock:
        sock.sendall(request_bytes)
        assert _status(_answer(sock)) == status


# Whom the server believes.

SPOOFS = ("X-Forwarded-For", "X-Real-IP", "Forwarded", "True-Client-IP", "X-Client-IP")


def _spoofed(i: int) -> dict[str, str]:
    address = f"203.0.{i // 250}.{i % 250 + 1}"
    return {name: address if name != "Forwarded" else f"for={address}" for name in SPOOFS}


def test_key_guesses_with_varied_forwarding_headers_are_rate_limited(tmp_path: Path) -> None:
    """No proxy configured: every guess comes from 127.0.0.1 whatever its headers say, so
    the address's bucket empties after the burst (300 guesses: 401 then 429)."""
    config = Settings(data_dir=tmp_path, api_keys="right", api_burst=20, api_rate=0.01)  # type: ignore[arg-type]
    with running(create_app(config)) as server, httpx.Client(base_url=server.url) as client:
        codes = [
            client.get("/indices", headers={"X-API-Key": f"guess{i}", **_spoofed(i)}).status_code
            for i in range(300)
        ]
        assert codes[:20] == [401] * 20
        assert codes[20:] == [429] * 280
        ws = server.url.replace("http://", "ws://") + "/ws/live/NIFTY?key=guess"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws, additional_headers=_spoofed(999), open_timeout=GIVE_UP)
        assert refused.value.response.status_code == 429


def test_a_configured_proxy_is_believed_and_only_it(tmp_path: Path) -> None:
    config = Settings(
        data_dir=tmp_path,
        api_keys="right",  # type: ignore[arg-type]
        api_burst=3,
        api_rate=0.01,
        api_trusted_proxies="127.0.0.0/8",  # type: ignore[arg-type]
    )
    with running(create_app(config)) as server, httpx.Client(base_url=server.url) as client:

        def guess(forwarded_for: str) -> int:
            headers = {"X-API-Key": "wrong", "X-Forwarded-For": forwarded_for}
            return client.get("/indices", headers=headers).status_code

        # each client behind the proxy has its own bucket
        assert [guess(f"198.51.100.{i}") for i in range(1, 11)] == [401] * 10
        assert [guess("198.51.100.77") for _ in range(5)] == [401] * 3 + [429] * 2
        # a client cannot hide behind an address it prepends: the proxy's own entry counts
        assert [guess(f"10.9.9.{i}, 198.51.100.77") for i in range(3)] == [429] * 3
        assert guess("198.51.100.78") == 401

    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(api_trusted_proxies="localhost")  # type: ignore[arg-type]
