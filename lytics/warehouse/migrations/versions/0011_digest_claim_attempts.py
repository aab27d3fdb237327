"""Digest outbox claims belong to an attempt: the process (a Dagster run) that claimed them.

`app.digest_deliveries.claimed_by` holds the attempt id (the Dagster run id, or a
random id for a run started outside Dagster). A row left `claimed` by an attempt
that is over is resent, with its stored body and idempotency key, by the next
attempt, even when that attempt belongs to the same digest run (Dagster's
automatic run retry reuses the run's config and so the digest run it names).
Before this, claims were told apart by digest run only, and a retry took the dead
attempt's claims for its own and skipped them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("digest_deliveries", sa.Column("claimed_by", sa.Text()), schema="app")


def downgrade() -> None:
    op.drop_column("digest_deliveries", "claimed_by", schema="app")
