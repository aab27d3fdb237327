"""Export state per destination and partition (schema `exports`).

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.
One row per (destination, dataset, project, frequency, window): the last attempt to
publish that partition there, so a re-run knows what failed and the status API
can answer without touching the buckets.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from lytics.warehouse.tables import metadata

partitions = Table(
    "partitions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "destination_id",
        BigInteger,
        ForeignKey("app.export_destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The project whose rows the partition holds (a backup destination holds every project's).
    Column("project_id", BigInteger, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("frequency", Text, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("files", Integer),
    # Highest source id exported: with `rows`, tells a re-run whether the source changed.
    Column("source_max_id", BigInteger),
    Column("manifest_key", Text),
    Column("manifest", JSONB),
    Column("run_id", Text),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("destination_id", "dataset", "project_id", "frequency", "window_start"),
    CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
    CheckConstraint("dataset IN ('events', 'metrics')", name="dataset"),
    CheckConstraint("frequency IN ('hourly', 'daily')", name="frequency"),
    CheckConstraint("window_end > window_start", name="window"),
    Index(None, "project_id", "window_start"),
    schema="exports",
)

__all__ = ["metadata", "partitions"]
