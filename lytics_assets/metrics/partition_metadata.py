"""What a build left in each daily partition of a table, for the data team.

Each partition's materialization carries its own row count and preview (a run
over a range materializes every day in it); one query per table covers the
whole range.
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
    # The first rows of each day, in the table's key order (its first columns).
    result = conn.execute(
        text(
            f"SELECT * FROM (SELECT t.*, row_number() OVER (PARTITION BY {day_column} "
            f"ORDER BY 1, 2, 3) AS preview_row FROM {relation} AS t "
            f"WHERE {day_column} = ANY(CAST(:days AS date[]))) AS numbered "
            f"WHERE preview_row <= {PREVIEW_ROWS} ORDER BY {day_column}, preview_row"
        ),
        params,
    )
    columns = [str(c) for c in result.keys() if c != "preview_row"]  # noqa: SIM118
    day_index = columns.index(day_column)
    previews: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in result:
        values = tuple(row)[: len(columns)]
        previews[str(values[day_index])].append(values)
    return {
        day: {
            "dagster/partition_row_count": dg.MetadataValue.int(int(counts.get(day, 0))),
            "preview": dg.MetadataValue.md(_markdown(columns, previews.get(day, []))),
        }
        for day in days
    }
