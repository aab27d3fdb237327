"""Raw-data retention: the definitions this domain adds to the code location."""

import dagster as dg

from lytics_assets.retention.assets import raw_horizons

apply_retention = dg.define_asset_job(
    "apply_retention",
    selection=dg.AssetSelection.assets(raw_horizons),
    description="Remove raw events older than each project's retention window.",
)

retention_daily = dg.ScheduleDefinition(
    name="retention_daily",
    job=apply_retention,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Daily, after midnight's day has closed: apply raw-event retention. Projects "
        "without a window (and no LYTICS_RAW_RETENTION_DAYS) keep everything."
    ),
)


def build() -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_horizons], jobs=[apply_retention], schedules=[retention_daily]
    )
