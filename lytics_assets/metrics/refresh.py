"""The two ways a metrics run rebuilds, and the dbt vars that say which.

- `window`: every row of the run's days, from raw (backfills, the hourly rebuild,
  a run launched from the UI). The partition window goes to dbt as vars.
- `new_rows`: only what arrived since each model's last build (the raw-data
  sensor). No dates: the vars are always the same, so dbt reuses its saved parse.

dbt_project/macros/window.sql implements both; docs/metrics.md explains them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import dagster as dg

from lytics_assets.metrics.project import NEW_ROWS_VARS

REFRESH_TAG = "lytics/refresh"
Mode = Literal["window", "new_rows"]


@dataclass(frozen=True)
class Refresh:
    mode: Mode
    # [start, end) as ISO dates; None when the run has no partitions (a check
    # executed on its own), and dbt takes its default window.
    start: str | None = None
    end: str | None = None

    @classmethod
    def of_run(cls, context: dg.AssetExecutionContext) -> Refresh:
        mode: Mode = "new_rows" if context.run.tags.get(REFRESH_TAG) == "new_rows" else "window"
        if mode == "new_rows" or not (context.has_partition_key or context.has_partition_key_range):
            return cls(mode)
        window = context.partition_time_window
        return cls(mode, window.start.date().isoformat(), window.end.date().isoformat())

    def dbt_vars(self) -> str:
        if self.mode == "new_rows":
            return NEW_ROWS_VARS
        dates = {"start_date": self.start, "end_date": self.end} if self.start else {}
        return json.dumps({"refresh": "window", **dates}, sort_keys=True)
