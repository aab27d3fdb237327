"""GitHub jobs: the sync, the daily snapshot, and the marts over GitHub data."""

import dagster as dg

from lytics_assets.github.assets import GITHUB_KEYS, SNAPSHOTS_KEY

# The dbt models over GitHub data live in the `github` group too, under the analytics prefix.
GITHUB_MARTS = dg.AssetSelection.groups("github") & dg.AssetSelection.key_prefixes(["analytics"])

sync_github = dg.define_asset_job(
    "sync_github",
    selection=dg.AssetSelection.assets(*GITHUB_KEYS),
    description="Incremental GitHub sync (all streams, or what the run config narrows it to).",
    tags={"lytics/domain": "github"},
)

snapshot_github = dg.define_asset_job(
    "snapshot_github",
    selection=dg.AssetSelection.assets(SNAPSHOTS_KEY),
    description="Record today's repository counts (the only history GitHub's counts have).",
    tags={"lytics/domain": "github"},
)

refresh_github_marts = dg.define_asset_job(
    "refresh_github_marts",
    selection=GITHUB_MARTS,
    description="Rebuild the GitHub dbt models for the run's date range.",
    tags={"lytics/domain": "github"},
)
