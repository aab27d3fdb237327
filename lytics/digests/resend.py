"""A small Resend API client: paced by Resend's own rate-limit headers, retried where
retrying is safe, and honest about what it does not know.

Every request carries an `Idempotency-Key`, so repeating it (a retry here, or a
resend after a crash) cannot deliver a second email within Resend's 24 hours.
What each failure means for the caller:

- `QuotaExceededError` (429 daily/monthly quota) and `StopSendingError` (401/403): nothing
  was sent and nothing else will be; stop the run. Never retried.
- `RejectedError` (422 validation, 409 invalid_idempotent_request, other 4xx): this
  message was not sent and sending it again will not help.
- `RateLimitedError`: Resend kept answering 429 rate_limit_exceeded; nothing was sent.
- `UnavailableError` (5xx, dropped connections, timeouts, after the retries): the
  outcome is unknown, the email may have gone out. Resend it later with the same key.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

QUOTA_ERRORS = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded"})
RETRYABLE_CONFLICT = "concurrent_idempotent_requests"
BATCH_LIMIT = 100
JSON = "application/json"


class ResendError(Exception):
    def __init__(self, status: int | None, name: str, message: str) -> None:
        super().__init__(f"{status or 'network'} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message


class StopSendingError(ResendError):
    """Nothing was sent and no later request in this run can succeed (key, quota)."""


class QuotaExceededError(StopSendingError):
    pass


class RejectedError(ResendError):
    """Not sent, and the same request will be refused again."""


class RateLimitedError(ResendError):
    """Not sent: still rate limited after every allowed wait."""


class UnavailableError(ResendError):
    """Unknown outcome: the request may have been accepted before the failure."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base, 2 x base, 4 x base, ... (+ up to `jitter`)."""

    max_retries: int = 3
    backoff_s: float = 0.5
    jitter: float = 0.25
    # 429 rate_limit_exceeded says "slow down", not "failed": allow many more waits.
    max_rate_limit_waits: int = 30
    max_delay_s: float = 60.0

    def delay(self, retry: int) -> float:
        nominal = self.backoff_s * (2**retry)
        # Jitter spreads retries out; it needs no cryptographic randomness.
        spread = random.uniform(0, self.jitter)  # noqa: S311
        return float(min(self.max_delay_s, nominal * (1 + spread)))


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Pacer:
    """Spaces requests by what Resend's `ratelimit-*` headers announce.

    Until a response has said otherwise the rate is `default_rate` per second
    (Resend's default is 2). `ratelimit-limit` is the number of requests per
    one-second window; `ratelimit-remaining: 0` holds everything until
    `ratelimit-reset` seconds have passed; `retry-after` holds it too.
    """

    def __init__(
        self,
        default_rate: float = 2.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / default_rate
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0

    def wait(self) -> None:
        delay = self._next_at - self._clock()
        if delay > 0:
            self._sleep(delay)

    def record(self, headers: Mapping[str, str]) -> None:
        now = self._clock()
        limit = _header_float(headers, "ratelimit-limit")
        if limit and limit > 0:
            self.interval = 1.0 / limit
        next_at = now + self.interval
        remaining = _header_float(headers, "ratelimit-remaining")
        reset = _header_float(headers, "ratelimit-reset")
        if remaining is not None and remaining <= 0 and reset is not None:
            next_at = max(next_at, now + reset)
        self._next_at = next_at

    def hold(self, seconds: float) -> None:
        self._next_at = max(self._next_at, self._clock() + seconds)


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    delays: list[float] = field(default_factory=list)


class ResendClient:
    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "lytics-digest/1"},
            timeout=timeout_s,
        )
        self.pacer = pacer or Pacer(sleep=sleep)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.stats = ClientStats()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ResendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, email: Mapping[str, Any], idempotency_key: str) -> str:
        """POST /emails; returns Resend's email id."""
        body = self._post("/emails", email, idempotency_key)
        return str(body["id"])

    def send_batch(self, emails: Sequence[Mapping[str, Any]], idempotency_key: str) -> list[str]:
        """POST /emails/batch (all or nothing); returns the ids in the order given."""
        if not 0 < len(emails) <= BATCH_LIMIT:
            raise ValueError(f"a batch holds 1 to {BATCH_LIMIT} emails")
        body = self._post("/emails/batch", list(emails), idempotency_key)
        ids = [str(item["id"]) for item in body["data"]]
        if len(ids) != len(emails):
            raise UnavailableError(None, "bad_response", f"{len(ids)} ids for {len(emails)}")
        return ids

    def _backoff(self, retry: int, at_least: float = 0.0) -> None:
        delay = max(at_least, self.retry.delay(retry))
        self.stats.retries += 1
        self.stats.delays.append(delay)
        self._sleep(delay)

    def _post(self, path: str, payload: Any, idempotency_key: str) -> Any:
        # Canonical bytes: the payload reloaded from the outbox (JSONB reorders keys) must
        # serialize exactly as it did the first time, or Resend sees a different request.
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        retries = 0
        rate_waits = 0
        while True:
            self.pacer.wait()
            self.stats.requests += 1
            try:
                response = self._http.post(
                    path,
                    content=body,
                    headers={"Idempotency-Key": idempotency_key, "Content-Type": JSON},
                )
            except httpx.TransportError as exc:
                # Sent or not, we cannot tell: retrying with the same key is safe.
                self.pacer.record({})
                if retries >= self.retry.max_retries:
                    raise UnavailableError(None, type(exc).__name__, str(exc)) from exc
                self._backoff(retries)
                retries += 1
                continue
            self.pacer.record(response.headers)
            if response.is_success:
                return response.json()
            name, message = _error(response)
            status = response.status_code
            if status == 429 and name in QUOTA_ERRORS:
                raise QuotaExceededError(status, name, message)
            if status == 429:
                self.stats.rate_limited += 1
                if rate_waits >= self.retry.max_rate_limit_waits:
                    raise RateLimitedError(status, name, message)
                retry_after = _header_float(response.headers, "retry-after")
                if retry_after is not None:
                    self.pacer.hold(retry_after)
                    self.stats.retries += 1
                    self.stats.delays.append(retry_after)
                else:
                    self._backoff(min(rate_waits, 6))
                rate_waits += 1
                continue
            if status in (401, 403):
                raise StopSendingError(status, name, message)
            if (status == 409 and name == RETRYABLE_CONFLICT) or status >= 500:
                if retries >= self.retry.max_retries:
                    # For a 409 the other request with this key may still succeed.
                    raise UnavailableError(status, name, message)
                retry_after = _header_float(response.headers, "retry-after") or 0.0
                self._backoff(retries, at_least=retry_after)
                retries += 1
                continue
            raise RejectedError(status, name, message)


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}", response.text[:200]
    if not isinstance(body, dict):
        return f"http_{response.status_code}", str(body)[:200]
    return str(body.get("name") or f"http_{response.status_code}"), str(body.get("message", ""))
