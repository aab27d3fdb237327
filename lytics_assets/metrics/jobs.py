"""The job that rebuilds the metrics (run by the sensor, the hourly schedule and people)."""

from __future__ import annotations

import dagster as dg

refresh_metrics = dg.define_asset_job(
    "refresh_metrics",
    selection=dg.AssetSelection.groups("staging", "metrics"),
    description=(
        "Build the dbt models (and run their tests) for the run's days: every row of "
        "them, or only what arrived since the last build (tag lytics/refresh=new_rows)."
    ),
    tags={"lytics/domain": "metrics"},
    # One step (the dbt build, its tests included) in the run's own process: a step
    # process would import the code location a second time for nothing.
    executor_def=dg.in_process_executor,
)
