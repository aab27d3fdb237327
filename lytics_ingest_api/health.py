"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.response import Response
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

READY_TIMEOUT_S = 2.0


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Postgres answers; the service can accept data")
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        pool: AsyncConnectionPool[AsyncConnection] = state.pool
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
        except Exception as exc:  # any failure means "not ready", never a 500
            return Response(
                {"status": "unavailable", "database": type(exc).__name__},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return Response({"status": "ready", "database": "ok"}, status_code=200)
