"""The API's pools after a restart cut every idle connection (Postgres or pgbouncer).

A restart leaves a pool full of connections that look idle and are dead. The next
request must get a live one within the acquire timeout, however many dead ones wait
ahead of it; before, psycopg_pool tried them one by one 0, 1, 2 s apart, and with
four or more dead a request ran out of time: a 503 while the database was back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lytics.settings import Settings
from lytics.warehouse.urls import libpq_dsn
from lytics_ingest_api.database import ingest_pool, reader_pool

IDLE = 8  # more than the three the old back-off could get through in ACQUIRE_TIMEOUT_S


def _cut_every_connection_but_mine(database_url: str) -> int:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
        cur = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cur.fetchone()
        assert row is not None
        return int(row[0])


async def _fill_then_cut(pool: AsyncConnectionPool[AsyncConnection], database_url: str) -> None:
    await pool.open(wait=True)
    held = [await pool.getconn() for _ in range(IDLE)]
    for conn in held:
        await pool.putconn(conn)
    assert pool.get_stats()["pool_available"] == IDLE
    assert await asyncio.to_thread(_cut_every_connection_but_mine, database_url) >= IDLE


@pytest.mark.parametrize("make_pool", [ingest_pool, reader_pool], ids=["ingest", "reader"])
def test_the_first_requests_after_a_restart_get_live_connections(
    make_pool: Callable[..., AsyncConnectionPool[AsyncConnection]],
    settings: Settings,
    database_url: str,
) -> None:
    async def scenario() -> list[int]:
        pool = make_pool(settings, max_size=IDLE + 2)
        try:
            await _fill_then_cut(pool, database_url)

            async def one() -> int:
                async with pool.connection() as conn:
                    cur = await conn.execute("SELECT 1")
                    row = await cur.fetchone()
                    assert row is not None
                    return int(row[0])

            # One request alone meets every dead connection first; then a burst.
            answers = [await one()]
            answers += await asyncio.gather(*(one() for _ in range(5)))
            assert pool.get_stats()["connections_lost"] >= IDLE
            return answers
        finally:
            await pool.close()

    assert asyncio.run(scenario()) == [1] * 6
