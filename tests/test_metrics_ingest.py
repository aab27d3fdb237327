"""Pushed KPI metrics: validated all-or-nothing, and a re-sent metric replaces the old value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.ingest import Ingest

# What downstream models read: the newest row per key (raw stays append-only).
LATEST = """
SELECT DISTINCT ON (source, metric_name, metric_date) metric_name, metric_value
FROM raw.metrics ORDER BY source, metric_name, metric_date, received_at DESC, id DESC
"""


def _metric(name: str, value: object, day: str = "2026-11-01") -> dict[str, object]:
    return {"source": "ga", "metric_name": name, "metric_value": value, "metric_date": day}


def test_metrics_are_stored_and_resending_replaces_the_value(api: Ingest) -> None:
    first = api.post(
        "/v1/metrics/ingest",
        json=[_metric("sessions", 10), _metric("reach", 2.5)],
        headers=api.bearer(),
        auth=None,
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"success": True, "stored": 2}
    again = api.post(
        "/v1/metrics/ingest",
        json={"metrics": [_metric("sessions", 12)]},
        headers=api.bearer(),
        auth=None,
    )
    assert again.status_code == 200
    latest = dict(api.rows(LATEST))
    assert latest == {"reach": Decimal("2.5"), "sessions": Decimal("12")}
    # Sending the identical payload again changes nothing downstream.
    api.post("/v1/metrics/ingest", json=[_metric("sessions", 12)], headers=api.bearer(), auth=None)
    assert dict(api.rows(LATEST)) == latest


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "metrics"),
        ({"metrics": "x"}, "metrics"),
        ([_metric("", 1)], "metrics[0].metric_name"),
        ([_metric("s", "ten")], "metrics[0].metric_value"),
        ([_metric("s", True)], "metrics[0].metric_value"),
        ([_metric("s", 1, "2026-13-40")], "metrics[0].metric_date"),
        ([_metric("s", 1), {**_metric("t", 1), "meta": [1]}], "metrics[1].meta"),
        (
            [{"metric_name": "s", "metric_value": 1, "metric_date": "2026-01-01"}],
            "metrics[0].source",
        ),
        (["nope"], "metrics[0]"),
    ],
)
def test_invalid_metrics_name_the_field_and_store_nothing(
    api: Ingest, body: object, field: str
) -> None:
    answer = api.post("/v1/metrics/ingest", json=body, headers=api.bearer(), auth=None)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert api.scalar("SELECT count(*) FROM raw.metrics") == 0


def test_metrics_need_a_secret_key(api: Ingest) -> None:
    body = [_metric("sessions", 1)]
    assert api.post("/v1/metrics/ingest", json=body, auth=None).status_code == 401
    # The public write key must not be able to push KPIs.
    write_as_bearer = api.post(
        "/v1/metrics/ingest", json=body, headers=api.bearer(api.write_key), auth=None
    )
    assert write_as_bearer.status_code == 401
    assert api.scalar("SELECT count(*) FROM raw.metrics") == 0


def test_too_many_metrics_is_413(api: Ingest) -> None:
    body = [_metric(f"m{i}", i) for i in range(1001)]
    answer = api.post("/v1/metrics/ingest", json=body, headers=api.bearer(), auth=None)
    assert answer.status_code == 413
    assert api.scalar("SELECT count(*) FROM raw.metrics") == 0
