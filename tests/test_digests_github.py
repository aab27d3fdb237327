"""GitHub growth in the digest: the week's stars, forks and merged PRs, exposed repos only."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, text

from lytics.digests import github_growth
from lytics.metrics.periods import Period

WEEK = Period(date(2026, 11, 9), date(2026, 11, 15))

# The mart as dbt builds it (dbt_project/models/marts/github/), reduced to what the digest reads.
MART_DDL = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE analytics.github_daily_repository_metrics (
    project_id bigint, repository_id bigint, full_name text, exposed boolean,
    metric_date date, stars_gained bigint, forks_gained bigint, prs_merged bigint
)
"""


def _day(engine: Engine, project: int, repo: int, *, exposed: bool, day: date, stars: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO analytics.github_daily_repository_metrics VALUES "
                "(:p, :r, 'o/r' || :r, :e, :d, :s, NULL, 1)"
            ),
            {"p": project, "r": repo, "e": exposed, "d": day, "s": stars},
        )


def test_no_github_marts_means_no_github_tiles(engine: Engine) -> None:
    with engine.connect() as conn:
        assert github_growth.tiles(conn, 1, WEEK, WEEK.previous()) == []


def test_week_totals_compare_with_the_previous_week_and_hide_private_repositories(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(MART_DDL)
    for offset in range(7):
        this_week, week_before = WEEK.start + timedelta(offset), WEEK.start - timedelta(7 - offset)
        _day(engine, 1, 10, exposed=True, day=this_week, stars=3)  # 21 this week
        _day(engine, 1, 10, exposed=True, day=week_before, stars=2)  # 14 the week before
        # A private repository of the same project, not opted in: never in an email.
        _day(engine, 1, 11, exposed=False, day=WEEK.start + timedelta(days=offset), stars=1000)
    _day(engine, 2, 20, exposed=True, day=WEEK.start, stars=500)  # another project's repository

    with engine.connect() as conn:
        shown = {t.key: t for t in github_growth.tiles(conn, 1, WEEK, WEEK.previous())}
        private_only = github_growth.tiles(conn, 3, WEEK, WEEK.previous())
    stars = shown["github_stars_gained"]
    assert (stars.value, stars.previous, stars.change_pct) == (21.0, 14.0, 50.0)
    assert shown["github_prs_merged"].value == 7.0
    # Forks come from consecutive snapshots; without them there is no figure, not a zero.
    assert shown["github_forks_gained"].value is None
    assert private_only == []
