"""Raw-event retention: old raw rows go, in batches, per project; the marts keep their days.

Real Postgres, the real dbt project through Dagster, the retention asset run as the
pipeline role. Days are relative to today: retention keeps today and the last N days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics.retention import RetentionSettingError, retention_days
from lytics_assets.resources import WarehouseResource
from lytics_assets.retention.assets import raw_horizons
from tests.support.cli import invoke
from tests.support.ingest import new_project
from tests.support.pipeline import Pipeline, failures, snapshot

TODAY = datetime.now(UTC).date()
KEEP_DAYS = 3
FIRST = TODAY - timedelta(days=6)
HORIZON = datetime.combine(TODAY - timedelta(days=KEEP_DAYS), time(), UTC)
PER_DAY = 5


def _insert_days(engine: Engine, project_id: int, days: list[date], tag: str) -> None:
    rows = [
        {
            "project": project_id,
            "message": f"{tag}-{day.isoformat()}-{n}",
            "visitor": f"v{n % 2}",
            "at": datetime.combine(day, time(12, n), UTC),
            "path": f"/p{n}",
        }
        for day in days
        for n in range(PER_DAY)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, anonymous_id, timestamp,"
                " original_timestamp, path, url, source, payload) VALUES (:project, :message,"
                " 'page', :visitor, :at, :at, :path, 'https://site.example' || :path,"
                " 'native', '{}')"
            ),
            rows,
        )


def _raw_days(engine: Engine, project_id: int) -> dict[date, int]:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT (timestamp AT TIME ZONE 'UTC')::date, count(*) FROM raw.events"
                " WHERE project_id = :p GROUP BY 1"
            ),
            {"p": project_id},
        )
        return {day: count for day, count in found}


def _apply(database_url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_horizons],
        resources={"warehouse": WarehouseResource(database_url=database_url)},
        raise_on_error=False,
    )


def _removed_per_project(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    [materialization] = result.asset_materializations_for_node("app__raw_horizons")
    table = materialization.metadata["removed per project"]
    assert isinstance(table, dg.TableMetadataValue)
    return {record.data["project"]: record.data["events_removed"] for record in table.records}


@pytest.fixture
def projects(engine: Engine) -> tuple[int, int]:
    shop, _, _ = new_project(engine, "shop", {"raw_retention_days": KEEP_DAYS})
    blog, _, _ = new_project(engine, "blog")
    days = [FIRST + timedelta(days=n) for n in range(7)]
    _insert_days(engine, shop, days, "shop")
    _insert_days(engine, blog, days, "blog")
    return shop, blog


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("LYTICS_RETENTION_BATCH_ROWS", "4")
    return 4


def test_old_raw_rows_go_in_batches_and_the_marts_keep_their_days(
    pipeline: Pipeline,
    engine: Engine,
    database_url: str,
    projects: tuple[int, int],
    small_batches: int,
) -> None:
    shop, blog = projects
    built = pipeline.build(FIRST.isoformat(), TODAY.isoformat())
    assert built.success, failures(built)
    marts_before = snapshot(engine)
    blog_before = _raw_days(engine, blog)

    result = _apply(database_url)
    assert result.success

    expired = [FIRST + timedelta(days=n) for n in range(6 - KEEP_DAYS)]
    assert len(expired) * PER_DAY > small_batches  # more than one batch was needed
    assert _removed_per_project(result) == {"shop": len(expired) * PER_DAY}
    shop_days = _raw_days(engine, shop)
    assert min(shop_days) == HORIZON.date()
    assert sum(shop_days.values()) == (KEEP_DAYS + 1) * PER_DAY
    assert _raw_days(engine, blog) == blog_before  # no window: everything stays
    with engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT project_id, retention_days, retained_from, events_removed, run_id"
                " FROM app.retention_runs"
            )
        ).one()
    assert audit[:4] == (shop, KEEP_DAYS, HORIZON, len(expired) * PER_DAY)
    assert audit.run_id == result.run_id

    # A window rebuild over every day, tests included (reconciles_with_raw among them),
    # leaves the days before the horizon as they were counted.
    rebuilt = pipeline.build(FIRST.isoformat(), TODAY.isoformat())
    assert rebuilt.success, failures(rebuilt)
    checks = {c.check_name: c.passed for c in rebuilt.get_asset_check_evaluations()}
    assert checks["reconciles_with_raw"], failures(rebuilt)
    assert all(checks.values()), failures(rebuilt)
    assert snapshot(engine) == marts_before

    # Nothing older is left: a second run removes nothing and keeps the horizon.
    again = _apply(database_url)
    assert again.success
    assert _removed_per_project(again) == {"shop": 0}
    with engine.connect() as conn:
        horizon = conn.execute(
            text("SELECT retained_from FROM app.raw_horizons WHERE project_id = :p"), {"p": shop}
        ).scalar_one()
    assert horizon == HORIZON


def test_an_event_for_a_closed_day_is_not_counted_and_is_removed_next_time(
    pipeline: Pipeline, engine: Engine, database_url: str, projects: tuple[int, int]
) -> None:
    shop, _ = projects
    built = pipeline.build(FIRST.isoformat(), TODAY.isoformat())
    assert built.success, failures(built)
    assert _apply(database_url).success
    marts_before = snapshot(engine)

    _insert_days(engine, shop, [FIRST], "late")  # a retried SDK call from a week ago
    refreshed = pipeline.refresh(FIRST.isoformat(), TODAY.isoformat())
    assert refreshed.success, failures(refreshed)
    assert snapshot(engine) == marts_before

    result = _apply(database_url)
    assert _removed_per_project(result) == {"shop": PER_DAY}
    assert min(_raw_days(engine, shop)) == HORIZON.date()


def test_the_default_window_applies_where_a_project_sets_none(
    engine: Engine, database_url: str, projects: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, blog = projects
    monkeypatch.setenv("LYTICS_RAW_RETENTION_DAYS", "5")
    result = _apply(database_url)
    assert result.success
    assert _removed_per_project(result) == {"shop": (6 - KEEP_DAYS) * PER_DAY, "blog": PER_DAY}
    assert min(_raw_days(engine, blog)) == TODAY - timedelta(days=5)
    assert min(_raw_days(engine, shop)) == HORIZON.date()


def test_a_project_may_opt_out_of_the_default(engine: Engine) -> None:
    assert retention_days({"raw_retention_days": None}, 30) is None
    assert retention_days({}, 30) == 30
    assert retention_days({"raw_retention_days": 7}, 30) == 7


@pytest.mark.parametrize("value", [0, -1, "30", 1.5, True, 36_501, 99_999_999_999])
def test_a_malformed_setting_fails_the_run_before_anything_is_removed(
    engine: Engine, database_url: str, projects: tuple[int, int], value: object
) -> None:
    shop, blog = projects
    new_project(engine, "typo", {"raw_retention_days": value})
    before = (_raw_days(engine, shop), _raw_days(engine, blog))
    result = _apply(database_url)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "typo" in str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert (_raw_days(engine, shop), _raw_days(engine, blog)) == before
    with pytest.raises(RetentionSettingError):
        retention_days({"raw_retention_days": value}, None)


def test_only_the_pipeline_role_may_delete_raw_events(engine: Engine, projects: Any) -> None:
    for role in ("lytics_ingest", "lytics_reader"):
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(text("DELETE FROM raw.events"))


def test_the_cli_sets_and_shows_each_projects_window(
    engine: Engine,
    database_url: str,
    projects: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert invoke(monkeypatch, capsys, "retention", "set", "blog", "2").code == 0
    assert invoke(monkeypatch, capsys, "retention", "set", "shop", "--keep-forever").code == 0
    refused = invoke(monkeypatch, capsys, "retention", "set", "blog", "0")
    assert refused.code == 2
    assert "0" in refused.err
    for days in ("36501", "99999999999"):  # past any date arithmetic: refused, not stored
        refused = invoke(monkeypatch, capsys, "retention", "set", "blog", days)
        assert refused.code == 1
        assert "from 1 to 36500" in refused.err
    both = invoke(monkeypatch, capsys, "retention", "set", "blog", "3", "--keep-forever")
    assert both.code == 2
    assert "exactly one" in both.err
    missing = invoke(monkeypatch, capsys, "retention", "set", "nope", "3")
    assert missing.code == 1
    assert "nope" in missing.err

    result = _apply(database_url)
    assert _removed_per_project(result) == {"blog": (6 - 2) * PER_DAY}
    shown = invoke(monkeypatch, capsys, "retention", "show")
    assert shown.code == 0
    lines = dict(line.split("\t", 1) for line in shown.out.splitlines())
    horizon = (TODAY - timedelta(days=2)).isoformat()
    assert lines["blog"].startswith(f"kept 2 days\tfrom {horizon}\tlast run ")
    assert lines["blog"].endswith(f"removed {(6 - 2) * PER_DAY}")
    assert lines["shop"] == "kept forever\tfrom -\tnever run"

    assert invoke(monkeypatch, capsys, "retention", "set", "shop", "--default").code == 0
    with engine.connect() as conn:
        shop_settings = conn.execute(text("SELECT settings FROM app.projects WHERE slug = 'shop'"))
        assert "raw_retention_days" not in shop_settings.scalar_one()
