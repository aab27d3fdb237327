"""An empty database for a benchmark: a fresh one on `LYTICS_BENCH_DATABASE_URL`'s
server, or an embedded Postgres in a folder of the benchmark's own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from lytics.embedded_postgres import EmbeddedPostgres
from lytics.warehouse.urls import libpq_dsn, render, with_database, with_driver


@contextlib.contextmanager
def scratch_database(
    server_url: str | None, folder: Path, *, name_prefix: str, keep: bool = False
) -> Iterator[str]:
    """Its URL; dropped (or the embedded server stopped) afterwards unless `keep`."""
    if server_url:
        server = render(with_driver(server_url, "psycopg"))
        name = f"{name_prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield render(with_database(server, name))
        finally:
            if not keep:
                with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
                    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                    conn.execute(drop.format(sql.Identifier(name)))
        return
    embedded = EmbeddedPostgres.in_data_dir(folder)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
