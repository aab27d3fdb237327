"""Postgres unreachable: every write endpoint answers 503 with Retry-After, never a 2xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support.http import serve

# Basic auth with a syntactically fine key: the lookup itself must fail with 503, not 401.
AUTH = ("lyw_some-key", "")


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/track", {"event": "E", "userId": "u"}, {}),
        ("/v1/batch", {"batch": [{"type": "track", "event": "E", "userId": "u"}]}, {}),
        ("/collect", {"eventType": "pageview", "visitorId": "v"}, {}),
        ("/v1/metrics/ingest", [], {"Authorization": "Bearer lys_x"}),
        ("/v1/sessions/start", {"sessionId": "s"}, {"X-API-Key": "lyw_x"}),
    ],
)
def test_database_down_means_503_with_retry_after(
    tmp_path: Path, path: str, body: object, headers: dict[str, str]
) -> None:
    settings = Settings(
        database_url=f"postgresql://postgres@/postgres?host={tmp_path}",  # no server there
        secret_key="k",
        environment="test",
    )
    with serve(create_app(settings)) as base:
        answer = httpx.post(
            f"{base}{path}", json=body, headers=headers, auth=None if headers else AUTH, timeout=30
        )
        ready = httpx.get(f"{base}/health/ready", timeout=30)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "unavailable"
    assert ready.status_code == 503
