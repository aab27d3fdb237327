"""The digest in Dagster: the asset sends and reports per recipient, the schedule picks
last week at Monday 08:00 in the deployment's zone, and the definitions declare it all."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics.digests import launch, runs
from lytics.projects import create_project
from lytics.settings import Settings
from lytics_assets.definitions import defs
from lytics_assets.digests.definitions import (
    ASSET_KEY,
    POOL,
    SCHEDULE_NAME,
    DigestSettings,
    build,
    build_schedule,
    digest_run_failed,
)
from lytics_assets.resources import WarehouseResource
from tests.support import TEST_SECRET
from tests.support.digests import WEEK, add_members, create_marts, seed_two_weeks
from tests.support.fake_resend import API_KEY, fake_resend

EMAILS = ["ann@example.com", "ben@example.com", "cy@example.com"]


def _resources(database_url: str, resend_url: str) -> dict[str, Any]:
    return {
        "warehouse": WarehouseResource(database_url=database_url),
        "digest_settings": DigestSettings(
            resend_api_url=resend_url,
            resend_api_key=API_KEY,
            resend_rate_per_second=50.0,
            digest_cooldown_seconds=0,
            public_url="http://lytics.test",
        ),
    }


def _asset() -> dg.AssetsDefinition:
    assets = build().assets
    assert assets is not None
    (asset,) = assets
    assert isinstance(asset, dg.AssetsDefinition)
    return asset


def test_the_asset_mails_each_member_once_and_lists_every_recipient(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    create_marts(engine)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    seed_two_weeks(engine, project_id)
    add_members(engine, project_id, EMAILS)
    asset = _asset()
    with fake_resend() as fake, dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # a re-run of the same week sends nothing new
            result = dg.materialize(
                [asset],
                partition_key=WEEK.isoformat(),
                resources=_resources(database_url, fake.base_url),
                instance=instance,
            )
            assert result.success
        assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
        events = result.asset_materializations_for_node(launch.OP_NAME)
        metadata = events[0].metadata
        table = metadata["recipients"].value
        assert isinstance(table, str)
        for email in EMAILS:
            assert f"| {email} | sent |" in table
        assert metadata["sent"].value == 0  # the second run: nothing left to send
        assert metadata["by_status"].value == {"sent": 3}

        # A run launched by hand for one address.
        result = dg.materialize(
            [asset],
            partition_key=WEEK.isoformat(),
            resources=_resources(database_url, fake.base_url),
            instance=instance,
            run_config=launch.run_config(
                scope="email", email=EMAILS[0], project="acme", digest_run_id=None
            ),
        )
        assert result.success
    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT scope, scope_email, status, sent FROM app.digest_runs ORDER BY id")
        ).all()
    assert [tuple(r) for r in history] == [
        ("all", None, "succeeded", 3),
        ("all", None, "succeeded", 0),
        ("email", EMAILS[0], "succeeded", 0),
    ]


def test_the_asset_is_weekly_in_the_email_pool_with_single_run_backfills() -> None:
    asset = _asset()
    partitions = asset.partitions_def
    assert isinstance(partitions, dg.WeeklyPartitionsDefinition)
    assert partitions.timezone == "America/Los_Angeles"
    assert (
        partitions.get_partition_key_for_timestamp(
            datetime(2026, 11, 12, 12, tzinfo=ZoneInfo("America/Los_Angeles")).timestamp()
        )
        == WEEK.isoformat()
    )  # weeks start on Monday
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.op.pool == POOL
    assert asset.op.name == launch.OP_NAME


def _tick(when: datetime, digest_settings: DigestSettings) -> Any:
    """One evaluation of the schedule, as the daemon makes it, with the run's settings."""
    schedule = build_schedule(Settings())
    with dg.build_schedule_context(
        scheduled_execution_time=when, resources={"digest_settings": digest_settings}
    ) as context:
        return schedule(context)


MONDAY_8AM = datetime(2026, 11, 16, 8, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_the_schedule_sends_last_week_on_monday_morning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    schedule = build_schedule(Settings())
    assert schedule.cron_schedule == "0 8 * * 1"
    assert schedule.execution_timezone == "America/Los_Angeles"
    request = _tick(MONDAY_8AM, DigestSettings(resend_api_key="re_x"))
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == ("2026-11-09", "weekly-digest:2026-11-09")
    monkeypatch.setenv("LYTICS_DIGEST_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LYTICS_DIGEST_SEND_HOUR", "7")
    moved = build_schedule(Settings())
    assert (moved.cron_schedule, moved.execution_timezone) == ("0 7 * * 1", "Europe/Berlin")


def test_the_schedule_skips_with_a_reason_when_the_run_could_only_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    skipped = _tick(MONDAY_8AM, DigestSettings())
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        "no digests are sent: RESEND_API_KEY is not set: digests are sent through Resend"
    )
    # The run's settings decide, not the process environment: a key given to the
    # resource is a key the run will have.
    assert isinstance(_tick(MONDAY_8AM, DigestSettings(resend_api_key="re_x")), dg.RunRequest)


