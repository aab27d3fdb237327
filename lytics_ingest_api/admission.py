"""After authentication: is this project accepting this origin, and is the key within its rate?"""

from __future__ import annotations

from litestar.types import Message, Scope

from lytics_ingest_api.answers import raw_headers
from lytics_ingest_api.auth import Caller, Principal
from lytics_ingest_api.errors import ApiError
from lytics_ingest_api.observability import note
from lytics_ingest_api.rate_limit import RateLimiter
from lytics_ingest_api.shared_rate_limit import SharedRateLimiter

Limiter = RateLimiter | SharedRateLimiter

_RATE_LIMIT_HEADERS = "rate_limit_headers"


async def admit(request: Caller, principal: Principal) -> dict[str, str]:
    """Raise 403/429, or return the RateLimit-* headers for the answer."""
    note(request.scope, project_id=principal.project_id)
    origin = request.headers.get("origin")
    allowed = principal.allowed_origins
    if origin and allowed and "*" not in allowed and origin.rstrip("/") not in allowed:
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin} is not allowed for this project"
        )
    limiter: Limiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return {}
    decision = await limiter.decide(principal.key_id)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for this key; retry in {decision.retry_after}s",
            headers=decision.headers(),
        )
    return decision.headers()


def keep_rate_limit_headers(scope: Scope, headers: dict[str, str]) -> None:
    """For an answer the handler does not build itself (the secret-key guard admits)."""
    scope.setdefault("state", {})[_RATE_LIMIT_HEADERS] = headers


async def send_rate_limit_headers(message: Message, scope: Scope) -> None:
    """Litestar `before_send` hook: the kept `RateLimit-*` headers go on the answer."""
    if message["type"] != "http.response.start":
        return
    kept: dict[str, str] | None = scope.get("state", {}).get(_RATE_LIMIT_HEADERS)
    if kept:
        present = {name.lower() for name, _ in message.get("headers", [])}
        extra = {k: v for k, v in kept.items() if k.lower().encode() not in present}
        message["headers"] = [*message.get("headers", []), *raw_headers(extra)]
