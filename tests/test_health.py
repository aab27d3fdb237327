"""Liveness and readiness over real HTTP, with Postgres up and with Postgres unreachable."""

from __future__ import annotations

from pathlib import Path

import httpx

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support.http import HTTP_TIMEOUT_S, serve
from tests.support.wait import wait_until


def test_live_and_ready_with_postgres(settings: Settings) -> None:
    with serve(create_app(settings)) as base:
        live = httpx.get(f"{base}/health/live", timeout=HTTP_TIMEOUT_S)
        assert live.json() == {"status": "ok"}

        def ready_answer() -> httpx.Response | None:
            # Its database check has a 2 s budget: a busy machine may need a second try.
            answer = httpx.get(f"{base}/health/ready", timeout=HTTP_TIMEOUT_S)
            return answer if answer.status_code == 200 else None

        ready = wait_until(ready_answer, "/health/ready answering 200")
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
        assert httpx.get(f"{base}/health/live", timeout=HTTP_TIMEOUT_S).status_code == 200
        ready = httpx.get(f"{base}/health/ready", timeout=HTTP_TIMEOUT_S)
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "5"
        assert ready.json()["status"] == "unavailable"


def test_openapi_document_is_served_locally(settings: Settings) -> None:
    with serve(create_app(settings)) as base:
        doc = httpx.get(f"{base}/schema/openapi.json", timeout=HTTP_TIMEOUT_S).json()
    assert doc["info"]["title"] == "Lytics ingest API"
    assert "/health/ready" in doc["paths"]
