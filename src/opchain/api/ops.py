"""Operations endpoints, open without a key: ``/health`` (the components' states)."""

from fastapi import APIRouter, Request

from opchain.health import state

router = APIRouter(tags=["operations"])

_RANK = {"ok": 0, "degraded": 1, "down": 2}


@router.get("/health")
def health(request: Request) -> dict[str, object]:
    """The worst component state, and every component's state with its detail."""
    states = state.read(request.app.state.settings.data_dir)
    worst = max((s["status"] for s in states.values()), key=_RANK.__getitem__, default="ok")
    return {"status": worst, "checks": {name: dict(s) for name, s in states.items()}}
