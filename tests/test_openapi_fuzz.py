"""Schema-driven fuzzing of every documented operation: the document is the contract.

Cases come from the service's own OpenAPI document (schemathesis), schema-conforming
and deliberately broken ones, sent over real HTTP. Each operation gets the key its
`security` declares (a write key, or a secret key), so every handler is reached. No
answer may be a server error, have a status the document does not list for the
operation, or have a body that its documented schema rejects.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import response_schema_conformance, status_code_conformance
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.generation import GenerationMode

from lytics.settings import Settings
from tests.support.ingest import Ingest

# Bounded: well under a minute per mode on a busy two-core machine.
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}


@schemathesis.check
def no_server_fault(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No 500, ever. A 502/503 is the documented answer while a dependency the suite does
    not run is away (Dagster, the mail provider); `status_code_conformance` holds every
    operation to the statuses it documents."""
    if response.status_code == 500 or response.status_code > 503:
        raise ServerError(operation=case.operation.label, status_code=response.status_code)


CHECKS = [no_server_fault, status_code_conformance, response_schema_conformance]


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    # No rate limit: the fuzzer sends far faster than any real client.
    return settings.model_copy(update={"rate_limit_per_second": 0.0})


def _credentials(api: Ingest, security: list[dict[str, Any]] | None) -> dict[str, str]:
    """The key each operation's `security` asks for; none for signed webhooks and probes."""
    schemes = {name for requirement in security or [] for name in requirement}
    if "secretKeyBearer" in schemes:
        return api.bearer()
    if "writeKeyBasic" in schemes:
        basic = base64.b64encode(f"{api.write_key}:".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def _fuzzer(
    operation: Any, mode: GenerationMode, base: str, headers: dict[str, str], statuses: list[int]
) -> Callable[[], None]:
    @hypothesis.settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        statuses.append(response.status_code)

    return check


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api: Ingest, mode: GenerationMode) -> None:
    document = httpx.get(f"{api.base}/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    answered: dict[str, list[int]] = {}  # operation: the statuses it answered
    reached: dict[str, list[int]] = {}  # the same, for the operations that need a key
    failures: list[str] = []
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"
        security = document["paths"][operation.path][operation.method].get("security")
        statuses: list[int] = []
        check = _fuzzer(operation, mode, api.base, _credentials(api, security), statuses)
        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # An operation without inputs has no invalid variant to send.
            assert mode is GenerationMode.NEGATIVE
            continue
        except (AssertionError, FailureGroup) as exc:  # every operation is fuzzed; all reported
            failures.append(f"{name}: {exc}")
        answered[name] = statuses
        if security:
            reached[name] = statuses
    examples = sum(map(len, answered.values()))
    summary = f"{len(answered)} operations ({len(reached)} keyed), {examples} examples"
    print(f"fuzz {mode.value}: {summary}, {len(failures)} failures")
    assert failures == [], "\n\n".join(failures)
    # With the key each operation declares, no keyed operation is stuck at 401.
    only_401 = [name for name, seen in reached.items() if seen and set(seen) == {401}]
    assert only_401 == []
