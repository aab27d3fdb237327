"""`GET /v1/dashboard/tiles`: the KPI tiles of seed S0, read from the marts.

The computation lives in `lytics.metrics.tiles`, shared with the weekly digest.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from psycopg import errors

from lytics.metrics.periods import Period
from lytics.metrics.tiles import Numbers, metric_tiles, numbers_async, site_tiles
from lytics_ingest_api.database import project_transaction
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal
from lytics_ingest_api.response_bodies import DashboardTiles

DEFAULT_DAYS = 7


def _period(start: date | None, end: date | None) -> Period:
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    try:
        return Period(start, end)
    except ValueError as exc:
        raise bad_request(str(exc), field="from") from exc


@get(
    "/v1/dashboard/tiles",
    operation_id="dashboard_tiles",
    tags=["reads"],
    summary="KPI tiles for a date range, each with the previous range of the same length",
    responses=responses(DashboardTiles, *SECRET_ERRORS),
)
async def dashboard_tiles(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    *,
    project: Annotated[str | None, QueryParameter(max_length=63)] = None,
    start: Annotated[date | None, QueryParameter(name="from")] = None,
    end: Annotated[date | None, QueryParameter(name="to")] = None,
) -> dict[str, Any]:
    if project is not None and project != principal.project_slug:
        raise ApiError(403, "forbidden", "this key belongs to another project", field="project")
    period = _period(start, end)
    previous = period.previous()
    try:
        async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
            now = await numbers_async(conn, principal.project_id, period)
            before = await numbers_async(conn, principal.project_id, previous)
    except (errors.UndefinedTable, errors.InsufficientPrivilege):
        # The pipeline has not built the marts yet (a fresh install; a schema created by
        # a build that has not granted the read role its usage yet).
        now = before = Numbers.empty()
        built = False
    else:
        built = True
    # The same tiles the weekly digest mails (lytics.metrics.tiles).
    tiles = [tile.as_dict() for tile in site_tiles(now, before)]
    metrics = [tile.as_dict() for tile in metric_tiles(now, before)]
    return {
        "project": principal.project_slug,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "previous": {"from": previous.start.isoformat(), "to": previous.end.isoformat()},
        "built": built,
        "tiles": tiles,
        "metrics": metrics,
    }


ROUTES = [dashboard_tiles]
