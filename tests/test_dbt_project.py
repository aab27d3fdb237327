"""The dbt project on its own: its tests can fail, its parse is reused, it reports to no one.

dbt runs here exactly as Dagster runs it: the `dbt` command from PATH, through
dagster-dbt's DbtCliResource where a run would use it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dagster_dbt import DbtCliResource
from sqlalchemy import Engine, text

from lytics.warehouse.urls import dbt_env
from lytics_assets.metrics.project import DBT_DIR, NEW_ROWS_VARS, dbt_project, prepare
from lytics_assets.metrics.refresh import Refresh


def _dbt(
    database_url: str, target: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    dbt = shutil.which("dbt")
    assert dbt is not None, "dbt is not on PATH"
    return subprocess.run(
        [
            dbt,
            *args,
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **dbt_env(database_url), **(env or {})},
        cwd=DBT_DIR,
    )


def test_the_raw_events_constraints_test_fails_when_a_constraint_is_gone(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # stg_events' keys are not re-scanned on every build because raw.events enforces
    # them; this dbt test is what notices if that stops being true.
    passing = _dbt(database_url, tmp_path, "test", "--select", "raw_events_constraints")
    assert passing.returncode == 0, passing.stdout
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE raw.events DROP CONSTRAINT ck_events_type"))
    failing = _dbt(database_url, tmp_path, "test", "--select", "raw_events_constraints")
    assert failing.returncode == 1, failing.stdout
    assert "Got 1 result" in failing.stdout


def _email_events_mart(engine: Engine, *extra_columns: str) -> None:
    """An existing `daily_email_events` mart, as an earlier build would have left it."""
    columns = ", ".join(
        ("project_id bigint", "event_date date", "event_type text", "events bigint", *extra_columns)
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS analytics"))
        conn.execute(text(f"CREATE TABLE analytics.daily_email_events ({columns})"))


@pytest.mark.parametrize(
    ("bad_rows", "broken"),
    [
        ("(1, '2026-03-02', 'sent', -1, 0)", "events >= 0"),
        ("(1, '2026-03-02', 'opened', 1, 1), (1, '2026-03-02', 'opened', 2, 1)", "duplicate"),
    ],
)
def test_well_formed_fails_on_a_broken_rule_or_a_duplicate_key(
    database_url: str, engine: Engine, tmp_path: Path, bad_rows: str, broken: str
) -> None:
    # One well_formed test stands for a unique key and several row rules (one scan
    # instead of one test each); each must still be able to fail on its own.
    _email_events_mart(engine, "recipients bigint")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO analytics.daily_email_events VALUES (1, '2026-03-02', 'sent', 3, 2)")
        )
    select = ("--select", "test_name:well_formed,daily_email_events")
    passing = _dbt(database_url, tmp_path, "test", *select)
    assert passing.returncode == 0, passing.stdout
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO analytics.daily_email_events VALUES {bad_rows}"))
    failing = _dbt(database_url, tmp_path, "test", *select)
    assert failing.returncode == 1, (broken, failing.stdout)
    assert "FAIL 1 well_formed_daily_email_events" in failing.stdout, failing.stdout


def test_a_mart_that_gains_a_column_gets_it_added_and_filled(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # An existing mart built before a model gained a column (an upgrade): the
    # incremental build adds the column (on_schema_change: append_new_columns).
    _email_events_mart(engine)
    window = json.dumps({"start_date": "2026-03-02", "end_date": "2026-03-03"})
    run = _dbt(database_url, tmp_path, "run", "--select", "+daily_email_events", "--vars", window)
    assert run.returncode == 0, run.stdout
    with engine.connect() as conn:
        added = dict(
            conn.execute(
                text(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = 'analytics' AND table_name = 'daily_email_events'"
                )
            ).all()
        )
    assert added["recipients"] == "bigint"
    assert added["built_at"] == "timestamp with time zone"


def test_volume_check_compares_with_the_same_weekday(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS analytics"))
        conn.execute(
            text(
                "CREATE TABLE analytics.daily_site_metrics"
                " (project_id bigint, metric_date date, events bigint)"
            )
        )
        rows = [
            (1, "2026-03-02", 100), (1, "2026-02-23", 110), (1, "2026-02-16", 90),
            (1, "2026-02-09", 100), (2, "2026-03-02", 400), (2, "2026-02-23", 100),
            (2, "2026-02-16", 100), (2, "2026-02-09", 100), (3, "2026-02-23", 100),
            (3, "2026-02-16", 100), (3, "2026-02-09", 100), (4, "2026-03-02", 1),
            (4, "2026-02-23", 5), (4, "2026-02-16", 5), (4, "2026-02-09", 5),
            # Another weekday: not compared.
            (1, "2026-03-01", 5000),
        ]  # fmt: skip
        for project, day, events in rows:
            conn.execute(
                text("INSERT INTO analytics.daily_site_metrics VALUES (:p, :d, :e)"),
                {"p": project, "d": day, "e": events},
            )
    window = json.dumps({"start_date": "2026-03-01", "end_date": "2026-03-03"})
    args = ("test", "--select", "volume_is_normal", "--vars", window, "--store-failures")
    answer = _dbt(database_url, tmp_path, *args)
    # A warning, not a failure: the build goes on.
    assert answer.returncode == 0, answer.stdout
    assert "WARN 2 volume_is_normal" in answer.stdout, answer.stdout
    with engine.connect() as conn:
        flagged = conn.execute(
            text("SELECT project_id FROM analytics_dbt_test__audit.volume_is_normal ORDER BY 1")
        ).scalars()
        # 2: four times its weekday median; 3: nothing at all today; 4: too small to judge.
        assert list(flagged) == [2, 3]


def _messages(invocation: Any) -> list[str]:
    return [str(event.raw_event["info"]["msg"]) for event in invocation.stream_raw_events()]


def test_the_sensors_refreshes_reuse_the_prepared_parse(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The raw-data sensor's refreshes pass the same vars every time; the project is
    # prepared with exactly those, so dbt reads its saved parse instead of parsing the
    # project again. A window rebuild passes dates, which dbt must parse afresh.
    for name, value in dbt_env(database_url).items():
        monkeypatch.setenv(name, value)
    project = dbt_project()
    project.preparer.prepare(project)
    assert prepare(project) == project.manifest_path
    assert Refresh("new_rows").dbt_vars() == NEW_ROWS_VARS
    resource = DbtCliResource(project_dir=project)

    def ls(vars_: str) -> list[str]:
        invocation = resource.cli(
            ["ls", "--vars", vars_, "--resource-type", "model"], target_path=tmp_path / vars_[:9]
        )
        messages = _messages(invocation)
        assert invocation.is_successful()
        return messages

    reused = ls(NEW_ROWS_VARS)
    assert any(m.startswith("Found ") for m in reused), reused
    assert not any("Unable to do partial parsing" in m for m in reused), reused
    window = Refresh("window", "2026-03-02", "2026-03-03").dbt_vars()
    reparsed = ls(window)
    assert any("Unable to do partial parsing" in m for m in reparsed), reparsed


def test_a_manifest_older_than_the_project_is_parsed_again() -> None:
    # A pulled or edited model, macro or test must not meet a manifest that lacks it
    # (Dagster would fail on a node it does not know).
    project = dbt_project()
    manifest = prepare(project)
    current = manifest.stat().st_mtime
    assert prepare(project).stat().st_mtime == current  # up to date: not parsed again
    os.utime(manifest, (0, 0))  # older than every file of the project
    assert prepare(project).stat().st_mtime > 0


def test_dbt_reports_nothing_to_a_third_party(tmp_path: Path) -> None:
    # dbt sends anonymous usage events to dbt Labs unless a project opts out, and
    # marks the machine with a cookie (.user.yml in the profiles folder) when it does.
    (tmp_path / "profiles.yml").write_text((DBT_DIR / "profiles.yml").read_text())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    dbt = shutil.which("dbt")
    assert dbt is not None
    answer = subprocess.run(
        [dbt, "ls", "--project-dir", str(DBT_DIR), "--profiles-dir", str(tmp_path),
         "--target-path", str(tmp_path / "target"), "--resource-type", "model", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert "fct_sessions" in answer.stdout
    assert not (tmp_path / ".user.yml").exists()
