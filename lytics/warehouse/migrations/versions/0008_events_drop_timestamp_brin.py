"""Drop the BRIN index on raw.events.timestamp.

The metrics pipeline no longer scans days of raw.events by event time: new
rows are read by arrival (`received_at`, its own BRIN index), and a window
rebuild reads each project's days through the B-tree on (project_id,
timestamp). With ~1 % of events arriving up to 72 h late, BRIN ranges on the
event time spanned days, so a day's scan read ~3.5x its blocks; keeping the
index would only cost every insert.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_timestamp_brin", table_name="events", schema="raw")


def downgrade() -> None:
    op.create_index(
        "ix_events_timestamp_brin",
        "events",
        ["timestamp"],
        schema="raw",
        postgresql_using="brin",
    )
