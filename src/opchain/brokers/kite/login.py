"""The login's moving parts: catching Kite's redirect on a local port, and the token exchange.

Kite sends the browser, after the user has logged in, to the redirect URL registered for the
app (``http://127.0.0.1:5000/kite/callback`` by default) with the ``request_token`` in the
query. :func:`catch_redirect` listens there for that one request; a user whose redirect URL
points elsewhere pastes the token or the whole URL instead (:func:`~.session.request_token_from`).
"""

import asyncio
import socket
from datetime import datetime
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from opchain.market.ist import IST

from .client import KiteClient
from .session import StoredToken, request_token_from, token_expiry

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_DONE = "<!doctype html><title>opchain</title><p>Logged in to Kite. You can close this tab."
_FAILED = "<!doctype html><title>opchain</title><p>Kite login failed: {reason}. Try again."


def listen(redirect_url: str) -> socket.socket:
    """A socket listening where ``redirect_url`` points, which must be this machine.

    Raises ValueError for a remote URL and OSError when the port is taken.
    """
    parts = urlsplit(redirect_url)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        raise ValueError(
            f"the redirect URL {redirect_url} is not on this machine (http://127.0.0.1:PORT/...): "
            "paste the request_token instead"
        )
    family = socket.AF_INET6 if parts.hostname == "::1" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((parts.hostname, parts.port or 80))
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    return sock


async def catch_redirect(sock: socket.socket, redirect_url: str, timeout: float) -> str:
    """Serve ``redirect_url``'s path on ``sock`` until Kite's redirect brings a request token.

    Raises TimeoutError after ``timeout`` seconds and ValueError for a failed login.
    """
    caught: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: Request) -> Response:
        try:
            token = request_token_from(str(request.url))
        except ValueError as err:
            if not caught.done():
                caught.set_exception(err)
            return HTMLResponse(_FAILED.format(reason=err), 400)
        if not caught.done():
            caught.set_result(token)
        return HTMLResponse(_DONE)

    app = Starlette(routes=[Route(urlsplit(redirect_url).path or "/", callback)])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        return await asyncio.wait_for(caught, timeout)
    finally:
        server.should_exit = True  # after the browser has had its page
        await serving


async def exchange(client: KiteClient, request_token: str, api_secret: str) -> StoredToken:
    """Trade a request token for the day's access token, and check it works."""
    data = await client.create_session(request_token, api_secret)
    login_time = _login_time(data.get("login_time")) or client.clock.now()
    checker = client.with_access_token(str(data["access_token"]))
    try:
        await checker.profile()  # raises TokenExpired if Kite does not honour the new token
    finally:
        await checker.close()
    return StoredToken(
        api_key=client.api_key,
        access_token=str(data["access_token"]),
        user_id=str(data.get("user_id", "")),
        user_name=str(data.get("user_name", "")),
        login_time=login_time,
        expires_at=token_expiry(login_time),
    )


def _login_time(text: object) -> datetime | None:
    """Kite's ``login_time``, ``2021-01-01 16:15:14`` in IST."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return None
