"""The ingest service's connection pool (psycopg 3, async, least-privilege role)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lytics.settings import Settings
from lytics.warehouse.urls import libpq_dsn

INGEST_ROLE = "lytics_ingest"


def ingest_pool(settings: Settings, *, max_size: int = 10) -> AsyncConnectionPool[AsyncConnection]:
    """A pool whose connections can only insert raw data and read keys.

    With LYTICS_INGEST_DATABASE_URL the operator supplies a login that is
    already restricted; otherwise the main URL is used and each connection
    assumes the `lytics_ingest` role at startup.
    """
    kwargs: dict[str, object] = {"prepare_threshold": None}  # pgbouncer transaction mode
    if settings.ingest_database_url is not None:
        dsn = libpq_dsn(settings.ingest_database_url.get_secret_value())
    else:
        dsn = libpq_dsn(settings.require_database_url())
        kwargs["options"] = f"-c role={INGEST_ROLE}"
    return AsyncConnectionPool(
        dsn,
        kwargs=kwargs,
        min_size=1,
        max_size=max_size,
        open=False,
        # Fail a request fast when Postgres is gone rather than queueing it forever.
        timeout=5.0,
        reconnect_timeout=0,
        name="ingest",
    )