def test_the_code_location_has_the_digest_job_and_schedule() -> None:
    definitions = defs()
    assert definitions.resolve_job_def(launch.JOB_NAME) is not None
    assert {"hourly_metrics", SCHEDULE_NAME} <= {s.name for s in definitions.schedules or []}
    graph = definitions.resolve_asset_graph()
    assert ASSET_KEY in graph.get_all_asset_keys()
    parents = graph.get(ASSET_KEY).parent_keys
    assert dg.AssetKey(["analytics", "daily_site_metrics"]) in parents


def test_without_a_resend_key_the_run_fails_at_once_and_takes_no_cooldown_slot(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    resources = _resources(database_url, "http://127.0.0.1:9")
    resources["digest_settings"] = DigestSettings(resend_api_url="http://127.0.0.1:9")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [_asset()],
            partition_key=WEEK.isoformat(),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failure = result.failure_data_for_node(launch.OP_NAME)
    assert failure is not None
    assert "RESEND_API_KEY is not set" in str(failure.error)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app.digest_runs")).scalar() == 0


def test_a_run_launched_by_the_api_adopts_the_claimed_run_inside_the_cooldown(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    create_marts(engine)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    seed_two_weeks(engine, project_id)
    add_members(engine, project_id, EMAILS)
    # What POST /v1/digest/weekly does first: claim the 10-minute slot for its project.
    claimed = runs.claim_now(engine, runs.RunRequest(period_start=WEEK, project_id=project_id), 600)
    asset = _asset()
    with fake_resend() as fake, dg.DagsterInstance.ephemeral() as instance:
        resources = _resources(database_url, fake.base_url)
        resources["digest_settings"] = DigestSettings(
            resend_api_url=fake.base_url, resend_api_key=API_KEY, resend_rate_per_second=50.0
        )  # the real 600 s cooldown
        result = dg.materialize(
            [asset],
            partition_key=WEEK.isoformat(),
            resources=resources,
            instance=instance,
            run_config=launch.run_config(
                scope="all", email=None, project="acme", digest_run_id=claimed
            ),
        )
        assert result.success
        assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, sent, dagster_run_id FROM app.digest_runs")
        ).all()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(claimed, "succeeded", 3, result.run_id)]


def test_a_digest_run_that_fails_in_dagster_before_it_starts_sending_is_failed_by_the_sensor(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    claimed = runs.claim_now(engine, runs.RunRequest(period_start=WEEK, project_id=project_id), 600)
    warehouse = WarehouseResource(database_url=database_url)
    with dg.DagsterInstance.ephemeral() as instance:
        # Launched by the API for a project that is gone by the time the run starts.
        result = dg.materialize(
            [_asset()],
            partition_key=WEEK.isoformat(),
            resources=_resources(database_url, "http://127.0.0.1:9"),
            instance=instance,
            run_config=launch.run_config(
                scope="all", email=None, project="gone", digest_run_id=claimed
            ),
            tags=launch.tags(WEEK, claimed),
            raise_on_error=False,
        )
        assert not result.success
        assert _digest_run(engine, claimed) == ("running", False)  # the step never reached it
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        with dg.build_run_status_sensor_context(
            sensor_name="digest_run_failed",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources={"warehouse": warehouse},
        ) as context:
            digest_run_failed(context.for_run_failure())
    assert _digest_run(engine, claimed) == ("failed", True)
    # The slot is free: the caller can launch again at once.
    runs.claim_now(engine, runs.RunRequest(period_start=WEEK, project_id=project_id), 600)


def test_the_sensors_watch_digest_runs_that_fail_or_are_canceled() -> None:
    sensors = {s.name: s for s in build().sensors or []}
    assert set(sensors) == {"digest_run_failed", "digest_run_canceled"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def _digest_run(engine: Engine, run_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, isempty(cooldown) FROM app.digest_runs WHERE id = :id"),
            {"id": run_id},
        ).one()
    return tuple(row)
