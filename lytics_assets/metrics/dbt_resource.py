"""The dbt CLI resource, without the in-process dbt adapter it would build on every run.

Before each `dbt` subprocess, dagster-dbt's `DbtCliResource.cli()` loads dbt's
profile, project and base macros in the Dagster process and registers an adapter
(`_initialize_dbt_core_adapter`): ~1.2 s per run in a fresh process, most of it
importing dbt. That adapter serves only `fetch_row_counts()` and
`fetch_column_metadata()` on the event stream, which Lytics does not use (the
window's row counts come from `window_metadata`, over our own connection).
`cli()` already runs without it when building it fails (it logs a warning and
passes `adapter=None`), so skipping it is a state dagster-dbt supports.

The method is private; tests/test_dbt_invocation.py fails loudly if dagster-dbt
renames it or stops calling it from `cli()`, so this override cannot silently
turn into dead code.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster_dbt import DbtCliResource


class LyticsDbtCliResource(DbtCliResource):
    """`DbtCliResource` whose invocations carry no in-process adapter."""

    # dagster-dbt declares BaseAdapter; None is the value cli() itself falls back to.
    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None
