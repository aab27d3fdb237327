"""Migrations build exactly the declared schema and run both ways, on empty and populated data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from lytics.warehouse import migrate
from lytics.warehouse.catalog import SCHEMAS, metadata
from lytics.warehouse.urls import render, with_driver


def _schemas(url: str) -> set[str]:
    engine = create_engine(render(with_driver(url, "psycopg")))
    try:
        return set(inspect(engine).get_schema_names())
    finally:
        engine.dispose()


def test_upgrade_creates_every_declared_table_and_nothing_drifts(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()
    engine = create_engine(render(with_driver(empty_database_url, "psycopg")))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, type_, _: type_ != "schema" or name in SCHEMAS,
                    "compare_type": True,
                },
            )
            # No difference between what the migrations built and tables.py.
            assert compare_metadata(ctx, metadata) == []
    finally:
        engine.dispose()


def test_every_revision_goes_down_and_up_again_on_empty_database(empty_database_url: str) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(empty_database_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    for revision in revisions:
        migrate.upgrade(empty_database_url, revision)
        migrate.downgrade(empty_database_url, "-1")
        migrate.upgrade(empty_database_url, revision)
    assert migrate.current_revision(empty_database_url) == revisions[-1]
    migrate.downgrade(empty_database_url, "base")
    assert migrate.current_revision(empty_database_url) is None
    assert not set(SCHEMAS) & _schemas(empty_database_url)


def test_downgrade_and_upgrade_on_a_populated_database(database_url: str) -> None:
    engine = create_engine(render(with_driver(database_url, "psycopg")))
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO app.projects (slug, name) VALUES ('p', 'P')"))
            conn.execute(
                text(
                    "INSERT INTO raw.events"
                    " (project_id, message_id, type, timestamp, source, payload)"
                    " VALUES (1, 'm1', 'track', now(), 'native', '{}')"
                )
            )
    finally:
        engine.dispose()
    migrate.downgrade(database_url, "base")
    assert migrate.current_revision(database_url) is None
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == migrate.head_revision()


def test_upgrade_is_idempotent(database_url: str) -> None:
    before = migrate.current_revision(database_url)
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == before == migrate.head_revision()


def test_0014_reads_ip_and_user_agent_once_and_its_downgrade_stores_them_again(
    database_url: str,
) -> None:
    engine = create_engine(render(with_driver(database_url, "psycopg")))
    rows = (
        "SELECT message_id, ip, user_agent FROM raw.events ORDER BY message_id",
        "SELECT message_id, raw.event_ip(source, payload, ip),"
        " raw.event_user_agent(source, payload, user_agent) FROM raw.events ORDER BY message_id",
    )
    try:
        with engine.begin() as conn:
            # As the writer stores them from 0014 on: the payload's values only there.
            conn.execute(
                text(
                    "INSERT INTO raw.events"
                    " (project_id, message_id, type, timestamp, source, ip, user_agent, payload)"
                    " VALUES (1, 'a', 'track', now(), 'segment', NULL, NULL,"
                    '         \'{"context": {"ip": "203.0.113.9", "userAgent": "UA/1"}}\'),'
                    "        (1, 'b', 'page', now(), 'collect', '127.0.0.1', NULL,"
                    '         \'{"userAgent": "UA/2", "ip": "198.51.100.1"}\'),'
                    "        (1, 'c', 'track', now(), 'native', '127.0.0.1', 'header/1', '{}')"
                )
            )
            expected = [
                ("a", "203.0.113.9", "UA/1"),
                ("b", "127.0.0.1", "UA/2"),
                ("c", "127.0.0.1", "header/1"),
            ]
            assert [tuple(r) for r in conn.execute(text(rows[1]))] == expected
        migrate.downgrade(database_url, "0013")
        with engine.connect() as conn:
            # The previous code reads the columns: they hold the events' values again.
            assert [tuple(r) for r in conn.execute(text(rows[0]))] == expected
            gone = "SELECT to_regprocedure('raw.event_ip(text, jsonb, text)')"
            assert conn.execute(text(gone)).scalar() is None
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text(rows[1]))] == expected
    finally:
        engine.dispose()
