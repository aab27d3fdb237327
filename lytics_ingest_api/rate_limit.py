"""Per-key token buckets: in this process, or shared by every worker through Redis
(lytics_ingest_api.shared_rate_limit) when LYTICS_REDIS_URL is set."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED_KEYS = 100_000


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again (RateLimit-Reset)
    retry_after: int  # until one request is allowed (Retry-After)

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    async def decide(self, key_id: int) -> Decision:
        """The limiter interface admission uses (the shared limiter's is a round trip)."""
        return self.take(key_id)

    def take(self, key_id: int, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        tokens, stamp = self._buckets.pop(key_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key_id] = (tokens, now)
        if len(self._buckets) > MAX_TRACKED_KEYS:
            self._buckets.popitem(last=False)
        return decision(allowed, tokens, self.per_second, self.burst)


def decision(allowed: bool, tokens: float, per_second: float, burst: int) -> Decision:
    """The answer for a bucket left holding `tokens` after this request."""
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=int(tokens),
        reset_seconds=math.ceil((burst - tokens) / per_second),
        retry_after=max(1, math.ceil((1.0 - tokens) / per_second)),
    )
