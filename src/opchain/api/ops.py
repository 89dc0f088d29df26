"""Operations endpoints, open without a key: ``/health`` and ``/metrics``.

Both run the health checks afresh (each bounded by a timeout, so a hung dependency cannot hang
them) and read the components' state files. What the app may carry in ``app.state``:
``settings`` (required); ``metrics``, the process's :class:`~opchain.health.metrics.Metrics`
(``opchain run`` shares the collector's, so ``/metrics`` has the snapshot counters; made
here when absent); ``broker_tally``, the Kite transport's tally (adds the ``kite_api`` check);
``clock``, the market clock (a simulated run's data is judged on its own time; default: now);
``own_checks``, functions giving checks of this process's own parts (``opchain serve --bus``:
its feed from Redis, ``bus``).
"""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from opchain.health import state
from opchain.health.checks import Check, check_all, hold_since
from opchain.health.metrics import Metrics
from opchain.health.summary import summarize
from opchain.market.ist import IST

router = APIRouter(tags=["operations"])


class HealthEntry(BaseModel):
    status: Literal["ok", "degraded", "down"]
    detail: str
    since: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, HealthEntry]


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Something is down."}},
)
async def health(request: Request, response: Response) -> Health:
    """The worst state first, then every check and component with its detail and since when.
    HTTP 200 while ok or degraded, 503 when anything is down."""
    checks, states = await _look(request)
    body = Health.model_validate(summarize(checks, states))
    if body.status == "down":
        response.status_code = 503
    return body


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics, with the health gauges as of this request."""
    await _look(request)
    return Response(_metrics(request).exposition(), media_type=CONTENT_TYPE_LATEST)


async def _look(request: Request) -> tuple[list[Check], dict[str, state.State]]:
    app_state = request.app.state
    settings = app_state.settings
    clock = getattr(app_state, "clock", None)
    now = clock.now() if clock is not None else datetime.now(IST)
    if not hasattr(app_state, "health_since"):
        app_state.health_since = {}
    found = await check_all(settings, now, getattr(app_state, "broker_tally", None))
    found += [look() for look in getattr(app_state, "own_checks", ())]
    checks = hold_since(app_state.health_since, found)
    states = state.read(settings.data_dir)
    _metrics(request).set_health(checks, states)
    return checks, states


def _metrics(request: Request) -> Metrics:
    app_state = request.app.state
    if getattr(app_state, "metrics", None) is None:
        app_state.metrics = Metrics()
    found: Metrics = app_state.metrics
    return found
