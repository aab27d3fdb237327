"""What an export backfill covers: partition names, asset keys and run tags.

Shared by the API (which launches backfills through Dagster's GraphQL API) and
the Dagster assets (which read the tags), so both sides agree on the names
without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from lytics.exports.windows import Frequency, Window, windows_between

# Run tags that narrow an export run to one project's destinations of one format.
PROJECT_TAG = "lytics/export_project_id"
FORMAT_TAG = "lytics/export_format"
# "true": re-export even partitions whose source did not change (an explicit request).
FORCE_TAG = "lytics/export_force"


def asset_path(dataset: str, frequency: Frequency) -> str:
    """The slash-joined asset key of a dataset's export at a frequency."""
    return f"exports/{dataset}_{frequency}"


@dataclass(frozen=True)
class BackfillPlan:
    frequency: Frequency
    asset_keys: tuple[str, ...]
    partition_names: tuple[str, ...]
    tags: dict[str, str]


def closed_windows(
    frequency: Frequency, since: datetime, until: datetime, now: datetime, first: datetime
) -> list[Window]:
    """Windows overlapping [since, until) that have closed and exist as partitions."""
    # Clamped to [first, now] first: a far-off `until` must not walk through centuries.
    start, end = max(since, first), min(until, now)
    if start >= end:
        return []
    return [w for w in windows_between(frequency, start, end) if w.end <= now]


def plan(
    *,
    frequency: Frequency,
    datasets: Iterable[str],
    windows: list[Window],
    project_id: int | None,
    fmt: str | None,
    force: bool = True,
) -> BackfillPlan:
    tags = {FORCE_TAG: "true" if force else "false"}
    if project_id is not None:
        tags[PROJECT_TAG] = str(project_id)
    if fmt:
        tags[FORMAT_TAG] = fmt
    return BackfillPlan(
        frequency=frequency,
        asset_keys=tuple(asset_path(d, frequency) for d in sorted(set(datasets))),
        partition_names=tuple(w.partition_key for w in windows),
        tags=tags,
    )
