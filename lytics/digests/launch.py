"""Names shared by the Dagster code location and the API that launches it (neither may
import the other): the job, the asset's op and how a launch passes its settings."""

from __future__ import annotations

from datetime import date
from typing import Any

JOB_NAME = "weekly_digest"
OP_NAME = "digests__weekly_digest"  # the asset key digests/weekly_digest as an op name
PARTITION_TAG = "dagster/partition"
DIGEST_RUN_TAG = "lytics/digest_run_id"


def run_config(
    *, scope: str, email: str | None, project: str | None, digest_run_id: int | None
) -> dict[str, Any]:
    config: dict[str, Any] = {"scope": scope, "email": email, "project": project}
    if digest_run_id is not None:
        config["digest_run_id"] = digest_run_id
        # The API claimed the cooldown already; the run must not wait for itself.
        config["wait_for_cooldown_s"] = 0.0
    return {"ops": {OP_NAME: {"config": config}}}


def tags(week: date, digest_run_id: int | None) -> dict[str, str]:
    out = {PARTITION_TAG: week.isoformat()}
    if digest_run_id is not None:
        out[DIGEST_RUN_TAG] = str(digest_run_id)
    return out
