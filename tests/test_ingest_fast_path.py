"""The event fast path (lytics_ingest_api.fast_path) answers exactly as Litestar does.

The same requests go to the served app (event endpoints on the fast path) and to the
Litestar app alone (its handlers for the same endpoints), both on one database:
statuses, bodies and headers must match, apart from the request id and the ids and
times that differ per event. Anything the fast path does not serve falls through.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from lytics.settings import Settings
from lytics_ingest_api.app import create_app, create_litestar
from lytics_ingest_api.fast_path import IngestApp
from tests.support.frozen_limiter import freeze_rate_limit
from tests.support.http import serve
from tests.support.ingest import new_project

VOLATILE_HEADERS = {"x-request-id", "date", "server"}


@dataclass
class Pair:
    fast: str
    litestar: str
    write_key: str


@contextlib.contextmanager
def _served(settings: Settings, engine: Engine, burst: int) -> Iterator[Pair]:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.5, "rate_limit_burst": burst})
    _, write_key, _ = new_project(engine, "site", {"allowed_origins": ["https://shop.example"]})
    # The same outer app (request ids, security headers, access log) with no endpoint on
    # the fast path: every request goes through Litestar.
    fast_app, through_litestar = create_app(limited), IngestApp(create_litestar(limited), {})
    freeze_rate_limit(fast_app)
    freeze_rate_limit(through_litestar)
    with serve(fast_app) as fast, serve(through_litestar) as litestar:
        yield Pair(fast, litestar, write_key)


@pytest.fixture
def pair(settings: Settings, engine: Engine) -> Iterator[Pair]:
    with _served(settings, engine, burst=100) as served:
        yield served


def _scrub(value: Any) -> Any:
    """Per-event values that legitimately differ between two sends."""
    if isinstance(value, dict):
        return {
            k: "<id>"
            if k in ("messageId", "event_id")
            else "<time>"
            if k == "timestamp"
            else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _shape(answer: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in answer.headers.items() if k not in VOLATILE_HEADERS}
    if "content-length" in headers and answer.headers.get("content-type") == "application/json":
        del headers["content-length"]  # ids of different lengths; the body is compared instead
    body: Any = answer.content
    if answer.content and answer.headers.get("content-type") == "application/json":
        body = _scrub(answer.json())
    return answer.status_code, headers, body


def _both(pair: Pair, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
    answers = [
        httpx.request(method, f"{base}{path}", timeout=30, **kwargs)
        for base in (pair.fast, pair.litestar)
    ]
    return _shape(answers[0]), _shape(answers[1])


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track_answers(pair: Pair) -> float:
    text = httpx.get(f"{pair.fast}/metrics", timeout=30).text
    labels = {"method": "POST", "route": "/v1/track", "status": "200"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "lytics_http_requests_total" and sample.labels == labels:
                return sample.value
    return 0.0


def test_fast_path_serves_the_event_endpoints(pair: Pair) -> None:
    before = _track_answers(pair)
    answer = httpx.post(
        f"{pair.fast}/v1/track",
        json={"event": "e", "userId": "u"},
        headers=_basic(pair.write_key),
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"]
    after = _track_answers(pair)
    assert after - before == 1  # the registry is process-wide: count this request only


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/track", {"json": {"event": "e", "userId": "u"}}),
    ("POST", "/v1/track", {"json": {"event": "e", "userId": "u", "messageId": "dup-1"}}),
    ("POST", "/v1/page", {"json": {"anonymousId": "a", "name": "Home"}}),
    ("POST", "/v1/track", {"json": {"userId": "u"}}),  # no event name: 400 naming the field
    ("POST", "/v1/identify", {"content": b"{not json"}),
    ("POST", "/v1/track", {"content": b""}),
    ("POST", "/v1/track", {"content": b"x" * 40_000}),
    ("POST", "/v1/track", {"content": b"{}", "headers": {"Content-Type": "image/png"}}),
    ("POST", "/v1/track", {"content": b"not gzip", "headers": {"Content-Encoding": "gzip"}}),
    (
        "POST",
        "/v1/batch",
        {
            "content": gzip.compress(b"[" + b" " * 20_000_000 + b"]", compresslevel=9),
            "headers": {"Content-Encoding": "gzip"},
        },
    ),
    (
        "POST",
        "/v1/batch",
        {
            "json": {
                "batch": [
                    {"type": "track", "event": "ok", "userId": "u"},
                    {"type": "track", "userId": "u"},
                    {"type": "nope", "userId": "u"},
                    {"type": "track", "event": "d", "userId": "u", "messageId": "dup-2"},
                    {"type": "track", "event": "d", "userId": "u", "messageId": "dup-2"},
                ],
                "sentAt": "2026-01-01T00:00:00Z",
            }
        },
    ),
    ("POST", "/v1/batch", {"json": {"batch": "no"}}),
    ("POST", "/v1/batch", {"json": {"batch": [], "sentAt": "yesterday"}}),
    ("POST", "/v1/events", {"json": [{"event": "a", "userId": "u"}, 3]}),
    ("POST", "/v1/events", {"json": {"event": "a", "userId": "u", "type": "track"}}),
    ("POST", "/collect", {"content": b'{"eventType":"pageview","visitorId":"v"}'}),
    ("POST", "/collect", {"json": {"eventType": "pageview"}}),
    ("GET", "/collect", {"params": {"eventType": "pageview", "visitorId": "v", "utm_source": "x"}}),
    ("GET", "/collect", {"params": {"visitorId": "v"}}),
]


@pytest.mark.parametrize(("method", "path", "request_kwargs"), CASES)
def test_fast_path_and_litestar_answer_alike(
    pair: Pair, method: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    headers = {**_basic(pair.write_key), **request_kwargs.pop("headers", {})}
    # Sent once beforehand, so an event with a fixed messageId is a duplicate on both.
    _both(pair, method, path, headers=headers, **request_kwargs)
    fast, litestar = _both(pair, method, path, headers=headers, **request_kwargs)
    assert fast == litestar


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no key at all
        {"Authorization": "Basic " + base64.b64encode(b"wk_unknown:").decode()},
        {"X-API-Key": "wk_unknown"},
    ],
)
def test_unauthenticated_requests_are_refused_alike(pair: Pair, headers: dict[str, str]) -> None:
    fast, litestar = _both(
        pair, "POST", "/v1/track", json={"event": "e", "userId": "u"}, headers=headers
    )
    assert fast[0] == 401
    assert fast == litestar


def test_write_key_in_body_and_cors_headers_alike(pair: Pair) -> None:
    body = json.dumps({"event": "e", "userId": "u", "writeKey": pair.write_key}).encode()
    for origin, status in (("https://shop.example", 200), ("https://evil.example", 403)):
        fast, litestar = _both(
            pair,
            "POST",
            "/v1/track",
            content=body,
            headers={"Content-Type": "text/plain", "Origin": origin},
        )
        assert fast[0] == status
        assert fast[1]["access-control-allow-origin"] == "*"
        assert fast == litestar
    with_cookie = {"Origin": "https://shop.example", "Cookie": "a=b", **_basic(pair.write_key)}
    fast, litestar = _both(
        pair, "POST", "/v1/track", json={"event": "e", "userId": "u"}, headers=with_cookie
    )
    assert fast[1]["access-control-allow-origin"] == "https://shop.example"
    assert fast == litestar


def test_rate_limit_answers_alike(settings: Settings, engine: Engine) -> None:
    with _served(settings, engine, burst=3) as pair:
        _rate_limited_alike(pair)


def _rate_limited_alike(pair: Pair) -> None:
    answers = []
    for _ in range(4):
        answers.append(
            _both(
                pair,
                "POST",
                "/v1/track",
                json={"event": "e", "userId": "u"},
                headers=_basic(pair.write_key),
            )
        )
    fast, litestar = answers[-1]
    assert fast[0] == 429
    assert fast[1]["retry-after"] == "2"
    assert fast == litestar
    assert answers[0][0] == answers[0][1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("OPTIONS", "/v1/track"),  # a CORS preflight: Litestar's
        ("PUT", "/v1/track"),
        ("GET", "/v1/batch"),
        ("POST", "/v1/track/"),
        ("POST", "/v1/nope"),
        ("HEAD", "/collect"),
        ("GET", "/health/live"),
    ],
)
def test_other_methods_and_paths_fall_through_to_litestar(
    pair: Pair, method: str, path: str
) -> None:
    headers = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        **_basic(pair.write_key),
    }
    fast, litestar = _both(pair, method, path, headers=headers)
    assert fast == litestar
