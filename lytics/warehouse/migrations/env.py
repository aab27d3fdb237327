"""Alembic environment: the URL comes from the caller (lytics.warehouse.migrate), never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from lytics.warehouse.catalog import SCHEMAS, metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
if not url:
    raise RuntimeError("run migrations through `lytics db ...`, which supplies the database URL")


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Only our schemas: dbt's `analytics` and Dagster's tables are not ours to diff.
    if type_ == "schema":
        return name in SCHEMAS
    return True


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Two concurrent upgrades (e.g. two `lytics dev` starts) must not interleave.
        connection.execute(text("SELECT pg_advisory_lock(7215330001)"))
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                include_schemas=True,
                include_name=_include_name,
                version_table_schema="public",
                transaction_per_migration=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(7215330001)"))
            connection.commit()
    engine.dispose()


run_migrations_online()
