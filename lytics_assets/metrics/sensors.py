"""Refresh exactly the days that new raw data touches."""

import dagster as dg

from lytics.metrics.changes import Cursor, changed_days
from lytics_assets.metrics.jobs import refresh_metrics
from lytics_assets.metrics.requests import modelled_days, range_request
from lytics_assets.resources import WarehouseResource

# An event acknowledged now is in its day's marts within about this long plus a run.
SENSOR_INTERVAL_S = 30


@dg.sensor(
    name="raw_data_sensor",
    job=refresh_metrics,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Looks for raw rows newer than its cursor (ids per raw table) and requests one run "
        "over the days they belong to: a late event for last Tuesday refreshes last Tuesday."
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
    keys = modelled_days(changes.days)
    skipped = sorted(d.isoformat() for d in changes.days if d.isoformat() not in keys)
    if skipped:
        context.log.warning(
            "new rows for days outside the partitions, not modelled: %s", skipped[:10]
        )
    requests = [range_request(keys, changes.key, refresh_metrics.name)] if keys else []
    # The run key is derived from the data (the new cursor), never from the clock,
    # so re-evaluating the same data can never launch a second run.
    return dg.SensorResult(run_requests=requests, cursor=changes.cursor.serialize())
