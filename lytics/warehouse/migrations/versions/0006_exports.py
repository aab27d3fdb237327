"""Partitioned exports: per-destination partition state and manifests.

Also: backup destinations (no project) get unique names, and the read API's
role may see its own project's destinations, minus the encrypted credentials
(a column-level grant: the column cannot be selected even by mistake).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"
# Every column of app.export_destinations except credentials_encrypted.
DESTINATION_PUBLIC_COLUMNS = (
    "id, project_id, name, kind, bucket, prefix, region, endpoint_url, local_path, format, "
    "frequency, datasets, is_backup, enabled, created_at"
)


def upgrade() -> None:
    op.create_table(
        "partitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("destination_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("frequency", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=True),
        sa.Column("source_max_id", sa.BigInteger(), nullable=True),
        sa.Column("manifest_key", sa.Text(), nullable=True),
        sa.Column("manifest", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_partitions_status")
        ),
        sa.CheckConstraint("dataset IN ('events', 'metrics')", name=op.f("ck_partitions_dataset")),
        sa.CheckConstraint(
            "frequency IN ('hourly', 'daily')", name=op.f("ck_partitions_frequency")
        ),
        sa.CheckConstraint("window_end > window_start", name=op.f("ck_partitions_window")),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["app.export_destinations.id"],
            name=op.f("fk_partitions_destination_id_export_destinations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partitions")),
        sa.UniqueConstraint(
            "destination_id",
            "dataset",
            "project_id",
            "frequency",
            "window_start",
            name=op.f("uq_partitions_destination_id_dataset_project_id_frequency_window_start"),
        ),
        schema="exports",
    )
    op.create_index(
        op.f("ix_partitions_project_id_window_start"),
        "partitions",
        ["project_id", "window_start"],
        unique=False,
        schema="exports",
    )
    op.create_index(
        "uq_export_destinations_backup_name",
        "export_destinations",
        ["name"],
        unique=True,
        schema="app",
        postgresql_where=sa.text("project_id IS NULL"),
    )

    # Default deny, then exactly what each role needs (the pattern of 0001).
    op.execute("ALTER TABLE exports.partitions ENABLE ROW LEVEL SECURITY")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON exports.partitions TO lytics_pipeline")
    op.execute(
        "CREATE POLICY pipeline_write ON exports.partitions FOR ALL TO lytics_pipeline "
        "USING (true) WITH CHECK (true)"
    )
    # The exporter creates the deployment's default backup destination on first use.
    op.execute("GRANT INSERT ON app.export_destinations TO lytics_pipeline")
    op.execute(
        "CREATE POLICY pipeline_add_backup ON app.export_destinations FOR INSERT "
        "TO lytics_pipeline WITH CHECK (project_id IS NULL AND is_backup)"
    )
    op.execute("GRANT SELECT ON exports.partitions TO lytics_reader")
    op.execute(
        "CREATE POLICY reader_own_project ON exports.partitions FOR SELECT TO lytics_reader "
        f"USING ({READER_PROJECT})"
    )
    op.execute(
        f"GRANT SELECT ({DESTINATION_PUBLIC_COLUMNS}) ON app.export_destinations TO lytics_reader"
    )
    # Backup destinations (project_id NULL) never match: they are the operator's, not a client's.
    op.execute(
        "CREATE POLICY reader_own_project ON app.export_destinations FOR SELECT "
        f"TO lytics_reader USING ({READER_PROJECT})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY pipeline_add_backup ON app.export_destinations")
    op.execute("REVOKE INSERT ON app.export_destinations FROM lytics_pipeline")
    op.execute("DROP POLICY reader_own_project ON app.export_destinations")
    op.execute(
        f"REVOKE SELECT ({DESTINATION_PUBLIC_COLUMNS}) ON app.export_destinations "
        "FROM lytics_reader"
    )
    op.execute("REVOKE ALL ON exports.partitions FROM lytics_pipeline, lytics_reader")
    op.drop_index(
        "uq_export_destinations_backup_name", table_name="export_destinations", schema="app"
    )
    op.drop_index(
        op.f("ix_partitions_project_id_window_start"), table_name="partitions", schema="exports"
    )
    op.drop_table("partitions", schema="exports")
