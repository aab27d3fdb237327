"""Daily partitions by event date (UTC), from LYTICS_PARTITIONS_START.

Shared by the metrics and GitHub domains (their dbt models are one multi-asset).
"""

from __future__ import annotations

import dagster as dg

from lytics.settings import get_settings

daily = dg.DailyPartitionsDefinition(
    start_date=get_settings().partitions_start.isoformat(),
    timezone="UTC",
    # Today is a partition too: dashboards show the day in progress.
    end_offset=1,
)
