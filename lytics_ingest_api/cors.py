"""The API's CORS policy, and the headers it puts on answers to cross-origin requests.

Litestar applies `CORS` to everything it serves (preflights included); the event fast
path (lytics_ingest_api.fast_path) adds `answer_headers` itself, computed from the same
config the way Litestar's CORS middleware does, so both layers answer alike.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from lytics_ingest_api.answers import raw_headers

CORS = CORSConfig(
    # Any site may send (write keys are public); per-project origin lists are
    # enforced after authentication (lytics_ingest_api.admission).
    allow_origins=["*"],
    allow_methods=["GET", "POST", "OPTIONS"],
    allow_headers=[
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "X-API-Key",
        "X-Request-ID",
    ],
    expose_headers=[
        "X-Request-ID",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ],
    max_age=86400,
)


_SIMPLE = {
    **CORS.simple_headers,
    "Access-Control-Allow-Headers": ", ".join(sorted(set(CORS.allow_headers))),
    "Access-Control-Allow-Methods": ", ".join(sorted(set(CORS.allow_methods))),
}
_SIMPLE_ENCODED = raw_headers(_SIMPLE)


def answer_headers(origin: str, has_cookie: bool) -> list[tuple[bytes, bytes]]:
    """The headers for an answer to a request that sent `Origin` (not a preflight)."""
    if (CORS.is_allow_all_origins and has_cookie) or (
        not CORS.is_allow_all_origins and CORS.is_origin_allowed(origin)
    ):
        return raw_headers({**_SIMPLE, "Access-Control-Allow-Origin": origin, "Vary": "Origin"})
    return _SIMPLE_ENCODED
