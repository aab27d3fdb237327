"""The demo's traffic as HTTP requests to the ingest API, sent the way real clients send.

Planning is pure (the same traffic always gives the same bodies, byte for
byte); only credentials and webhook signatures, which depend on this run's
keys and the clock, are added at send time.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from lytics.demo.model import Traffic
from lytics.demo.truth import METRIC_SOURCE, Truth

Kind = Literal["events", "metrics", "webhook"]

# Below the API's (and Segment's) 500 KB per batch, measured decompressed.
MAX_BATCH_BYTES = 450 * 1024
MAX_METRICS_PER_REQUEST = 1000
# Some SDKs compress and some do not; the API must take both.
GZIP_EVERY = 2
MAX_ATTEMPTS = 5
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0
MAX_ERRORS = 20
USER_AGENT = "lytics-demo/1"


@dataclass(frozen=True)
class PlannedRequest:
    kind: Kind
    project: str
    path: str
    body: bytes  # exactly the bytes on the wire (gzip'd when `gzip`)
    gzip: bool = False
    items: int = 1  # events, metrics or webhooks carried
    message_ids: tuple[str, ...] = ()  # of the events, to name rejected ones
    delivery_id: str | None = None  # a webhook's svix-id


@dataclass(frozen=True)
class Credentials:
    """One project's keys for this run (only their hashes are stored, so they are fresh)."""

    write_key: str
    secret_key: str
    webhook_secret: str | None = None  # whsec_..., for Resend webhooks


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _event_batches(
    events: Sequence[dict[str, Any]], batch_size: int
) -> Iterable[list[tuple[str, bytes]]]:
    """(messageId, JSON) of at most `batch_size` events and MAX_BATCH_BYTES per batch."""
    batch: list[tuple[str, bytes]] = []
    size = 0
    for event in events:
        encoded = encode(event)
        if batch and (len(batch) == batch_size or size + len(encoded) > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((event["messageId"], encoded))
        size += len(encoded) + 1
    if batch:
        yield batch


def _event_requests(
    slug: str, events: Sequence[dict[str, Any]], batch_size: int
) -> list[PlannedRequest]:
    requests = []
    for number, batch in enumerate(_event_batches(events, batch_size)):
        # No `sentAt`: the API would then shift timestamps by this machine's clock
        # (Segment's skew correction), and the stored times would drift from the truth.
        body = b'{"batch":[' + b",".join(encoded for _, encoded in batch) + b"]}"
        compress = number % GZIP_EVERY == GZIP_EVERY - 1
        requests.append(
            PlannedRequest(
                kind="events",
                project=slug,
                path="/v1/batch",
                body=gzip.compress(body, mtime=0) if compress else body,
                gzip=compress,
                items=len(batch),
                message_ids=tuple(message_id for message_id, _ in batch),
            )
        )
    return requests


def _metric_requests(slug: str, truth: Truth, seed: int) -> list[PlannedRequest]:
    project = next(p for p in truth.projects if p.slug == slug)
    metrics = [
        {
            "source": METRIC_SOURCE,
            "metric_name": name,
            # Values have at most two decimals, which a JSON number carries exactly.
            "metric_value": float(value) if not isinstance(value, int) else value,
            "metric_date": day.isoformat(),
            "meta": {"generator": "lytics demo", "seed": seed},
        }
        for day, values in project.metrics.items()
        for name, value in values.items()
    ]
    return [
        PlannedRequest(
            kind="metrics",
            project=slug,
            path="/v1/metrics/ingest",
            body=encode({"metrics": metrics[i : i + MAX_METRICS_PER_REQUEST]}),
            items=len(metrics[i : i + MAX_METRICS_PER_REQUEST]),
        )
        for i in range(0, len(metrics), MAX_METRICS_PER_REQUEST)
    ]


def plan(traffic: Traffic, truth: Truth, batch_size: int) -> list[PlannedRequest]:
    """Every request of the run, in sending order: events, then metrics, then webhooks."""
    params = traffic.parameters
    events = [r for p in traffic.projects for r in _event_requests(p.slug, p.events, batch_size)]
    metrics = [r for p in traffic.projects for r in _metric_requests(p.slug, truth, params.seed)]
    webhooks = [
        PlannedRequest(
            kind="webhook",
            project=p.slug,
            path=f"/v1/webhooks/resend?project={quote(p.slug)}",
            body=encode(email.payload),
            delivery_id=email.delivery_id,
        )
        for p in traffic.projects
        for email in p.emails
        if params.webhooks
    ]
    return events + metrics + webhooks


# --------------------------------------------------------------------- signing


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks (Svix): `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(request: PlannedRequest, credentials: Credentials, now: float) -> dict[str, str]:
    out = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if request.gzip:
        out["Content-Encoding"] = "gzip"
    if request.kind == "events":
        basic = base64.b64encode(f"{credentials.write_key}:".encode()).decode()
        out["Authorization"] = f"Basic {basic}"
    elif request.kind == "metrics":
        out["Authorization"] = f"Bearer {credentials.secret_key}"
    else:
        if credentials.webhook_secret is None or request.delivery_id is None:
            raise ValueError(f"no webhook secret for project {request.project}")
        timestamp = int(now)
        out["svix-id"] = request.delivery_id
        out["svix-timestamp"] = str(timestamp)
        out["svix-signature"] = sign(
            credentials.webhook_secret, request.delivery_id, timestamp, request.body
        )
    return out


# --------------------------------------------------------------------- sending


@dataclass
class SendReport:
    requests: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    metrics_stored: int = 0
    webhooks_delivered: int = 0
    webhooks_duplicate: int = 0
    failed_requests: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    events_elapsed_s: float = 0.0  # until the last event batch was answered
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_requests == 0 and self.rejected == 0

    @property
    def events_per_second(self) -> float:
        return self.events_sent / self.events_elapsed_s if self.events_elapsed_s > 0 else 0.0

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _account_events(request: PlannedRequest, response: httpx.Response, report: SendReport) -> bool:
    body = _json_body(response)
    # 200, or 400 when every event of the batch was rejected: answered per event either way.
    if response.status_code not in (200, 400) or "results" not in body:
        return False
    report.accepted += int(body.get("accepted", 0))
    report.duplicates += int(body.get("duplicate", 0))
    report.rejected += int(body.get("rejected", 0))
    for result in body["results"]:
        if result.get("status") == "rejected":
            message_id = request.message_ids[int(result["index"])]
            report.error(f"event {message_id} rejected: {result.get('message')}")
    return True


def _account(request: PlannedRequest, response: httpx.Response, report: SendReport) -> bool:
    """Count what the answer says; False when the request failed as a whole."""
    if request.kind == "events":
        return _account_events(request, response, report)
    if not response.is_success:
        return False
    body = _json_body(response)
    if request.kind == "metrics":
        report.metrics_stored += int(body.get("stored", 0))
    elif body.get("status") == "duplicate" or body.get("duplicate") is True:
        report.webhooks_duplicate += 1
    else:
        report.webhooks_delivered += 1
    return True


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Retry-After when the server gives one (seconds or an HTTP date), else exponential."""
    header = response.headers.get("retry-after") if response is not None else None
    if header:
        try:
            seconds = float(header)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = -1.0
        if seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    return min(BACKOFF_BASE_S * 2.0 ** (attempt - 1), MAX_BACKOFF_S)


Sleep = Callable[[float], Awaitable[None]]


class ApiUnreachableError(RuntimeError):
    pass


def probe(api_url: str) -> None:
    """Fail at once, with a useful message, when nothing answers at `api_url`."""
    try:
        httpx.get(f"{api_url.rstrip('/')}/health/live", timeout=5.0)
    except httpx.HTTPError as exc:
        raise ApiUnreachableError(
            f"cannot reach the ingest API at {api_url} ({type(exc).__name__}): "
            "start it with `lytics dev` or pass --api-url"
        ) from exc


async def _deliver(
    client: httpx.AsyncClient,
    request: PlannedRequest,
    credentials: Credentials,
    report: SendReport,
    sleep: Sleep,
) -> None:
    report.requests += 1
    if request.kind == "events":
        report.events_sent += request.items
    problem = ""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        response: httpx.Response | None = None
        try:
            # Headers per attempt: a retried webhook needs a fresh signature timestamp.
            response = await client.post(
                request.path,
                content=request.body,
                headers=headers(request, credentials, time.time()),
            )
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code not in RETRY_STATUSES:
                if not _account(request, response, report):
                    report.failed_requests += 1
                    report.error(
                        f"{request.kind} for {request.project}: HTTP {response.status_code} "
                        f"{response.text[:300]}"
                    )
                return
            problem = f"HTTP {response.status_code}"
        if attempt < MAX_ATTEMPTS:
            report.retries += 1
            await sleep(retry_delay(response, attempt))
    report.failed_requests += 1
    report.error(
        f"{request.kind} for {request.project}: gave up after {MAX_ATTEMPTS} attempts ({problem})"
    )


async def send(
    requests: Sequence[PlannedRequest],
    credentials: dict[str, Credentials],
    api_url: str,
    *,
    concurrency: int = 4,
    on_progress: Callable[[int], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
) -> SendReport:
    """Send every request with `concurrency` requests in flight; never raises for HTTP errors."""
    report = SendReport()
    pending = iter(requests)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=api_url.rstrip("/"), timeout=30.0, limits=limits, transport=transport
    ) as client:

        async def worker() -> None:
            # One shared iterator: `next` never awaits, so no two workers take the same request.
            for request in pending:
                await _deliver(client, request, credentials[request.project], report, sleep)
                if request.kind == "events":
                    report.events_elapsed_s = time.perf_counter() - started
                if on_progress is not None:
                    on_progress(request.items)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.elapsed_s = time.perf_counter() - started
    return report
