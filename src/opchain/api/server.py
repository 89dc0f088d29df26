"""Running the API under uvicorn inside an existing event loop (beside the collector, or on
its own), on a socket bound and listening before anyone is told the address.

What a client may hold or make the server hold is bounded here, since uvicorn leaves some of it
open:

- A request's line and headers together may be ``max_head`` bytes; past it the answer is 400
  and the connection closes. (h11's own limit of that name bounds only a head still
  incomplete: one that arrives in a single read, up to 256 KiB, passed whole.)
- A request must arrive whole within ``head_timeout`` seconds of its first byte (of the
  connection opening, for the first): uvicorn times out only idle keep-alive connections, so
  a client sending its headers a byte at a time was held for as long as it liked. Past the
  deadline a partly sent request gets 408; a connection that sent nothing is closed.
- A WebSocket handshake the ``websockets`` parser refuses (a request line over its 8 KiB, more
  than 128 headers, a body) is answered, 414, 431 or 400, and closed; uvicorn sent an answer
  only for a handshake it could parse (and for a method other than GET, 405), and left the
  others open with no answer at all.
- No header names the client: the server believes no ``X-Forwarded-For`` (uvicorn's default
  believes it from 127.0.0.1). The app does, from the proxies ``api_trusted_proxies`` names
  (``app.create_app``), so the client the rate limiter counts is the same whichever server
  runs the app.

Protocol classes are uvicorn's h11 and websockets-sansio ones, named rather than "auto", so
that installing httptools changes nothing here.
"""

import asyncio
import socket
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HEAD_TIMEOUT = 10.0  # seconds from a request's first byte to its last
MAX_HEAD = 16 * 1024  # bytes of request line and headers together (h11's default, made explicit)


def _plain(status: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for a client no app has seen."""
    body = text.encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
    return (
        head.encode() + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body
    )


_TIMEOUT = _plain("408 Request Timeout", "the request did not arrive whole in time")
_BAD_HANDSHAKE = _plain("400 Bad Request", "not a valid WebSocket opening handshake")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port); OSError when taken.

    Listening before uvicorn starts means a client told the address at once is queued in the
    backlog rather than refused. The protocol is named (IPPROTO_TCP, not 0) because asyncio
    turns Nagle's algorithm off only on sockets that say they are TCP; without that a response
    written in two parts waits for the client's delayed ACK, 40 ms a request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def server(
    app: FastAPI, *, head_timeout: float = HEAD_TIMEOUT, max_head: int = MAX_HEAD
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the bounds of the module docstring."""

    class Http(BoundedH11):
        deadline_seconds = head_timeout

    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        http=Http,
        ws=AnsweringWebSocket,
        h11_max_incomplete_event_size=max_head,
        proxy_headers=False,
        access_log=False,
    )
    return uvicorn.Server(config)


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a bound on each request head's size and a deadline on each
    request's arrival."""

    deadline_seconds = HEAD_TIMEOUT

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.conn = _BoundedConnection(config.h11_max_incomplete_event_size or MAX_HEAD)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._heard = False
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._heard = self._heard or bool(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first byte of a request starts its clock (if not running)
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is whole (or the connection is done with)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.deadline_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._heard and self.conn.our_state is h11.IDLE:
            self.transport.write(_TIMEOUT)  # a request started and never finished
        self.transport.close()


class _BoundedConnection(h11.Connection):
    """An h11 server connection that refuses a parsed request whose head is over ``max_head``
    bytes (uvicorn answers its RemoteProtocolError with 400 and closes)."""

    def __init__(self, max_head: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.max_head = max_head

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request) and _head_size(event) > self.max_head:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event


def _head_size(request: h11.Request) -> int:
    """The bytes of the request line and headers as sent, give or take optional spaces."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in request.headers.raw_items()) + 2


class AnsweringWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol that answers a handshake it cannot parse."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        refused = self.conn.handshake_exc is not None and not self.handshake_initiated
        if refused and not self.transport.is_closing():
            # websockets put its 414/431 answer in its output (an empty one for anything else)
            # and uvicorn sends its output only for a parsed request.
            self.transport.write(b"".join(self.conn.data_to_send()) or _BAD_HANDSHAKE)
            self.transport.close()
