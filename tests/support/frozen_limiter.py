"""A rate limiter whose clock stands still, so a test's sequence of answers cannot depend
on how fast the machine runs it: no token is refilled between two requests."""

from __future__ import annotations

from typing import Any

from lytics_ingest_api.rate_limit import Decision, RateLimiter


class FrozenClockLimiter(RateLimiter):
    def take(self, key_id: int, now: float | None = None) -> Decision:
        return super().take(key_id, 0.0 if now is None else now)


def freeze_rate_limit(app: Any) -> None:
    """Replace `app`'s limiter (same rate and burst) by one whose clock stands still."""
    current: RateLimiter = app.state.rate_limiter
    app.state.rate_limiter = FrozenClockLimiter(current.per_second, current.burst)
