"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.response import Response
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lytics_ingest_api.events.writer import EventWriter

READY_TIMEOUT_S = 2.0


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        summary="Postgres answers and the writer runs: the service can accept data",
        responses={503: ResponseSpec(dict[str, Any], description="Not ready; see the fields")},
    )
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        pool: AsyncConnectionPool[AsyncConnection] = state.pool
        writer: EventWriter = state.writer
        database = "ok"
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
        except Exception as exc:  # any failure means "not ready", never a 500
            database = type(exc).__name__
        writer_state = "ok" if writer.running else "stopped"
        body = {
            "status": "ready" if database == "ok" and writer_state == "ok" else "unavailable",
            "database": database,
            "writer": writer_state,
            "queue_depth": writer.depth,
        }
        if body["status"] != "ready":
            return Response(body, status_code=503, headers={"Retry-After": "5"})
        return Response(body, status_code=200)
