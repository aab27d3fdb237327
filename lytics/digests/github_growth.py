"""GitHub growth in the digest: stars, forks and merged pull requests of the week.

Read from the `github_daily_repository_metrics` mart, exposed repositories only:
a private repository reaches an email only when its project opted in, the same
rule as the read API. A project without GitHub connected gets no GitHub tiles.
"""

from __future__ import annotations

from sqlalchemy import Connection

from lytics.metrics.periods import Period, change_percent
from lytics.metrics.tiles import Tile

MART = "analytics.github_daily_repository_metrics"
# (tile key, label, the mart's daily column summed over the week)
MEASURES = (
    ("github_stars_gained", "GitHub stars gained", "stars_gained"),
    ("github_forks_gained", "GitHub forks gained", "forks_gained"),
    ("github_prs_merged", "Pull requests merged", "prs_merged"),
)

_SUMS = ", ".join(f"sum({column})" for _, _, column in MEASURES)
WEEK_TOTALS = f"""
SELECT count(*), {_SUMS}
FROM {MART}
WHERE project_id = %(project)s AND exposed AND metric_date BETWEEN %(start)s AND %(end)s
"""


def tiles(conn: Connection, project_id: int, week: Period, previous: Period) -> list[Tile]:
    """GitHub growth tiles for the project, or none when GitHub is not connected."""
    if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": MART}).scalar() is None:
        return []  # the GitHub marts have never been built on this deployment
    now = _totals(conn, project_id, week)
    if now is None:
        return []
    before = _totals(conn, project_id, previous) or {}
    return [
        Tile(key, label, now[key], before.get(key), change_percent(now[key], before.get(key)))
        for key, label, _ in MEASURES
    ]


def _totals(conn: Connection, project_id: int, period: Period) -> dict[str, float | None] | None:
    row = conn.exec_driver_sql(
        WEEK_TOTALS, {"project": project_id, "start": period.start, "end": period.end}
    ).one()
    if not row[0]:
        return None  # no followed, exposed repository had a day in this period
    return {
        key: (float(value) if value is not None else None)
        for (key, _, _), value in zip(MEASURES, row[1:], strict=True)
    }
