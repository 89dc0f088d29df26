"""Running the API under uvicorn inside an existing event loop (beside the collector, or on
its own), on a socket bound and listening before anyone is told the address."""

import socket

import uvicorn
from fastapi import FastAPI


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


def server(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="websockets-sansio", access_log=False
    )
    return uvicorn.Server(config)


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
