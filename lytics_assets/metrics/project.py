"""The dbt project as Dagster sees it: where it lives, its manifest, how dbt reaches Postgres."""

from __future__ import annotations

import json
from pathlib import Path

from dagster_dbt import DbtProject

from lytics.settings import Settings
from lytics.warehouse.urls import dbt_env

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# The vars of the raw-data sensor's refreshes. They never change, so the project is
# prepared (parsed) with them: dbt then reuses that parse on every such refresh
# instead of parsing the project again (dbt re-parses when the vars differ).
NEW_ROWS_VARS = json.dumps({"refresh": "new_rows"}, sort_keys=True)


# Module level, so `dagster-dbt project prepare-and-package --file <this file>` finds it.
DBT_PROJECT = DbtProject(
    project_dir=DBT_DIR,
    profiles_dir=DBT_DIR,
    prepare_project_cli_args=["parse", "--quiet", "--vars", NEW_ROWS_VARS],
)


def dbt_project() -> DbtProject:
    """The project; preparing it writes target/manifest.json and dbt's saved parse."""
    return DBT_PROJECT


# What dbt writes or installs itself: never a reason to parse again.
GENERATED = frozenset({"target", "logs", "dbt_packages"})


def prepare(project: DbtProject) -> Path:
    """The manifest, parsed now if there is none (a fresh checkout) or the project's
    files changed since it was written (a pulled or edited model, macro or test).

    Deployments prepare it once at build time (`dagster-dbt project prepare-and-package
    --file lytics_assets/metrics/project.py`, README); `lytics dev` does so on every
    start. dagster-dbt's preparer guards against two processes parsing at once.
    """
    manifest = project.manifest_path
    if not manifest.exists() or _newest_source(project.project_dir) > manifest.stat().st_mtime:
        project.preparer.prepare(project)
    return manifest


def _newest_source(project_dir: Path) -> float:
    return max(
        (
            path.stat().st_mtime
            for path in project_dir.rglob("*")
            if path.is_file() and GENERATED.isdisjoint(path.relative_to(project_dir).parts)
        ),
        default=0.0,
    )


def dbt_environment(settings: Settings) -> dict[str, str]:
    """What dbt_project/profiles.yml reads: the connection, derived from DATABASE_URL."""
    if settings.database_url is None:
        return {}
    return dbt_env(settings.database_url.get_secret_value())
