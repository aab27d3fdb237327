"""How dbt's nodes appear in Dagster: keys that match the raw tables, groups, owners, freshness."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject

OWNERS = ["team:data"]
# Marts are refreshed hourly and by the raw-data sensor; two quiet hours is a
# warning, six an outage.
MART_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=6), warn_window=timedelta(hours=2)
)


class LyticsDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # raw.events -> ["raw", "events"]: the same keys as lytics_assets.raw_sources.
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey(["analytics", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return str(dbt_resource_props["source_name"])
        if "github" in dbt_resource_props["fqn"]:
            # Next to the GitHub assets they model; rebuilt by refresh_github_marts.
            return "github"
        return "staging" if "staging" in dbt_resource_props["fqn"] else "metrics"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return OWNERS

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        description = str(dbt_resource_props.get("description") or "").strip()
        return (
            description or f"dbt {dbt_resource_props['resource_type']} {dbt_resource_props['name']}"
        )

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "model" and "marts" in props["fqn"]:
            return spec.replace_attributes(freshness_policy=MART_FRESHNESS)
        return spec


PROJECTS_TABLE = dg.AssetSpec(
    key=dg.AssetKey(["app", "projects"]),
    description=(
        "Projects (sites and apps), managed with `lytics projects`. Their settings name the "
        "events that count as conversions."
    ),
    group_name="app",
    kinds={"postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "app.projects"},
)
