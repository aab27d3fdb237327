"""Turning a set of days into one run request over the range they span."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import dagster as dg

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def modelled_days(days: Iterable[date], partitions: dg.PartitionsDefinition) -> list[str]:
    """Partition keys for the days the partitions cover (others cannot be built)."""
    keys = set(partitions.get_partition_keys())
    return sorted(key for key in (d.isoformat() for d in days) if key in keys)


def range_request(
    keys: list[str],
    run_key: str,
    job_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    asset_check_keys: Sequence[dg.AssetCheckKey] | None = None,
) -> dg.RunRequest:
    """One run for all days: a single dbt invocation over [first, last]."""
    if len(keys) == 1:
        return dg.RunRequest(
            run_key=run_key,
            partition_key=keys[0],
            job_name=job_name,
            tags=dict(tags or {}),
            asset_selection=asset_selection,
            asset_check_keys=asset_check_keys,
        )
    return dg.RunRequest(
        run_key=run_key,
        job_name=job_name,
        tags={**(tags or {}), RANGE_START: keys[0], RANGE_END: keys[-1]},
        asset_selection=asset_selection,
        asset_check_keys=asset_check_keys,
    )
