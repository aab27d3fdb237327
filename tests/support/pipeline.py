"""Running the metrics pipeline in tests: demo traffic in, Dagster + dbt over it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource
from sqlalchemy import Engine, text

from lytics.settings import Settings, get_settings
from lytics.warehouse.urls import dbt_env
from lytics_assets.metrics.assets import build_dbt_assets
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.project import dbt_project, prepare
from lytics_assets.metrics.refresh import REFRESH_TAG
from lytics_assets.metrics.requests import RANGE_END, RANGE_START
from lytics_assets.metrics.translator import LyticsDbtTranslator
from lytics_assets.resources import WarehouseResource
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.http import serve

MARTS = (
    "int_events",
    "fct_sessions",
    "daily_pages",
    "daily_visitors",
    "daily_visitor_recency",
    "daily_site_metrics",
    "daily_top_pages",
    "daily_top_referrers",
    "daily_top_utm_sources",
    "daily_kpi_metrics",
    "daily_email_events",
    "daily_webhook_deliveries",
)


def point_pipeline_at(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name, value in dbt_env(database_url).items():
        monkeypatch.setenv(name, value)


def run_demo(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> dict[str, Any]:
    """`lytics demo ARGS` through a served API; returns the ground truth it wrote."""
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LYTICS_DATA_DIR", str(tmp_path / "data"))
    truth_path = tmp_path / "truth.json"
    with serve(create_app(settings)) as base:
        result = invoke(
            monkeypatch, capsys, "demo", "--api-url", base, "--truth", str(truth_path), *args
        )
    assert result.code == 0, result.err
    return dict(json.loads(truth_path.read_text()))


@dataclass
class Pipeline:
    database_url: str
    instance: dg.DagsterInstance
    assets: dg.AssetsDefinition

    def assets_manifest(self) -> dict[str, Any]:
        return dict(json.loads(dbt_project().manifest_path.read_text()))

    def resources(self) -> dict[str, Any]:
        return {
            "dbt": DbtCliResource(project_dir=dbt_project()),
            "warehouse": WarehouseResource(database_url=self.database_url),
        }

    def _run(
        self,
        first_day: str,
        last_day: str | None,
        tags: dict[str, str],
        selection: dg.AssetSelection | None = None,
    ) -> dg.ExecuteInProcessResult:
        if last_day and last_day != first_day:
            tags = {**tags, RANGE_START: first_day, RANGE_END: last_day}
        return dg.materialize(
            [self.assets],
            instance=self.instance,
            resources=self.resources(),
            partition_key=None if RANGE_START in tags else first_day,
            tags=tags,
            selection=selection,
            raise_on_error=False,
        )

    def build(self, first_day: str, last_day: str | None = None) -> dg.ExecuteInProcessResult:
        """A window rebuild of [first_day, last_day] (partition keys), tests included."""
        return self._run(first_day, last_day, {REFRESH_TAG: "window"})

    def refresh(self, first_day: str, last_day: str | None = None) -> dg.ExecuteInProcessResult:
        """What the raw-data sensor runs: fold in the new rows, no tests."""
        return self._run(
            first_day,
            last_day,
            {REFRESH_TAG: "new_rows"},
            dg.AssetSelection.all().without_checks(),
        )

    def check(self, check: dg.AssetCheckKey) -> dg.ExecuteInProcessResult:
        """One check executed on its own, as the UI's *Execute* launches it."""
        return dg.materialize(
            [self.assets],
            instance=self.instance,
            resources=self.resources(),
            selection=dg.AssetSelection.checks(check),
            raise_on_error=False,
        )


def failures(result: dg.ExecuteInProcessResult) -> str:
    """Why a run failed, for assertion messages."""
    lines = [
        f"{e.step_key}: {e.event_specific_data.error.message if e.event_specific_data else ''}"  # type: ignore[union-attr]
        for e in result.get_step_failure_events()
    ]
    lines += [
        f"check {c.check_name} failed: {c.metadata}"
        for c in result.get_asset_check_evaluations()
        if not c.passed
    ]
    return "\n".join(lines)


def snapshot(engine: Engine, tables: Sequence[str] = MARTS) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart's rows in a stable order, without the columns that say when a build
    wrote them (for "same tables" comparisons)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in tables:
            columns = conn.execute(
                text(
                    "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)"
                    " FROM information_schema.columns WHERE table_schema = 'analytics'"
                    " AND table_name = :table AND column_name NOT IN ('built_at', 'loaded_at')"
                ),
                {"table": table},
            ).scalar_one()
            rows = conn.execute(text(f"SELECT {columns} FROM analytics.{table}"))
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def dbt_assets_definition() -> dg.AssetsDefinition:
    """The dbt multi-asset as the code location builds it (the manifest parsed once)."""
    project = dbt_project()
    manifest = json.loads(prepare(project).read_text())
    translator = LyticsDbtTranslator()
    threads = get_settings().dbt_thread_count
    return build_dbt_assets(project, daily, translator, manifest, threads)
