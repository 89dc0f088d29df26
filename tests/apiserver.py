"""The API under a real uvicorn server in a thread, with its event loop at hand, so a test
can feed the Hub on the loop that serves it (the Hub is single-threaded by design)."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import FastAPI

from opchain.api.server import address, listen, server

T = TypeVar("T")


class Running:
    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.url, self.loop = url, loop

    def on_loop(self, call: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``call`` on the server's event loop and return what it returned (TimeoutError
        after ``timeout`` seconds)."""

        async def run() -> T:
            return call()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)


@contextmanager
def running(app: FastAPI, **limits: Any) -> Iterator[Running]:
    """Serve ``app`` on a random loopback port until the block ends. The socket listens
    before the server starts, so requests made at once wait in its backlog. ``limits`` go to
    :func:`opchain.api.server.server` (``head_timeout``, ``max_head``)."""
    sock = listen("127.0.0.1", 0)
    api = server(app, **limits)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(api.serve(sockets=[sock]),), daemon=True
    )
    thread.start()
    try:
        yield Running(address(sock), loop)
    finally:
        loop.call_soon_threadsafe(setattr, api, "should_exit", True)
        thread.join()
        loop.close()
        sock.close()
