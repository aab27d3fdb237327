"""The days whose GitHub marts are stale: rows that changed since a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

# Rows written in the last few seconds may belong to transactions still open with an
# earlier `now()`; waiting this long before reading them means none is ever skipped.
SETTLE_SECONDS = 30

CHANGED_DAYS = """
WITH bounds AS (SELECT now() - make_interval(secs => :settle) AS upto),
changed AS (
    SELECT (starred_at AT TIME ZONE 'UTC')::date AS day FROM github.stargazers, bounds
    WHERE synced_at > :after AND synced_at <= upto
    UNION SELECT (created_at AT TIME ZONE 'UTC')::date FROM github.issues, bounds
    WHERE synced_at > :after AND synced_at <= upto
    UNION SELECT (closed_at AT TIME ZONE 'UTC')::date FROM github.issues, bounds
    WHERE synced_at > :after AND synced_at <= upto AND closed_at IS NOT NULL
    UNION SELECT (created_at AT TIME ZONE 'UTC')::date FROM github.pull_requests, bounds
    WHERE synced_at > :after AND synced_at <= upto
    UNION SELECT (merged_at AT TIME ZONE 'UTC')::date FROM github.pull_requests, bounds
    WHERE synced_at > :after AND synced_at <= upto AND merged_at IS NOT NULL
    UNION SELECT (published_at AT TIME ZONE 'UTC')::date FROM github.releases, bounds
    WHERE synced_at > :after AND synced_at <= upto AND published_at IS NOT NULL
    UNION SELECT snapshot_date FROM github.repository_snapshots, bounds
    WHERE synced_at > :after AND synced_at <= upto
    -- Tomorrow's forks_gained compares with this snapshot.
    UNION SELECT snapshot_date + 1 FROM github.repository_snapshots, bounds
    WHERE synced_at > :after AND synced_at <= upto
)
SELECT (SELECT upto FROM bounds) AS upto, array(SELECT day FROM changed ORDER BY day) AS days
"""

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class ChangedDays:
    days: list[date]
    upto: datetime


def changed_days(
    conn: Connection, after: datetime | None, settle_seconds: int = SETTLE_SECONDS
) -> ChangedDays:
    row = conn.execute(
        text(CHANGED_DAYS), {"after": after or EPOCH, "settle": settle_seconds}
    ).one()
    return ChangedDays(list(row.days or []), row.upto)
