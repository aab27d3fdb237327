"""Initial schema: app, raw, github and exports; least-privilege roles; row-level security.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Roles are cluster-wide in Postgres, so they are created if missing and never
dropped on downgrade (other databases on the same server may use them); the
downgrade revokes everything this database granted them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SCHEMAS = ("app", "raw", "github", "exports")
ROLES = ("lytics_ingest", "lytics_pipeline", "lytics_reader")
APP_TABLES = (
    "projects",
    "api_keys",
    "users",
    "project_members",
    "data_sources",
    "webhook_sources",
    "export_destinations",
    "digest_runs",
    "digest_deliveries",
    "email_suppressions",
)
RAW_TABLES = ("events", "metrics", "webhook_deliveries", "replay_sessions", "replay_events")
# The read API sets this per transaction (SET LOCAL), so a reader sees one project only.
READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"


def _create_roles() -> None:
    for role in ROLES:
        op.execute(
            f"""
            DO $$
            BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN;
              END IF;
              -- The migrating user must be able to SET ROLE to it (PG16 no longer implies it).
              IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
                EXECUTE format('GRANT {role} TO %I', current_user);
              END IF;
            END
            $$;
            """
        )


def _grant_access() -> None:
    for schema in ("app", "raw"):
        op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {', '.join(ROLES)}")
    op.execute("GRANT USAGE, CREATE ON SCHEMA github, exports TO lytics_pipeline")
    op.execute("GRANT USAGE ON SCHEMA github, exports TO lytics_reader")
    # dbt creates the `analytics` schema as the pipeline role.
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO lytics_pipeline', "
        "current_database()); END $$"
    )

    for table in (*(f"app.{t}" for t in APP_TABLES), *(f"raw.{t}" for t in RAW_TABLES)):
        # Default deny: with RLS on and no policy, a role sees and changes nothing.
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")

    # Ingest: insert raw data, read what authenticates a request. Nothing else.
    for table in RAW_TABLES:
        op.execute(f"GRANT INSERT ON raw.{table} TO lytics_ingest")
        op.execute(
            f"CREATE POLICY ingest_insert ON raw.{table} FOR INSERT TO lytics_ingest "
            "WITH CHECK (true)"
        )
    for table in ("projects", "api_keys", "webhook_sources"):
        op.execute(f"GRANT SELECT ON app.{table} TO lytics_ingest")
        op.execute(
            f"CREATE POLICY ingest_read ON app.{table} FOR SELECT TO lytics_ingest USING (true)"
        )

    # Pipeline (Dagster, dbt): read everything, keep the digest bookkeeping.
    for table in (*(f"app.{t}" for t in APP_TABLES), *(f"raw.{t}" for t in RAW_TABLES)):
        op.execute(f"GRANT SELECT ON {table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_read ON {table} FOR SELECT TO lytics_pipeline USING (true)"
        )
    for table in ("digest_runs", "digest_deliveries", "email_suppressions"):
        op.execute(f"GRANT INSERT, UPDATE ON app.{table} TO lytics_pipeline")
        op.execute(
            f"CREATE POLICY pipeline_write ON app.{table} FOR ALL TO lytics_pipeline "
            "USING (true) WITH CHECK (true)"
        )

    # Reader (the read API): one project's raw rows, and the keys that authenticate it.
    for table in RAW_TABLES:
        op.execute(f"GRANT SELECT ON raw.{table} TO lytics_reader")
        op.execute(
            f"CREATE POLICY reader_own_project ON raw.{table} FOR SELECT TO lytics_reader "
            f"USING ({READER_PROJECT})"
        )
    for table in ("projects", "api_keys"):
        op.execute(f"GRANT SELECT ON app.{table} TO lytics_reader")
        op.execute(
            f"CREATE POLICY reader_auth ON app.{table} FOR SELECT TO lytics_reader USING (true)"
        )


def _revoke_access() -> None:
    for table in (*(f"app.{t}" for t in APP_TABLES), *(f"raw.{t}" for t in RAW_TABLES)):
        op.execute(f"REVOKE ALL ON {table} FROM {', '.join(ROLES)}")
    for schema in SCHEMAS:
        op.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {', '.join(ROLES)}")
    op.execute(
        "DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM lytics_pipeline', "
        "current_database()); END $$"
    )


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    _create_roles()
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("digest", sa.Text(), server_default="weekly", nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("scope", sa.Text(), server_default="all", nullable=False),
        sa.Column("scope_email", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("dagster_run_id", sa.Text(), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("scope IN ('all', 'email')", name=op.f("ck_digest_runs_scope")),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_digest_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_runs")),
        schema="app",
    )
    op.create_index(
        op.f("ix_digest_runs_started_at"), "digest_runs", ["started_at"], unique=False, schema="app"
    )
    op.create_table(
        "email_suppressions",
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "reason IN ('bounced', 'complained', 'unsubscribed', 'manual')",
            name=op.f("ck_email_suppressions_reason"),
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_email_suppressions_lowercase")),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_email_suppressions")),
        schema="app",
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("slug", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name=op.f("ck_projects_slug_format")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("slug", name=op.f("uq_projects_slug")),
        schema="app",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        schema="app",
    )
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
        schema="app",
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("anonymous_id", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("original_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "timestamp_clamped", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("utm_source", sa.Text(), nullable=True),
        sa.Column("utm_medium", sa.Text(), nullable=True),
        sa.Column("utm_campaign", sa.Text(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "type IN ('track', 'page', 'screen', 'identify', 'group', 'alias')",
            name=op.f("ck_events_type"),
        ),
        sa.CheckConstraint(
            "char_length(message_id) BETWEEN 1 AND 100", name=op.f("ck_events_message_id_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "project_id", "message_id", name=op.f("uq_events_project_id_message_id")
        ),
        schema="raw",
    )
    op.create_index(
        op.f("ix_events_project_id_timestamp"),
        "events",
        ["project_id", "timestamp"],
        unique=False,
        schema="raw",
    )
    op.create_index(
        "ix_events_received_at_brin",
        "events",
        ["received_at"],
        unique=False,
        schema="raw",
        postgresql_using="brin",
    )
    op.create_table(
        "metrics",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("metric_name", sa.Text(), nullable=False),
        sa.Column("metric_value", sa.Numeric(), nullable=False),
        sa.Column("metric_date", sa.Date(), nullable=False),
        sa.Column(
            "meta",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
        schema="raw",
    )
    op.create_index(
        op.f("ix_metrics_project_id_source_metric_name_metric_date_received_at"),
        "metrics",
        ["project_id", "source", "metric_name", "metric_date", "received_at"],
        unique=False,
        schema="raw",
    )
    op.create_index(
        "ix_metrics_received_at_brin",
        "metrics",
        ["received_at"],
        unique=False,
        schema="raw",
        postgresql_using="brin",
    )
    op.create_table(
        "replay_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("first_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_events")),
        sa.UniqueConstraint(
            "project_id",
            "session_id",
            "batch_id",
            name=op.f("uq_replay_events_project_id_session_id_batch_id"),
        ),
        schema="raw",
    )
    op.create_index(
        "ix_replay_events_received_at_brin",
        "replay_events",
        ["received_at"],
        unique=False,
        schema="raw",
        postgresql_using="brin",
    )
    op.create_table(
        "replay_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("user_email", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_sessions")),
        sa.UniqueConstraint(
            "project_id", "session_id", name=op.f("uq_replay_sessions_project_id_session_id")
        ),
        schema="raw",
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "project_id",
            "provider",
            "delivery_id",
            name=op.f("uq_webhook_deliveries_project_id_provider_delivery_id"),
        ),
        schema="raw",
    )
    op.create_index(
        op.f("ix_webhook_deliveries_project_id_provider_received_at"),
        "webhook_deliveries",
        ["project_id", "provider", "received_at"],
        unique=False,
        schema="raw",
    )
    op.create_index(
        "ix_webhook_deliveries_received_at_brin",
        "webhook_deliveries",
        ["received_at"],
        unique=False,
        schema="raw",
        postgresql_using="brin",
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('write', 'secret')", name=op.f("ck_api_keys_kind")),
        sa.CheckConstraint("octet_length(key_hash) = 32", name=op.f("ck_api_keys_sha256")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_api_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        schema="app",
    )
    op.create_index(
        op.f("ix_api_keys_project_id"), "api_keys", ["project_id"], unique=False, schema="app"
    )
    op.create_table(
        "data_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("account_ref", sa.Text(), nullable=False),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_data_sources_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sources")),
        sa.UniqueConstraint(
            "project_id",
            "kind",
            "account_ref",
            name=op.f("uq_data_sources_project_id_kind_account_ref"),
        ),
        schema="app",
    )
    op.create_table(
        "digest_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("digest", sa.Text(), server_default="weekly", nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'sent', 'failed', 'skipped', 'suppressed')",
            name=op.f("ck_digest_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_digest_deliveries_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["app.digest_runs.id"],
            name=op.f("fk_digest_deliveries_run_id_digest_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_deliveries")),
        sa.UniqueConstraint(
            "digest",
            "period_start",
            "project_id",
            "recipient",
            name=op.f("uq_digest_deliveries_digest_period_start_project_id_recipient"),
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_digest_deliveries_idempotency_key")),
        schema="app",
    )
    op.create_index(
        op.f("ix_digest_deliveries_run_id"),
        "digest_deliveries",
        ["run_id"],
        unique=False,
        schema="app",
    )
    op.create_table(
        "export_destinations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=True),
        sa.Column("prefix", sa.Text(), server_default="", nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("local_path", sa.Text(), nullable=True),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("format", sa.Text(), server_default="parquet", nullable=False),
        sa.Column("frequency", sa.Text(), server_default="daily", nullable=False),
        sa.Column(
            "datasets",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("ARRAY['events']"),
            nullable=False,
        ),
        sa.Column("is_backup", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'local') = (local_path IS NOT NULL)",
            name=op.f("ck_export_destinations_local_has_path"),
        ),
        sa.CheckConstraint(
            "(kind = 's3') = (bucket IS NOT NULL)",
            name=op.f("ck_export_destinations_s3_has_bucket"),
        ),
        sa.CheckConstraint(
            "format IN ('parquet', 'jsonl', 'csv')", name=op.f("ck_export_destinations_format")
        ),
        sa.CheckConstraint(
            "frequency IN ('hourly', 'daily')", name=op.f("ck_export_destinations_frequency")
        ),
        sa.CheckConstraint("kind IN ('s3', 'local')", name=op.f("ck_export_destinations_kind")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_export_destinations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_destinations")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_export_destinations_project_id_name")
        ),
        schema="app",
    )
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), server_default="member", nullable=False),
        sa.Column("digest_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("role IN ('owner', 'member')", name=op.f("ck_project_members_role")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_project_members_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app.users.id"],
            name=op.f("fk_project_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_members")),
        schema="app",
    )
    op.create_index(
        op.f("ix_project_members_user_id"),
        "project_members",
        ["user_id"],
        unique=False,
        schema="app",
    )
    op.create_table(
        "webhook_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("secrets_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "source ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name=op.f("ck_webhook_sources_source_format")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["app.projects.id"],
            name=op.f("fk_webhook_sources_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_sources")),
        sa.UniqueConstraint(
            "project_id", "source", name=op.f("uq_webhook_sources_project_id_source")
        ),
        schema="app",
    )
    _grant_access()


def downgrade() -> None:
    _revoke_access()
    op.drop_table("webhook_sources", schema="app")
    op.drop_index(op.f("ix_project_members_user_id"), table_name="project_members", schema="app")
    op.drop_table("project_members", schema="app")
    op.drop_table("export_destinations", schema="app")
    op.drop_index(op.f("ix_digest_deliveries_run_id"), table_name="digest_deliveries", schema="app")
    op.drop_table("digest_deliveries", schema="app")
    op.drop_table("data_sources", schema="app")
    op.drop_index(op.f("ix_api_keys_project_id"), table_name="api_keys", schema="app")
    op.drop_table("api_keys", schema="app")
    op.drop_index(
        "ix_webhook_deliveries_received_at_brin",
        table_name="webhook_deliveries",
        schema="raw",
        postgresql_using="brin",
    )
    op.drop_index(
        op.f("ix_webhook_deliveries_project_id_provider_received_at"),
        table_name="webhook_deliveries",
        schema="raw",
    )
    op.drop_table("webhook_deliveries", schema="raw")
    op.drop_table("replay_sessions", schema="raw")
    op.drop_index(
        "ix_replay_events_received_at_brin",
        table_name="replay_events",
        schema="raw",
        postgresql_using="brin",
    )
    op.drop_table("replay_events", schema="raw")
    op.drop_index(
        "ix_metrics_received_at_brin", table_name="metrics", schema="raw", postgresql_using="brin"
    )
    op.drop_index(
        op.f("ix_metrics_project_id_source_metric_name_metric_date_received_at"),
        table_name="metrics",
        schema="raw",
    )
    op.drop_table("metrics", schema="raw")
    op.drop_index(
        "ix_events_received_at_brin", table_name="events", schema="raw", postgresql_using="brin"
    )
    op.drop_index(op.f("ix_events_project_id_timestamp"), table_name="events", schema="raw")
    op.drop_table("events", schema="raw")
    op.drop_index("uq_users_email_lower", table_name="users", schema="app")
    op.drop_table("users", schema="app")
    op.drop_table("projects", schema="app")
    op.drop_table("email_suppressions", schema="app")
    op.drop_index(op.f("ix_digest_runs_started_at"), table_name="digest_runs", schema="app")
    op.drop_table("digest_runs", schema="app")
    for schema in reversed(SCHEMAS):
        # Not CASCADE: a schema holding tables we do not own must stop the downgrade.
        op.execute(f"DROP SCHEMA IF EXISTS {schema}")
