"""Weekly digests: outbox, cooldown and send bookkeeping beyond 0001.

- `app.digest_runs.cooldown` with an exclusion constraint: two runs whose cooldown
  ranges overlap cannot both be inserted, whoever inserts them and however
  concurrently. The database, not the callers, enforces "one run per 10 minutes".
- `app.digest_deliveries.payload` / `batch_key`: the outbox keeps the message it sent
  so a resend after a crash is byte-identical (Resend's idempotency needs that).
- The read API (`lytics_reader`) gets its project's digest rows: previews need the
  project's members, `POST /v1/digest/weekly` claims a run for its own project, the
  unsubscribe link switches one membership's digest off.
- Two SECURITY DEFINER functions answer questions across tenants without exposing
  rows: how long the cooldown still runs, and whether an address is suppressed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"
ROLES = "lytics_pipeline, lytics_reader"

COOLDOWN_REMAINING = """
CREATE FUNCTION app.digest_cooldown_remaining() RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- clock_timestamp(), not now(): a refused transaction may have started before the
    -- run that refused it, and its now() would lie before that run's cooldown.
    SELECT coalesce(extract(epoch FROM max(upper(cooldown)) - clock_timestamp()), 0)::float8
    FROM app.digest_runs WHERE upper(cooldown) > clock_timestamp()
$$
"""

# Suppressed: on the list, or bounced (not a transient bounce) / complained according to
# a Resend webhook already stored in raw, even before anything copied it to the list.
SUPPRESSION_REASON = """
CREATE FUNCTION app.email_suppression_reason(address text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT reason FROM app.email_suppressions WHERE email = lower(address) AND lifted_at IS NULL
    UNION ALL
    SELECT CASE WHEN coalesce(d.payload ->> 'type', d.event_type) = 'email.complained'
                THEN 'complained' ELSE 'bounced' END
    FROM raw.webhook_deliveries d
    WHERE d.provider = 'resend'
      AND coalesce(d.payload ->> 'type', d.event_type) IN ('email.bounced', 'email.complained')
      AND coalesce(d.payload -> 'data' -> 'bounce' ->> 'type', '') <> 'Transient'
      AND (lower(d.payload -> 'data' ->> 'to') = lower(address)
           OR d.payload -> 'data' -> 'to' @> to_jsonb(lower(address)))
      AND d.received_at > coalesce(
          (SELECT lifted_at FROM app.email_suppressions WHERE email = lower(address)),
          '-infinity')
    LIMIT 1
$$
"""


def upgrade() -> None:
    op.add_column(
        "digest_runs",
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        schema="app",
    )
    op.add_column("digest_runs", sa.Column("period_end", sa.Date(), nullable=True), schema="app")
    op.add_column(
        "digest_runs",
        sa.Column(
            "cooldown",
            postgresql.TSTZRANGE(),
            nullable=False,
            # Existing rows (none in practice): their own instant, blocking nothing.
            server_default=sa.text("'empty'::tstzrange"),
        ),
        schema="app",
    )
    op.alter_column("digest_runs", "cooldown", server_default=None, schema="app")
    op.create_foreign_key(
        op.f("fk_digest_runs_project_id_projects"),
        "digest_runs",
        "projects",
        ["project_id"],
        ["id"],
        source_schema="app",
        referent_schema="app",
        ondelete="CASCADE",
    )
    op.create_exclude_constraint(
        "ex_digest_runs_cooldown", "digest_runs", ("cooldown", "&&"), using="gist", schema="app"
    )
    op.add_column(
        "email_suppressions",
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        schema="app",
    )
    op.add_column("digest_deliveries", sa.Column("payload", postgresql.JSONB()), schema="app")
    op.add_column("digest_deliveries", sa.Column("batch_key", sa.Text()), schema="app")
    op.create_index(
        op.f("ix_digest_deliveries_batch_key"), "digest_deliveries", ["batch_key"], schema="app"
    )

    op.execute(COOLDOWN_REMAINING)
    op.execute(SUPPRESSION_REASON)
    for fn in ("digest_cooldown_remaining()", "email_suppression_reason(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION app.{fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION app.{fn} TO {ROLES}")

    # The read API, always inside a transaction with lytics.project_id set (RLS).
    op.execute("GRANT SELECT ON app.users TO lytics_reader")
    op.execute(
        "CREATE POLICY reader_project_members ON app.users FOR SELECT TO lytics_reader USING ("
        "EXISTS (SELECT 1 FROM app.project_members m WHERE m.user_id = users.id "
        f"AND m.{READER_PROJECT}))"
    )
    op.execute("GRANT SELECT, UPDATE (digest_enabled) ON app.project_members TO lytics_reader")
    op.execute(
        "CREATE POLICY reader_own_project ON app.project_members FOR ALL TO lytics_reader "
        f"USING ({READER_PROJECT}) WITH CHECK ({READER_PROJECT})"
    )
    op.execute("GRANT SELECT ON app.digest_runs TO lytics_reader")
    op.execute(
        "GRANT INSERT (project_id, period_start, period_end, scope, scope_email, cooldown, "
        "dagster_run_id), "
        "UPDATE (status, dagster_run_id, finished_at, error, cooldown) "
        "ON app.digest_runs TO lytics_reader"
    )
    # Runs for every project (the schedule) are visible; only its own can be written.
    op.execute(
        "CREATE POLICY reader_read ON app.digest_runs FOR SELECT TO lytics_reader "
        f"USING (project_id IS NULL OR {READER_PROJECT})"
    )
    op.execute(
        "CREATE POLICY reader_insert ON app.digest_runs FOR INSERT TO lytics_reader "
        f"WITH CHECK ({READER_PROJECT})"
    )
    op.execute(
        "CREATE POLICY reader_update ON app.digest_runs FOR UPDATE TO lytics_reader "
        f"USING ({READER_PROJECT}) WITH CHECK ({READER_PROJECT})"
    )
    op.execute("GRANT SELECT ON app.digest_deliveries TO lytics_reader")
    op.execute(
        "CREATE POLICY reader_own_project ON app.digest_deliveries FOR SELECT TO lytics_reader "
        f"USING ({READER_PROJECT})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY reader_own_project ON app.digest_deliveries")
    op.execute("REVOKE SELECT ON app.digest_deliveries FROM lytics_reader")
    for policy in ("reader_read", "reader_insert", "reader_update"):
        op.execute(f"DROP POLICY {policy} ON app.digest_runs")
    op.execute("REVOKE ALL ON app.digest_runs FROM lytics_reader")
    op.execute("DROP POLICY reader_own_project ON app.project_members")
    op.execute("REVOKE ALL ON app.project_members FROM lytics_reader")
    op.execute("DROP POLICY reader_project_members ON app.users")
    op.execute("REVOKE ALL ON app.users FROM lytics_reader")
    op.execute("DROP FUNCTION app.email_suppression_reason(text)")
    op.execute("DROP FUNCTION app.digest_cooldown_remaining()")

    op.drop_index(op.f("ix_digest_deliveries_batch_key"), "digest_deliveries", schema="app")
    op.drop_column("digest_deliveries", "batch_key", schema="app")
    op.drop_column("digest_deliveries", "payload", schema="app")
    op.drop_column("email_suppressions", "lifted_at", schema="app")
    op.drop_constraint("ex_digest_runs_cooldown", "digest_runs", schema="app")
    op.drop_constraint(op.f("fk_digest_runs_project_id_projects"), "digest_runs", schema="app")
    op.drop_column("digest_runs", "cooldown", schema="app")
    op.drop_column("digest_runs", "period_end", schema="app")
    op.drop_column("digest_runs", "project_id", schema="app")
