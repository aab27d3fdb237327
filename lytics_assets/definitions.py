"""The `lytics` code location: every asset, check, sensor, schedule and resource.

Loaded by `workspace.yaml` (`python_module: lytics_assets.definitions`).
"""

import os

import dagster as dg

from lytics_assets.alerts import run_failure_alert
from lytics_assets.metrics.project import dbt_environment
from lytics_assets.raw_sources import RAW_TABLES
from lytics_assets.resources import WarehouseResource


# The form Dagster 1.13 recommends: building the definitions (parsing the dbt
# manifest, reading settings) happens when Dagster loads the code location, not
# whenever a test or tool imports this module.
@dg.definitions
def defs() -> dg.Definitions:
    from lytics_assets.digests import definitions as digests
    from lytics_assets.exports import definitions as exports
    from lytics_assets.github import definitions as github
    from lytics_assets.metrics.assets import build_dbt_assets, dbt_resource
    from lytics_assets.metrics.checks import CHECKS
    from lytics_assets.metrics.jobs import refresh_metrics
    from lytics_assets.metrics.schedules import hourly_metrics
    from lytics_assets.metrics.sensors import raw_data_sensor
    from lytics_assets.metrics.translator import PROJECTS_TABLE

    # dbt runs as a subprocess of this process; its profile reads these.
    os.environ.update(dbt_environment())
    core = dg.Definitions(
        assets=[*RAW_TABLES, PROJECTS_TABLE, build_dbt_assets()],
        asset_checks=CHECKS,
        jobs=[refresh_metrics],
        schedules=[hourly_metrics],
        sensors=[raw_data_sensor, run_failure_alert],
        resources={
            "warehouse": WarehouseResource(database_url=dg.EnvVar("DATABASE_URL")),
            "dbt": dbt_resource(),
        },
    )
    # Each domain owns its assets, jobs, schedules, sensors and its own resource keys.
    return dg.Definitions.merge(core, github.build(), digests.build(), exports.build())
