"""`erase_person`: the run that removes one deletion request's person from the raw data."""

import dagster as dg
from sqlalchemy import pool

from lytics.privacy.erasure import erase
from lytics.warehouse.engine import create_sync_engine
from lytics_assets.resources import WarehouseResource

REQUEST_TAG = "lytics/deletion_request"


class ErasureConfig(dg.Config):
    request_id: int


@dg.op(
    description=(
        "Link every identity of the request's person, suppress them at the door, and "
        "remove their raw events, replays, webhook deliveries that carry their email, "
        "and their rows of analytics.int_events. Counts only in the metadata."
    )
)
def erase_request(
    context: dg.OpExecutionContext, config: ErasureConfig, warehouse: WarehouseResource
) -> dg.Output[None]:
    engine = create_sync_engine(warehouse.database_url, poolclass=pool.NullPool)
    try:
        erasure = erase(engine, config.request_id, context.run_id)
    finally:
        engine.dispose()
    context.log.info(
        "request %d: removed %s; %d days to rebuild",
        config.request_id,
        erasure.removed,
        len(erasure.event_days),
    )
    return dg.Output(
        None,
        metadata={
            "removed": dg.MetadataValue.json(erasure.removed),
            "identities linked": len(erasure.person.user_ids) + len(erasure.person.anonymous_ids),
            "days to rebuild": len(erasure.event_days),
            "export windows to rewrite": sum(len(k) for k in erasure.export_windows.values()),
        },
    )


@dg.job(
    name="erase_person",
    tags={"lytics/domain": "privacy"},
    description="Remove one deletion request's person from raw (launched by privacy_deletions).",
)
def erase_person() -> None:
    erase_request()
