"""`app/raw_horizons`: materializing it applies each project's raw-event retention."""

from datetime import UTC, datetime

import dagster as dg

from lytics.retention import Removal, apply_retention, policies
from lytics.settings import get_settings
from lytics_assets.resources import WarehouseResource

RAW_EVENTS = dg.AssetKey(["raw", "events"])


def _removed_table(removals: list[Removal]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "project": removal.policy.project_slug,
                    "retention_days": removal.policy.retention_days,
                    "retained_from": removal.retained_from.isoformat(),
                    "events_removed": removal.events_removed,
                }
            )
            for removal in removals
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("project", "text"),
                dg.TableColumn("retention_days", "int"),
                dg.TableColumn("retained_from", "timestamptz"),
                dg.TableColumn("events_removed", "bigint"),
            ]
        ),
    )


@dg.asset(
    key=["app", "raw_horizons"],
    deps=[RAW_EVENTS],
    group_name="operations",
    kinds={"postgres"},
    owners=["team:data"],
    description=(
        "Raw-event retention. Each project keeps its last `raw_retention_days` whole UTC "
        "days of raw events (its setting, else LYTICS_RAW_RETENTION_DAYS; unset keeps "
        "everything). A materialization moves each project's horizon and removes older "
        "rows from raw.events in short batches; the marts keep those days' aggregates. "
        "Its metadata lists what was removed per project; app.retention_runs keeps the audit."
    ),
    metadata={"dagster/table_name": "app.raw_horizons"},
)
def raw_horizons(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult[None]:
    settings = get_settings()
    # Raw is append-only for every other writer: only the pipeline role may delete.
    with warehouse.as_pipeline() as engine:
        found = policies(engine, settings.raw_retention_days)
        removals = apply_retention(
            engine,
            found,
            today=datetime.now(UTC).date(),
            batch_rows=settings.retention_batch_rows,
            run_id=context.run.run_id,
        )
    for removal in removals:
        context.log.info(
            "%s: removed %d raw events before %s",
            removal.policy.project_slug,
            removal.events_removed,
            removal.retained_from.isoformat(),
        )
    return dg.MaterializeResult(
        metadata={
            "projects with retention": len(removals),
            "events removed": sum(removal.events_removed for removal in removals),
            "removed per project": _removed_table(removals),
        }
    )
