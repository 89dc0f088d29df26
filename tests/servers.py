"""Real servers for tests, on a random loopback port, in a thread (httpx's serve_in_thread)."""

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


@contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block ends; yield its base URL."""
    # TCP named (not protocol 0): asyncio turns Nagle's algorithm off only then, else every
    # response in two writes waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.01):  # uvicorn sets server.started once it is listening
        if server.started:
            started.set()
        elif not thread.is_alive():
            raise RuntimeError("the test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@contextmanager
def fake_kite_process(*options: str) -> Iterator[str]:
    """``opchain fake-kite`` (API key k, secret s) in a subprocess until the block ends; yield
    its root URL, read from the line it prints once it listens."""
    command = [sys.executable, "-m", "opchain", "fake-kite", "--port", "0", "--api-key", "k"]
    with subprocess.Popen(
        [*command, "--api-secret", "s", *options], stderr=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stderr is not None
            found = re.search(r"listening on (http://\S+) ", server.stderr.readline())
            assert found, "fake-kite did not start"
            yield found[1]
        finally:
            server.kill()
