"""Resources shared by the code location's domains."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import Connection, pool

from lytics.warehouse.engine import create_sync_engine


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
