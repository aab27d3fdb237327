"""Let the ingest role COPY into raw tables: BYPASSRLS, where the migrating user may grant it.

Postgres refuses `COPY ... FROM` to any role that row-level security applies to,
whatever its policies say. The event writer's fastest path is one binary COPY
straight into raw.events per batch (lytics_ingest_api/events/writer.py), so the
ingest role gets BYPASSRLS. It gains no visibility from it: every policy that
applies to lytics_ingest is `USING (true)` / `WITH CHECK (true)` on exactly the
tables and columns it is granted, so row-level security never narrowed what it
may do (tests/test_access_control.py keeps it that way). Its grants still bound
it: it can insert raw data and read keys, nothing more.

Only a superuser (or, from Postgres 16, a role that has BYPASSRLS itself and may
administer lytics_ingest) can grant the attribute. Where the migrating user cannot,
this migration says so and changes nothing; the writer then notices on its first
batch and uses its staging path (COPY into a temporary table, then INSERT), which
needs no such attribute. docs/runbooks.md tells an operator how to grant it later.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
          ALTER ROLE lytics_ingest BYPASSRLS;
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE NOTICE 'lytics_ingest was not given BYPASSRLS (% may not grant it): the '
                       'event writer will use its staging path', current_user;
        END
        $$;
        """
    )


def downgrade() -> None:
    # Role attributes belong to the server, not this database: another database on the
    # same server may run Lytics too. 0001's downgrade keeps the roles for the same reason.
    pass
