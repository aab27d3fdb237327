"""Export configuration, status and launches (seed S1's /export/config, /status, /run).

Reads run as `lytics_reader` with the key's project set for the transaction:
row-level security limits them to that project's destinations and partitions,
and the role cannot select the encrypted credentials column at all. Launches
go to Dagster's GraphQL API, so the backfill shows in the Dagster UI, obeys
the run queue and the `s3` pool, and the answer is immediate.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Request, get, post
from litestar.params import FromQuery, QueryParameter
from psycopg.rows import dict_row

from lytics.dagster_api import DagsterApi, DagsterApiError
from lytics.exports.backfills import closed_windows, plan
from lytics.exports.formats import EXTENSIONS
from lytics.exports.windows import Frequency
from lytics.settings import Settings
from lytics_ingest_api.database import project_transaction
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal
from lytics_ingest_api.response_bodies import ExportsConfig, ExportsLaunched, ExportsStatus

# Enough for a quarter of hourly partitions or a year of daily ones per request.
MAX_PARTITIONS = 24 * 92

DESTINATIONS = """
SELECT id, name, kind, bucket, prefix, region, endpoint_url, format, frequency, datasets,
       enabled, created_at
FROM app.export_destinations
ORDER BY name
"""

STATUS = """
SELECT d.name AS destination, p.dataset, p.frequency, p.window_start, p.window_end, p.status,
       p.format, p.rows, p.bytes, p.files, p.manifest_key, p.error, p.attempts,
       p.started_at, p.finished_at
FROM exports.partitions p
JOIN app.export_destinations d ON d.id = p.destination_id
WHERE (%(status)s::text IS NULL OR p.status = %(status)s)
  AND (%(dataset)s::text IS NULL OR p.dataset = %(dataset)s)
ORDER BY p.window_start DESC, d.name, p.dataset
LIMIT %(limit)s
"""

TOTALS = """
SELECT p.status, count(*) AS partitions
FROM exports.partitions p JOIN app.export_destinations d ON d.id = p.destination_id
GROUP BY p.status
"""


async def _rows(
    request: Request[Any, Any, Any], principal: KeyPrincipal, query: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


def _layout(row: dict[str, Any], project_id: int) -> str:
    hour = "/hour=HH" if row["frequency"] == "hourly" else ""
    base = f"{row['prefix']}/" if row["prefix"] else ""
    return (
        f"{base}{{dataset}}/project={project_id}/dt=YYYY-MM-DD{hour}/"
        f"part-00000.{EXTENSIONS[row['format']]}"
    )


@get(
    "/v1/exports/config",
    operation_id="exports_config",
    tags=["exports"],
    summary="The key's project's export destinations (never their credentials)",
    responses=responses(ExportsConfig, *SECRET_ERRORS),
)
async def exports_config(
    request: Request[Any, Any, Any], principal: KeyPrincipal
) -> dict[str, Any]:
    rows = await _rows(request, principal, DESTINATIONS, {})
    destinations = [
        {
            **{k: v for k, v in row.items() if k != "created_at"},
            "datasets": list(row["datasets"]),
            "layout": _layout(row, principal.project_id),
            "created_at": row["created_at"],
        }
        for row in rows
    ]
    return {
        "project": principal.project_slug,
        "project_id": principal.project_id,
        "destinations": destinations,
    }


@get(
    "/v1/exports/status",
    operation_id="exports_status",
    tags=["exports"],
    summary="Recent partitions per destination, with their state",
    responses=responses(ExportsStatus, *SECRET_ERRORS),
)
async def exports_status(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    *,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    status: FromQuery[Literal["running", "succeeded", "failed"] | None] = None,
    dataset: FromQuery[Literal["events", "metrics"] | None] = None,
) -> dict[str, Any]:
    params = {"limit": limit, "status": status, "dataset": dataset}
    partitions = await _rows(request, principal, STATUS, params)
    totals = await _rows(request, principal, TOTALS, {})
    return {
        "project": principal.project_slug,
        "totals": {row["status"]: row["partitions"] for row in totals},
        "partitions": partitions,
    }


@post(
    "/v1/exports/run",
    operation_id="exports_run",
    tags=["exports"],
    summary="Export a time range again (a Dagster backfill); answers with the backfill id",
    status_code=202,
    responses=responses(ExportsLaunched, *SECRET_ERRORS, 404, status=202),
)
async def exports_run(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    *,
    since: FromQuery[datetime],
    until: FromQuery[datetime | None] = None,
    format: FromQuery[Literal["parquet", "jsonl", "csv"] | None] = None,
    dataset: FromQuery[Literal["events", "metrics"] | None] = None,
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    since, until = _aware(since, "since"), _aware(until or now, "until")
    if since >= until:
        raise bad_request("since must be before until", field="since")

    rows = await _rows(request, principal, DESTINATIONS, {})
    wanted: dict[Frequency, set[str]] = defaultdict(set)
    for row in rows:
        if row["enabled"] and (format is None or row["format"] == format):
            chosen = [d for d in row["datasets"] if dataset is None or d == dataset]
            wanted[row["frequency"]].update(chosen)
    if not any(wanted.values()):
        raise ApiError(
            404, "not_found", "no enabled export destination of this project matches the request"
        )

    first = datetime.combine(settings.exports_start, datetime.min.time(), UTC)
    plans = []
    for frequency, datasets in sorted(wanted.items()):
        if not datasets:
            continue
        windows = closed_windows(frequency, since, until, now, first)
        if not windows:
            raise bad_request(
                f"no closed {frequency} window between since and until "
                f"(exports start {first.date()}; a window is exported once it has ended)",
                field="since",
            )
        if len(windows) > MAX_PARTITIONS:
            raise bad_request(
                f"{len(windows)} {frequency} partitions requested; at most {MAX_PARTITIONS} "
                "per request",
                field="until",
            )
        plans.append(
            plan(
                frequency=frequency,
                datasets=datasets,
                windows=windows,
                project_id=principal.project_id,
                fmt=format,
            )
        )

    api = DagsterApi(settings.graphql_url)
    launched = []
    try:
        for p in plans:
            backfill_id = await api.launch_backfill(
                asset_keys=p.asset_keys,
                partition_names=p.partition_names,
                tags=p.tags,
                title=f"exports for {principal.project_slug}",
            )
            launched.append(
                {
                    "id": backfill_id,
                    "frequency": p.frequency,
                    "assets": list(p.asset_keys),
                    "partitions": len(p.partition_names),
                    "first_partition": p.partition_names[0],
                    "last_partition": p.partition_names[-1],
                }
            )
    except DagsterApiError as exc:
        raise ApiError(
            503,
            "unavailable",
            f"could not launch the export: {exc}",
            headers={"Retry-After": "30"},
        ) from exc
    return {"id": launched[0]["id"], "backfills": launched}


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise bad_request(f"{field} needs a time zone, e.g. 2026-11-20T00:00:00Z", field=field)
    return moment.astimezone(UTC)


ROUTES: list[Any] = [exports_config, exports_status, exports_run]
