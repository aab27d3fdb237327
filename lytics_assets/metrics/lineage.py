"""Which dbt tables are built from which raw table, read from the manifest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator


def tables_built_from_raw(
    manifest: Mapping[str, Any], translator: DagsterDbtTranslator
) -> dict[str, list[dg.AssetKey]]:
    """raw table name -> asset keys of the models downstream of it that hold data.

    Views are left out: they hold no rows, so new raw data never needs them rebuilt.
    """
    nodes, children = manifest["nodes"], manifest["child_map"]
    built: dict[str, list[dg.AssetKey]] = {}
    for unique_id, source in manifest["sources"].items():
        if source["source_name"] != "raw":
            continue
        seen: set[str] = set()
        queue = list(children.get(unique_id, []))
        while queue:
            child = queue.pop()
            if child in seen:
                continue
            seen.add(child)
            queue.extend(children.get(child, []))
        built[source["name"]] = sorted(
            (
                translator.get_asset_key(nodes[child])
                for child in seen
                if child in nodes
                and nodes[child]["resource_type"] == "model"
                and nodes[child]["config"]["materialized"] != "view"
            ),
            key=lambda key: key.to_user_string(),
        )
    return built
