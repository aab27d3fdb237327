"""Liveness and readiness over real HTTP, with Postgres up and with Postgres unreachable."""

from __future__ import annotations

from pathlib import Path

import httpx

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support.http import serve


def test_live_and_ready_with_postgres(settings: Settings) -> None:
    with serve(create_app(settings)) as base:
        assert httpx.get(f"{base}/health/live").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "database": "ok",
            "writer": "ok",
            "queue_depth": 0,
        }


def test_ready_answers_503_with_retry_after_when_postgres_is_unreachable(tmp_path: Path) -> None:
    # A socket folder where no server listens: the closest thing to "Postgres is down".
    settings = Settings(
        database_url=f"postgresql://postgres@/postgres?host={tmp_path}",
        secret_key="k",
        environment="test",
    )
    with serve(create_app(settings)) as base:
        assert httpx.get(f"{base}/health/live").status_code == 200
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "5"
        assert ready.json()["status"] == "unavailable"


def test_openapi_document_is_served_locally(settings: Settings) -> None:
    with serve(create_app(settings)) as base:
        doc = httpx.get(f"{base}/schema/openapi.json").json()
    assert doc["info"]["title"] == "Lytics ingest API"
    assert "/health/ready" in doc["paths"]
