"""Server-level housekeeping: the extra databases that live beside ours."""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from lytics.warehouse.urls import libpq_dsn


def database_exists(database_url: str, name: str) -> bool:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def ensure_database(database_url: str, name: str) -> bool:
    """Create database `name` on the server of `database_url`; True if it was created."""
    if database_exists(database_url, name):
        return False
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False  # someone else created it in between: same outcome
    return True


def dagster_database_name(database_url: str) -> str:
    """Dagster's storage gets its own database on the same server."""
    database = make_url(database_url).database or "postgres"
    return "dagster" if database == "postgres" else f"{database}_dagster"
