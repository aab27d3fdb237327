"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from lytics.settings import Settings, get_settings
from lytics_ingest_api.database import ingest_pool
from lytics_ingest_api.health import HealthController


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = ingest_pool(settings)
        # Do not wait for Postgres at startup: readiness reports it, and the
        # pool reconnects on its own when the database comes back.
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Litestar(
        route_handlers=[HealthController],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Lytics ingest API", version="0.1.0"),
        logging_config=None,  # lytics.logs owns the root logger: one JSON format everywhere
    )
