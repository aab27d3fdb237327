"""Which dbt models a refresh builds, read from the manifest."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

REFRESHED_GROUPS = ("staging", "metrics")


def _reachable(start: Iterable[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    queue = list(start)
    while queue:
        node = queue.pop()
        if node not in seen:
            seen.add(node)
            queue.extend(edges.get(node, []))
    return seen


def _key_order(key: dg.AssetKey) -> str:
    return key.to_user_string()


def tables_built_from_raw(
    manifest: Mapping[str, Any], translator: DagsterDbtTranslator
) -> dict[str, list[dg.AssetKey]]:
    """raw table name -> the models downstream of it that hold data.

    Views are left out: they hold no rows, so new raw data never needs them rebuilt.
    """
    nodes = manifest["nodes"]
    built: dict[str, list[dg.AssetKey]] = {}
    for unique_id, source in manifest["sources"].items():
        if source["source_name"] != "raw":
            continue
        downstream = _reachable(manifest["child_map"].get(unique_id, []), manifest["child_map"])
        keys = {
            translator.get_asset_key(nodes[i])
            for i in downstream
            if i in nodes
            and nodes[i]["resource_type"] == "model"
            and nodes[i]["config"]["materialized"] != "view"
        }
        built[source["name"]] = sorted(keys, key=_key_order)
    return built


def refreshed_models(
    manifest: Mapping[str, Any], translator: DagsterDbtTranslator
) -> list[dg.AssetKey]:
    """Every model the metrics job builds (groups staging and metrics)."""
    keys = {
        translator.get_asset_key(node)
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and translator.get_group_name(node) in REFRESHED_GROUPS
    }
    return sorted(keys, key=_key_order)
