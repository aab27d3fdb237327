"""The job that refreshes metrics for a date range (used by the sensor, the schedule and people)."""

from __future__ import annotations

import dagster as dg

refresh_metrics = dg.define_asset_job(
    "refresh_metrics",
    selection=dg.AssetSelection.groups("staging", "metrics"),
    description="Rebuild the dbt models (and run their tests and checks) for the run's date range.",
    tags={"lytics/domain": "metrics"},
)
