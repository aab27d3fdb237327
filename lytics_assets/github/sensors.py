"""GitHub sensors: webhooks refresh one repository; changed rows rebuild their days' marts."""

import json
from datetime import datetime

import dagster as dg

from lytics.github.changes import changed_days
from lytics.github.sources import list_sources
from lytics.github.webhooks import pending_refreshes
from lytics.projects import list_projects
from lytics_assets.github.jobs import refresh_github_marts, sync_github
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.requests import modelled_days, range_request
from lytics_assets.resources import WarehouseResource

# A star acknowledged by the ingest API is in github.* within this plus a run.
SENSOR_INTERVAL_S = 30


@dg.sensor(
    name="github_webhook_sensor",
    job=sync_github,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Reads GitHub webhooks stored in raw.webhook_deliveries after its cursor (star, fork, "
        "issues, pull_request, release, push) and requests a sync of just those repositories "
        "and streams, per project."
    ),
)
def github_webhook_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor or 0)
    with warehouse.connect() as conn:
        refreshes, last = pending_refreshes(conn, after)
        slugs = {p.id: p.slug for p in list_projects(conn)} if refreshes else {}
        sources = list_sources(conn) if refreshes else []
    if last == after:
        return dg.SkipReason("no new GitHub webhooks")
    requests = []
    for project_id, refresh in sorted(refreshes.items()):
        # Only repositories some source of the project follows: a webhook for anything
        # else (an organisation-wide hook, say) costs no GitHub request.
        followed = sorted(
            name
            for name in refresh.repositories
            if any(s.project_id == project_id and s.follows(name) for s in sources)
        )
        if project_id not in slugs or not followed:
            continue
        config = {"projects": [slugs[project_id]], "repositories": followed}
        requests.append(
            dg.RunRequest(
                # From the data: the same deliveries can never launch a second run.
                run_key=f"github-webhooks:{project_id}:{refresh.last_delivery_id}",
                run_config={"ops": {"github_sync": {"config": config}}},
                asset_selection=[dg.AssetKey(["github", s]) for s in sorted(refresh.streams)],
                tags={"lytics/trigger": "webhook"},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=str(last))


@dg.sensor(
    name="github_marts_sensor",
    job=refresh_github_marts,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Finds GitHub rows that changed since its cursor and rebuilds the GitHub marts over "
        "exactly the days they touch (a star from last March rebuilds last March)."
    ),
)
def github_marts_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    after = datetime.fromisoformat(json.loads(context.cursor)) if context.cursor else None
    with warehouse.connect() as conn:
        changes = changed_days(conn, after)
    cursor = json.dumps(changes.upto.isoformat())
    keys = modelled_days(changes.days, daily)
    if not keys:
        return dg.SensorResult(run_requests=[], cursor=cursor)
    run_key = f"github-marts:{changes.upto.isoformat()}"
    return dg.SensorResult(
        run_requests=[range_request(keys, run_key, refresh_github_marts.name)], cursor=cursor
    )
