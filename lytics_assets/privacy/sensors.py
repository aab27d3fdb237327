"""`privacy_deletions`: walks each deletion request through its runs.

pending    -> launch `erase_person` for it
erasing    -> wait for that run; if every attempt failed, the request failed
erased     -> request the mart rebuilds and export rewrites its erasure recorded;
              once a run exists for each, the request is rebuilding
rebuilding -> when every one of those runs has finished: done (the identities in
              clear are dropped, counts stay) or failed (naming the runs)

Every request carries the request's id as a tag and a run key derived from the
request, so a tick that is evaluated twice asks for nothing twice.
"""

from collections.abc import Sequence

import dagster as dg

from lytics.privacy.requests import DeletionRequest, open_requests, set_status
from lytics_assets.exports.definitions import partitions
from lytics_assets.privacy.jobs import REQUEST_TAG, ErasureConfig
from lytics_assets.privacy.plan import export_requests, metrics_requests
from lytics_assets.resources import WarehouseResource

RUN_KEY_TAG = "dagster/run_key"
FINISHED = {
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
}


def _latest_by_key(runs: Sequence[dg.DagsterRun]) -> dict[str, dg.DagsterRun]:
    """Each run key's newest run: an automatic retry replaces the attempt it retries."""
    latest: dict[str, dg.DagsterRun] = {}
    for run in sorted(runs, key=lambda r: r.run_id):
        key = run.tags.get(RUN_KEY_TAG)
        if key is not None:
            latest[key] = run
    return latest


def _erase_request(request: DeletionRequest) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"privacy-{request.id}-erase",
        job_name="erase_person",
        run_config=dg.RunConfig(ops={"erase_request": ErasureConfig(request_id=request.id)}),
        tags={REQUEST_TAG: str(request.id)},
    )


@dg.sensor(
    name="privacy_deletions",
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Erases each deletion request's person, then rebuilds and re-exports what held them."
    ),
)
def privacy_deletions(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    run_requests: list[dg.RunRequest] = []
    with warehouse.connect() as conn:
        for request in open_requests(conn):
            runs = context.instance.get_runs(
                filters=dg.RunsFilter(tags={REQUEST_TAG: str(request.id)})
            )
            latest = _latest_by_key(runs)
            if request.status == "pending":
                run_requests.append(_erase_request(request))
            elif request.status == "erasing":
                erase_run = latest.get(f"privacy-{request.id}-erase")
                if (
                    erase_run is not None
                    and erase_run.status in FINISHED
                    and (erase_run.status != dg.DagsterRunStatus.SUCCESS)
                ):
                    set_status(
                        conn, request.id, "failed", error=f"erase run {erase_run.run_id} failed"
                    )
            else:
                rebuilds = metrics_requests(request) + export_requests(request, partitions())
                wanted = {r.run_key for r in rebuilds if r.run_key is not None}
                if request.status == "erased":
                    run_requests.extend(rebuilds)
                    if wanted <= latest.keys():
                        set_status(conn, request.id, "rebuilding")
                elif all(latest[key].status in FINISHED for key in wanted if key in latest):
                    failed = sorted(
                        latest[key].run_id
                        for key in wanted
                        if latest[key].status != dg.DagsterRunStatus.SUCCESS
                    )
                    summary = {**request.summary, "runs": len(wanted)}
                    if failed:
                        set_status(
                            conn,
                            request.id,
                            "failed",
                            summary=summary,
                            error="rebuild runs failed: " + ", ".join(failed),
                        )
                    else:
                        set_status(conn, request.id, "done", summary=summary)
        conn.commit()
    return dg.SensorResult(run_requests=run_requests)
