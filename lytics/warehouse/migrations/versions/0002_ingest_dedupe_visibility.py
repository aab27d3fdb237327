"""Let the ingest role see which delivery keys already exist (and nothing more).

Per-event answers ("accepted" or "duplicate") come from
`INSERT ... ON CONFLICT DO NOTHING RETURNING <key>`, and RETURNING needs SELECT
on the returned columns. The grant is column-level: the ingest role can learn
that a message id exists in its own insert, never read an event's content.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_COLUMNS = {
    "events": "id, project_id, message_id",
    "webhook_deliveries": "id, project_id, provider, delivery_id",
    "replay_sessions": "id, project_id, session_id",
    "replay_events": "id, project_id, session_id, batch_id",
    "metrics": "id, project_id",
}


def upgrade() -> None:
    for table, columns in KEY_COLUMNS.items():
        op.execute(f"GRANT SELECT ({columns}) ON raw.{table} TO lytics_ingest")
        op.execute(
            f"CREATE POLICY ingest_returning ON raw.{table} "
            "FOR SELECT TO lytics_ingest USING (true)"
        )


def downgrade() -> None:
    for table, columns in KEY_COLUMNS.items():
        op.execute(f"DROP POLICY ingest_returning ON raw.{table}")
        op.execute(f"REVOKE SELECT ({columns}) ON raw.{table} FROM lytics_ingest")
