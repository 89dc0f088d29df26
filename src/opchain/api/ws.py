"""``/ws/live/{index}``: the index's ``Live`` message now, and again after every new snapshot.

The key comes as the ``key`` query parameter (browsers cannot set headers on a WebSocket). A
refused handshake is an HTTP answer (401, 404, 429) where the server supports it, else a close
with code 1008. One task per client sends; it waits for the Hub's ``changed`` event and then
sends the newest message, so a slow client skips messages rather than queueing them. Another
waits for the client to leave.
"""

import asyncio
import contextlib

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from opchain.api.deps import IndexName, client_of
from opchain.api.limits import RateLimiter
from opchain.api.live import Hub
from opchain.store.live import encode

router = APIRouter()


async def _deny(
    websocket: WebSocket, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response = JSONResponse({"detail": detail}, status, headers)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=detail)


@router.websocket("/ws/live/{index}")
async def live(websocket: WebSocket, index: IndexName, key: str | None = Query(None)) -> None:
    state = websocket.app.state
    host = websocket.client.host if websocket.client else None
    allowed, client = client_of(key, host, state)
    limiter: RateLimiter = state.limiter
    wait = limiter.take(client)
    if wait is not None:
        detail = f"too many requests; try again in {wait} s"
        await _deny(websocket, 429, detail, {"Retry-After": str(wait)})
        return
    if not allowed:
        detail = "a valid API key is required in the key query parameter"
        await _deny(websocket, 401, detail, {"WWW-Authenticate": "APIKey"})
        return
    if index.value not in state.settings.indices:
        await _deny(websocket, 404, f"{index.value} is not one of the configured indices")
        return
    await websocket.accept()
    sender = asyncio.create_task(_send(websocket, state.hub, index.value))
    try:
        while True:  # until the client leaves; what it sends is ignored
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def _send(websocket: WebSocket, hub: Hub, index: str) -> None:
    sent = -1
    while True:
        changed = hub.changed(index)  # before reading the version: no snapshot slips by
        version = hub.version(index)
        if version != sent:
            data = hub.cached(index, "live-text", _text)
            sent = version
            if data is not None:
                await websocket.send_text(data)
        await changed.wait()


def _text(message: dict[str, object]) -> str:
    return encode(message).decode()
