"""Prometheus metrics, a request id on every answer, one JSON log line per request.

Labels are route templates (`/v1/sessions/{session_id}/events`), never raw
paths, so scanners and ids cannot blow up the metric cardinality. Logs carry
the request id and the project id, never keys, IPs or payloads.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

access_log = logging.getLogger("lytics.access")

HTTP_REQUESTS = Counter(
    "lytics_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "lytics_http_request_duration_seconds",
    "Time from request start to the end of the answer",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter("lytics_events_total", "Events by outcome", ["result", "reason"])
WEBHOOKS = Counter("lytics_webhooks_total", "Webhook deliveries by outcome", ["provider", "result"])
# Events a project sent that reached the writer (accepted or duplicate), by project id:
# the "a project that usually sends went silent" alert (deploy/prometheus). Projects
# are tenants, a bounded set, unlike users or paths.
PROJECT_EVENTS = Counter("lytics_project_events_total", "Events received per project", ["project"])
WRITER_BATCH_ROWS = Histogram(
    "lytics_writer_batch_rows",
    "Rows per committed event batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
WRITER_QUEUE_DEPTH = Gauge("lytics_writer_queue_depth", "Requests waiting for the event writer")
# direct: one COPY into raw.events; staged: through the temporary table (duplicates
# possible, or a role without BYPASSRLS); duplicate_fallback: a direct COPY that met a
# duplicate and was redone staged. A high fallback rate means many client retries.
WRITER_FLUSHES = Counter("lytics_writer_flushes_total", "Event batches written, by path", ["path"])

PROBE_ROUTES = frozenset({"/health/live", "/health/ready"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"cross-origin"),
]
# The API answers JSON; only the docs page may load anything. A route that serves a page
# (the digest preview, the unsubscribe page) sets its own, still script-free, policy.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


# Label lookups take a lock and hash the labels each time; the children are cached instead.
# Routes are templates (a bounded set), so these dicts stay small.
_counted: dict[tuple[str, str, str], Any] = {}
_timed: dict[tuple[str, str], Any] = {}


def _record(route: str, method: str, status: int, elapsed: float) -> None:
    counter = _counted.get((route, method, str(status)))
    if counter is None:
        counter = _counted[route, method, str(status)] = HTTP_REQUESTS.labels(
            route, method, str(status)
        )
    histogram = _timed.get((route, method))
    if histogram is None:
        histogram = _timed[route, method] = HTTP_LATENCY.labels(route, method)
    counter.inc()
    histogram.observe(elapsed)


_events: dict[tuple[str, str], Any] = {}


def count_events(result: str, reason: str, amount: int = 1) -> None:
    counter = _events.get((result, reason))
    if counter is None:
        counter = _events[result, reason] = EVENTS.labels(result, reason)
    counter.inc(amount)


_projects: dict[int, Any] = {}


def count_project_events(project_id: int, amount: int) -> None:
    counter = _projects.get(project_id)
    if counter is None:
        counter = _projects[project_id] = PROJECT_EVENTS.labels(str(project_id))
    counter.inc(amount)


_flushes: dict[str, Any] = {}


def count_flush(path: str) -> None:
    counter = _flushes.get(path)
    if counter is None:
        counter = _flushes[path] = WRITER_FLUSHES.labels(path)
    counter.inc()


def note(scope: Scope, **fields: Any) -> None:
    """Attach fields (project id, counts) to this request's log line."""
    scope.setdefault("state", {}).setdefault("log", {}).update(fields)


def observability_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        # Already observed by an outer layer (lytics_ingest_api.fast_path wraps the whole app,
        # Litestar's middleware only sees matched routes): one header set, one log line.
        if scope["type"] != ScopeType.HTTP or "request_id" in scope.get("state", {}):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        docs = scope["path"].startswith("/schema")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                if not docs and not any(n.lower() == API_CSP[0] for n, _ in headers):
                    headers.append(API_CSP)
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            _record(route, method, status, elapsed)
            # Probes poll every few seconds; their lines would drown the requests that matter.
            level = logging.DEBUG if route in PROBE_ROUTES else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level,
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        **scope.get("state", {}).get("log", {}),
                    },
                )

    return middleware
