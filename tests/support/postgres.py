"""A real Postgres for the suite, and a fresh database per test cloned from a migrated template.

`LYTICS_TEST_DATABASE_URL` selects an existing server (any database on it
that we may connect to, e.g. postgresql://postgres@127.0.0.1:5432/postgres);
otherwise an embedded server (pgserver) starts in a temporary folder and is
removed afterwards. `CREATE DATABASE ... TEMPLATE` copies a migrated schema in
tens of milliseconds, so every test gets its own database.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from lytics.embedded_postgres import EmbeddedPostgres
from lytics.warehouse import migrate
from lytics.warehouse.urls import libpq_dsn, render, with_database, with_driver


@contextlib.contextmanager
def server_for_tests(env_url: str | None) -> Iterator[str]:
    if env_url:
        yield render(with_driver(env_url, "psycopg"))
        return
    # Short path: Unix socket paths are limited to ~100 characters.
    folder = Path(tempfile.mkdtemp(prefix="lyt-", dir="/tmp"))
    server = EmbeddedPostgres(folder / "pg")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(libpq_dsn(server_url), autocommit=True)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    with _admin(server_url) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return render(with_database(server_url, name))


def drop_database(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def unique_name(kind: str) -> str:
    return f"lyt_{kind}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def migrated_template(server_url: str) -> Iterator[str]:
    name = unique_name("tpl")
    url = create_database(server_url, name)
    try:
        migrate.upgrade(url)
        yield name
    finally:
        drop_database(server_url, name)
