"""Turning a set of days into one run request over the range they span."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import dagster as dg

from lytics_assets.metrics.partitions import daily

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def modelled_days(
    days: Iterable[date], partitions: dg.DailyPartitionsDefinition = daily
) -> list[str]:
    """Partition keys for the days the partitions cover (others cannot be built)."""
    keys = set(partitions.get_partition_keys())
    return sorted(key for key in (d.isoformat() for d in days) if key in keys)


def range_request(keys: list[str], run_key: str, job_name: str) -> dg.RunRequest:
    """One run for all days: a single dbt invocation over [first, last]."""
    if len(keys) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=keys[0], job_name=job_name)
    return dg.RunRequest(
        run_key=run_key,
        job_name=job_name,
        tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
    )
