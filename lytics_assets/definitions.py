"""The `lytics` code location: every asset, check, sensor, schedule and resource.

Loaded by `workspace.yaml` (`python_module: lytics_assets.definitions`).
"""

import dagster as dg

from lytics_assets.raw_sources import RAW_TABLES


# The form Dagster 1.13 recommends: building the definitions (later also parsing the
# dbt manifest and reading settings) happens when Dagster loads the code location,
# not whenever a test or tool imports this module.
@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[*RAW_TABLES])
