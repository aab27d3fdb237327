"""Raw-data retention: per-project horizons and an audit of what each run removed.

`raw` stays append-only for every writer; retention is one of the two documented
exceptions (DESIGN.md), run by the pipeline role: `lytics_pipeline` may now delete
from `raw.events`, and nothing else may.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("app.raw_horizons", "app.retention_runs")


def upgrade() -> None:
    op.create_table(
        "raw_horizons",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("retained_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_raw_horizons_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_raw_horizons")),
        schema="app",
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("retained_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events_removed", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "finished_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_retention_runs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
        schema="app",
    )
    op.create_index(
        op.f("ix_retention_runs_project_id_finished_at"),
        "retention_runs",
        ["project_id", "finished_at"],
        schema="app",
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_write ON {table} FOR ALL TO lytics_pipeline "
            "USING (true) WITH CHECK (true)"
        )
    op.execute("GRANT DELETE ON raw.events TO lytics_pipeline")
    op.execute(
        "CREATE POLICY pipeline_retention ON raw.events FOR DELETE TO lytics_pipeline USING (true)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY pipeline_retention ON raw.events")
    op.execute("REVOKE DELETE ON raw.events FROM lytics_pipeline")
    op.drop_index(
        op.f("ix_retention_runs_project_id_finished_at"),
        table_name="retention_runs",
        schema="app",
    )
    op.drop_table("retention_runs", schema="app")
    op.drop_table("raw_horizons", schema="app")
