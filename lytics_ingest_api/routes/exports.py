"""Export configuration, status and launches (seed S1's /export/config, /status, /run).

Reads run as `lytics_reader` with the key's project set for the transaction:
row-level security limits them to that project's destinations and partitions,
and the role cannot select the encrypted credentials column at all. Launches
go to Dagster's GraphQL API, so the backfill shows in the Dagster UI, obeys
the run queue and the `s3` pool, and the answer is immediate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Request, get, post
from litestar.params import FromQuery, QueryParameter
from psycopg.rows import dict_row

from lytics.dagster_api import DagsterApi, DagsterApiError
from lytics.exports.formats import EXTENSIONS
from lytics.exports.moments import FORMS, parse_moment
from lytics.exports.run_requests import RunRefusedError, RunRequest, Target, launch, plan_run
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
    since: Annotated[str, QueryParameter(description=f"Range start (inclusive): {FORMS}.")],
    until: Annotated[
        str | None, QueryParameter(description=f"Range end (exclusive), default now: {FORMS}.")
    ] = None,
    format: FromQuery[Literal["parquet", "jsonl", "csv"] | None] = None,
    dataset: FromQuery[Literal["events", "metrics"] | None] = None,
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    rows = await _rows(request, principal, DESTINATIONS, {})
    try:
        run = plan_run(
            [Target.from_row(row, principal.project_id) for row in rows],
            RunRequest(
                since=_moment(since, "since"),
                until=now if until is None else _moment(until, "until"),
                project_id=principal.project_id,
                fmt=format,
                datasets=None if dataset is None else frozenset({dataset}),
                max_partitions=MAX_PARTITIONS,
            ),
            now=now,
            first=datetime.combine(settings.exports_start, datetime.min.time(), UTC),
        )
        return await launch(
            DagsterApi(settings.graphql_url), run, f"exports for {principal.project_slug}"
        )
    except RunRefusedError as exc:
        if exc.kind == "no_destination":
            raise ApiError(404, "not_found", str(exc)) from None
        raise bad_request(str(exc), field=exc.field) from None
    except DagsterApiError as exc:
        raise ApiError(
            503,
            "unavailable",
            f"could not launch the export: {exc}",
            headers={"Retry-After": "30"},
        ) from exc


def _moment(text: str, field: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise bad_request(f"{field}: {exc}", field=field) from None


ROUTES: list[Any] = [exports_config, exports_status, exports_run]
