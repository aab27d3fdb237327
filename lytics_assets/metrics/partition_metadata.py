"""What a window rebuild left in each daily partition of a table, for the data team.

Each partition's materialization carries its own row count and preview (a run
over a range materializes every day in it); one count per table covers the whole
range. The raw-data sensor's refreshes skip this: counting a busy day costs more
than the refresh itself (docs/benchmarks.md), and their materializations say
`lytics/refresh: new_rows` instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from sqlalchemy import Connection, text

PREVIEW_ROWS = 5


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |\n" for row in rows
    )
    return head + body


def partition_metadata(
    conn: Connection, relation: str, day_column: str, days: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """Per day (a partition key): the table's rows of that day and the first few."""
    params = {"days": list(days)}
    counts: dict[str, int] = dict(
        conn.execute(
            text(
                f"SELECT {day_column}::text, count(*) FROM {relation} "
                f"WHERE {day_column} = ANY(CAST(:days AS date[])) GROUP BY 1"
            ),
            params,
        ).all()
    )
    # A few rows of each day, each day's own: stops at the first rows it finds.
    result = conn.execute(
        text(
            f"SELECT preview.* FROM unnest(CAST(:days AS date[])) AS day, "
            f"LATERAL (SELECT * FROM {relation} AS t WHERE t.{day_column} = day "
            f"LIMIT {PREVIEW_ROWS}) AS preview"
        ),
        params,
    )
    columns = [str(c) for c in result.keys()]  # noqa: SIM118
    day_index = columns.index(day_column)
    previews: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in result:
        previews[str(row[day_index])].append(tuple(row))
    return {
        day: {
            "dagster/partition_row_count": dg.MetadataValue.int(int(counts.get(day, 0))),
            "preview": dg.MetadataValue.md(_markdown(columns, previews.get(day, []))),
        }
        for day in days
    }
