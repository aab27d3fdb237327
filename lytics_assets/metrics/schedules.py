"""Hourly rebuild: yesterday and today from raw, with every test, when their data changed."""

from datetime import timedelta

import dagster as dg
from sqlalchemy import text

from lytics_assets.metrics.jobs import refresh_metrics
from lytics_assets.metrics.refresh import REFRESH_TAG
from lytics_assets.metrics.requests import range_request
from lytics_assets.resources import WarehouseResource

LATEST_IDS = """
SELECT (SELECT coalesce(max(id), 0) FROM raw.events),
       (SELECT coalesce(max(id), 0) FROM raw.metrics),
       (SELECT coalesce(max(id), 0) FROM raw.webhook_deliveries)
"""


@dg.schedule(
    name="hourly_metrics",
    job=refresh_metrics,
    cron_schedule="7 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every hour, rebuild yesterday and today from raw and run every test: the "
        "sensor's incremental refreshes are checked, and anything they missed is caught."
    ),
)
def hourly_metrics(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    today = context.scheduled_execution_time.date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    with warehouse.connect() as conn:
        ids = conn.execute(text(LATEST_IDS)).one()
    # Keyed by the data it covers: with no new rows since the last run, the
    # same key comes up and Dagster skips the run instead of redoing it.
    run_key = f"hourly:{days[0]}:{ids[0]}:{ids[1]}:{ids[2]}"
    return range_request(days, run_key, refresh_metrics.name, tags={REFRESH_TAG: "window"})
