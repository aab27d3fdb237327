"""Postgres unreachable: every write endpoint answers 503 with Retry-After, never a 2xx or a 500.

The list is checked against the app's routes, so a write endpoint added later
without a case here fails `test_every_write_endpoint_has_a_case`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lytics.digests.unsubscribe import UnsubscribeSigner
from lytics.settings import Settings
from lytics_ingest_api.app import create_app, create_litestar
from tests.support.http import serve

SECRET = "k"
WRITE = {"Authorization": "Basic bHl3X3NvbWUta2V5Og=="}  # lyw_some-key, well formed
SECRET_KEY = {"Authorization": "Bearer lys_some-key"}
API_KEY = {"X-API-Key": "lyw_some-key"}
EVENT = {"event": "E", "userId": "u"}
UNSUBSCRIBE = UnsubscribeSigner(SECRET).token(1, "a@example.com")

# (method, path as routed, path requested, JSON body, headers). The keys are well formed:
# looking them up is what must fail with 503, not 401.
CASES: list[tuple[str, str, str, Any, dict[str, str]]] = [
    ("POST", "/v1/track", "/v1/track", EVENT, WRITE),
    ("POST", "/v1/identify", "/v1/identify", {"userId": "u"}, WRITE),
    ("POST", "/v1/page", "/v1/page", {"name": "Home", "userId": "u"}, WRITE),
    ("POST", "/v1/screen", "/v1/screen", {"name": "Home", "userId": "u"}, WRITE),
    ("POST", "/v1/group", "/v1/group", {"groupId": "g", "userId": "u"}, WRITE),
    ("POST", "/v1/alias", "/v1/alias", {"previousId": "a", "userId": "u"}, WRITE),
    ("POST", "/v1/batch", "/v1/batch", {"batch": [{"type": "track", **EVENT}]}, WRITE),
    ("POST", "/v1/events", "/v1/events", {"type": "track", **EVENT}, WRITE),
    ("POST", "/collect", "/collect", {"eventType": "pageview", "visitorId": "v"}, WRITE),
    ("GET", "/collect", "/collect?eventType=pageview&visitorId=v&writeKey=lyw_some-key", None, {}),
    ("POST", "/v1/metrics/ingest", "/v1/metrics/ingest", [], SECRET_KEY),
    ("POST", "/v1/sessions/start", "/v1/sessions/start", {"sessionId": "s"}, API_KEY),
    ("POST", "/api/sessions/start", "/api/sessions/start", {"sessionId": "s"}, API_KEY),
    (
        "POST",
        "/v1/sessions/{session_id:str}/events",
        "/v1/sessions/s/events",
        {"events": [{"type": 2, "timestamp": 1, "data": {}}]},
        API_KEY,
    ),
    (
        "POST",
        "/api/ingest",
        "/api/ingest",
        {"sessionId": "s", "events": [{"type": 2, "timestamp": 1, "data": {}}]},
        API_KEY,
    ),
    ("POST", "/v1/webhooks/resend", "/v1/webhooks/resend?project=site", {"type": "x"}, {}),
    ("POST", "/v1/webhooks/github", "/v1/webhooks/github?project=site", {"zen": "x"}, {}),
    ("POST", "/v1/webhooks/{source:str}", "/v1/webhooks/shop?project=site", {"id": "1"}, {}),
    ("POST", "/v1/digest/test", "/v1/digest/test", {"email": "a@example.com"}, SECRET_KEY),
    ("POST", "/v1/digest/weekly", "/v1/digest/weekly", {}, SECRET_KEY),
    ("POST", "/v1/digest/unsubscribe", f"/v1/digest/unsubscribe?token={UNSUBSCRIBE}", None, {}),
    (
        "POST",
        "/v1/exports/run",
        "/v1/exports/run?since=2026-01-01T00:00:00Z",
        None,
        SECRET_KEY,
    ),
    ("POST", "/v1/privacy/deletions", "/v1/privacy/deletions", {"userIds": ["u"]}, SECRET_KEY),
]
# Routes that take writes on GET too: the pixel.
WRITING_GETS = {"/collect"}


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"postgresql://postgres@/postgres?host={tmp_path}",  # no server there
        secret_key=SECRET,
        environment="test",
    )


def test_every_write_endpoint_has_a_case(tmp_path: Path) -> None:
    app = create_litestar(_settings(tmp_path))
    writes = {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", set())
        if method in {"POST", "PUT", "PATCH", "DELETE"}
        or (method == "GET" and route.path in WRITING_GETS)
    }
    assert writes == {(method, routed) for method, routed, *_ in CASES}


@pytest.fixture(scope="module")
def down_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(create_app(_settings(tmp_path_factory.mktemp("nopg")))) as base:
        yield base


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [pytest.param(m, p, b, h, id=f"{m} {routed}") for m, routed, p, b, h in CASES],
)
def test_database_down_means_503_with_retry_after(
    down_api: str, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    kwargs: dict[str, Any] = {"headers": headers, "timeout": 30}
    if body is not None:
        kwargs["json"] = body
    answer = httpx.request(method, f"{down_api}{path}", **kwargs)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    error = answer.json()
    assert error["error"] == "unavailable"
    assert isinstance(error["message"], str)
    assert set(error) <= {"error", "message", "field"}


def test_readiness_says_unavailable(down_api: str) -> None:
    ready = httpx.get(f"{down_api}/health/ready", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
