"""What one project's digest says about one week: tiles, insights, action items.

Everything is read from the dbt marts (schema `analytics`) with the tile
computation the dashboard uses (lytics.metrics.tiles). The content depends on
the project and the week only; the recipient changes nothing but the
unsubscribe link, so one computation serves every member of a project.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy import Connection

from lytics.digests import github_growth
from lytics.digests.insights import Insights, derive
from lytics.digests.weeks import week_period
from lytics.metrics import tiles
from lytics.metrics.periods import Period

# The tiles a digest shows, in order; pushed metrics (reach, engagement, ...) follow.
DIGEST_SITE_TILES = ("sessions", "pageviews", "unique_visitors", "conversions")

SOURCES = """
SELECT {column} AS name, sum(sessions) AS sessions FROM analytics.{table}
WHERE project_id = %(project)s AND metric_date BETWEEN %(start)s AND %(end)s
GROUP BY 1
"""


@dataclass(frozen=True)
class Project:
    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class DigestContent:
    project: Project
    week: Period
    tiles: list[tiles.Tile]
    insights: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    has_data: bool = False


def _marts_built(conn: Connection) -> bool:
    found = conn.exec_driver_sql(
        "SELECT to_regclass('analytics.daily_site_metrics') IS NOT NULL "
        "AND to_regclass('analytics.daily_visitor_recency') IS NOT NULL "
        "AND to_regclass('analytics.daily_kpi_metrics') IS NOT NULL"
    ).scalar()
    return bool(found)


def _sources(
    conn: Connection, table: str, column: str, project_id: int, period: Period
) -> dict[str, int]:
    exists = conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": f"analytics.{table}"})
    if exists.scalar() is None:
        return {}
    rows = conn.exec_driver_sql(
        SOURCES.format(table=table, column=column),
        {"project": project_id, "start": period.start, "end": period.end},
    )
    return {str(row[0]): int(row[1]) for row in rows}


def project_info(conn: Connection, project_id: int) -> Project:
    row = conn.exec_driver_sql(
        "SELECT id, slug, name FROM app.projects WHERE id = %(p)s", {"p": project_id}
    ).one()
    return Project(int(row[0]), str(row[1]), str(row[2]))


def _reported(tile: tiles.Tile, site: dict[str, tiles.Tile]) -> tiles.Tile:
    """A pushed metric named like a site tile (seed S0 pushes "sessions" and "conversions").

    The dashboard keeps the two in separate lists; one email needs them told apart,
    and the insights must not mistake the pushed figure for the measured one.
    """
    if tile.key not in site:
        return tile
    return replace(tile, key=f"reported:{tile.key}", label=f"{tile.label} (reported)")


def build(conn: Connection, project: Project, week_start: date) -> DigestContent:
    week = week_period(week_start)
    if not _marts_built(conn):
        return DigestContent(project, week, [])
    previous = week.previous()
    now = tiles.numbers(conn, project.id, week)
    before = tiles.numbers(conn, project.id, previous)
    site = {t.key: t for t in tiles.site_tiles(now, before)}
    shown = [site[k] for k in DIGEST_SITE_TILES]
    shown += [_reported(tile, site) for tile in tiles.metric_tiles(now, before)]
    # GitHub growth joins when that integration is connected (see github_growth).
    shown += github_growth.tiles(conn, project.id, week, previous)
    found = Insights(
        tiles=shown,
        bounce_rate=site["bounce_rate"].value,
        referrers_now=_sources(conn, "daily_top_referrers", "referrer", project.id, week),
        referrers_before=_sources(conn, "daily_top_referrers", "referrer", project.id, previous),
        campaigns_now=_sources(conn, "daily_top_utm_sources", "utm_source", project.id, week),
        campaigns_before=_sources(
            conn, "daily_top_utm_sources", "utm_source", project.id, previous
        ),
    )
    insights, actions = derive(found)
    return DigestContent(project, week, shown, insights, actions, has_data=now.has_data)
