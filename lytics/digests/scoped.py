"""Synchronous connections for the digest code, limited to one project by row-level security."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, pool

from lytics.warehouse.engine import role_engine
from lytics.warehouse.logins import RoleLogin

# An execution option of the reader's engine: how long one of its statements may run.
STATEMENT_TIMEOUT = "lytics_statement_timeout_ms"


def reader_engine(login: RoleLogin, statement_timeout_ms: int) -> Engine:
    """The read role's engine. NullPool: digest calls are rare admin calls, and nothing is
    left open between them. Its statements stop after `statement_timeout_ms`, as the
    read API's do, so no digest read can starve ingest."""
    engine = role_engine(login, poolclass=pool.NullPool)
    return engine.execution_options(**{STATEMENT_TIMEOUT: statement_timeout_ms})


@contextmanager
def project_transaction(engine: Engine, project_id: int) -> Iterator[Connection]:
    """A transaction that sees `project_id`'s rows only (`SET LOCAL` semantics).

    The scope and the statement timeout end with the transaction, so they hold
    through a pooler in transaction mode and never outlive the request.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT set_config('lytics.project_id', %(p)s, true)", {"p": str(project_id)}
        )
        timeout = conn.get_execution_options().get(STATEMENT_TIMEOUT)
        if timeout is not None:
            conn.exec_driver_sql(
                "SELECT set_config('statement_timeout', %(t)s, true)", {"t": str(int(timeout))}
            )
        yield conn
