"""The `lytics` code location: every asset, check, sensor, schedule and resource.

Loaded by `workspace.yaml` (`python_module: lytics_assets.definitions`). Each domain
(metrics, github, digests, exports) builds its own definitions; this module adds
what they share.
"""

import warnings

import dagster as dg

from lytics_assets.alerts import run_failure_alert
from lytics_assets.raw_sources import RAW_TABLES
from lytics_assets.resources import WarehouseResource

# Dagster loads this module in every process (webserver, daemon, code server, each
# run), so a warning raised while building the definitions is printed on every load.
# Two known, accepted warnings are silenced by exact message and category; any other
# beta or preview notice and every DeprecationWarning, ours included, still show.
# Dagster marks `@asset(backfill_policy=...)` as beta (the weekly digest's single-run
# backfills); `@dbt_assets` takes the same argument without a notice.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `backfill_policy` of function `asset` is currently in beta",
    category=dg.BetaWarning,
)
# dagster-dbt requires `sqlglot[rs]`, which installs `sqlglotrs`, now an empty shim
# that only warns when imported. Set before dagster_dbt is first imported (in defs()).
warnings.filterwarnings(
    "ignore", message=r"sqlglotrs is deprecated", category=DeprecationWarning, module=r"sqlglotrs"
)


# The form Dagster 1.13 recommends: building the definitions (parsing the dbt
# manifest, reading settings) happens when Dagster loads the code location, not
# whenever a test or tool imports this module.
@dg.definitions
def defs() -> dg.Definitions:
    from lytics_assets.digests import definitions as digests
    from lytics_assets.exports import definitions as exports
    from lytics_assets.github import definitions as github
    from lytics_assets.metrics import definitions as metrics
    from lytics_assets.privacy import definitions as privacy
    from lytics_assets.retention import definitions as retention

    shared = dg.Definitions(
        assets=RAW_TABLES,
        sensors=[run_failure_alert],
        resources={"warehouse": WarehouseResource(database_url=dg.EnvVar("DATABASE_URL"))},
    )
    return dg.Definitions.merge(
        shared,
        metrics.build(),
        github.build(),
        digests.build(),
        exports.build(),
        retention.build(),
        privacy.build(),
    )
