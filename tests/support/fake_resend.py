"""A local HTTP server that speaks the parts of the Resend API the digest uses.

Real sockets, real HTTP (`http.server` in a thread), so the client under test runs
exactly as in production. What it implements, after Resend's docs:

- `POST /emails` -> `{"id"}`; `POST /emails/batch` (1-100 emails, all or nothing) ->
  `{"data": [{"id"}, ...]}`; `Authorization: Bearer <key>` required.
- `Idempotency-Key`: same key and same body -> the first answer again, no new email;
  same key, different body -> 409 `invalid_idempotent_request`; same key while the first
  request is still being processed -> 409 `concurrent_idempotent_requests`.
- `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` on every answer; more than
  `limit` requests in one second -> 429 `rate_limit_exceeded` with `retry-after`.
- Faults queued by tests: 429 rate limit (with retry-after), 429 `daily_quota_exceeded`,
  500, 422 `validation_error`, a slow answer, a connection dropped before the request
  is processed, one dropped *after* the email was accepted (the client cannot know), and
  one held after acceptance until the server stops (`hold`: the sender is stuck mid-batch
  with rows claimed, where a test can kill it).

Every accepted email is recorded, so tests count deliveries per recipient.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "re_test_key"


@dataclass
class Fault:
    kind: str  # rate_limit, quota, server_error, validation, slow, drop, drop_after_accept, hold
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass
class Accepted:
    id: str
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    key: str | None
    at: float


@dataclass
class RequestLog:
    path: str
    status: int  # 0: connection dropped
    at: float
    key: str | None


@dataclass
class FakeResend:
    limit: int = 10
    send_rate_headers: bool = True
    processing_delay_s: float = 0.0
    emails: list[Accepted] = field(default_factory=list)
    requests: list[RequestLog] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idempotency: dict[str, tuple[str, int, Any]] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)
    _window: list[float] = field(default_factory=list)
    base_url: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)

    # ------------------------------------------------------------------ test API

    def inject(self, kind: str, times: int = 1, **kwargs: Any) -> None:
        with self._lock:
            self.faults.extend(Fault(kind, **kwargs) for _ in range(times))

    def per_recipient(self) -> Counter[str]:
        with self._lock:
            return Counter(e.to for e in self.emails)

    def to(self, address: str) -> list[Accepted]:
        with self._lock:
            return [e for e in self.emails if e.to == address.lower()]

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    # ------------------------------------------------------------------ server side

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None

    def _rate(self, now: float) -> tuple[bool, dict[str, str]]:
        """Sliding one-second window shared by every request, as Resend's per-team limit."""
        with self._lock:
            self._window = [t for t in self._window if now - t < 1.0]
            allowed = len(self._window) < self.limit
            if allowed:
                self._window.append(now)
            remaining = self.limit - len(self._window)
            reset = 1.0 - (now - self._window[0]) if self._window else 1.0
        headers = {}
        if self.send_rate_headers:
            headers = {
                "ratelimit-limit": str(self.limit),
                "ratelimit-remaining": str(max(0, remaining)),
                "ratelimit-reset": str(max(1, math.ceil(reset))),
            }
        return allowed, headers

    def _accept(self, emails: list[dict[str, Any]], key: str | None) -> list[str]:
        ids = []
        with self._lock:
            for email in emails:
                to = email["to"]
                to = to[0] if isinstance(to, list) else to
                accepted = Accepted(
                    str(uuid.uuid4()),
                    str(to).lower(),
                    email.get("subject", ""),
                    email.get("html", ""),
                    email.get("text", ""),
                    dict(email.get("headers") or {}),
                    key,
                    time.monotonic(),
                )
                self.emails.append(accepted)
                ids.append(accepted.id)
        return ids

    def handle(  # noqa: PLR0911, PLR0912 - one branch per documented answer
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, {}, {"statusCode": 401, "name": "missing_api_key", "message": "no key"}
        now = time.monotonic()
        allowed, rate_headers = self._rate(now)
        if not allowed:
            return (
                429,
                rate_headers | {"retry-after": "1"},
                {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"},
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return (
                422,
                rate_headers,
                {"statusCode": 422, "name": "validation_error", "message": "json"},
            )
        emails = body if path == "/emails/batch" else [body]
        if path == "/emails/batch" and not (isinstance(body, list) and 0 < len(body) <= 100):
            return (
                422,
                rate_headers,
                {"statusCode": 422, "name": "validation_error", "message": "1-100"},
            )
        for email in emails:
            if not isinstance(email, dict) or "@" not in str(email.get("to")):
                return (
                    422,
                    rate_headers,
                    {
                        "statusCode": 422,
                        "name": "validation_error",
                        "message": "Invalid `to` field",
                    },
                )
        key = headers.get("idempotency-key")
        fingerprint = hashlib.sha256(raw).hexdigest()
        if key is not None:
            with self._lock:
                if key in self._in_flight:
                    return (
                        409,
                        rate_headers,
                        {
                            "statusCode": 409,
                            "name": "concurrent_idempotent_requests",
                            "message": "Same key used while the original request is in progress",
                        },
                    )
                previous = self._idempotency.get(key)
                if previous is not None:
                    if previous[0] != fingerprint:
                        return (
                            409,
                            rate_headers,
                            {
                                "statusCode": 409,
                                "name": "invalid_idempotent_request",
                                "message": "Same idempotency key used with a different payload",
                            },
                        )
                    return previous[1], rate_headers, previous[2]
                self._in_flight.add(key)
        try:
            if self.processing_delay_s:
                time.sleep(self.processing_delay_s)
            ids = self._accept(emails, key)
            answer: dict[str, Any] = (
                {"data": [{"id": i} for i in ids]} if path == "/emails/batch" else {"id": ids[0]}
            )
            if key is not None:
                with self._lock:
                    self._idempotency[key] = (fingerprint, 200, answer)
            return 200, rate_headers, answer
        finally:
            if key is not None:
                with self._lock:
                    self._in_flight.discard(key)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        key = headers.get("idempotency-key")
        if self.path not in ("/emails", "/emails/batch"):
            self._answer(404, {}, {"statusCode": 404, "name": "not_found", "message": self.path})
            return
        fault = fake._next_fault()
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "drop":
            self._drop(fake, key)
            return
        if fault is not None and fault.kind not in ("drop_after_accept", "hold"):
            _, rate_headers = fake._rate(time.monotonic())
            status, extra, body = {
                "rate_limit": (
                    429,
                    {"retry-after": str(fault.retry_after or 1)},
                    "rate_limit_exceeded",
                ),
                "quota": (429, {}, "daily_quota_exceeded"),
                "server_error": (500, {}, "internal_server_error"),
                "validation": (422, {}, "validation_error"),
            }[fault.kind]
            self._answer(
                status,
                rate_headers | extra,
                {"statusCode": status, "name": body, "message": fault.kind},
            )
            with fake._lock:
                fake.requests.append(RequestLog(self.path, status, time.monotonic(), key))
            return
        status, out_headers, body = fake.handle(self.path, headers, raw)
        if fault is not None and fault.kind == "hold":
            fake.stopping.wait()
        if fault is not None:  # the email went out, the answer never arrives
            self._drop(fake, key)
            return
        with fake._lock:
            fake.requests.append(RequestLog(self.path, status, time.monotonic(), key))
        self._answer(status, out_headers, body)

    def _drop(self, fake: FakeResend, key: str | None) -> None:
        with fake._lock:
            fake.requests.append(RequestLog(self.path, 0, time.monotonic(), key))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(2)

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeResend


@contextlib.contextmanager
def fake_resend(**kwargs: Any) -> Iterator[FakeResend]:
    fake = FakeResend(**kwargs)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
