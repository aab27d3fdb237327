"""The Dagster side loads as deployed: the code location, its raw-table assets, the metrics
domain (its job, sensor, schedule and dbt-test checks), the instance.

The instance tests build a real `DagsterInstance` from the repository's
`dagster.yaml` against a fresh database on the suite's Postgres (by default the
embedded server, reached over a unix socket as `lytics dev` does) and run a job
through it, so a wrong driver, key or schema fails here rather than at startup.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import repository_def_from_target_def
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import PoolGranularity
from dagster._core.scheduler import DagsterDaemonScheduler
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_shared.yaml_utils import load_yaml_from_path
from sqlalchemy import Table

from lytics.warehouse import tables
from lytics.warehouse.urls import render, with_driver
from lytics_assets.definitions import defs
from lytics_assets.metrics import definitions as metrics_definitions
from lytics_assets.metrics.project import dbt_project, prepare
from lytics_assets.raw_sources import RAW_TABLES, unique_keys
from tests.support.pipeline import point_pipeline_at
from tests.support.postgres import create_database, drop_database, unique_name

REPO = Path(__file__).resolve().parents[1]

EVENTS_CORE_COLUMNS = {
    "id": "bigint",
    "project_id": "bigint",
    "message_id": "text",
    "type": "text",
    "event": "text",
    "anonymous_id": "text",
    "user_id": "text",
    "session_id": "text",
    "timestamp": "timestamp with time zone",
    "original_timestamp": "timestamp with time zone",
    "sent_at": "timestamp with time zone",
    "received_at": "timestamp with time zone",
    "url": "text",
    "path": "text",
    "referrer": "text",
    "payload": "jsonb",
}


def _key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["raw", table.name])


def _spec(table: Table) -> dg.AssetSpec:
    specs = {spec.key: spec for spec in defs().resolve_all_asset_specs()}
    assert _key(table) in specs, f"raw.{table.name} is not declared in the code location"
    return specs[_key(table)]


def _column_schema(spec: dg.AssetSpec) -> dg.TableSchema:
    schema = spec.metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    return schema


# --------------------------------------------------------------------------- code location


def test_definitions_load_and_declare_raw_tables_as_external_assets() -> None:
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()

    raw_keys = {_key(table) for table in tables.RAW_TABLES}
    assert raw_keys <= graph.get_all_asset_keys()
    for key in raw_keys:
        node = graph.get(key)
        # Written by the ingest API: Dagster must never offer to materialize them.
        assert node.is_external
        assert not node.is_materializable


def test_workspace_points_dagster_at_the_lazy_definitions() -> None:
    # Parsed with the loader Dagster itself uses for workspace files.
    workspace = load_yaml_from_path(str(REPO / "workspace.yaml"))
    assert isinstance(workspace, dict)
    [entry] = workspace["load_from"]
    module = entry["python_module"]
    assert module == {"module_name": "lytics_assets.definitions", "location_name": "lytics"}

    # The loader `python_module` uses: exactly one target, which builds the definitions.
    [target] = loadable_targets_from_python_module(module["module_name"], str(REPO))
    assert target.attribute == "defs"
    repository = repository_def_from_target_def(target.target_definition)
    assert repository is not None
    assert {_key(table) for table in tables.RAW_TABLES} <= set(
        repository.asset_graph.get_all_asset_keys()
    )


@pytest.mark.slow
def test_code_location_does_not_import_the_ingest_api() -> None:
    # A fresh interpreter: in this one, other tests may already have imported the API.
    probe = (
        "import sys, lytics_assets.definitions as d; d.defs(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lytics_ingest_api'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("table", tables.RAW_TABLES, ids=lambda table: table.name)
def test_every_raw_table_is_a_documented_postgres_asset(table: Table) -> None:
    spec = _spec(table)
    assert spec.group_name == "raw"
    assert spec.kinds == {"postgres"}
    assert spec.owners == ["team:data"]
    assert spec.metadata["dagster/table_name"] == f"raw.{table.name}"

    description = spec.description or ""
    assert "ingest API" in description, "the description must say who writes the table"
    # The stated uniqueness guarantee is the one the database enforces.
    composite_keys = [key for key in unique_keys(table) if len(key) > 1]
    for key in composite_keys:
        assert f"One row per ({', '.join(key)})" in description
    if not composite_keys:
        assert "No unique key" in description

    schema = _column_schema(spec)
    assert [column.name for column in schema.columns] == [c.name for c in table.columns]
    assert schema.constraints is not None
    assert sorted(schema.constraints.other) == sorted(
        f"unique ({', '.join(key)})" for key in composite_keys
    )


def test_raw_specs_cover_exactly_the_raw_schema() -> None:
    assert [spec.key for spec in RAW_TABLES] == [_key(table) for table in tables.RAW_TABLES]


def test_events_schema_shows_the_core_columns() -> None:
    schema = _column_schema(_spec(tables.events))
    columns = {column.name: column for column in schema.columns}
    assert {name: columns[name].type for name in EVENTS_CORE_COLUMNS} == EVENTS_CORE_COLUMNS
    assert columns["id"].constraints.unique
    assert not columns["message_id"].constraints.nullable
    assert columns["user_id"].constraints.nullable
    assert columns["timestamp"].description
    assert "unique (project_id, message_id)" in (
        schema.constraints.other if schema.constraints else []
    )


# --------------------------------------------------------------------------- metrics domain


@dataclass(frozen=True)
class Loaded:
    definitions: dg.Definitions  # the whole code location
    metrics: dg.Definitions  # what lytics_assets/metrics/definitions.py build() returned


@pytest.fixture
def loaded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Loaded:
    """The code location as Dagster loads it (DATABASE_URL a migrated database), with the
    metrics domain's definitions caught on their way in."""
    point_pipeline_at(database_url, monkeypatch)
    built: list[dg.Definitions] = []
    build = metrics_definitions.build

    def spy() -> dg.Definitions:
        built.append(build())
        return built[-1]

    monkeypatch.setattr(metrics_definitions, "build", spy)
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    assert len(built) == 1, "defs() must build the metrics domain with metrics.definitions.build()"
    return Loaded(definitions, built[0])


