"""After authentication: is this project accepting this origin, and is the key within its rate?"""

from __future__ import annotations

from lytics_ingest_api.auth import Principal
from lytics_ingest_api.errors import ApiError
from lytics_ingest_api.incoming import Incoming
from lytics_ingest_api.observability import note
from lytics_ingest_api.rate_limit import RateLimiter


def admit(request: Incoming, principal: Principal) -> dict[str, str]:
    """Raise 403/429, or return the RateLimit-* headers for the answer."""
    note(request.scope, project_id=principal.project_id)
    origin = request.headers.get("origin")
    allowed = principal.allowed_origins
    if origin and allowed and "*" not in allowed and origin.rstrip("/") not in allowed:
        raise ApiError(
            403, "origin_not_allowed", f"origin {origin} is not allowed for this project"
        )
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return {}
    decision = limiter.take(principal.key_id)
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests for this key; retry in {decision.retry_after}s",
            headers=decision.headers(),
        )
    return decision.headers()
