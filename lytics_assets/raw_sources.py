"""The `raw` tables, declared to Dagster as external assets.

The ingest API writes these tables; Dagster never materializes them. Declaring
them lets every derived asset depend on `["raw", <table>]`, lets sensors report
new data against them, and shows the data team who writes each table and what
makes a row unique.

Column schemas are read from `lytics.warehouse.tables`, the description of
what the migrations create, so the catalog cannot drift from the database.
"""

from collections.abc import Mapping

import dagster as dg
from sqlalchemy import PrimaryKeyConstraint, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql.base import PGDialect

from lytics.warehouse import tables

OWNERS = ["team:data"]

# Types rendered as Postgres spells them (jsonb, timestamp with time zone), whatever
# driver the engine uses.
_POSTGRES = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped

_WRITER = (
    "Written only by the ingest API (`lytics_ingest_api`), which acknowledges a request "
    "only after its rows are committed; append-only, nothing downstream writes here."
)

_DESCRIPTIONS: Mapping[Table, str] = {
    tables.events: (
        "Analytics events as received: Segment-compatible track, page, identify, screen, "
        "group and alias calls (`/v1/<type>`, `/v1/batch`), native `/v1/events`, and "
        "`/collect` beacons and pixels. One row per (project_id, message_id): the client's "
        "messageId (generated when absent) makes retried requests harmless. "
        "`timestamp` is the clock-skew corrected event time; `payload` is the event as sent. "
        + _WRITER
    ),
    tables.metrics: (
        "KPI metrics pushed by integrations to `/v1/metrics/ingest` "
        "(source, metric_name, metric_value, metric_date). No unique key: a metric sent "
        "again is a newer row, and staging keeps the latest per "
        "(project_id, source, metric_name, metric_date) by received_at. " + _WRITER
    ),
    tables.webhook_deliveries: (
        "Webhooks verified on their raw bytes before parsing: Resend (Svix / Standard "
        "Webhooks signatures), GitHub (`X-Hub-Signature-256`) and any sender signing with a "
        "shared HMAC secret. Keeps the exact signed body, the headers and the parsed JSON. "
        "One row per (project_id, provider, delivery_id), the sender's delivery id "
        "(`svix-id`, `X-GitHub-Delivery`), so redeliveries are stored once. " + _WRITER
    ),
    tables.replay_sessions: (
        "Session-replay sessions, registered when the recorder starts one (user, URL, "
        "referrer, user agent). One row per (project_id, session_id). " + _WRITER
    ),
    tables.replay_events: (
        "Batches of rrweb events uploaded by the session-replay recorder. One row per "
        "(project_id, session_id, batch_id): the batch id is the client's or a hash of the "
        "batch, so a retried upload is stored once. " + _WRITER
    ),
}

# Only where the name alone could mislead someone writing a downstream model.
_COLUMN_DESCRIPTIONS: Mapping[str, Mapping[str, str]] = {
    "events": {
        "message_id": "Client messageId (generated when absent); unique per project.",
        "type": "Segment call type: track, page, screen, identify, group or alias.",
        "event": "Event name for track; page or screen name otherwise.",
        "timestamp": (
            "Event time corrected for client clock skew: "
            "received_at + (original_timestamp - sent_at), clamped when far in the future."
        ),
        "original_timestamp": "Event time by the client's clock, as sent.",
        "sent_at": "When the client sent the request, by the client's clock.",
        "received_at": "When the ingest API received the request (server clock).",
        "source": "Which endpoint accepted the event: segment, native, collect or pixel.",
        "payload": "The whole event as sent.",
    },
    "metrics": {
        "received_at": "Arrival time; the latest row per metric key wins downstream.",
    },
    "webhook_deliveries": {
        "provider": "resend, github, or the HMAC sender's configured name.",
        "delivery_id": "The sender's delivery id (svix-id, X-GitHub-Delivery, ...).",
        "body": "The exact bytes whose signature was verified.",
        "payload": "The body parsed as JSON, when it is JSON.",
    },
    "replay_events": {
        "batch_id": "Client batch id, or a hash of the batch; dedupes retried uploads.",
        "events": "The rrweb events of the batch, as sent.",
    },
}


def unique_keys(table: Table) -> list[tuple[str, ...]]:
    """Every set of columns the database guarantees unique (primary key included)."""
    return [
        tuple(column.name for column in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint) and constraint.columns
    ]


def table_schema(table: Table) -> dg.TableSchema:
    """The table's columns and keys as Dagster shows them in the catalog."""
    descriptions = _COLUMN_DESCRIPTIONS.get(table.name, {})
    primary_key = {column.name for column in table.primary_key.columns}
    columns = [
        dg.TableColumn(
            name=column.name,
            type=column.type.compile(dialect=_POSTGRES).lower(),
            description=descriptions.get(column.name),
            constraints=dg.TableColumnConstraints(
                nullable=bool(column.nullable),
                # Single-column keys only; composite keys are table constraints below.
                unique=bool(column.unique) or primary_key == {column.name},
            ),
        )
        for column in table.columns
    ]
    keys = [f"unique ({', '.join(key)})" for key in unique_keys(table) if len(key) > 1]
    return dg.TableSchema(
        columns=columns,
        constraints=dg.TableConstraints(other=keys) if keys else None,
    )


def raw_table_spec(table: Table, description: str) -> dg.AssetSpec:
    qualified_name = f"{table.schema}.{table.name}"
    return dg.AssetSpec(
        key=dg.AssetKey([str(table.schema), table.name]),
        description=description,
        group_name="raw",
        kinds={"postgres"},
        owners=OWNERS,
        metadata={
            "dagster/table_name": qualified_name,
            "dagster/column_schema": table_schema(table),
        },
    )


RAW_TABLES: list[dg.AssetSpec] = [
    raw_table_spec(table, description) for table, description in _DESCRIPTIONS.items()
]
