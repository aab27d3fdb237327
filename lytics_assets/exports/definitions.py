"""Partitioned exports (group `exports`): the definitions this domain adds to the code location.

Hourly and daily assets per dataset, a job and a schedule per frequency built
from the partitions (each runs a configurable lag after its window closes), and
the `exports` resource. Backfills over any range come from the UI, the CLI or
`POST /v1/exports/run`.
"""

import dagster as dg

from lytics.exports.datasets import DATASETS
from lytics.exports.windows import Frequency
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
        dg.build_schedule_from_partitioned_job(
            jobs["hourly"],
            name="exports_hourly",
            minute_of_hour=settings.exports_hourly_lag_minutes,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Each hour, export the hour that just closed (after the configured lag).",
        ),
        dg.build_schedule_from_partitioned_job(
            jobs["daily"],
            name="exports_daily",
            hour_of_day=daily_lag // 60,
            minute_of_hour=daily_lag % 60,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Each day, export the day that just closed (after the configured lag).",
        ),
    ]
    return dg.Definitions(
        assets=[a for group in assets.values() for a in group],
        jobs=list(jobs.values()),
        schedules=schedules,
        resources={"exports": ExportsResource()},
    )
