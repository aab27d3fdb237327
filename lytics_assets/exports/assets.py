"""Export assets: one per dataset and frequency, partitioned by ingestion-time windows.

Thin glue around `lytics.exports.runner`: the asset exports its partition's
window to every destination, reports what it wrote, and checks each manifest
against the source. Unit-level outcomes live in `exports.partitions`, so a
re-run of a failed partition redoes only the destinations that failed.
"""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from lytics.exports.backfills import FORCE_TAG, FORMAT_TAG, PROJECT_TAG, asset_path
from lytics.exports.runner import ExportReport, ExportRequest, check_window, export_window
from lytics.exports.windows import Frequency, Window, windows_between
from lytics_assets.exports.resources import ExportsResource
from lytics_assets.resources import WarehouseResource

# Upload concurrency across runs: `dagster instance concurrency set s3 <n>`.
EXPORT_POOL = "s3"
CHECK_NAME = "manifest_rows_match_source"
MAX_KEYS_IN_METADATA = 50


def asset_key(dataset: str, frequency: Frequency) -> dg.AssetKey:
    return dg.AssetKey.from_user_string(asset_path(dataset, frequency))


def _request(context: dg.AssetExecutionContext, dataset: str, window: Window) -> ExportRequest:
    tags = context.run.tags
    project = tags.get(PROJECT_TAG)
    return ExportRequest(
        dataset=dataset,
        window=window,
        run_id=context.run.run_id,
        project_id=int(project) if project else None,
        fmt=tags.get(FORMAT_TAG) or None,
        force=tags.get(FORCE_TAG, "").lower() == "true",
    )


def _metadata(reports: list[ExportReport], seconds: float) -> dict[str, Any]:
    units = [u for r in reports for u in r.units]
    keys = sorted({k for u in units for k in u.keys})
    return {
        "destinations": dg.MetadataValue.json(
            sorted({f"{u.destination}: {u.location}" for u in units})
        ),
        "keys": dg.MetadataValue.json(keys[:MAX_KEYS_IN_METADATA]),
        "files": dg.MetadataValue.int(len(keys)),
        "rows": dg.MetadataValue.int(sum(r.rows for r in reports)),
        "bytes": dg.MetadataValue.int(sum(r.bytes for r in reports)),
        "dagster/row_count": dg.MetadataValue.int(sum(r.rows for r in reports)),
        "duration_s": dg.MetadataValue.float(round(seconds, 3)),
        "units": dg.MetadataValue.json(
            [
                {
                    "destination": u.destination,
                    "project_id": u.project_id,
                    "status": u.status,
                    "rows": u.rows,
                    "manifest": u.manifest_key,
                }
                for u in units
            ]
        ),
    }


def build_export_asset(
    dataset: str, frequency: Frequency, partitions_def: dg.TimeWindowPartitionsDefinition
) -> dg.AssetsDefinition:
    key = asset_key(dataset, frequency)

    @dg.asset(
        key=key,
        group_name="exports",
        partitions_def=partitions_def,
        deps=[dg.AssetKey(["raw", dataset])],
        pool=EXPORT_POOL,
        kinds={"s3", "parquet"},
        owners=["team:data"],
        description=(
            f"raw.{dataset} rows ingested in each {frequency} window, published to every "
            "export destination (client buckets and the backup) as Hive-partitioned files "
            "with a `_manifest.json` written last. Re-running a partition replaces it whole."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                # Evaluated in each partition's run, against that partition's window.
                description="Each published manifest's row count equals the source rows of "
                "its window now (rows that arrived after the export fail it until a re-run).",
            )
        ],
        # Transient S3 or Postgres trouble: try again later; done units are skipped then.
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
    )
    def export(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, exports: ExportsResource
    ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
        started = time.monotonic()
        settings = exports.settings()
        span = context.partition_time_window
        reports: list[ExportReport] = []
        for window in windows_between(frequency, span.start, span.end):
            request = _request(context, dataset, window)
            context.log.info("exporting %s for %s", dataset, window.hive_path)
            reports.append(export_window(warehouse.database_url, settings, request))
        failed = [u for r in reports for u in r.failed]
        if failed:
            lines = [f"{u.destination} project {u.project_id}: {u.error}" for u in failed]
            raise dg.Failure(
                description=f"{len(failed)} partition export(s) failed:\n" + "\n".join(lines),
                metadata=_metadata(reports, time.monotonic() - started),
                # Refused credentials or a missing bucket will not fix themselves.
                allow_retries=not all(u.permanent for u in failed),
            )
        yield dg.MaterializeResult(metadata=_metadata(reports, time.monotonic() - started))

        destination_ids = {u.destination_id for r in reports for u in r.units}
        rows = [
            row
            for r in reports
            for row in check_window(
                warehouse.database_url, settings, dataset, r.request.window, destination_ids
            )
        ]
        mismatches = [
            {
                "destination": r.destination,
                "project_id": r.project_id,
                "manifest_rows": r.manifest_rows,
                "source_rows": r.source_rows,
            }
            for r in rows
            if not r.ok
        ]
        yield dg.AssetCheckResult(
            check_name=CHECK_NAME,
            passed=not mismatches,
            metadata={
                "partitions_checked": dg.MetadataValue.int(len(rows)),
                "mismatches": dg.MetadataValue.json(mismatches),
            },
        )

    return export
