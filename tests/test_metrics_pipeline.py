"""The metrics pipeline on real Postgres: demo traffic in, Dagster + dbt over it.

What must hold: the marts equal the generator's ground truth exactly; a
backfill gives the same tables as building day by day; a late event lands in
its own day once the sensor has run; re-running a partition changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
from sqlalchemy import Engine, text

from lytics import api_keys
from lytics.projects import get_project
from lytics.settings import Settings
from lytics_assets.metrics.lineage import refreshed_models, tables_built_from_raw
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.project import dbt_project
from lytics_assets.metrics.sensors import build_raw_data_sensor
from lytics_assets.metrics.translator import LyticsDbtTranslator
from lytics_assets.resources import WarehouseResource
from lytics_ingest_api.app import create_app
from tests.support.http import HTTP_TIMEOUT_S, serve
from tests.support.ingest import new_project
from tests.support.pipeline import (
    Pipeline,
    failures,
    run_demo,
    snapshot,
)

END = date(2025, 3, 9)
DAYS = [(END - timedelta(days=i)).isoformat() for i in (2, 1, 0)]
DEMO = (
    "--seed",
    "3",
    "--projects",
    "2",
    "--days",
    "3",
    "--visitors",
    "60",
    "--end-date",
    END.isoformat(),
)


@pytest.fixture
def truth(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, Any]:
    return run_demo(settings, tmp_path, monkeypatch, capsys, *DEMO)


def _site_metrics(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.slug, m.metric_date::text AS day, m.* "
                "FROM analytics.daily_site_metrics m JOIN app.projects p ON p.id = m.project_id"
            )
        )
        return {(r.slug, r.day): dict(r._mapping) for r in rows}


@pytest.mark.slow
def test_marts_equal_the_generators_ground_truth(
    pipeline: Pipeline, truth: dict[str, Any], engine: Engine
) -> None:
    result = pipeline.build(DAYS[0], DAYS[-1])
    assert result.success, failures(result)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["reconciles_with_raw"] is True
    assert all(checks.values()), checks
    metrics = _site_metrics(engine)
    compared = 0
    for slug, project in truth["projects"].items():
        for day, expected in project["days"].items():
            got = metrics[(slug, day)]
            for name in ("pageviews", "unique_visitors", "sessions", "conversions", "events"):
                assert got[name] == expected[name], (slug, day, name)
            compared += 1
        with engine.connect() as conn:
            kpis = conn.execute(
                text(
                    "SELECT k.metric_date::text, k.metric_name, k.metric_value "
                    "FROM analytics.daily_kpi_metrics k JOIN app.projects p ON p.id = k.project_id "
                    "WHERE p.slug = :slug"
                ),
                {"slug": slug},
            )
            got_kpis = {(d, n): v for d, n, v in kpis}
            emails = conn.execute(
                text(
                    "SELECT e.event_date::text, e.event_type, e.events "
                    "FROM analytics.daily_email_events e "
                    "JOIN app.projects p ON p.id = e.project_id WHERE p.slug = :slug"
                ),
                {"slug": slug},
            )
            got_emails = {(d, "email." + t): n for d, t, n in emails}
        for day, values in project["metrics"].items():
            for name, value in values.items():
                assert got_kpis[(day, name)] == Decimal(str(value)), (slug, day, name)
        for day, counts in project["email_events"].items():
            for kind, count in counts.items():
                assert got_emails.get((day, kind), 0) == count, (slug, day, kind)
    assert compared == 6


@pytest.mark.slow
def test_dashboard_tiles_equal_the_ground_truth(
    pipeline: Pipeline, truth: dict[str, Any], engine: Engine, settings: Settings
) -> None:
    assert pipeline.build(DAYS[0], DAYS[-1]).success
    with serve(create_app(settings)) as base:
        for slug, project in truth["projects"].items():
            with engine.begin() as conn:
                secret = api_keys.create_key(conn, get_project(conn, slug).id, "secret").plaintext
            headers = {"Authorization": f"Bearer {secret}"}

            def tiles(start: str, end: str, headers: dict[str, str] = headers) -> dict[str, Any]:
                answer = httpx.get(
                    f"{base}/v1/dashboard/tiles",
                    params={"from": start, "to": end},
                    headers=headers,
                    timeout=HTTP_TIMEOUT_S,
                )
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()
                assert body["built"] is True
                return {t["key"]: t for t in body["tiles"]} | {
                    "metrics": {m["key"]: m for m in body["metrics"]}
                }

            for day, expected in project["days"].items():
                got = tiles(day, day)
                for name in ("pageviews", "unique_visitors", "sessions", "conversions"):
                    assert got[name]["value"] == expected[name], (slug, day, name)
                assert got["metrics"]["reach"]["value"] == project["metrics"][day]["reach"]
            # The whole window against the previous window of the same length (empty here).
            window = tiles(DAYS[0], DAYS[-1])
            totals = project["totals"]
            assert window["unique_visitors"]["value"] == totals["unique_visitors"]
            assert window["sessions"]["value"] == totals["sessions"]
            assert window["sessions"]["previous"] == 0
            assert window["sessions"]["change_pct"] is None
            # Today vs yesterday shows a change in percent when both have data.
            last, before = tiles(DAYS[2], DAYS[2]), tiles(DAYS[1], DAYS[1])
            assert last["pageviews"]["previous"] == before["pageviews"]["value"]
            if before["pageviews"]["value"]:
                expected_pct = round(
                    100
                    * (last["pageviews"]["value"] - before["pageviews"]["value"])
                    / before["pageviews"]["value"],
                    2,
                )
                assert last["pageviews"]["change_pct"] == expected_pct


def _last_dbt_vars() -> Any:
    target = dbt_project().project_dir / "target"
    runs = sorted(target.glob("lytics_dbt-*/run_results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())["args"].get("vars")


@pytest.mark.slow
# Six dbt builds: past the suite's 300 s default on a busy two-core machine.
@pytest.mark.timeout(900)
def test_backfill_equals_day_by_day_and_rerunning_changes_nothing(
    pipeline: Pipeline, truth: dict[str, Any], engine: Engine
) -> None:
    for day in DAYS:
        assert pipeline.build(day).success
        # The partition window reaches dbt as --vars.
        end = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        assert _last_dbt_vars() == {"refresh": "window", "start_date": day, "end_date": end}
    day_by_day = snapshot(engine)
    assert day_by_day["daily_site_metrics"], "nothing was built"
    # The same days again, as one backfill over the range.
    backfill = pipeline.build(DAYS[0], DAYS[-1])
    assert backfill.success, failures(backfill)
    assert snapshot(engine) == day_by_day
    # And any single partition again.
    assert pipeline.build(DAYS[1]).success
    assert snapshot(engine) == day_by_day
    # From scratch: a backfill into empty marts gives the same tables.
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA analytics CASCADE"))
    assert pipeline.build(DAYS[0], DAYS[-1]).success
    assert snapshot(engine) == day_by_day


# What new raw.events rows refresh: the tables built from them.
EVENT_TABLES = {
    "int_events",
    "daily_visitors",
    "daily_visitor_recency",
    "fct_sessions",
    "daily_pages",
    "daily_top_pages",
    "daily_top_referrers",
    "daily_top_utm_sources",
    "daily_site_metrics",
}


ALL_MODELS = EVENT_TABLES | {
    "stg_events",
    "stg_projects",
    "stg_metrics",
    "stg_webhook_deliveries",
    "stg_email_events",
    "daily_kpi_metrics",
    "daily_email_events",
    "daily_webhook_deliveries",
}


def _raw_data_sensor(pipeline: Pipeline) -> dg.SensorDefinition:
    manifest, translator = pipeline.assets_manifest(), LyticsDbtTranslator()
    built_from = tables_built_from_raw(manifest, translator)
    return build_raw_data_sensor(daily, built_from, refreshed_models(manifest, translator))


@pytest.mark.slow
def test_late_event_lands_in_its_own_day_after_the_sensor_runs(
    pipeline: Pipeline, settings: Settings, engine: Engine
) -> None:
    _, write_key, _ = new_project(engine, "late")
    warehouse = WarehouseResource(database_url=pipeline.database_url)
    raw_data_sensor = _raw_data_sensor(pipeline)
    with serve(create_app(settings)) as base:

        def send(message_id: str, day: str) -> None:
            event = {
                "type": "page",
                "anonymousId": "v1",
                "messageId": message_id,
                "timestamp": f"{day}T12:00:00Z",
            }
            answer = httpx.post(
                f"{base}/v1/batch",
                json={"batch": [event]},
                auth=(write_key, ""),
                timeout=HTTP_TIMEOUT_S,
            )
            assert answer.status_code == 200

        for i, day in enumerate(DAYS):
            send(f"m{i}", day)
        with dg.build_sensor_context(
            instance=pipeline.instance, resources={"warehouse": warehouse}
        ) as ctx:
            first = raw_data_sensor(ctx)
        assert isinstance(first, dg.SensorResult)
        (request,) = first.run_requests
        assert request.tags == {
            "lytics/refresh": "new_rows",
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[-1],
        }
        # Only the tables built from raw.events, and no tests: the hourly rebuild runs them.
        assert request.asset_check_keys == []
        selected = {key.path[-1] for key in request.asset_selection or []}
        # Nothing was built yet: every model of the job comes along, once.
        assert selected == ALL_MODELS
        assert pipeline.refresh(DAYS[0], DAYS[-1]).success
        # Nothing new: the sensor skips, and its cursor stays.
        with dg.build_sensor_context(
            instance=pipeline.instance, cursor=first.cursor, resources={"warehouse": warehouse}
        ) as ctx:
            assert isinstance(raw_data_sensor(ctx), dg.SkipReason)
        # A late event for the first day: only that day is requested.
        send("late-1", DAYS[0])
        with dg.build_sensor_context(
            instance=pipeline.instance, cursor=first.cursor, resources={"warehouse": warehouse}
        ) as ctx:
            late = raw_data_sensor(ctx)
    assert isinstance(late, dg.SensorResult)
    (request,) = late.run_requests
    assert request.partition_key == DAYS[0]
    assert {key.path[-1] for key in request.asset_selection or []} == EVENT_TABLES
    assert request.run_key
    assert request.run_key != first.run_requests[0].run_key
    assert pipeline.refresh(request.partition_key).success
    pageviews = {k[1]: v["pageviews"] for k, v in _site_metrics(engine).items() if k[0] == "late"}
    assert pageviews == {DAYS[0]: 2, DAYS[1]: 1, DAYS[2]: 1}


@pytest.mark.slow
def test_a_check_executed_on_its_own_fails_when_a_mart_disagrees_with_raw(
    pipeline: Pipeline, engine: Engine
) -> None:
    today = datetime.now(UTC).date()
    for slug in ("check-a", "check-b"):
        project_id, _, _ = new_project(engine, slug)
        with engine.begin() as conn:
            for n in range(3):
                conn.execute(
                    text(
                        "INSERT INTO raw.events (project_id, message_id, type, anonymous_id,"
                        " timestamp, source, payload)"
                        " VALUES (:p, :m, 'page', 'v', :t, 'native', '{}')"
                    ),
                    {"p": project_id, "m": f"m{n}", "t": f"{today}T00:0{n}:00Z"},
                )
    assert pipeline.build(today.isoformat()).success
    with engine.begin() as conn:
        conn.execute(text("UPDATE analytics.daily_site_metrics SET events = events + 1"))
    # What *Execute* on the check in the UI launches: the check alone, no partition
    # (dbt checks its default window: the last days up to today).
    check = dg.AssetCheckKey(
        dg.AssetKey(["analytics", "daily_site_metrics"]), "reconciles_with_raw"
    )
    alone = pipeline.check(check)
    # A failing check of error severity fails its run (and so alerts), like a build.
    assert not alone.success
    assert "FAIL 2 reconciles_with_raw" in failures(alone)
    (evaluation,) = alone.get_asset_check_evaluations()
    assert evaluation.check_name == "reconciles_with_raw"
    assert evaluation.passed is False
    assert evaluation.metadata["dagster_dbt/failed_row_count"].value == 2  # both projects
    assert not alone.get_asset_materialization_events()
    # Rebuilt, the same check passes.
    assert pipeline.build(today.isoformat()).success
    again = pipeline.check(check)
    assert again.success, failures(again)
    (evaluation,) = again.get_asset_check_evaluations()
    assert evaluation.passed is True
