"""Engines for the core and the CLI (sync, psycopg 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event

from lytics.warehouse.logins import ROLE_CHECK, RoleLogin
from lytics.warehouse.urls import render, with_driver


def create_sync_engine(database_url: str, **kwargs: Any) -> Engine:
    """A pooled engine on the owner's login (DATABASE_URL).

    Server-side prepared statements are off and no startup options are sent, so the
    same code runs through pgbouncer in transaction mode.
    """
    return _engine(database_url, {}, **kwargs)


def role_engine(login: RoleLogin, **kwargs: Any) -> Engine:
    """A pooled engine whose connections act as `login.role` (lytics.warehouse.logins)."""
    engine = _engine(login.dsn, login.connect_kwargs(), **kwargs)
    if not login.assumes_role:

        @event.listens_for(engine, "connect")
        def _check_role(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cur:
                cur.execute(ROLE_CHECK, (login.role,))
                login.verify(cur.fetchone())
            # The check opened a transaction; the pool hands out a clean connection.
            dbapi_connection.rollback()

    return engine


def _engine(url: str, options: dict[str, Any], **kwargs: Any) -> Engine:
    return create_engine(
        render(with_driver(url, "psycopg")),
        pool_pre_ping=True,
        connect_args={"prepare_threshold": None, **options},
        **kwargs,
    )
