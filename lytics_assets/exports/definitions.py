"""Partitioned exports (group `exports`): the definitions this domain adds to the code location.

Hourly and daily assets per dataset, a job and a schedule per frequency (each
runs a configurable lag after its window closes), and the `exports` resource.
Backfills over any range come from the UI, the CLI or `POST /v1/exports/run`.
"""

from datetime import UTC, datetime

import dagster as dg

from lytics.exports.datasets import DATASETS
from lytics.exports.windows import STEP, Frequency, Window, floor
from lytics.settings import get_settings
from lytics_assets.exports.assets import build_export_asset
from lytics_assets.exports.resources import ExportsResource


def partitions() -> dict[Frequency, dg.TimeWindowPartitionsDefinition]:
    start = get_settings().exports_start
    return {
        # No end offset: a window is exported only once it has closed.
        "hourly": dg.HourlyPartitionsDefinition(
            start_date=f"{start:%Y-%m-%d}-00:00", timezone="UTC"
        ),
        "daily": dg.DailyPartitionsDefinition(start_date=f"{start:%Y-%m-%d}", timezone="UTC"),
    }


def build() -> dg.Definitions:
    settings = get_settings()
    defs = partitions()
    assets = {
        frequency: [build_export_asset(name, frequency, part) for name in DATASETS]
        for frequency, part in defs.items()
    }
    jobs = {
        frequency: dg.define_asset_job(
            f"exports_{frequency}_job",
            selection=dg.AssetSelection.assets(*assets[frequency]),
            description=f"Export the {frequency} partitions of every dataset.",
        )
        for frequency in defs
    }
    daily_lag = settings.exports_daily_lag_minutes
    schedules = [
        _closed_window_schedule(
            jobs["hourly"].name,
            "hourly",
            f"{settings.exports_hourly_lag_minutes} * * * *",
            "Each hour, export the hour that just closed (after the configured lag).",
        ),
        _closed_window_schedule(
            jobs["daily"].name,
            "daily",
            f"{daily_lag % 60} {daily_lag // 60} * * *",
            "Each day, export the day that just closed (after the configured lag).",
        ),
    ]
    return dg.Definitions(
        assets=[a for group in assets.values() for a in group],
        jobs=list(jobs.values()),
        schedules=schedules,
        resources={"exports": ExportsResource()},
    )


def _closed_window_schedule(
    job_name: str, frequency: Frequency, cron: str, description: str
) -> dg.ScheduleDefinition:
    """A tick exports the window that closed before it; the run key is the partition.

    Written out rather than built with `build_schedule_from_partitioned_job`, whose
    evaluation calls Dagster's deprecated `run_request_for_partition` on every tick.
    """
    first = datetime.combine(get_settings().exports_start, datetime.min.time(), UTC)

    @dg.schedule(
        name=f"exports_{frequency}",
        job_name=job_name,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def closed_window(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        at = context.scheduled_execution_time or datetime.now(UTC)
        window = Window(frequency, floor(at, frequency) - STEP[frequency])
        if window.start < first:
            return dg.SkipReason(f"exports start {first.date()}")
        key = window.partition_key
        return dg.RunRequest(partition_key=key, run_key=key)

    return closed_window
