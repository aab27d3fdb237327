"""Deleting a person's data: deletion requests, suppressed identities, the pipeline's deletes.

Raw stays append-only for every writer; a deletion request is the second documented
exception (DESIGN.md), run by the pipeline role: `lytics_pipeline` may delete from
the raw tables that can hold a person's data. The ingest role reads suppressions
(hashes only) to drop a deleted person's later events at the door.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAW_WITH_PEOPLE = ("webhook_deliveries", "replay_sessions", "replay_events")
READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"

CREATE = """
CREATE TABLE app.deletion_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    project_id BIGINT NOT NULL,
    user_ids TEXT[],
    anonymous_ids TEXT[],
    emails TEXT[],
    status TEXT DEFAULT 'pending' NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    erase_run_id TEXT,
    event_days DATE[] DEFAULT '{}' NOT NULL,
    export_windows JSONB DEFAULT '{}'::jsonb NOT NULL,
    summary JSONB DEFAULT '{}'::jsonb NOT NULL,
    error TEXT,
    finished_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_deletion_requests PRIMARY KEY (id),
    CONSTRAINT ck_deletion_requests_status CHECK (
        status IN ('pending', 'erasing', 'erased', 'rebuilding', 'done', 'failed')),
    CONSTRAINT fk_deletion_requests_project_id_projects FOREIGN KEY (project_id)
        REFERENCES app.projects (id) ON DELETE CASCADE
);
CREATE INDEX ix_deletion_requests_status ON app.deletion_requests (status);
CREATE TABLE app.identity_suppressions (
    project_id BIGINT NOT NULL,
    identity_hash BYTEA NOT NULL,
    request_id BIGINT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_identity_suppressions PRIMARY KEY (project_id, identity_hash),
    CONSTRAINT ck_identity_suppressions_sha256 CHECK (octet_length(identity_hash) = 32),
    CONSTRAINT fk_identity_suppressions_project_id_projects FOREIGN KEY (project_id)
        REFERENCES app.projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_identity_suppressions_request_id_deletion_requests FOREIGN KEY (request_id)
        REFERENCES app.deletion_requests (id) ON DELETE SET NULL
)
"""


def upgrade() -> None:
    op.execute(CREATE)
    for table in ("app.deletion_requests", "app.identity_suppressions"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_write ON {table} FOR ALL TO lytics_pipeline "
            "USING (true) WITH CHECK (true)"
        )
    # The read API files and follows requests for the secret key's own project only.
    op.execute("GRANT SELECT, INSERT ON app.deletion_requests TO lytics_reader")
    op.execute(
        "CREATE POLICY reader_own_project ON app.deletion_requests FOR SELECT TO lytics_reader "
        f"USING ({READER_PROJECT})"
    )
    op.execute(
        "CREATE POLICY reader_request ON app.deletion_requests FOR INSERT TO lytics_reader "
        f"WITH CHECK ({READER_PROJECT} AND status = 'pending')"
    )
    op.execute("GRANT SELECT ON app.identity_suppressions TO lytics_ingest")
    op.execute(
        "CREATE POLICY ingest_read ON app.identity_suppressions FOR SELECT TO lytics_ingest "
        "USING (true)"
    )
    for table in RAW_WITH_PEOPLE:
        op.execute(f"GRANT DELETE ON raw.{table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_erasure ON raw.{table} FOR DELETE TO lytics_pipeline "
            "USING (true)"
        )


def downgrade() -> None:
    for table in RAW_WITH_PEOPLE:
        op.execute(f"DROP POLICY pipeline_erasure ON raw.{table}")
        op.execute(f"REVOKE DELETE ON raw.{table} FROM lytics_pipeline")
    op.execute("DROP TABLE app.identity_suppressions")
    op.execute("DROP TABLE app.deletion_requests")
