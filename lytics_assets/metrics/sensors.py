"""Fold new raw rows into the marts within seconds of their arrival."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from lytics.metrics.changes import Cursor, changed_days
from lytics_assets.metrics.jobs import refresh_metrics
from lytics_assets.metrics.refresh import REFRESH_TAG
from lytics_assets.metrics.requests import modelled_days, range_request
from lytics_assets.resources import WarehouseResource

# How often the daemon looks for new rows: the sensor's query is one index probe per
# raw table, and an event acknowledged now is in the marts about this long plus a
# run later (docs/benchmarks.md).
SENSOR_INTERVAL_S = 5


def build_raw_data_sensor(
    partitions: dg.PartitionsDefinition,
    built_from: Mapping[str, Sequence[dg.AssetKey]],
    models: Sequence[dg.AssetKey],
) -> dg.SensorDefinition:
    """`built_from`: for each raw table, the tables built from it; `models`: every model
    of the job. A refresh builds the tables fed by the raw tables that changed, and any
    model that was never built (a fresh install: the views those tables read, a mart
    of data that has not arrived yet), so every mart exists after the first one."""

    @dg.sensor(
        name="raw_data_sensor",
        job=refresh_metrics,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Looks for raw rows newer than its cursor (ids per raw table) and requests one "
            "run that folds them in (refresh new_rows): the tables built from the raw tables "
            "that changed, for the days the rows belong to. Tests run in the hourly rebuild."
        ),
    )
    def raw_data_sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        cursor = Cursor.parse(context.cursor)
        with warehouse.connect() as conn:
            changes = changed_days(conn, cursor)
        if not changes.days:
            return dg.SkipReason("no new raw data")
        keys = modelled_days(changes.days, partitions)
        skipped = sorted(d.isoformat() for d in changes.days if d.isoformat() not in keys)
        if skipped:
            context.log.warning(
                "new rows for days outside the partitions, not modelled: %s", skipped[:10]
            )
        tables = {key for table in changes.tables for key in built_from.get(table, ())}
        never_built = {
            key for key in models if context.instance.get_latest_materialization_event(key) is None
        }
        assets = sorted(tables | never_built, key=lambda key: key.to_user_string())
        requests = (
            [
                range_request(
                    keys,
                    changes.key,
                    refresh_metrics.name,
                    tags={REFRESH_TAG: "new_rows"},
                    asset_selection=assets,
                    # The freshness path only builds; the hourly rebuild runs the tests.
                    asset_check_keys=[],
                )
            ]
            if keys and assets
            else []
        )
        # The run key is derived from the data (the new cursor), never from the clock,
        # so re-evaluating the same data can never launch a second run.
        return dg.SensorResult(run_requests=requests, cursor=changes.cursor.serialize())

    return raw_data_sensor
