"""The API against its own OpenAPI schema (Schemathesis' Python API, in-process over ASGI):
over a recorded stretch of a session, no generated request gets a 500 and every answer
(status, content type, headers, body) is one the schema allows. Generation is derandomized,
so every CI run makes the same requests."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from opchain.api.app import create_app
from opchain.api.live import Hub
from opchain.settings import Settings

from .apidata import KEY, recorded

CASES_PER_OPERATION = 80  # 15 operations: about 1,200 cases
AT_LEAST = 1_000


def test_no_500_and_no_schema_violation(tmp_path_factory: pytest.TempPathFactory) -> None:
    data: Path = recorded(tmp_path_factory)
    config = Settings(data_dir=data, api_keys=KEY, api_burst=10**9, api_rate=10**9)  # type: ignore[arg-type]
    hub = Hub(data)
    hub.poll()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(config, hub))
    cases: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            cases[case.operation.label] = cases.get(case.operation.label, 0) + 1
            case.call_and_validate(headers={"X-API-Key": KEY})

        check()
    print(f"schemathesis: {sum(cases.values())} cases over {len(cases)} operations")
    assert sum(cases.values()) >= AT_LEAST
    assert len(cases) == len(list(schema.get_all_operations()))
