"""The export assets in Dagster: partitions, schedules, pool, metadata, the check, re-runs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics.crypto import Cipher
from lytics.exports.backfills import FORMAT_TAG, PROJECT_TAG
from lytics.exports.destinations import CIPHER_PURPOSE, add_destination
from lytics_assets.definitions import defs
from lytics_assets.exports.assets import CHECK_NAME, EXPORT_POOL
from lytics_assets.exports.definitions import build
from lytics_assets.exports.resources import ExportsResource
from lytics_assets.resources import WarehouseResource
from tests.support import TEST_SECRET
from tests.support.exports import CREDENTIALS, insert_events, list_keys, new_bucket, s3_client
from tests.support.ingest import new_project

HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)
PARTITION = "2026-11-20-10:00"
EVENTS_HOURLY = dg.AssetKey(["exports", "events_hourly"])


def _asset(key: dg.AssetKey) -> dg.AssetsDefinition:
    for candidate in build().assets or []:
        if isinstance(candidate, dg.AssetsDefinition) and key in candidate.keys:
            return candidate
    raise AssertionError(f"{key} is not defined")


def _destination(
    engine: Engine, endpoint: str, bucket: str, project_id: int | None, *, name: str, fmt: str
) -> None:
    with engine.begin() as conn:
        add_destination(
            conn,
            project_id=project_id,
            name=name,
            kind="s3",
            bucket=bucket,
            endpoint_url=endpoint,
            credentials=CREDENTIALS,
            cipher=Cipher(TEST_SECRET, CIPHER_PURPOSE),
            fmt=fmt,
            frequency="hourly",
        )


def _materialize(
    database_url: str, instance: dg.DagsterInstance, tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [_asset(EVENTS_HOURLY)],
        partition_key=PARTITION,
        instance=instance,
        tags=tags,
        resources={
            "warehouse": WarehouseResource(database_url=database_url),
            "exports": ExportsResource(
                secret_key=TEST_SECRET, default_backup=False, s3_max_attempts=2
            ),
        },
        raise_on_error=False,
    )


def _units(result: dg.ExecuteInProcessResult) -> list[dict[str, Any]]:
    [materialization] = result.asset_materializations_for_node("exports__events_hourly")
    units = materialization.metadata["units"].value
    assert isinstance(units, list)
    return units


def test_definitions_declare_partitioned_assets_schedules_and_the_pool() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for dataset in ("events", "metrics"):
        for frequency, partitions_type in (
            ("hourly", dg.HourlyPartitionsDefinition),
            ("daily", dg.DailyPartitionsDefinition),
        ):
            key = dg.AssetKey(["exports", f"{dataset}_{frequency}"])
            node = graph.get(key)
            assert node.group_name == "exports"
            assert isinstance(node.partitions_def, partitions_type)
            assert dg.AssetKey(["raw", dataset]) in node.parent_keys
            assert dg.AssetCheckKey(key, CHECK_NAME) in node.check_keys
            assert node.pools == {EXPORT_POOL}
    schedules = {s.name: s for s in definitions.schedules or []}
    hourly = definitions.resolve_schedule_def("exports_hourly")
    daily = definitions.resolve_schedule_def("exports_daily")
    assert {"exports_hourly", "exports_daily"} <= set(schedules)
    # The default lags: 15 minutes after each hour, 01:00 after each day.
    assert hourly.cron_schedule == "15 * * * *"
    assert daily.cron_schedule == "0 1 * * *"
    assert hourly.default_status == dg.DefaultScheduleStatus.RUNNING


def test_schedule_lag_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LYTICS_EXPORTS_HOURLY_LAG_MINUTES", "40")
    monkeypatch.setenv("LYTICS_EXPORTS_DAILY_LAG_MINUTES", "150")
    # The domain's definitions, with the shared resource the core definitions provide.
    shared = dg.Definitions(resources={"warehouse": WarehouseResource(database_url="unused")})
    definitions = dg.Definitions.merge(build(), shared)
    assert definitions.resolve_schedule_def("exports_hourly").cron_schedule == "40 * * * *"
    assert definitions.resolve_schedule_def("exports_daily").cron_schedule == "30 2 * * *"


def test_materialization_reports_what_it_wrote_and_the_check_passes(
    engine: Engine, database_url: str, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 120, HOUR)
    bucket = new_bucket(s3_endpoint)
    _destination(engine, s3_endpoint, bucket, project_id, name="client", fmt="parquet")

    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(database_url, instance)

    assert result.success
    [materialization] = result.asset_materializations_for_node("exports__events_hourly")
    metadata = materialization.metadata
    assert metadata["rows"].value == 120
    assert metadata["dagster/row_count"].value == 120
    assert metadata["bytes"].value > 0
    assert isinstance(metadata["duration_s"].value, float)
    keys = metadata["keys"].value
    assert isinstance(keys, list)
    assert keys == [k for k in list_keys(s3_endpoint, bucket) if not k.endswith(".json")]
    assert metadata["destinations"].value == [
        f"client (project {project_id}): s3://{bucket} at {s3_endpoint}"
    ]
    assert CREDENTIALS.secret_access_key not in repr(metadata)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK_NAME
    assert check.passed
    assert check.metadata["partitions_checked"].value == 1


def test_a_failed_destination_fails_the_partition_and_the_rerun_redoes_only_it(
    engine: Engine, database_url: str, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 40, HOUR)
    client_bucket, backup_bucket = f"later-{new_bucket(s3_endpoint)}", new_bucket(s3_endpoint)
    _destination(engine, s3_endpoint, client_bucket, project_id, name="client", fmt="csv")
    _destination(engine, s3_endpoint, backup_bucket, None, name="backup", fmt="parquet")

    with dg.DagsterInstance.ephemeral() as instance:
        failed = _materialize(database_url, instance)
        assert not failed.success
        [failure] = failed.get_step_failure_events()
        message = str(failure.event_specific_data.error.message)  # type: ignore[union-attr]
        assert "NoSuchBucket" in message
        assert "client (project" in message
        with engine.connect() as conn:
            states = dict(
                conn.execute(
                    text(
                        "SELECT d.name, p.status FROM exports.partitions p"
                        " JOIN app.export_destinations d ON d.id = p.destination_id"
                    )
                ).all()
            )
        assert states == {"client": "failed", "backup": "succeeded"}

        s3_client(s3_endpoint).create_bucket(Bucket=client_bucket)
        retried = _materialize(database_url, instance)

    assert retried.success
    assert {u["destination"].split(" ")[0]: u["status"] for u in _units(retried)} == {
        "client": "exported",
        "backup": "skipped",
    }
    assert any(k.endswith(".csv.gz") for k in list_keys(s3_endpoint, client_bucket))


def test_run_tags_narrow_the_export_to_one_projects_destinations_of_one_format(
    engine: Engine, database_url: str, s3_endpoint: str
) -> None:
    acme, _, _ = new_project(engine, "acme")
    other, _, _ = new_project(engine, "other")
    for project in (acme, other):
        insert_events(engine, project, 10, HOUR + timedelta(minutes=5))
    buckets = {name: new_bucket(s3_endpoint) for name in ("acme_csv", "acme_pq", "other", "backup")}
    _destination(engine, s3_endpoint, buckets["acme_csv"], acme, name="acme-csv", fmt="csv")
    _destination(engine, s3_endpoint, buckets["acme_pq"], acme, name="acme-pq", fmt="parquet")
    _destination(engine, s3_endpoint, buckets["other"], other, name="other", fmt="csv")
    _destination(engine, s3_endpoint, buckets["backup"], None, name="backup", fmt="csv")

    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(database_url, instance, {PROJECT_TAG: str(acme), FORMAT_TAG: "csv"})

    assert result.success
    assert [u["destination"] for u in _units(result)] == [f"acme-csv (project {acme})"]
    assert list_keys(s3_endpoint, buckets["acme_csv"])
    for untouched in ("acme_pq", "other", "backup"):
        assert list_keys(s3_endpoint, buckets[untouched]) == []


@pytest.mark.parametrize(
    ("schedule", "tick", "partition"),
    [
        ("exports_hourly", datetime(2026, 11, 20, 11, 15, tzinfo=UTC), "2026-11-20-10:00"),
        ("exports_daily", datetime(2026, 11, 21, 1, 0, tzinfo=UTC), "2026-11-20"),
    ],
)
# Dagster's own partitioned-schedule builder warns on every tick; ours must not.
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_each_tick_exports_the_window_that_just_closed(
    schedule: str, tick: datetime, partition: str
) -> None:
    definitions = defs()
    definition = definitions.resolve_schedule_def(schedule)
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            repository_def=definitions.get_repository_def(),
        )
        result = definition.evaluate_tick(context)
    assert [r.partition_key for r in result.run_requests or []] == [partition]
    assert [r.run_key for r in result.run_requests or []] == [partition]


def test_a_tick_before_the_first_partition_skips_with_a_reason() -> None:
    definitions = defs()
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2025, 1, 1, 0, 15, tzinfo=UTC),
            repository_def=definitions.get_repository_def(),
        )
        result = definitions.resolve_schedule_def("exports_hourly").evaluate_tick(context)
    assert not result.run_requests
    assert result.skip_message == "exports start 2025-01-01"


def test_the_check_fails_when_a_manifest_disagrees_with_the_source(
    engine: Engine, database_url: str, s3_endpoint: str
) -> None:
    import json

    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 30, HOUR)
    bucket = new_bucket(s3_endpoint)
    _destination(engine, s3_endpoint, bucket, project_id, name="client", fmt="parquet")
    key = f"events/project={project_id}/dt=2026-11-20/hour=10/_manifest.json"

    with dg.DagsterInstance.ephemeral() as instance:
        assert _materialize(database_url, instance).success
        # Someone rewrote the manifest at the destination (or it was exported from other rows).
        client = s3_client(s3_endpoint)
        manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps({**manifest, "rows": 29}))
        again = _materialize(database_url, instance)

    [check] = again.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["mismatches"].value == [
        {
            "destination": f"client (project {project_id})",
            "project_id": project_id,
            "manifest_rows": 29,
            "source_rows": 30,
        }
    ]
