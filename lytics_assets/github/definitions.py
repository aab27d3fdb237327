"""GitHub extraction (group `github`): the definitions this domain adds to the code location."""

import dagster as dg

from lytics_assets.github.assets import github_sync, repository_snapshots
from lytics_assets.github.jobs import refresh_github_marts, snapshot_github, sync_github
from lytics_assets.github.resources import GitHubResource
from lytics_assets.github.schedules import github_daily, github_daily_snapshot
from lytics_assets.github.sensors import github_marts_sensor, github_webhook_sensor


def build() -> dg.Definitions:
    return dg.Definitions(
        assets=[github_sync, repository_snapshots],
        jobs=[sync_github, snapshot_github, refresh_github_marts],
        schedules=[github_daily, github_daily_snapshot],
        sensors=[github_webhook_sensor, github_marts_sensor],
        resources={"github": GitHubResource()},
    )
