"""Deletion requests and the identities suppressed after them (schema `app`).

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.
A request names a person by user ids, anonymous ids and emails; once it is done the
plain identities are cleared and only counts (`summary`) and hashes (suppressions)
remain.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from lytics.warehouse.tables import metadata

deletion_requests = Table(
    "deletion_requests",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    # The person as asked for; cleared (NULL) when the request is done.
    Column("user_ids", ARRAY(Text)),
    Column("anonymous_ids", ARRAY(Text)),
    Column("emails", ARRAY(Text)),
    # pending -> erasing -> erased -> rebuilding -> done, or failed.
    Column("status", Text, nullable=False, server_default="pending"),
    Column("requested_by", Text, nullable=False),  # "cli" or "api"
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("erase_run_id", Text),
    # What the erasure touched: the mart days and export windows to rebuild.
    Column("event_days", ARRAY(Date), nullable=False, server_default=text("'{}'")),
    Column("export_windows", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Counts only: rows removed per table, identities linked, runs requested.
    Column("summary", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error", Text),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('pending', 'erasing', 'erased', 'rebuilding', 'done', 'failed')",
        name="status",
    ),
    Index(None, "status"),
    schema="app",
)

identity_suppressions = Table(
    "identity_suppressions",
    metadata,
    Column(
        "project_id",
        BigInteger,
        ForeignKey("app.projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # SHA-256 of "<kind>:<value>" (kind: user_id or anonymous_id): events carrying the
    # identity are dropped at the door without the identity being stored in clear.
    Column("identity_hash", LargeBinary(32), primary_key=True),
    Column("request_id", BigInteger, ForeignKey("app.deletion_requests.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("octet_length(identity_hash) = 32", name="sha256"),
    schema="app",
)
