"""`GET /v1/dashboard/tiles`: the KPI tiles of seed S0, read from the marts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from psycopg import AsyncConnection, errors

from lytics.metrics.periods import Period, change_percent
from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import require_secret_key
from lytics_ingest_api.errors import ApiError, bad_request

DEFAULT_DAYS = 7
# Pushed metrics that are rates or scores: a range shows their daily average, not a sum.
AVERAGED_METRICS = frozenset({"engagement", "bounce_rate", "conversion_rate", "engagement_rate"})

SITE = """
SELECT coalesce(sum(sessions), 0) AS sessions, coalesce(sum(pageviews), 0) AS pageviews,
       coalesce(sum(conversions), 0) AS conversions, coalesce(sum(bounces), 0) AS bounces,
       sum(avg_session_duration_seconds * sessions) AS duration_total
FROM analytics.daily_site_metrics
WHERE project_id = %(project)s AND metric_date BETWEEN %(start)s AND %(end)s
"""
VISITORS = """
SELECT count(DISTINCT visitor_id) FROM analytics.daily_visitors
WHERE project_id = %(project)s AND visit_date BETWEEN %(start)s AND %(end)s
"""
PUSHED = """
SELECT metric_name, sum(metric_value) AS total, avg(metric_value) AS average
FROM analytics.daily_kpi_metrics
WHERE project_id = %(project)s AND metric_date BETWEEN %(start)s AND %(end)s
GROUP BY metric_name ORDER BY metric_name
"""
TILES = (
    ("sessions", "Sessions"),
    ("pageviews", "Pageviews"),
    ("unique_visitors", "Unique visitors"),
    ("conversions", "Conversions"),
    ("bounce_rate", "Bounce rate"),
    ("avg_session_duration_seconds", "Avg. session duration (s)"),
)


async def _numbers(conn: AsyncConnection, project_id: int, period: Period) -> dict[str, Any]:
    params = {"project": project_id, "start": period.start, "end": period.end}
    site = await (await conn.execute(SITE, params)).fetchone()
    visitors = await (await conn.execute(VISITORS, params)).fetchone()
    pushed = await (await conn.execute(PUSHED, params)).fetchall()
    assert site is not None
    assert visitors is not None
    sessions, pageviews, conversions, bounces = (int(v) for v in site[:4])
    duration_total = float(site[4]) if site[4] is not None else None
    numbers: dict[str, Any] = {
        "sessions": sessions,
        "pageviews": pageviews,
        "unique_visitors": int(visitors[0]),
        "conversions": conversions,
        "bounce_rate": round(bounces / sessions, 4) if sessions else None,
        "avg_session_duration_seconds": (
            round(duration_total / sessions, 1) if sessions and duration_total is not None else None
        ),
    }
    metrics = {
        name: float(average if name in AVERAGED_METRICS else total)
        for name, total, average in pushed
    }
    return {"site": numbers, "metrics": metrics}


def _tile(key: str, label: str, value: float | None, previous: float | None) -> dict[str, Any]:
    return {
        "key": key,
        "label": label,
        "value": value,
        "previous": previous,
        "change_pct": change_percent(value, previous),
    }


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
)
async def dashboard_tiles(
    request: Request[Any, Any, Any],
    *,
    project: Annotated[str | None, QueryParameter(max_length=63)] = None,
    start: Annotated[date | None, QueryParameter(name="from")] = None,
    end: Annotated[date | None, QueryParameter(name="to")] = None,
) -> dict[str, Any]:
    principal = await require_secret_key(request)
    admit(request, principal)
    if project is not None and project != principal.project_slug:
        raise ApiError(403, "forbidden", "this key belongs to another project", field="project")
    period = _period(start, end)
    previous = period.previous()
    try:
        async with request.app.state.reader_pool.connection() as conn, conn.transaction():
            now = await _numbers(conn, principal.project_id, period)
            before = await _numbers(conn, principal.project_id, previous)
    except errors.UndefinedTable:
        # The pipeline has not built the marts yet (a fresh install).
        now = before = {"site": dict.fromkeys(k for k, _ in TILES), "metrics": {}}
        built = False
    else:
        built = True
    tiles = [_tile(k, label, now["site"][k], before["site"][k]) for k, label in TILES]
    names = sorted(set(now["metrics"]) | set(before["metrics"]))
    metrics = [
        _tile(
            name,
            name.replace("_", " ").capitalize(),
            now["metrics"].get(name),
            before["metrics"].get(name),
        )
        for name in names
    ]
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
