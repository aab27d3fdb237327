"""BRIN index on raw.events.timestamp: the marts rebuild day windows by event time.

Event times follow arrival closely (late events are few), so a BRIN index
narrows a day's scan to a few block ranges at a tiny fraction of a B-tree's
size and insert cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_events_timestamp_brin",
        "events",
        ["timestamp"],
        schema="raw",
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_events_timestamp_brin", table_name="events", schema="raw")
