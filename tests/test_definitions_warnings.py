"""Loading the code location prints no API-lifecycle warning, and hides none of ours.

Every Dagster process (webserver, daemon, code server, each run's worker) loads the
definitions, so one warning there is printed on every load. The code location
silences exactly one notice it knowingly relies on (Dagster's beta notice for
`@asset(backfill_policy=...)`); these tests load it in a fresh interpreter, as those
processes do, with every warning shown and deprecations fatal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lytics.warehouse.urls import dbt_env

pytestmark = pytest.mark.slow  # a fresh interpreter importing Dagster and dbt (~10 s)

REPO = Path(__file__).resolve().parents[1]
LOAD = "from lytics_assets.definitions import defs; defs()"
# Dagster's lifecycle warnings (beta, preview, superseded) and Python's deprecations.
LIFECYCLE = re.compile(
    r"\b(BetaWarning|PreviewWarning|SupersessionWarning|DeprecationWarning"
    r"|PendingDeprecationWarning)\b"
)

# After loading: which warnings still get through the filters the location installed?
PROBE = """
import json, warnings
import dagster as dg
from lytics_assets.definitions import defs
defs()
probes = {
    "backfill_policy beta notice": (
        dg.BetaWarning,
        "Parameter `backfill_policy` of function `asset` is currently in beta, and may have "
        "breaking changes in minor version releases, with behavior changes in patch releases.",
    ),
    "another beta notice": (
        dg.BetaWarning,
        "Parameter `pool` of function `asset` is currently in beta, and may have breaking "
        "changes in minor version releases, with behavior changes in patch releases.",
    ),
    "a preview notice": (dg.PreviewWarning, "Something is currently in preview."),
    "a supersession notice": (dg.SupersessionWarning, "Something is superseded."),
    "our own deprecation": (DeprecationWarning, "lytics: this call is deprecated"),
}
shown = {}
for name, (category, message) in probes.items():
    with warnings.catch_warnings(record=True) as seen:  # keeps the filters in force
        warnings.warn(message, category, stacklevel=1)
    shown[name] = bool(seen)
print(json.dumps(shown))
"""


def _python(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PYTHONWARN"))}
    env.update(DATABASE_URL=database_url, **dbt_env(database_url))
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
        check=False,
    )


def test_loading_the_definitions_prints_no_lifecycle_warning(database_url: str) -> None:
    # `always`: every warning printed, not once per place; then deprecations are errors.
    loaded = _python(database_url, "-W", "always", "-W", "error::DeprecationWarning", "-c", LOAD)
    assert loaded.returncode == 0, loaded.stderr[-4000:]
    printed = [line for line in loaded.stderr.splitlines() if LIFECYCLE.search(line)]
    assert printed == [], "\n".join(printed)


def test_the_filter_hides_only_the_backfill_policy_notice(database_url: str) -> None:
    probed = _python(database_url, "-W", "always", "-c", PROBE)
    assert probed.returncode == 0, probed.stderr[-4000:]
    shown = json.loads(probed.stdout.strip().splitlines()[-1])
    assert shown == {
        "backfill_policy beta notice": False,
        "another beta notice": True,
        "a preview notice": True,
        "a supersession notice": True,
        "our own deprecation": True,
    }
