"""Which days new raw data touches: what the pipeline's sensor refreshes.

The cursor is the highest row id seen per raw table. Ids only grow, so "rows
with a larger id" is exactly the new data, whatever its timestamps say: a late
event for last Tuesday shows up here as a change to last Tuesday.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, text

# For each raw table: the day a row belongs to in the marts.
DAY_OF_ROW = {
    "events": "(timestamp AT TIME ZONE 'UTC')::date",
    "metrics": "metric_date",
    "webhook_deliveries": "(received_at AT TIME ZONE 'UTC')::date",
}
# Bound the work of one tick; the rest is picked up by the next one.
MAX_ROWS_PER_TICK = 1_000_000


@dataclass(frozen=True)
class Cursor:
    last_ids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls({str(k): int(v) for k, v in data.items()})

    def serialize(self) -> str:
        return json.dumps(self.last_ids, sort_keys=True)


@dataclass(frozen=True)
class Changes:
    days: frozenset[date]
    cursor: Cursor
    # The raw tables that have new rows.
    tables: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """Identifies this batch of changes by the data itself (used as the run key)."""
        return "raw:" + ",".join(f"{t}={i}" for t, i in sorted(self.cursor.last_ids.items()))


def changed_days(conn: Connection, cursor: Cursor) -> Changes:
    days: set[date] = set()
    tables: set[str] = set()
    last_ids = dict(cursor.last_ids)
    for table, day_expr in DAY_OF_ROW.items():
        after = cursor.last_ids.get(table, 0)
        row = conn.execute(
            text(
                f"""
                WITH new AS (
                    SELECT id, {day_expr} AS day FROM raw.{table}
                    WHERE id > :after ORDER BY id LIMIT :limit
                )
                SELECT max(id), array_agg(DISTINCT day) FROM new
                """
            ),
            {"after": after, "limit": MAX_ROWS_PER_TICK},
        ).one()
        if row[0] is not None:
            last_ids[table] = int(row[0])
            days.update(row[1])
            tables.add(table)
    return Changes(frozenset(days), Cursor(last_ids), frozenset(tables))
