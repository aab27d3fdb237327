"""The GitHub marts (dbt, inside the partitioned dbt assets) equal counts made from the fixture.

What must hold: per repository and day, stars gained, issues opened/closed,
pull requests opened/merged and releases equal what the fake GitHub holds,
counted independently here; forks gained compare consecutive snapshots; the
job that the marts sensor launches (refresh_github_marts, over the range its request
names) builds exactly the GitHub models of the dbt multi-asset, rebuilding the
window from raw.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics_assets.github.jobs import refresh_github_marts
from lytics_assets.metrics.requests import range_request
from tests.support.fake_github import FakeRepo
from tests.support.github import Served, connect_source, sync_once
from tests.support.pipeline import Pipeline, dbt_assets_definition, failures, point_pipeline_at

FIRST, LAST = "2026-10-10", "2026-11-01"


def _day(value: str | None) -> str | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()


def expected(repo: FakeRepo) -> dict[str, Counter[str | None]]:
    """The fixture's activity per day, counted straight from the fake server's data."""
    issues = [i for i in repo.issues if "pull_request" not in i]
    return {
        "stars_gained": Counter(_day(s["starred_at"]) for s in repo.stars),
        "issues_opened": Counter(_day(i["created_at"]) for i in issues),
        "issues_closed": Counter(_day(i["closed_at"]) for i in issues if i["closed_at"]),
        "prs_opened": Counter(_day(p["created_at"]) for p in repo.pulls),
        "prs_merged": Counter(_day(p["merged_at"]) for p in repo.pulls if p["merged_at"]),
        "releases": Counter(_day(r["published_at"]) for r in repo.releases),
    }


@pytest.mark.slow
def test_marts_equal_the_fixture_and_forks_compare_snapshots(
    github: Served, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = connect_source(engine, github.api_url)
    assert sync_once(engine, source).complete
    with engine.begin() as conn:
        for day, forks in (("2026-10-30", 1), ("2026-10-31", 3)):
            conn.execute(
                text(
                    "INSERT INTO github.repository_snapshots (project_id, repository_id, "
                    "snapshot_date, stargazers_count, forks_count, watchers_count, "
                    "open_issues_count, size_kb, default_branch, observed_at) "
                    "VALUES (:p, 101, :d, 10, :f, 4, 2, 100, 'main', now())"
                ),
                {"p": source.project_id, "d": day, "f": forks},
            )
    point_pipeline_at(database_url, monkeypatch)

    # The run the marts sensor requests for these days, of the job it names.
    request = range_request([FIRST, LAST], "github-marts:test", refresh_github_marts.name)
    with dg.DagsterInstance.ephemeral() as instance:
        pipeline = Pipeline(database_url, instance, dbt_assets_definition())
        job = dg.Definitions(
            assets=[pipeline.assets], jobs=[refresh_github_marts], resources=pipeline.resources()
        ).resolve_job_def(request.job_name or "")
        result = job.execute_in_process(instance=instance, tags=request.tags, raise_on_error=False)
        logged = [
            e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event
        ]
    assert result.success, failures(result)
    # No refresh tag: a window rebuild of exactly the requested days (end exclusive).
    assert "dbt build, refresh window, window 2026-10-10 to 2026-11-02 (end exclusive)" in logged
    built = {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key}
    assert built == {
        dg.AssetKey(["analytics", name])
        for name in (
            "stg_github_repositories",
            "stg_github_activity",
            "github_daily_repository_metrics",
        )
    }

    with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                text(
                    "SELECT * FROM analytics.github_daily_repository_metrics "
                    "ORDER BY repository_id, metric_date"
                )
            )
        ]
    days = {r["metric_date"] for r in rows}
    assert min(days) == date.fromisoformat(FIRST)
    assert max(days) == date.fromisoformat(LAST)
    assert len(rows) == 3 * len(days)  # dense: every repository, every day
    compared = 0
    for name in ("octo/alpha", "octo/beta", "octo/secret"):
        want = expected(github.fake.repos[name])
        for row in (r for r in rows if r["full_name"] == name):
            day = row["metric_date"].isoformat()
            for metric, counter in want.items():
                assert row[metric] == counter.get(day, 0), (name, day, metric)
                compared += 1
    assert compared == 3 * len(days) * 6
    assert sum(r["stars_gained"] for r in rows) > 0
    alpha = {r["metric_date"].isoformat(): r for r in rows if r["repository_id"] == 101}
    assert alpha["2026-10-31"]["forks_count"] == 3
    assert alpha["2026-10-31"]["forks_gained"] == 2
    assert alpha["2026-10-30"]["forks_gained"] is None  # no snapshot the day before
    assert alpha["2026-10-29"]["forks_count"] is None
    secret = [r for r in rows if r["full_name"] == "octo/secret"]
    assert all(r["exposed"] is False for r in secret)
