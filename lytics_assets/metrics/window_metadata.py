"""What each materialization did, for the data team: rows in the window and a preview."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from sqlalchemy import Connection, text

PREVIEW_ROWS = 5


def _markdown(columns: list[str], rows: list[Any]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |\n" for row in rows
    )
    return head + body


def window_metadata(
    conn: Connection, relation: str, day_column: str, start: str, end: str
) -> Mapping[str, Any]:
    """Row count of [start, end) in `relation` and its first rows as markdown."""
    where = f"{day_column} >= CAST(:start AS date) AND {day_column} < CAST(:end AS date)"
    params = {"start": start, "end": end}
    count: int = conn.execute(
        text(f"SELECT count(*) FROM {relation} WHERE {where}"), params
    ).scalar_one()
    result = conn.execute(
        text(f"SELECT * FROM {relation} WHERE {where} ORDER BY 1, 2 LIMIT {PREVIEW_ROWS}"), params
    )
    columns = list(result.keys())
    return {
        "dagster/partition_row_count": dg.MetadataValue.int(int(count)),
        "window": dg.MetadataValue.text(f"{start} to {end} (end exclusive)"),
        "window_start": dg.MetadataValue.text(start),
        "window_end": dg.MetadataValue.text(end),
        "preview": dg.MetadataValue.md(_markdown(columns, list(result))),
    }
