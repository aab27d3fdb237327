"""Raw-data retention bookkeeping (schema `app`).

Declared on the shared `metadata`; `lytics.warehouse.catalog` imports every table module.
`raw_horizons` is what the pipeline reads: per project, the instant before which raw
events have been removed, so a window rebuild keeps the aggregates of older days
instead of rebuilding them from nothing. `retention_runs` is the audit: what each
run removed, per project, in counts (never the data).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    func,
)

from lytics.warehouse.tables import metadata

raw_horizons = Table(
    "raw_horizons",
    metadata,
    Column(
        "project_id",
        BigInteger,
        ForeignKey("app.projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Raw events with an event time before this have been removed (a UTC midnight).
    Column("retained_from", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="app",
)

retention_runs = Table(
    "retention_runs",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "project_id", BigInteger, ForeignKey("app.projects.id", ondelete="CASCADE"), nullable=False
    ),
    Column("run_id", Text, nullable=False),  # the Dagster run, or "cli"
    Column("retention_days", Integer, nullable=False),
    Column("retained_from", DateTime(timezone=True), nullable=False),
    Column("events_removed", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(None, "project_id", "finished_at"),
    schema="app",
)
