"""The GitHub assets in Dagster: sync, snapshots, sensors, schedules and the code location.

What must hold: the sync materializes every stream with its request counts; a
primary limit ends the run cleanly with the reset time on the run and in the
metadata; a 401 fails the run with a message that says what to do; a stored
GitHub webhook makes the sensor request a sync of just that repository, and
running it brings in the change; a snapshot is taken for today only; changed
rows make the marts sensor request exactly their days.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import Engine, text

from lytics_assets.definitions import defs
from lytics_assets.github.assets import GITHUB_KEYS, github_sync, repository_snapshots
from lytics_assets.github.resources import GitHubResource
from lytics_assets.github.sensors import github_marts_sensor, github_webhook_sensor
from lytics_assets.resources import WarehouseResource
from tests.support import TEST_SECRET
from tests.support.fake_github import BASE_TIME
from tests.support.github import PER_PAGE, Served, connect_source


def resources(database_url: str, reserve: int = 10) -> dict[str, object]:
    return {
        "github": GitHubResource(
            secret_key=TEST_SECRET,
            reserve=reserve,
            per_page=PER_PAGE,
            request_interval=0,
            max_wait_seconds=5,
            retries=2,
            lookback_minutes=60,
        ),
        "warehouse": WarehouseResource(database_url=database_url),
    }


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization is not None:
            metadata = {k: v.value for k, v in materialization.metadata.items()}
            out[materialization.asset_key.path[-1]] = metadata
    return out


def test_code_location_declares_the_github_group() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for key in [*GITHUB_KEYS, dg.AssetKey(["github", "repository_snapshots"])]:
        node = graph.get(key)
        assert node.is_materializable
        assert node.group_name == "github"
    assert graph.get(GITHUB_KEYS[0]).pools == {"github"}
    assert graph.get(dg.AssetKey(["github", "repository_snapshots"])).pools == {"github"}
    # dbt's github sources are these assets: the marts hang off them.
    mart = dg.AssetKey(["analytics", "github_daily_repository_metrics"])
    assert graph.get(mart).group_name == "github"
    upstream = dg.AssetSelection.assets(mart).upstream().resolve(graph)
    assert dg.AssetKey(["github", "stargazers"]) in upstream
    assert dg.AssetKey(["github", "repository_snapshots"]) in upstream
    assert graph.get(dg.AssetKey(["github", "repository_snapshots"])).partitions_def is not None
    for name in ("github_daily", "github_daily_snapshot"):
        assert definitions.resolve_schedule_def(name).execution_timezone == "UTC"
    for name in ("github_webhook_sensor", "github_marts_sensor"):
        assert definitions.resolve_sensor_def(name).minimum_interval_seconds == 30
    jobs = {j.name for j in definitions.resolve_all_job_defs()}
    assert {"sync_github", "snapshot_github", "refresh_github_marts"} <= jobs


def test_sync_materializes_every_stream_with_its_request_counts(
    github: Served, engine: Engine, database_url: str
) -> None:
    connect_source(engine, github.api_url)

    result = dg.materialize([github_sync], resources=resources(database_url))

    assert result.success
    metadata = materializations(result)
    assert set(metadata) == {key.path[-1] for key in GITHUB_KEYS}
    assert metadata["stargazers"]["rows_changed"] == 17
    assert metadata["stargazers"]["complete"] is True
    [source] = metadata["repositories"]["sources"]  # type: ignore[misc]
    assert source["requests"] == len(github.fake.requests())
    assert source["forbidden"] == ["octo/beta traffic"]

    again = dg.materialize([github_sync], resources=resources(database_url))
    assert again.success
    assert materializations(again)["stargazers"]["pages_not_modified"] == 3


def test_primary_limit_ends_the_run_cleanly_with_the_reset_time(
    github: Served, engine: Engine, database_url: str
) -> None:
    connect_source(engine, github.api_url)
    github.fake.set_budget(4)

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [github_sync], resources=resources(database_url, reserve=0), instance=instance
        )
        assert result.success  # a clean stop, not a crash
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        reset = datetime.fromtimestamp(github.fake.reset, UTC).isoformat()
        assert run.tags["lytics/github_reset_at"] == reset
        assert run.tags["lytics/github_stopped"] == "primary_rate_limit"
    metadata = materializations(result)["stargazers"]
    assert metadata["complete"] is False
    assert metadata["rate_limit_reset_at"] == reset


def test_bad_token_fails_the_run_loudly(github: Served, engine: Engine, database_url: str) -> None:
    connect_source(engine, github.api_url, token="ghp_wrong")

    result = dg.materialize([github_sync], resources=resources(database_url), raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert "401" in message
    assert "lytics github connect" in message


def test_token_stored_under_another_key_fails_the_run_with_the_reason(
    github: Served, engine: Engine, database_url: str
) -> None:
    connect_source(engine, github.api_url)
    other = {**resources(database_url), "github": GitHubResource(secret_key="another-key")}

    result = dg.materialize([github_sync], resources=other, raise_on_error=False)

    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert "LYTICS_SECRET_KEY" in message
    assert github.fake.requests() == []


def _deliver(engine: Engine, project_id: int, delivery: str, event: str, repo: str) -> None:
    payload = {"action": "created", "repository": {"full_name": repo}}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                "event_type, headers, body, payload) VALUES (:p, 'github', :d, :e, '{}', "
                "convert_to(:b, 'UTF8'), CAST(:b AS jsonb))"
            ),
            {"p": project_id, "d": delivery, "e": event, "b": json.dumps(payload)},
        )


def test_a_star_webhook_refreshes_just_that_repository(
    github: Served, engine: Engine, database_url: str
) -> None:
    source = connect_source(engine, github.api_url)
    assert dg.materialize([github_sync], resources=resources(database_url)).success
    github.fake.repos["octo/beta"].add_stars(1, start=BASE_TIME)
    _deliver(engine, source.project_id, "d-1", "star", "octo/beta")
    _deliver(engine, source.project_id, "d-2", "ping", "octo/alpha")  # nothing to refresh
    _deliver(engine, source.project_id, "d-3", "star", "someone/else")  # not followed
    warehouse = WarehouseResource(database_url=database_url)

    with dg.build_sensor_context(resources={"warehouse": warehouse}) as ctx:
        result = github_webhook_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.run_config == {
        "ops": {"github_sync": {"config": {"projects": ["site"], "repositories": ["octo/beta"]}}}
    }
    assert set(request.asset_selection or []) == {
        dg.AssetKey(["github", "repositories"]),
        dg.AssetKey(["github", "stargazers"]),
    }
    assert request.run_key
    assert str(source.project_id) in request.run_key
    # Re-evaluated over the same deliveries (a restarted daemon), the run key is the same,
    # so Dagster launches the run once.
    with dg.build_sensor_context(resources={"warehouse": warehouse}) as ctx:
        replayed = github_webhook_sensor(ctx)
    assert isinstance(replayed, dg.SensorResult)
    assert [r.run_key for r in replayed.run_requests] == [request.run_key]

    mark = len(github.fake.requests())
    run = dg.materialize(
        [github_sync],
        selection=request.asset_selection,
        run_config=request.run_config,
        resources=resources(database_url),
    )
    assert run.success
    touched = {e.path for e in github.fake.requests(mark)}
    assert touched == {"/rate_limit", "/user", "/repos/octo/beta", "/repos/octo/beta/stargazers"}
    with engine.connect() as conn:
        stars = conn.execute(
            text("SELECT count(*) FROM github.stargazers WHERE repository_id = 102")
        ).scalar_one()
    assert stars == 4

    # The cursor moved past both deliveries: nothing more to do.
    with dg.build_sensor_context(cursor=result.cursor, resources={"warehouse": warehouse}) as ctx:
        assert isinstance(github_webhook_sensor(ctx), dg.SkipReason)


def test_snapshot_is_taken_for_today_only(
    github: Served, engine: Engine, database_url: str
) -> None:
    connect_source(engine, github.api_url)
    assert dg.materialize([github_sync], resources=resources(database_url)).success
    today = datetime.now(UTC).date().isoformat()

    result = dg.materialize(
        [repository_snapshots], partition_key=today, resources=resources(database_url)
    )
    past = dg.materialize(
        [repository_snapshots], partition_key="2025-06-01", resources=resources(database_url)
    )

    assert result.success
    assert past.success
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT repository_id, snapshot_date::text AS day, stargazers_count, "
                "forks_count, watchers_count FROM github.repository_snapshots ORDER BY 1"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (101, today, 12, 3, 4),
        (102, today, 3, 0, 1),
        (103, today, 2, 0, 1),
    ]
    assert materializations(past)["repository_snapshots"]["observed"] is False


def test_changed_rows_request_their_days_of_marts(
    github: Served, engine: Engine, database_url: str
) -> None:
    connect_source(engine, github.api_url)
    warehouse = WarehouseResource(database_url=database_url)
    with dg.build_sensor_context(resources={"warehouse": warehouse}) as ctx:
        empty = github_marts_sensor(ctx)
    assert isinstance(empty, dg.SensorResult)
    assert empty.run_requests == []

    assert dg.materialize([github_sync], resources=resources(database_url)).success
    with engine.begin() as conn:
        # As if the sync had finished a minute ago (the sensor lets writes settle first).
        for table in ("stargazers", "issues", "pull_requests", "releases"):
            conn.execute(text(f"UPDATE github.{table} SET synced_at = now() - interval '1 min'"))
    with dg.build_sensor_context(resources={"warehouse": warehouse}) as ctx:
        result = github_marts_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    # From the oldest release of the fixture (published 2026-10-12) to its last merge.
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-12"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-01"  # last PR merged
    assert request.job_name == "refresh_github_marts"
    with dg.build_sensor_context(cursor=result.cursor, resources={"warehouse": warehouse}) as ctx:
        quiet = github_marts_sensor(ctx)
    assert isinstance(quiet, dg.SensorResult)
    assert quiet.run_requests == []
