"""Daily metrics (groups `staging` and `metrics`): the definitions this domain adds.

The dbt project as one partitioned multi-asset (its tests are its checks), the job
that builds it, the raw-data sensor that folds new rows in within seconds, and the
hourly rebuild that checks everything.
"""

from __future__ import annotations

import json
import os

import dagster as dg
from dagster_dbt import DbtCliResource

from lytics.settings import get_settings
from lytics_assets.metrics.assets import build_dbt_assets
from lytics_assets.metrics.jobs import refresh_metrics
from lytics_assets.metrics.lineage import refreshed_models, tables_built_from_raw
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.project import dbt_environment, dbt_project, prepare
from lytics_assets.metrics.schedules import hourly_metrics
from lytics_assets.metrics.sensors import build_raw_data_sensor
from lytics_assets.metrics.translator import PROJECTS_TABLE, LyticsDbtTranslator


def build() -> dg.Definitions:
    settings = get_settings()
    # dbt runs as a subprocess of the run; dbt_project/profiles.yml reads its
    # connection from these variables, derived from DATABASE_URL.
    os.environ.update(dbt_environment(settings))
    project = dbt_project()
    manifest = json.loads(prepare(project).read_text())
    translator = LyticsDbtTranslator()
    return dg.Definitions(
        assets=[
            PROJECTS_TABLE,
            build_dbt_assets(project, daily, translator, manifest, settings.dbt_thread_count),
        ],
        jobs=[refresh_metrics],
        schedules=[hourly_metrics],
        sensors=[
            build_raw_data_sensor(
                daily,
                tables_built_from_raw(manifest, translator),
                refreshed_models(manifest, translator),
            )
        ],
        resources={"dbt": DbtCliResource(project_dir=project)},
    )
