"""Synchronous connections for the digest code, limited to one project by row-level security."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, pool

from lytics.warehouse.engine import create_sync_engine

READER_ROLE = "lytics_reader"


def reader_engine(database_url: str, statement_timeout_ms: int) -> Engine:
    """The read role's engine. NullPool: digest calls are rare admin calls, and nothing is
    left open between them. Its statements stop after `statement_timeout_ms`, as the
    read API's do, so no digest read can starve ingest."""
    return create_sync_engine(
        database_url,
        role=READER_ROLE,
        statement_timeout_ms=statement_timeout_ms,
        poolclass=pool.NullPool,
    )


@contextmanager
def project_transaction(engine: Engine, project_id: int) -> Iterator[Connection]:
    """A transaction that sees `project_id`'s rows only (`SET LOCAL` semantics)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT set_config('lytics.project_id', %(p)s, true)", {"p": str(project_id)}
        )
        yield conn
