"""Checks beyond dbt's tests: the marts agree with raw data, and today's volume looks normal."""

import statistics
from datetime import date, timedelta
from typing import Any

import dagster as dg
from sqlalchemy import Connection, text

from lytics_assets.resources import WarehouseResource

SITE_METRICS = dg.AssetKey(["analytics", "daily_site_metrics"])

# Raw events of the window, counted the way the mart counts them, up to the
# build's high-water mark; any day or project where the two disagree is listed.
RECONCILE = """
WITH raw AS (
    SELECT project_id, (timestamp AT TIME ZONE 'UTC')::date AS day,
           count(*) AS events, count(*) FILTER (WHERE type = 'page') AS pageviews
    FROM raw.events
    WHERE timestamp >= (CAST(:start AS date)::timestamp AT TIME ZONE 'UTC')
      AND timestamp < (CAST(:end AS date)::timestamp AT TIME ZONE 'UTC')
      AND id <= :watermark
    GROUP BY 1, 2
), mart AS (
    SELECT project_id, metric_date AS day, events, pageviews
    FROM analytics.daily_site_metrics
    WHERE metric_date >= CAST(:start AS date) AND metric_date < CAST(:end AS date)
)
SELECT project_id, day, raw.events AS raw_events, mart.events AS mart_events,
       raw.pageviews AS raw_pageviews, mart.pageviews AS mart_pageviews
FROM raw FULL JOIN mart USING (project_id, day)
WHERE raw.events IS DISTINCT FROM mart.events OR raw.pageviews IS DISTINCT FROM mart.pageviews
ORDER BY day, project_id
LIMIT 20
"""

SAME_WEEKDAYS = """
SELECT project_id, metric_date, events FROM analytics.daily_site_metrics
WHERE metric_date = CAST(:day AS date)
   OR metric_date IN (SELECT CAST(:day AS date) - 7 * k FROM generate_series(1, 4) AS k)
"""


def _latest_window(context: dg.AssetCheckExecutionContext) -> dict[str, Any] | None:
    event = context.instance.get_latest_materialization_event(SITE_METRICS)
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    try:
        return {
            "start": metadata["window_start"].value,
            "end": metadata["window_end"].value,
            "watermark": int(str(metadata["raw_event_watermark"].value)),
        }
    except KeyError:
        return None


def reconcile(conn: Connection, start: str, end: str, watermark: int) -> list[dict[str, Any]]:
    rows = conn.execute(text(RECONCILE), {"start": start, "end": end, "watermark": watermark})
    return [dict(row._mapping) for row in rows]


@dg.asset_check(
    asset=SITE_METRICS,
    name="reconciles_with_raw",
    description="Events and pageviews per project and day equal the raw rows of the built window.",
    blocking=True,
)
def reconciles_with_raw(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    window = _latest_window(context)
    if window is None:
        return dg.AssetCheckResult(passed=False, description="no materialization with a window yet")
    with warehouse.connect() as conn:
        mismatches = reconcile(conn, window["start"], window["end"], window["watermark"])
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={
            "window": f"{window['start']} to {window['end']}",
            "mismatches": len(mismatches),
            "first_mismatches": dg.MetadataValue.json(
                [{k: str(v) for k, v in m.items()} for m in mismatches]
            ),
        },
    )


def volume_anomalies(
    conn: Connection, day: str, low: float = 0.5, high: float = 3.0, floor: int = 20
) -> list[dict[str, Any]]:
    """Projects whose events on `day` are far from the median of the same weekday (4 weeks)."""
    history: dict[int, list[int]] = {}
    today: dict[int, int] = {}
    for row in conn.execute(text(SAME_WEEKDAYS), {"day": day}):
        project_id, events = int(row.project_id), int(row.events)
        if row.metric_date.isoformat() == day:
            today[project_id] = events
        else:
            history.setdefault(project_id, []).append(events)
    anomalies = []
    for project_id, counts in history.items():
        if len(counts) < 3:
            continue  # not enough history to call anything abnormal
        median = statistics.median(counts)
        value = today.get(project_id, 0)
        if median >= floor and not (low * median <= value <= high * median):
            anomalies.append({"project_id": project_id, "events": value, "weekday_median": median})
    return anomalies


@dg.asset_check(
    asset=SITE_METRICS,
    name="volume_is_normal",
    description="The last day of the window has 0.5x to 3x the same weekday's median events.",
    blocking=False,
)
def volume_is_normal(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    window = _latest_window(context)
    if window is None:
        return dg.AssetCheckResult(passed=True, description="no materialization yet")
    last_day = (date.fromisoformat(window["end"]) - timedelta(days=1)).isoformat()
    with warehouse.connect() as conn:
        anomalies = volume_anomalies(conn, last_day)
    return dg.AssetCheckResult(
        passed=not anomalies,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"day": last_day, "anomalies": dg.MetadataValue.json(anomalies)},
    )


CHECKS = [reconciles_with_raw, volume_is_normal]
