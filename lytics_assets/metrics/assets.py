"""The dbt models as partitioned Dagster assets: one run builds a whole date range."""

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from sqlalchemy import text

from lytics_assets.metrics.dbt_resource import LyticsDbtCliResource
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.project import DBT_DIR, DBT_EXECUTABLE, ensure_manifest
from lytics_assets.metrics.run_settings import session_settings
from lytics_assets.metrics.translator import LyticsDbtTranslator
from lytics_assets.metrics.window_metadata import window_metadata
from lytics_assets.resources import WarehouseResource

DBT_POOL = "dbt"
translator = LyticsDbtTranslator()


def _day_columns(manifest: dict[str, Any]) -> dict[dg.AssetKey, tuple[str, str]]:
    """Asset key -> (relation, day column) for models that declare `meta.day_column`."""
    columns: dict[dg.AssetKey, tuple[str, str]] = {}
    for node in manifest["nodes"].values():
        day = node.get("config", {}).get("meta", {}).get("day_column")
        if node["resource_type"] == "model" and day:
            relation = f'"{node["schema"]}"."{node["alias"]}"'
            columns[translator.get_asset_key(node)] = (relation, day)
    return columns


def build_dbt_assets() -> dg.AssetsDefinition:
    manifest_path = ensure_manifest()
    day_columns = _day_columns(json.loads(manifest_path.read_text()))

    @dbt_assets(
        manifest=manifest_path,
        partitions_def=daily,
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
        window = context.partition_time_window
        start, end = window.start.date().isoformat(), window.end.date().isoformat()
        with warehouse.connect() as conn:
            watermark: int = conn.execute(
                text("SELECT coalesce(max(id), 0) FROM raw.events")
            ).scalar_one()
            context.log.info(
                "building dbt models for %s to %s up to event %s", start, end, watermark
            )
            run_values = {
                "lytics.window_start": start,
                "lytics.window_end": end,
                "lytics.max_event_id": str(watermark),
            }
            with session_settings(run_values):
                invocation = dbt.cli(["build"], context=context)
            for event in invocation.stream():
                key = (
                    context.asset_key_for_output(event.output_name)
                    if isinstance(event, dg.Output)
                    else getattr(event, "asset_key", None)
                )
                if isinstance(event, dg.Output | dg.AssetMaterialization) and key in day_columns:
                    relation, day = day_columns[key]
                    extra = {
                        **window_metadata(conn, relation, day, start, end),
                        "raw_event_watermark": dg.MetadataValue.int(int(watermark)),
                    }
                    yield event.with_metadata({**event.metadata, **extra})
                else:
                    yield event

    return lytics_dbt


def dbt_resource() -> LyticsDbtCliResource:
    # Not dagster-dbt's own class: see dbt_resource.py for the ~1 s per run it saves.
    return LyticsDbtCliResource(
        project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR), dbt_executable=DBT_EXECUTABLE
    )
