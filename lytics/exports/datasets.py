"""What is exported: each dataset's source query and its fixed Arrow schema.

The schema is fixed per dataset (not inferred from the data) so every file of
every partition has the same columns and types, whatever rows it holds: readers
such as Athena or `pyarrow.dataset` see one table. Every column is nullable, as
downstream warehouses expect; JSON documents are kept as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

DatasetName = Literal["events", "metrics"]
TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Dataset:
    name: DatasetName
    table: str
    # (column expression in SQL, output name, Arrow type)
    columns: tuple[tuple[str, str, pa.DataType], ...]
    json_columns: frozenset[str]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, type_, nullable=True) for _, name, type_ in self.columns])

    def select_sql(self) -> str:
        """Rows of one project ingested in [start, end), in a stable order (ids).

        A template for `psycopg.sql.SQL(...).format(project_id=, start=, end=)`.
        """
        exprs = ", ".join(
            expr if expr == name else f"{expr} AS {name}" for expr, name, _ in self.columns
        )
        return (
            f"SELECT {exprs} FROM {self.table} WHERE project_id = {{project_id}} "
            "AND received_at >= {start} AND received_at < {end} ORDER BY id"
        )

    def counts_sql(self) -> str:
        """Rows and highest id per project in [start, end): the source's fingerprint."""
        return (
            f"SELECT project_id, count(*) AS rows, max(id) AS max_id FROM {self.table} "
            "WHERE received_at >= :start AND received_at < :end GROUP BY project_id"
        )


EVENTS = Dataset(
    name="events",
    table="raw.events",
    columns=(
        ("id", "id", pa.int64()),
        ("project_id", "project_id", pa.int64()),
        ("message_id", "message_id", pa.string()),
        ("type", "type", pa.string()),
        ("event", "event", pa.string()),
        ("anonymous_id", "anonymous_id", pa.string()),
        ("user_id", "user_id", pa.string()),
        ("session_id", "session_id", pa.string()),
        ("timestamp", "timestamp", TS),
        ("original_timestamp", "original_timestamp", TS),
        ("sent_at", "sent_at", TS),
        ("received_at", "received_at", TS),
        ("timestamp_clamped", "timestamp_clamped", pa.bool_()),
        ("url", "url", pa.string()),
        ("path", "path", pa.string()),
        ("referrer", "referrer", pa.string()),
        ("utm_source", "utm_source", pa.string()),
        ("utm_medium", "utm_medium", pa.string()),
        ("utm_campaign", "utm_campaign", pa.string()),
        # Stored once, in the payload when it holds them (migration 0014).
        ("raw.event_ip(source, payload, ip)", "ip", pa.string()),
        ("raw.event_user_agent(source, payload, user_agent)", "user_agent", pa.string()),
        ("source", "source", pa.string()),
        ("payload::text", "payload", pa.string()),
    ),
    json_columns=frozenset({"payload"}),
)

METRICS = Dataset(
    name="metrics",
    table="raw.metrics",
    columns=(
        ("id", "id", pa.int64()),
        ("project_id", "project_id", pa.int64()),
        ("source", "source", pa.string()),
        ("metric_name", "metric_name", pa.string()),
        # Postgres numeric has no fixed precision; a double is what every reader takes.
        ("metric_value", "metric_value", pa.float64()),
        ("metric_date", "metric_date", pa.date32()),
        ("meta::text", "meta", pa.string()),
        ("received_at", "received_at", TS),
    ),
    json_columns=frozenset({"meta"}),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (EVENTS, METRICS)}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}") from None
