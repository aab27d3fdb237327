"""Daily partitions by event date (UTC)."""

from __future__ import annotations

import os

import dagster as dg

# Events may be backdated; anything before this date is not modelled.
# Override with LYTICS_PARTITIONS_START (YYYY-MM-DD).
DEFAULT_START = "2025-01-01"

daily = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("LYTICS_PARTITIONS_START", DEFAULT_START),
    timezone="UTC",
    # Today is a partition too: dashboards show the day in progress.
    end_offset=1,
)
