"""docs/api.md is the contract the dashboard is built against: its endpoint table must list
exactly the routes the application serves, and every one of its JSON shapes the models the
OpenAPI schema declares (datasette-style drift tests)."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import WebSocketRoute

from opchain.api import models
from opchain.api.app import create_app
from opchain.api.deps import BucketName, IndexName
from opchain.api.routes import participants
from opchain.market.indices import INDICES
from opchain.settings import Settings
from opchain.store.opmasters import BUCKETS

DOC = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")


def _documented() -> set[str]:
    """``METHOD /path`` of every row of the endpoint table, without query strings."""
    section = DOC.split("## Endpoints", 1)[1]
    rows = re.findall(r"^\| `(GET|WS) ([^`?]+)(?:\?[^`]*)?` \|", section, flags=re.M)
    return {f"{method} {path}" for method, path in rows}


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, through included routers (FastAPI keeps them wrapped)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from _routes(inner.routes) if inner is not None else [route]


def _served(tmp_path: Path) -> set[str]:
    app = create_app(Settings(data_dir=tmp_path))
    served = set()
    for route in _routes(app.routes):
        if isinstance(route, APIRoute):
            served |= {f"{m} {route.path}" for m in route.methods if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            served.add(f"WS {route.path}")
    return served


def test_the_endpoint_table_lists_exactly_the_served_routes(tmp_path: Path) -> None:
    documented, served = _documented(), _served(tmp_path)
    assert documented, "no endpoint rows found in docs/api.md"
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_every_openapi_path_is_documented(tmp_path: Path) -> None:
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    documented = _documented()
    for path, operations in schema["paths"].items():
        for method in operations:
            assert f"{method.upper()} {path}" in documented


def _shape(name: str) -> set[str]:
    """The field names docs/api.md gives a named shape (``Name``: `{"a", "b": ...}`)."""
    found = re.search(rf"^`{name}`: `(\{{.*?\}})`", DOC, flags=re.M | re.S)
    assert found, f"docs/api.md does not define {name}"
    text = re.sub(r": \"[^\"]*\"", "", found[1][1:-1])  # drop literal values
    text = re.sub(r"\{[^{}]*\}", "", text)  # and nested objects' own fields
    return set(re.findall(r'"([a-z_]+)"', text))


def test_the_documented_shapes_are_the_models() -> None:
    """Every field the docs name is in the model (the models may add fields, never drop)."""
    for name, model in [("Overview", models.Overview), ("Chain", models.Chain),
                        ("Greeks", models.GreeksRow), ("Live", models.Live)]:  # fmt: skip
        assert _shape(name) <= set(model.model_fields), name
    assert _shape("Participant") == set(participants.ParticipantRow.model_fields)


def test_the_parameter_enums_are_the_market_tables() -> None:
    assert [i.value for i in IndexName] == list(INDICES)
    assert [b.value for b in BucketName] == list(BUCKETS)
