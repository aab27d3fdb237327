"""Resources shared by the code location's domains."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import Connection, Engine, pool

from lytics.settings import get_settings
from lytics.warehouse import logins
from lytics.warehouse.engine import create_sync_engine, role_engine


class WarehouseResource(dg.ConfigurableResource["WarehouseResource"]):
    """The Lytics Postgres, for sensors and checks that query it directly."""

    database_url: str

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        # Sensors and checks run briefly and rarely: no pool to keep alive between ticks.
        engine = create_sync_engine(self.database_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    @contextmanager
    def as_pipeline(self) -> Iterator[Engine]:
        """An engine acting as `lytics_pipeline`: its own login (LYTICS_PIPELINE_DATABASE_URL)
        when one is set, else this database URL assuming the role. No pool: jobs that
        use it run once and exit."""
        own = get_settings().pipeline_database_url
        login = logins.role_login(
            logins.PIPELINE, self.database_url, own.get_secret_value() if own else None
        )
        engine = role_engine(login, poolclass=pool.NullPool)
        try:
            yield engine
        finally:
            engine.dispose()
