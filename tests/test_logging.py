"""Structured logs: one JSON object per request with its request id; never keys or payloads."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import Engine

from lytics.logs import JsonFormatter
from lytics.settings import Settings
from tests.support.ingest import served_ingest


def test_access_log_is_json_with_request_id_and_no_secrets(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lytics.access")
    with served_ingest(settings, engine) as api:
        api.post(
            "/v1/track",
            json={
                "event": "Secret Event",
                "userId": "alice@example.com",
                "context": {"ip": "203.0.113.1"},
            },
            headers={"X-Request-ID": "req-42"},
        )
        api.post("/v1/track", json={"event": "E", "userId": "u"}, auth=("lyw_wrong", ""))
    records = [r for r in caplog.records if r.name == "lytics.access"]
    assert len(records) == 2
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for record in records:
        handler.emit(record)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second = lines
    assert first["request_id"] == "req-42"
    assert (first["route"], first["status"], first["project_id"]) == (
        "/v1/track",
        200,
        api.project_id,
    )
    assert first["accepted"] == 1
    assert second["status"] == 401
    text = stream.getvalue()
    for secret_or_personal in (
        api.write_key,
        "lyw_wrong",
        "alice@example.com",
        "203.0.113.1",
        "Secret Event",
    ):
        assert secret_or_personal not in text


def test_probe_polls_log_at_debug_and_other_requests_at_info(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lytics.access")
    with served_ingest(settings, engine) as api:
        for _ in range(3):
            assert api.get("/health/live").status_code == 200
            assert api.get("/health/ready").status_code == 200
        assert api.get("/v1/stats", headers=api.bearer()).status_code == 200
    records = [r for r in caplog.records if r.name == "lytics.access"]
    probes = [r for r in records if r.getMessage().startswith("GET /health/")]
    assert len(probes) == 6
    assert {r.levelno for r in probes} == {logging.DEBUG}
    stats = [r for r in records if r.getMessage() == "GET /v1/stats 200"]
    assert [r.levelno for r in stats] == [logging.INFO]
