"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from redis.asyncio import Redis

from lytics.settings import Settings, get_settings
from lytics_ingest_api.admission import send_rate_limit_headers
from lytics_ingest_api.auth import KeyResolver
from lytics_ingest_api.client_ip import parse_trusted
from lytics_ingest_api.cors import CORS
from lytics_ingest_api.database import ingest_pool, reader_pool, writer_pool
from lytics_ingest_api.errors import EXCEPTION_HANDLERS
from lytics_ingest_api.events.writer import EventWriter
from lytics_ingest_api.fast_path import IngestApp
from lytics_ingest_api.health import HealthController
from lytics_ingest_api.observability import observability_middleware
from lytics_ingest_api.openapi_docs import docs_assets_router, openapi_config
from lytics_ingest_api.project_access import secret_key_routes
from lytics_ingest_api.rate_limit import RateLimiter
from lytics_ingest_api.routes import (
    dashboard,
    digest,
    digest_unsubscribe,
    email_events,
    events,
    exports,
    github,
    metrics_ingest,
    privacy,
    prometheus,
    reads,
    replay,
)
from lytics_ingest_api.shared_rate_limit import SharedRateLimiter
from lytics_ingest_api.suppressions import Suppressions
from lytics_ingest_api.webhooks import routes as webhook_routes

# Bodies are read by the handlers with their own limits (decompressed sizes);
# this is only the outer bound for anything Litestar reads itself.
OUTER_BODY_LIMIT = 6 * 1024 * 1024
# A shared limiter that does not answer this fast is skipped for the local one.
REDIS_TIMEOUT_S = 0.25

ROUTE_HANDLERS: list[Any] = [
    HealthController,
    *events.ROUTES,
    *metrics_ingest.ROUTES,
    *replay.ROUTES,
    *prometheus.ROUTES,
    *webhook_routes.ROUTES,
    *digest_unsubscribe.ROUTES,
]

# Off the ingest path, behind one guard: authenticated, admitted, scoped to the key's project.
SECRET_KEY_HANDLERS: list[Any] = [
    *reads.ROUTES,
    *dashboard.ROUTES,
    *github.ROUTES,
    *digest.ROUTES,
    *email_events.ROUTES,
    *exports.ROUTES,
    *privacy.ROUTES,
]


def create_app(settings: Settings | None = None) -> IngestApp:
    """The ASGI app to serve: event endpoints on the fast path, the rest through Litestar."""
    return IngestApp(create_litestar(settings), events.ENDPOINTS)


def create_litestar(settings: Settings | None = None) -> Litestar:
    """Every route, the lifespan and the OpenAPI document (the event endpoints included)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = ingest_pool(settings)
        readers = reader_pool(settings)
        writers = writer_pool(settings)
        # Do not wait for Postgres at startup: readiness reports it, and the
        # pools reconnect on their own when the database comes back.
        await pool.open(wait=False)
        await readers.open(wait=False)
        await writers.open(wait=False)
        writer = EventWriter(
            writers,
            max_rows=settings.writer_max_rows,
            max_wait_ms=settings.writer_max_wait_ms,
            concurrency=settings.writer_concurrency,
        )
        writer.start()
        app.state.update(
            pool=pool,
            reader_pool=readers,
            writer=writer,
            key_resolver=KeyResolver(pool, settings.key_cache_seconds),
            suppressions=Suppressions(pool, settings.key_cache_seconds),
        )
        try:
            yield
        finally:
            # In-flight requests have been answered by now; flush whatever is queued.
            await writer.close()
            if isinstance(app.state.rate_limiter, SharedRateLimiter):
                await app.state.rate_limiter.close()
            await writers.close()
            await readers.close()
            await pool.close()

    return Litestar(
        route_handlers=[
            *ROUTE_HANDLERS,
            secret_key_routes(SECRET_KEY_HANDLERS),
            docs_assets_router(),
        ],
        lifespan=[lifespan],
        middleware=[observability_middleware],
        before_send=[send_rate_limit_headers],
        exception_handlers=EXCEPTION_HANDLERS,
        cors_config=CORS,
        openapi_config=openapi_config(),
        state=_initial_state(settings),
        request_max_body_size=OUTER_BODY_LIMIT,
        logging_config=None,  # lytics.logs owns the root logger: one JSON format everywhere
    )


def _rate_limiter(settings: Settings) -> RateLimiter | SharedRateLimiter:
    if settings.redis_url is None:
        return RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    return SharedRateLimiter(
        Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        ),
        settings.redis_prefix,
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
    )


def _initial_state(settings: Settings) -> Any:
    from litestar.datastructures import State

    return State(
        {
            "settings": settings,
            "rate_limiter": _rate_limiter(settings),
            "trusted_proxies": parse_trusted(settings.trusted_proxies),
        }
    )
