"""Least privilege: each service role can do its job and nothing else (RLS is default-deny)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from lytics import api_keys
from lytics.projects import create_project
from lytics.warehouse.urls import libpq_dsn

INSERT_EVENT = (
    "INSERT INTO raw.events (project_id, message_id, type, timestamp, source, payload) "
    "VALUES (%s, %s, 'track', now(), 'native', '{}')"
)


@pytest.fixture
def two_projects(engine: Engine) -> tuple[int, int]:
    with engine.begin() as conn:
        a = create_project(conn, "alpha").id
        b = create_project(conn, "beta").id
        api_keys.create_key(conn, a, "write")
        conn.execute(text("INSERT INTO app.users (email) VALUES ('someone@example.com')"))
    return a, b


def _as(database_url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(libpq_dsn(database_url), options=f"-c role={role}", autocommit=True)


@pytest.fixture
def ingest(database_url: str, two_projects: tuple[int, int]) -> Iterator[psycopg.Connection]:
    with _as(database_url, "lytics_ingest") as conn:
        yield conn


def test_ingest_role_inserts_raw_data_and_verifies_keys(
    engine: Engine, ingest: psycopg.Connection
) -> None:
    ingest.execute(INSERT_EVENT, (1, "m1"))
    ingest.execute(
        "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value, metric_date) "
        "VALUES (1, 's', 'sessions', 3, current_date)"
    )
    ingest.execute(
        "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, headers, body) "
        "VALUES (1, 'github', 'd1', '{}', 'x')"
    )
    # Retries are harmless even for this role: a duplicate is skipped, not an error.
    cur = ingest.execute(INSERT_EVENT + " ON CONFLICT DO NOTHING", (1, "m1"))
    assert cur.rowcount == 0
    # It learns which keys its own insert stored (for per-event answers), not content.
    cur = ingest.execute(INSERT_EVENT + " ON CONFLICT DO NOTHING RETURNING message_id", (1, "m2"))
    assert cur.fetchall() == [("m2",)]
    # Keys: verified one hash at a time (app.verify_api_key), never read as a table.
    with engine.begin() as conn:
        issued = api_keys.create_key(conn, 1, "write")
    digest = api_keys.hash_key(issued.plaintext)
    verified = ingest.execute(
        "SELECT key_id, project_id, project_slug FROM app.verify_api_key(%s, 'write')", (digest,)
    ).fetchall()
    assert verified == [(issued.id, 1, "alpha")]
    for kind, candidate in (("secret", digest), ("write", api_keys.hash_key("lyw_unknown"))):
        assert ingest.execute(
            "SELECT count(*) FROM app.verify_api_key(%s, %s)", (candidate, kind)
        ).fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM raw.events",
        "SELECT payload FROM raw.events",
        "SELECT body FROM raw.webhook_deliveries",
        "UPDATE raw.events SET event = 'x'",
        "DELETE FROM raw.events",
        "SELECT * FROM app.users",
        "SELECT * FROM app.data_sources",
        "SELECT * FROM app.digest_deliveries",
        "INSERT INTO app.projects (slug, name) VALUES ('evil', 'evil')",
        "UPDATE app.api_keys SET revoked_at = NULL",
        "SELECT key_hash FROM app.api_keys",
        "SELECT count(*) FROM app.api_keys",
        "CREATE TABLE raw.sneaky (id int)",
        "TRUNCATE raw.events",
    ],
)
def test_ingest_role_can_do_nothing_else(ingest: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        ingest.execute(statement)


def test_reader_sees_only_the_project_it_is_scoped_to(
    database_url: str, engine: Engine, two_projects: tuple[int, int]
) -> None:
    a, b = two_projects
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
        admin.execute(INSERT_EVENT, (a, "a1"))
        admin.execute(INSERT_EVENT, (b, "b1"))
    with _as(database_url, "lytics_reader") as reader:
        # Unscoped: default deny, not "everything".
        assert reader.execute("SELECT count(*) FROM raw.events").fetchone() == (0,)
        with reader.transaction():
            reader.execute("SELECT set_config('lytics.project_id', %s, true)", (str(a),))
            rows = reader.execute("SELECT message_id FROM raw.events").fetchall()
        assert rows == [("a1",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(INSERT_EVENT, (a, "a2"))


def test_pipeline_reads_raw_and_only_removes_from_it(
    database_url: str, two_projects: tuple[int, int]
) -> None:
    """Raw's two documented exceptions (retention, deletion requests) delete; nothing
    downstream ever adds or changes a raw row."""
    with _as(database_url, "lytics_pipeline") as pipeline:
        assert pipeline.execute("SELECT count(*) FROM app.projects").fetchone() == (2,)
        pipeline.execute(
            "INSERT INTO app.email_suppressions (email, reason) VALUES ('a@b.c', 'bounced')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pipeline.execute(INSERT_EVENT, (1, "p1"))
        for table in ("events", "webhook_deliveries", "replay_sessions", "metrics"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pipeline.execute(f"UPDATE raw.{table} SET project_id = project_id")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pipeline.execute("DELETE FROM raw.metrics")


def test_every_table_has_row_level_security_enabled(engine: Engine) -> None:
    with engine.connect() as conn:
        missing = (
            conn.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND n.nspname IN ('app', 'raw', 'github', 'exports') "
                    "AND NOT c.relrowsecurity"
                )
            )
            .scalars()
            .all()
        )
    assert missing == []


def test_bypassrls_gives_the_ingest_role_copy_and_nothing_it_could_not_already_see(
    engine: Engine, ingest: psycopg.Connection
) -> None:
    """Migration 0007 gives lytics_ingest BYPASSRLS so its writer may COPY into raw.events.

    That is only harmless while row-level security never narrowed the role: every
    policy that applies to it must be permissive and `true`. A policy that filtered
    its rows would be silently ignored, so it fails here instead.
    """
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'lytics_ingest'")
        ).scalar_one()
        policies = conn.execute(
            text(
                "SELECT schemaname || '.' || tablename || ':' || policyname, permissive, "
                "qual, with_check FROM pg_policies WHERE 'lytics_ingest' = ANY(roles)"
            )
        ).all()
    assert policies, "the ingest role's policies were not found"
    narrowing = [
        name
        for name, permissive, qual, with_check in policies
        if permissive != "PERMISSIVE"
        or qual not in (None, "true")
        or with_check not in (None, "true")
    ]
    assert narrowing == []
    with ingest.cursor().copy(
        "COPY raw.events (project_id, message_id, type, timestamp, source, payload) FROM STDIN"
    ) as copy:
        copy.write_row((1, "copied", "track", "2026-12-01T00:00:00Z", "native", "{}"))
    assert ingest.execute(
        "SELECT count(*) FROM raw.events WHERE message_id = 'copied'"
    ).fetchone() == (1,)