def _dbt_assets(definitions: dg.Definitions) -> dg.AssetsDefinition:
    [dbt] = [
        a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition)
        and a.is_executable
        and a.node_def.name == "lytics_dbt"
    ]
    return dbt


def test_the_metrics_domain_is_built_by_its_definitions_module(loaded: Loaded) -> None:
    metrics = loaded.metrics
    [job] = metrics.jobs or []
    [sensor] = metrics.sensors or []
    [schedule] = metrics.schedules or []
    assert (job.name, sensor.name, schedule.name) == (
        "refresh_metrics",
        "raw_data_sensor",
        "hourly_metrics",
    )
    # The code location serves the domain's own objects, not copies built elsewhere.
    assert loaded.definitions.resolve_sensor_def("raw_data_sensor") is sensor
    assert loaded.definitions.resolve_schedule_def("hourly_metrics") is schedule
    assert _dbt_assets(loaded.definitions) is _dbt_assets(metrics)

    # Every asset of the metrics groups comes from the domain (its dbt models).
    graph = loaded.definitions.resolve_asset_graph()
    in_groups = {
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name in {"staging", "metrics"}
    }
    assert in_groups
    assert in_groups <= _dbt_assets(metrics).keys


def test_refresh_metrics_runs_its_one_step_in_process(loaded: Loaded) -> None:
    job = loaded.definitions.resolve_job_def("refresh_metrics")
    assert job.executor_def is dg.in_process_executor
    assert job.executor_def.name == "in_process"


def test_the_raw_data_sensor_looks_for_new_rows_every_5_seconds(loaded: Loaded) -> None:
    sensor = loaded.definitions.resolve_sensor_def("raw_data_sensor")
    assert sensor.minimum_interval_seconds == 5
    assert sensor.job_name == "refresh_metrics"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_hourly_metrics_rebuilds_through_the_refresh_job(loaded: Loaded) -> None:
    schedule = loaded.definitions.resolve_schedule_def("hourly_metrics")
    assert schedule.job_name == "refresh_metrics"
    assert schedule.cron_schedule == "7 * * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_checks_of_the_models_are_their_dbt_tests(loaded: Loaded) -> None:
    manifest = json.loads(prepare(dbt_project()).read_text())
    dbt_tests = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "test"}
    dbt_checks = _dbt_assets(loaded.definitions).check_keys
    assert {c.name for c in dbt_checks} <= dbt_tests

    # No standalone asset check definitions; the metrics domain's checks are its dbt tests.
    assert not loaded.definitions.asset_checks
    assert not loaded.metrics.asset_checks
    assert all(
        not a.check_keys
        for a in loaded.metrics.assets or []
        if isinstance(a, dg.AssetsDefinition) and a is not _dbt_assets(loaded.metrics)
    )
    # The former Python checks of daily_site_metrics are dbt tests now (dbt_project/tests).
    site = dg.AssetKey(["analytics", "daily_site_metrics"])
    for name in ("reconciles_with_raw", "volume_is_normal"):
        assert dg.AssetCheckKey(site, name) in dbt_checks

    # Any other check is the exports domain's own (its files against their source).
    others = loaded.definitions.resolve_asset_graph().asset_check_keys - dbt_checks
    assert {check.asset_key.path[0] for check in others} <= {"exports"}


