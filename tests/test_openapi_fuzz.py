"""Schema-driven fuzzing of every documented operation: no input may cause a 5xx.

Cases come from the service's own OpenAPI document (schemathesis), both
schema-conforming and deliberately broken ones, sent over real HTTP with
valid credentials so they reach the handlers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from lytics.settings import Settings
from tests.support.ingest import Ingest

EXAMPLES_PER_OPERATION = 25
SECRET_PATHS = ("/v1/metrics", "/v1/events/recent", "/v1/messages", "/v1/stats")


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    # No rate limit: the fuzzer sends far faster than any real client.
    return settings.model_copy(update={"rate_limit_per_second": 0.0})


def _credentials(api: Ingest, path: str) -> dict[str, str]:
    if path.startswith(SECRET_PATHS):
        return api.bearer()
    basic = base64.b64encode(f"{api.write_key}:".encode()).decode()
    return {"Authorization": f"Basic {basic}", "X-API-Key": api.write_key}


def _fuzzer(
    operation: Any, mode: GenerationMode, base: str, headers: dict[str, str]
) -> Callable[[], None]:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error])

    return check


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_input_causes_a_server_error(api: Ingest, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{api.base}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    exercised: list[str] = []
    for operation in operations:
        if operation.path == "/metrics":
            continue
        check = _fuzzer(operation, mode, api.base, _credentials(api, operation.path))
        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # An operation without inputs has no invalid variant to send.
            assert mode is GenerationMode.NEGATIVE
            continue
        exercised.append(f"{operation.method.upper()} {operation.path}")
    assert any(name.startswith("POST /v1/batch") for name in exercised)
