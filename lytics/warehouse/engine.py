"""Engines for the core and the CLI (sync, psycopg 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine

from lytics.warehouse.urls import render, with_driver


def create_sync_engine(
    database_url: str,
    *,
    role: str | None = None,
    statement_timeout_ms: int | None = None,
    **kwargs: Any,
) -> Engine:
    """A pooled engine. `role` makes every connection act as that database role;
    `statement_timeout_ms` stops any of its statements that runs longer.

    Server-side prepared statements are off so the same code runs through
    pgbouncer in transaction mode.
    """
    connect_args: dict[str, Any] = {"prepare_threshold": None}
    options = []
    if role is not None:
        options.append(f"-c role={role}")
    if statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if options:
        connect_args["options"] = " ".join(options)
    return create_engine(
        render(with_driver(database_url, "psycopg")),
        pool_pre_ping=True,
        connect_args=connect_args,
        **kwargs,
    )
