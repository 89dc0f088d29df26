"""The API application: routers, errors as one sentence, the dashboard's files at ``/``.

``create_app`` takes the one Settings object and, optionally, the Hub the collector in the same
process publishes to (``opchain run``); without one it makes a Hub that follows the live files
(``opchain serve`` starts :meth:`Hub.follow` beside the server).

A client's address (what the rate limiter counts when there is no key) is the connecting
address, or, from a proxy named in ``api_trusted_proxies`` only, what its X-Forwarded-For says;
the server believes no header itself (``server.server``).
"""

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from opchain import __version__
from opchain.api import ops, ws
from opchain.api.keys import digests
from opchain.api.limits import RateLimiter
from opchain.api.live import Hub
from opchain.api.routes import chain, charts, market, participants, profiles, ranges, splits
from opchain.market.clock import Clock, WallClock
from opchain.settings import Settings

STATIC = Path(__file__).parent / "static"
SWAGGER_UI = "vendor/swagger-ui"  # under STATIC: swagger-ui-dist, vendored (its README.md)

DESCRIPTION = """Option chains, analytics, profiles and split files of the indices opchain
records (docs/api.md). Data endpoints want a key in `X-API-Key` when `OPCHAIN_API_KEYS` is
set; `/ws/live/{index}` pushes each new snapshot."""


def create_app(settings: Settings, hub: Hub | None = None, clock: Clock | None = None) -> FastAPI:
    # /docs is served below from the package's own copy of Swagger UI (FastAPI's loads it from
    # a CDN, a blank page without internet); ReDoc would need another vendored bundle: off.
    app = FastAPI(
        title="opchain",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.hub = hub if hub is not None else Hub(settings.data_dir, settings.rate)
    app.state.clock = clock or WallClock()
    app.state.key_digests = digests(settings.api_keys)
    app.state.limiter = RateLimiter(settings.api_rate, settings.api_burst)
    if settings.api_trusted_proxies:
        # The one place a client's address may come from a header: X-Forwarded-For from a
        # configured proxy. The server itself believes no header (server.server).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.api_trusted_proxies))
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(ops.router)
    for module in (market, chain, profiles, splits, ranges, participants, charts):
        app.include_router(module.router)
    app.include_router(ws.router)
    app.add_route("/docs", _docs, include_in_schema=False)
    if STATIC.is_dir():  # the dashboard's files; the API works without them
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
    return app


def docs_html(root: str, openapi_url: str) -> HTMLResponse:
    """Swagger UI's page, every asset from this server (``root``: the app's root path)."""
    return get_swagger_ui_html(
        openapi_url=root + openapi_url,
        title="opchain API",
        swagger_js_url=f"{root}/{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{root}/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None},
    )


async def _docs(request: Request) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return docs_html(root, request.app.openapi_url or "/openapi.json")


def describe(error: dict[str, Any]) -> str:
    """One sentence from a validation error: where, then what."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("path", "query"))
    return f"{where or 'request'}: {error.get('msg', 'not valid')}"


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | WebSocketRequestValidationError)
    errors = list(exc.errors())
    detail = describe(errors[0]) if errors else "the request is not valid"
    return JSONResponse({"detail": detail}, 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": detail}, exc.status_code, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Still JSON, still one sentence; the tests make sure no input gets here."""
    return JSONResponse({"detail": "the server failed to answer; see its log"}, 500)
