"""The dbt models as partitioned Dagster assets: one run, one `dbt build`, any range of days."""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from lytics_assets.metrics.partition_metadata import partition_metadata
from lytics_assets.metrics.refresh import Refresh
from lytics_assets.metrics.translator import LyticsDbtTranslator
from lytics_assets.resources import WarehouseResource

# Runs of the metrics job take a slot in this pool for their dbt step, so two
# builds never write the same marts at once.
DBT_POOL = "dbt"


def day_columns(
    manifest: Mapping[str, Any], translator: LyticsDbtTranslator
) -> dict[dg.AssetKey, tuple[str, str]]:
    """Asset key -> (relation, day column) for models that declare `meta.day_column`."""
    columns: dict[dg.AssetKey, tuple[str, str]] = {}
    for node in manifest["nodes"].values():
        day = node.get("config", {}).get("meta", {}).get("day_column")
        if node["resource_type"] == "model" and day:
            relation = f'"{node["schema"]}"."{node["alias"]}"'
            columns[translator.get_asset_key(node)] = (relation, day)
    return columns


def build_dbt_assets(
    project: DbtProject,
    partitions: dg.PartitionsDefinition,
    translator: LyticsDbtTranslator,
    manifest: Mapping[str, Any],
    threads: int,
) -> dg.AssetsDefinition:
    tables = day_columns(manifest, translator)

    @dbt_assets(
        manifest=manifest,
        project=project,
        partitions_def=partitions,
        # One run, one dbt invocation for any range: no temp-table collisions
        # between partitions, and a backfill costs one build of the window.
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=translator,
        pool=DBT_POOL,
        name="lytics_dbt",
    )
    def lytics_dbt(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ) -> Iterator[Any]:
        refresh = Refresh.of_run(context)
        partitioned = context.has_partition_key or context.has_partition_key_range
        # Per-partition counts and previews after a window rebuild (see partition_metadata).
        days = context.partition_keys if partitioned and refresh.mode == "window" else []
        context.log.info(
            "dbt build, refresh %s, window %s to %s (end exclusive)",
            refresh.mode,
            refresh.start or "-",
            refresh.end or "-",
        )
        args = ["build", "--vars", refresh.dbt_vars(), "--threads", str(threads)]
        window_rows: dict[str, int] = {}
        with warehouse.connect() as conn:
            for event in dbt.cli(args, context=context).stream():
                key = (
                    context.asset_key_for_output(event.output_name)
                    if isinstance(event, dg.Output)
                    else None
                )
                if key is not None:
                    context.add_asset_metadata({"lytics/refresh": refresh.mode}, asset_key=key)
                if key in tables and days:
                    relation, day_column = tables[key]
                    per_day = partition_metadata(conn, relation, day_column, days)
                    for day, metadata in per_day.items():
                        context.add_asset_metadata(metadata, asset_key=key, partition_key=day)
                    window_rows[relation] = sum(
                        int(m["dagster/partition_row_count"].value) for m in per_day.values()
                    )
                yield event
        if window_rows:
            # The window's totals belong to the run, not to any one partition.
            context.log.info(
                "rows in the window %s to %s: %s",
                refresh.start,
                refresh.end,
                ", ".join(f"{relation} {rows}" for relation, rows in sorted(window_rows.items())),
            )

    return lytics_dbt
