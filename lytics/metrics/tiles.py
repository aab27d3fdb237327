"""The KPI tiles: one computation for the dashboard endpoint and the weekly digest.

The SQL uses the driver's own `%(name)s` parameters so that the same text runs
on psycopg's async connections (the read API) and through SQLAlchemy's
`exec_driver_sql` (the digest, in Dagster). Both paths assemble the numbers
with the same functions, so a digest tile and a dashboard tile for the same
range cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Connection

from lytics.metrics.periods import Period, change_percent

# Pushed metrics that are rates or scores: a range shows their daily average, not a sum.
AVERAGED_METRICS = frozenset({"engagement", "bounce_rate", "conversion_rate", "engagement_rate"})

# A range's rates come from its exact totals, rounded once: bounce rate is
# sum(bounces) / sum(sessions), the average duration sum(total_session_duration_seconds)
# / sum(sessions). Adding up the days' rounded averages times their sessions would
# carry each day's rounding into the range (176.3 s where the exact mean is 176.2 s).
# A day built before the mart had its exact total falls back to that product.
SITE = """
SELECT coalesce(sum(sessions), 0) AS sessions, coalesce(sum(pageviews), 0) AS pageviews,
       coalesce(sum(conversions), 0) AS conversions, coalesce(sum(bounces), 0) AS bounces,
       sum(coalesce(total_session_duration_seconds, avg_session_duration_seconds * sessions))
           AS duration_total
FROM analytics.daily_site_metrics
WHERE project_id = %(project)s AND metric_date BETWEEN %(start)s AND %(end)s
"""
# A visitor counts once, on their first day inside the range: the day's rows of
# daily_visitor_recency whose previous visit is none or before the range. Exactly the
# distinct visitors of daily_visitors over the range, read from at most one row per
# (day, earlier day) instead of one per visitor and day (docs/metrics.md).
VISITORS = """
SELECT coalesce(sum(visitors), 0) FROM analytics.daily_visitor_recency
WHERE project_id = %(project)s AND visit_date BETWEEN %(start)s AND %(end)s
  AND (previous_visit_date IS NULL OR previous_visit_date < %(start)s)
"""
PUSHED = """
SELECT metric_name, sum(metric_value) AS total, avg(metric_value) AS average
FROM analytics.daily_kpi_metrics
WHERE project_id = %(project)s AND metric_date BETWEEN %(start)s AND %(end)s
GROUP BY metric_name ORDER BY metric_name
"""
SITE_TILES = (
    ("sessions", "Sessions"),
    ("pageviews", "Pageviews"),
    ("unique_visitors", "Unique visitors"),
    ("conversions", "Conversions"),
    ("bounce_rate", "Bounce rate"),
    ("avg_session_duration_seconds", "Avg. session duration (s)"),
)


@dataclass(frozen=True)
class Numbers:
    """A project's numbers over one range: site metrics from events, pushed metrics by name."""

    site: dict[str, float | None]
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Numbers:
        return cls(dict.fromkeys(k for k, _ in SITE_TILES))

    @property
    def has_data(self) -> bool:
        """Anything at all happened: a digest without this is not worth an email."""
        return any(self.site.get(k) for k in ("sessions", "pageviews")) or any(
            v for v in self.metrics.values()
        )


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: float | None
    previous: float | None
    change_pct: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "previous": self.previous,
            "change_pct": self.change_pct,
        }


def _params(project_id: int, period: Period) -> dict[str, Any]:
    return {"project": project_id, "start": period.start, "end": period.end}


def ratio(numerator: Decimal | int, denominator: int, places: int) -> float:
    """numerator / denominator, rounded once to `places` decimals, half away from zero.

    That is how Postgres' round(numeric) rounds the marts' own columns, so a one-day
    tile shows exactly its row of daily_site_metrics (Python's round() would give
    0.0312 for 1 bounce in 32 sessions where the mart says 0.0313). Exact decimals
    throughout: no binary float before the final value.
    """
    exact = Decimal(numerator) / Decimal(denominator)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _assemble(site: Sequence[Any], visitors: Sequence[Any], pushed: Sequence[Any]) -> Numbers:
    sessions, pageviews, conversions, bounces = (int(v) for v in site[:4])
    duration_total = Decimal(site[4]) if site[4] is not None else None
    numbers: dict[str, float | None] = {
        "sessions": sessions,
        "pageviews": pageviews,
        "unique_visitors": int(visitors[0]),
        "conversions": conversions,
        "bounce_rate": ratio(bounces, sessions, 4) if sessions else None,
        "avg_session_duration_seconds": (
            ratio(duration_total, sessions, 1) if sessions and duration_total is not None else None
        ),
    }
    metrics = {
        str(name): float(average if name in AVERAGED_METRICS else total)
        for name, total, average in pushed
    }
    return Numbers(numbers, metrics)


def numbers(conn: Connection, project_id: int, period: Period) -> Numbers:
    """The numbers for one range, on a SQLAlchemy connection (pipeline, CLI)."""
    params = _params(project_id, period)
    site = conn.exec_driver_sql(SITE, params).one()
    visitors = conn.exec_driver_sql(VISITORS, params).one()
    pushed = conn.exec_driver_sql(PUSHED, params).all()
    return _assemble(site, visitors, pushed)


async def numbers_async(conn: AsyncConnection, project_id: int, period: Period) -> Numbers:
    """The numbers for one range, on psycopg's async connection (the read API)."""
    params = _params(project_id, period)
    site = await (await conn.execute(SITE, params)).fetchone()
    visitors = await (await conn.execute(VISITORS, params)).fetchone()
    pushed = await (await conn.execute(PUSHED, params)).fetchall()
    assert site is not None
    assert visitors is not None
    return _assemble(site, visitors, pushed)


def _label(metric_name: str) -> str:
    return metric_name.replace("_", " ").capitalize()


def site_tiles(now: Numbers, before: Numbers) -> list[Tile]:
    return [
        Tile(k, label, now.site[k], before.site[k], change_percent(now.site[k], before.site[k]))
        for k, label in SITE_TILES
    ]


def metric_tiles(now: Numbers, before: Numbers) -> list[Tile]:
    names = sorted(set(now.metrics) | set(before.metrics))
    return [
        Tile(
            name,
            _label(name),
            now.metrics.get(name),
            before.metrics.get(name),
            change_percent(now.metrics.get(name), before.metrics.get(name)),
        )
        for name in names
    ]
