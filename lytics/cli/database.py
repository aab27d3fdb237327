"""Which Postgres a command talks to: DATABASE_URL, or the embedded one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection

from lytics.embedded_postgres import EmbeddedPostgres
from lytics.settings import Settings
from lytics.warehouse.engine import create_sync_engine


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with EmbeddedPostgres.in_data_dir(settings.data_path).running() as url:
        yield url


@contextlib.contextmanager
def transaction(settings: Settings) -> Iterator[Connection]:
    with database_url(settings) as url:
        engine = create_sync_engine(url)
        try:
            with engine.begin() as conn:
                yield conn
        finally:
            engine.dispose()