# --------------------------------------------------------------------------- instance


@pytest.fixture(scope="module")
def dagster_pg_url(pg_server: str) -> Iterator[str]:
    name = unique_name("dagster_cfgtest")
    url = create_database(pg_server, name)
    try:
        # The shape `lytics` hands Dagster: psycopg2 driver, and with the embedded
        # server a `?host=` unix-socket directory.
        yield render(with_driver(url, "psycopg2"))
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def dagster_env(
    dagster_pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "LYTICS_DAGSTER_PG_URL": dagster_pg_url,
        "LYTICS_DAGSTER_ARTIFACTS": str(tmp_path_factory.mktemp("dagster_artifacts")),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def instance(dagster_env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    # Loaded the way `dagster-webserver` and `dagster-daemon` load it: from DAGSTER_HOME.
    with dg.DagsterInstance.get() as loaded:
        yield loaded


def test_instance_keeps_its_state_in_postgres(instance: dg.DagsterInstance) -> None:
    assert instance.is_persistent
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)

    @dg.op
    def ping() -> int:
        return 1

    @dg.job
    def instance_smoke() -> None:
        ping()

    # Writing a run's events goes through the NOTIFY path that fails with the wrong driver.
    result = instance_smoke.execute_in_process(instance=instance)
    assert result.success
    stored = instance.get_run_by_id(result.run_id)
    assert stored is not None
    assert stored.status == dg.DagsterRunStatus.SUCCESS
    assert instance.all_logs(result.run_id), "the event log was not written"


def test_instance_writes_artifacts_and_step_logs_under_the_configured_directory(
    instance: dg.DagsterInstance, dagster_env: dict[str, str]
) -> None:
    artifacts = Path(dagster_env["LYTICS_DAGSTER_ARTIFACTS"])
    assert Path(instance.root_directory) == artifacts
    assert Path(instance.storage_directory()) == artifacts / "storage"

    manager = instance.compute_log_manager
    assert isinstance(manager, LocalComputeLogManager)
    step_log = Path(manager.get_captured_local_path(["run-1", "compute_logs", "step"], "out"))
    assert step_log.is_relative_to(artifacts)
    # Shares the directory with the artifact storage without sharing a folder with it.
    assert step_log.relative_to(artifacts).parts[0] not in {"storage", "schedules", "defs_state"}


def test_instance_queues_runs_within_limits(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    assert isinstance(instance.scheduler, DagsterDaemonScheduler)

    concurrency = instance.get_concurrency_config()
    queue = concurrency.run_queue_config
    assert queue is not None
    assert queue.max_concurrent_runs == 4
    assert {"key": "dagster/backfill", "limit": 2} in queue.tag_concurrency_limits
    assert queue.max_user_code_failure_retries == 3
    assert concurrency.pool_config.pool_granularity == PoolGranularity.OP
    assert concurrency.pool_config.default_pool_limit == 1


def test_unsized_pools_get_the_default_limit(instance: dg.DagsterInstance) -> None:
    storage = instance.event_log_storage
    assert storage.supports_global_concurrency_limits
    assert storage.initialize_concurrency_limit_to_default("cfgtest_unsized")
    assert storage.get_concurrency_info("cfgtest_unsized").slot_count == 1


def test_instance_monitors_and_retries_runs(instance: dg.DagsterInstance) -> None:
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert not instance.telemetry_enabled


@pytest.mark.parametrize("missing", ["LYTICS_DAGSTER_PG_URL", "LYTICS_DAGSTER_ARTIFACTS"])
def test_instance_refuses_to_load_without_its_environment(
    dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    assert os.environ[missing]
    monkeypatch.delenv(missing)
    with pytest.raises(DagsterInvalidConfigError, match=missing):
        dg.DagsterInstance.get()
