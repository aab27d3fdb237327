"""Table definitions (SQLAlchemy Core). Migrations own the schema; these describe it.

`tests/test_migrations.py` proves that the migrations produce exactly these
tables, so the two can never drift apart.

Schemas: `app` (tenancy, keys, configuration, digest bookkeeping), `raw`
(append-only data as it arrived, deduplicated on the sender's id), `github`
and `exports` (filled by later pipelines), `analytics` (dbt's, not declared here).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSTZRANGE, TSVECTOR, ExcludeConstraint

SCHEMAS = ("app", "raw", "github", "exports")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column[int]:
    return Column("id", BigInteger, Identity(always=True), primary_key=True)


def _created_at() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _received_at() -> Column[object]:
    return Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now())


# --------------------------------------------------------------------------- app

projects = Table(
    "projects",
    metadata,
    _id(),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    # Which custom events count as conversions, CORS origins, timezone, ...
    Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created_at(),
    CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="slug_format"),
    schema="app",
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    # "write": public key for SDKs (Segment-style); "secret": server-to-server and reads.
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    # The visible start of the key, for humans telling keys apart; never enough to use it.
    Column("prefix", Text, nullable=False),
    # SHA-256 of the whole key: the key itself is shown once and never stored.
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),
    _created_at(),
    Column("revoked_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    CheckConstraint("kind IN ('write', 'secret')", name="kind"),
    CheckConstraint("octet_length(key_hash) = 32", name="sha256"),
    Index(None, "project_id"),
    schema="app",
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("email", Text, nullable=False),
    Column("name", Text),
    Column("timezone", Text, nullable=False, server_default="UTC"),
    _created_at(),
    Index("uq_users_email_lower", func.lower(text("email")), unique=True),
    schema="app",
)

project_members = Table(
    "project_members",
    metadata,
    Column(
        "project_id",
        BigInteger,
        ForeignKey("app.projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", BigInteger, ForeignKey("app.users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", Text, nullable=False, server_default="member"),
    Column("digest_enabled", Boolean, nullable=False, server_default=text("true")),
    _created_at(),
    CheckConstraint("role IN ('owner', 'member')", name="role"),
    Index(None, "user_id"),
    schema="app",
)

data_sources = Table(
    "data_sources",
    metadata,
    _id(),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", Text, nullable=False),  # "github", ...
    Column("account_ref", Text, nullable=False),
    # What to follow (e.g. repositories, `owner/*`) and options such as exposing private data.
    Column("config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Fernet tokens (see lytics.crypto); plaintext never touches the database.
    Column("access_token_encrypted", LargeBinary),
    Column("refresh_token_encrypted", LargeBinary),
    Column("expires_at", DateTime(timezone=True)),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("project_id", "kind", "account_ref"),
    schema="app",
)

webhook_sources = Table(
    "webhook_sources",
    metadata,
    _id(),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    Column("source", Text, nullable=False),  # "resend", "github" or any HMAC sender's name
    # Fernet-encrypted JSON list of secrets: several at once so senders can rotate.
    Column("secrets_encrypted", LargeBinary, nullable=False),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("project_id", "source"),
    CheckConstraint("source ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="source_format"),
    schema="app",
)

export_destinations = Table(
    "export_destinations",
    metadata,
    _id(),
    # NULL project: the deployment-wide backup destination that receives every export.
    Column("project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE")),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),  # "s3" or "local"
    Column("bucket", Text),
    Column("prefix", Text, nullable=False, server_default=""),
    Column("region", Text),
    Column("endpoint_url", Text),
    Column("local_path", Text),
    Column("credentials_encrypted", LargeBinary),  # NULL: the default AWS credential chain
    Column("format", Text, nullable=False, server_default="parquet"),
    Column("frequency", Text, nullable=False, server_default="daily"),
    Column("datasets", ARRAY(Text), nullable=False, server_default=text("ARRAY['events']")),
    Column("is_backup", Boolean, nullable=False, server_default=text("false")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    _created_at(),
    CheckConstraint("kind IN ('s3', 'local')", name="kind"),
    CheckConstraint("format IN ('parquet', 'jsonl', 'csv')", name="format"),
    CheckConstraint("frequency IN ('hourly', 'daily')", name="frequency"),
    CheckConstraint("(kind = 's3') = (bucket IS NOT NULL)", name="s3_has_bucket"),
    CheckConstraint("(kind = 'local') = (local_path IS NOT NULL)", name="local_has_path"),
    UniqueConstraint("project_id", "name"),
    # NULLs are distinct in the constraint above: backup destinations need their own.
    Index(
        "uq_export_destinations_backup_name",
        "name",
        unique=True,
        postgresql_where=text("project_id IS NULL"),
    ),
    schema="app",
)

digest_runs = Table(
    "digest_runs",
    metadata,
    _id(),
    Column("digest", Text, nullable=False, server_default="weekly"),
    Column("period_start", Date, nullable=False),
    Column("scope", Text, nullable=False, server_default="all"),
    Column("scope_email", Text),
    Column("status", Text, nullable=False, server_default="running"),
    Column("dagster_run_id", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("sent", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("errors", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    # NULL: every project (the schedule); else the project whose API key launched it.
    Column("project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE")),
    # A backfill sends several weeks in one run: the Monday of its last week (NULL: one week).
    Column("period_end", Date),
    # The time this run keeps others from starting; overlapping ranges are refused by the
    # database itself, so concurrent triggers cannot both get through. Emptied when a
    # launch fails, which frees the slot.
    Column("cooldown", TSTZRANGE, nullable=False),
    CheckConstraint("scope IN ('all', 'email')", name="scope"),
    CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
    ExcludeConstraint(("cooldown", "&&"), using="gist", name="ex_digest_runs_cooldown"),
    Index(None, "started_at"),
    schema="app",
)

digest_deliveries = Table(
    "digest_deliveries",
    metadata,
    _id(),
    Column("digest", Text, nullable=False, server_default="weekly"),
    Column("period_start", Date, nullable=False),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    Column("recipient", Text, nullable=False),
    Column("run_id", BigInteger, ForeignKey("app.digest_runs.id", ondelete="SET NULL")),
    # Sent as Resend's Idempotency-Key: a retry after a crash cannot mail twice.
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("provider_message_id", Text),
    Column("last_error", Text),
    # The message exactly as first sent (from, to, subject, html, text, headers): a resend
    # after a crash repeats the same body, which Resend's idempotency check requires.
    Column("payload", JSONB),
    # Set when the row went out in an /emails/batch call: the batch's Idempotency-Key.
    # Rows claimed together are resent together, so the key always covers the same emails.
    Column("batch_key", Text),
    # The attempt (Dagster run id) holding a `claimed` row; once it is over, the next resends.
    Column("claimed_by", Text),
    _created_at(),
    # The outbox key: one row, hence at most one email, per digest, period and recipient.
    UniqueConstraint("digest", "period_start", "project_id", "recipient"),
    CheckConstraint(
        "status IN ('pending', 'claimed', 'sent', 'failed', 'skipped', 'suppressed')",
        name="status",
    ),
    Index(None, "run_id"),
    Index(None, "batch_key"),
    schema="app",
)

email_suppressions = Table(
    "email_suppressions",
    metadata,
    # Stored lower-cased: one address, one row.
    Column("email", Text, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("detail", Text),
    _created_at(),
    # Set when an operator lifts the suppression: the row then suppresses nothing, and
    # only bounces or complaints received after this time suppress the address again.
    Column("lifted_at", DateTime(timezone=True)),
    CheckConstraint("email = lower(email)", name="lowercase"),
    CheckConstraint("reason IN ('bounced', 'complained', 'unsubscribed', 'manual')", name="reason"),
    schema="app",
)

# --------------------------------------------------------------------------- raw
# No foreign keys on raw tables: they are the hot, append-only path, and the
# project id has already been resolved from a verified key before any insert.

events = Table(
    "events",
    metadata,
    _id(),
    Column("project_id", BigInteger, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("type", Text, nullable=False),  # track, page, screen, identify, group, alias
    Column("event", Text),  # the event name for track; the page/screen name otherwise
    Column("anonymous_id", Text),
    Column("user_id", Text),
    Column("session_id", Text),
    # Corrected time: received_at + (original_timestamp - sent_at), clamped when far ahead.
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("original_timestamp", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    _received_at(),
    Column("timestamp_clamped", Boolean, nullable=False, server_default=text("false")),
    Column("url", Text),
    Column("path", Text),
    Column("referrer", Text),
    Column("utm_source", Text),
    Column("utm_medium", Text),
    Column("utm_campaign", Text),
    # Stored once (migration 0014): the request's value only when the payload holds
    # none; raw.event_ip(source, payload, ip) and raw.event_user_agent(...) give the
    # event's value whatever was stored.
    Column(
        "ip",
        Text,
        comment="The request's address, when the payload holds none: read raw.event_ip()",
    ),
    Column(
        "user_agent",
        Text,
        comment=(
            "The request's User-Agent, when the payload holds none: read raw.event_user_agent()"
        ),
    ),
    Column("source", Text, nullable=False),  # which endpoint: segment, native, collect, pixel
    Column("payload", JSONB, nullable=False),  # the whole event as sent
    UniqueConstraint("project_id", "message_id"),
    CheckConstraint("char_length(message_id) BETWEEN 1 AND 100", name="message_id_length"),
    CheckConstraint(
        "type IN ('track', 'page', 'screen', 'identify', 'group', 'alias')", name="type"
    ),
    Index(None, "project_id", "timestamp"),
    # The read API's newest-first order and its cursor (migration 0010).
    Index(None, "project_id", "received_at", "id"),
    # Exports and sensors window by arrival time; BRIN stays tiny on append-only data.
    Index("ix_events_received_at_brin", "received_at", postgresql_using="brin"),
    schema="raw",
)

metrics = Table(
    "metrics",
    metadata,
    _id(),
    Column("project_id", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("metric_name", Text, nullable=False),
    Column("metric_value", Numeric, nullable=False),
    Column("metric_date", Date, nullable=False),
    Column("meta", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _received_at(),
    # Append-only: a re-sent metric is a newer row; staging keeps the latest per key.
    Index(None, "project_id", "source", "metric_name", "metric_date", "received_at"),
    Index("ix_metrics_received_at_brin", "received_at", postgresql_using="brin"),
    schema="raw",
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    Column("project_id", BigInteger, nullable=False),
    Column("provider", Text, nullable=False),  # resend, github or the HMAC sender's name
    Column("delivery_id", Text, nullable=False),  # svix-id, X-GitHub-Delivery, ...
    Column("event_type", Text),
    Column("sender", Text),
    Column("headers", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),  # the exact bytes that were signed
    Column("payload", JSONB),  # the parsed body, when it is JSON
    _received_at(),
    # The words of the payload's values (GET /v1/messages?q=), set by a trigger on insert.
    Column("search_words", TSVECTOR),
    UniqueConstraint("project_id", "provider", "delivery_id"),
    # The read API's newest-first order, overall, per source and per sender (0010).
    Index(None, "project_id", "received_at", "id"),
    Index(None, "project_id", "provider", "received_at", "id"),
    Index(None, "project_id", "sender", "received_at", "id"),
    Index(None, "search_words", postgresql_using="gin"),
    Index("ix_webhook_deliveries_received_at_brin", "received_at", postgresql_using="brin"),
    schema="raw",
)

# Deliveries counted per project, source and sender, kept by triggers on raw.webhook_deliveries
# in the writing transaction (migration 0010): GET /v1/stats reads these, not every row.
webhook_totals = Table(
    "webhook_totals",
    metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("messages", BigInteger, nullable=False),
    Column("senders", BigInteger, nullable=False),
    schema="raw",
)

webhook_source_counts = Table(
    "webhook_source_counts",
    metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("provider", Text, primary_key=True),
    Column("messages", BigInteger, nullable=False),
    schema="raw",
)

webhook_sender_counts = Table(
    "webhook_sender_counts",
    metadata,
    Column("project_id", BigInteger, primary_key=True),
    Column("sender", Text, primary_key=True),
    Column("messages", BigInteger, nullable=False),
    schema="raw",
)
Index(
    "ix_webhook_sender_counts_project_id_messages_sender",
    webhook_sender_counts.c.project_id,
    webhook_sender_counts.c.messages.desc(),
    webhook_sender_counts.c.sender,
)

replay_sessions = Table(
    "replay_sessions",
    metadata,
    _id(),
    Column("project_id", BigInteger, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text),
    Column("user_email", Text),
    Column("url", Text),
    Column("referrer", Text),
    Column("user_agent", Text),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("started_at", DateTime(timezone=True)),
    _received_at(),
    UniqueConstraint("project_id", "session_id"),
    schema="raw",
)

replay_events = Table(
    "replay_events",
    metadata,
    _id(),
    Column("project_id", BigInteger, nullable=False),
    Column("session_id", Text, nullable=False),
    # Client batch id, or a hash of the batch: a retried upload is stored once.
    Column("batch_id", Text, nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("first_timestamp", DateTime(timezone=True)),
    Column("last_timestamp", DateTime(timezone=True)),
    Column("events", JSONB, nullable=False),  # the rrweb events as sent
    _received_at(),
    UniqueConstraint("project_id", "session_id", "batch_id"),
    Index("ix_replay_events_received_at_brin", "received_at", postgresql_using="brin"),
    schema="raw",
)

APP_TABLES = (
    projects,
    api_keys,
    users,
    project_members,
    data_sources,
    webhook_sources,
    export_destinations,
    digest_runs,
    digest_deliveries,
    email_suppressions,
)
RAW_TABLES = (events, metrics, webhook_deliveries, replay_sessions, replay_events)
