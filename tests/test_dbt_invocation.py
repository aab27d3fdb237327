"""How Dagster starts dbt: the run's values as session settings, and a cheap `--version`.

What must hold: the partition window and the watermark reach dbt's connections
without changing dbt's parse inputs (no per-run --vars), nothing else can ride in
on them, the environment is restored afterwards, and `lytics-dbt --version`
answers dagster-dbt's version probe without loading dbt.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import psycopg
import pytest
from dagster_dbt import DbtCliResource
from sqlalchemy import Engine, make_url, text

from lytics.warehouse.urls import dbt_env, libpq_dsn
from lytics_assets.metrics.assets import dbt_resource
from lytics_assets.metrics.dbt_resource import LyticsDbtCliResource
from lytics_assets.metrics.project import (
    DBT_DIR,
    DBT_EXECUTABLE,
    TARGET_DIR,
    dbt_environment,
    ensure_manifest,
    manifest_is_current,
)
from lytics_assets.metrics.run_settings import pgoptions, session_settings


def test_pgoptions_appends_one_option_per_setting() -> None:
    options = pgoptions(
        {"lytics.window_start": "2026-03-02", "lytics.max_event_id": "42"}, "-c statement_timeout=0"
    )
    assert options == (
        "-c statement_timeout=0 -c lytics.window_start=2026-03-02 -c lytics.max_event_id=42"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lytics.window_start", "2026-03-02 -c search_path=evil"),
        ("lytics.window_start", ""),
        ("search_path", "public"),
        ("lytics.window_start", "2026'03"),
    ],
)
def test_pgoptions_refuses_values_that_could_carry_another_option(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="unsafe session setting"):
        pgoptions({name: value})


def test_session_settings_reach_a_new_connection_and_are_removed_after(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGOPTIONS", raising=False)
    query = "SELECT current_setting('lytics.window_start', true)"
    with session_settings({"lytics.window_start": "2026-03-02"}):
        # libpq reads PGOPTIONS when a connection starts, as dbt's will.
        with psycopg.connect(libpq_dsn(database_url)) as conn:
            row = conn.execute(query).fetchone()
        assert row == ("2026-03-02",)
    assert "PGOPTIONS" not in os.environ
    with psycopg.connect(libpq_dsn(database_url)) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    assert not row[0]


def test_session_settings_keep_options_that_were_already_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=64MB")
    with session_settings({"lytics.max_event_id": "7"}):
        assert os.environ["PGOPTIONS"] == "-c work_mem=64MB -c lytics.max_event_id=7"
    assert os.environ["PGOPTIONS"] == "-c work_mem=64MB"


def test_launcher_answers_the_version_probe_without_loading_dbt() -> None:
    answer = subprocess.run(
        [DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True
    )
    assert f"installed: {version('dbt-core')}" in answer.stdout
    # dbt needs seconds to import; the launcher must not import it for this answer.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv = ['lytics-dbt', '--version'];"
            "from lytics_assets.metrics.dbt_launcher import main; main();"
            "print('dbt loaded' if 'dbt.cli.main' in sys.modules else 'dbt not loaded')",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().endswith("dbt not loaded"), probe.stdout


def test_launcher_hands_other_commands_to_dbt(tmp_path: Path) -> None:
    answer = subprocess.run(
        [DBT_EXECUTABLE, "--help"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert answer.returncode == 0, answer.stderr
    assert "build" in answer.stdout
    assert "Usage" in answer.stdout


def test_a_parse_made_for_another_database_is_not_reused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt reuses its saved parse only for the same connection profile; a manifest
    # parsed for another database would make every run re-parse from scratch.
    monkeypatch.setenv("DATABASE_URL", database_url)
    ensure_manifest()
    assert manifest_is_current()
    another = make_url(database_url).set(database="another_database")
    monkeypatch.setenv("DATABASE_URL", another.render_as_string(hide_password=False))
    assert not manifest_is_current()


def _dbt_test(
    database_url: str, select: str, command: tuple[str, ...] = ("test",)
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            DBT_EXECUTABLE,
            *command,
            "--select",
            select,
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(TARGET_DIR / "tests-of-tests"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **dbt_env(database_url)},
        cwd=DBT_DIR,
    )


def test_the_raw_events_constraints_test_fails_when_a_constraint_is_gone(
    database_url: str, engine: Engine
) -> None:
    # stg_events' keys are not re-scanned on every build because raw.events enforces
    # them; this dbt test is what notices if that stops being true.
    passing = _dbt_test(database_url, "raw_events_constraints")
    assert passing.returncode == 0, passing.stdout
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE raw.events DROP CONSTRAINT ck_events_type"))
    failing = _dbt_test(database_url, "raw_events_constraints")
    assert failing.returncode == 1, failing.stdout
    assert "Got 1 result" in failing.stdout


@pytest.mark.parametrize(
    ("bad_rows", "broken"),
    [
        ("(1, '2026-03-02', 'sent', -1, 0)", "events >= 0"),
        ("(1, '2026-03-02', 'opened', 1, 1), (1, '2026-03-02', 'opened', 2, 1)", "duplicate"),
    ],
)
def test_well_formed_fails_on_a_broken_rule_or_a_duplicate_key(
    database_url: str, engine: Engine, bad_rows: str, broken: str
) -> None:
    # One well_formed test stands for a unique key and several row rules (one scan
    # instead of one test each); each must still be able to fail on its own.
    _email_events_mart(engine, "recipients bigint")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO analytics.daily_email_events VALUES (1, '2026-03-02', 'sent', 3, 2)")
        )
    select = "test_name:well_formed,daily_email_events"
    passing = _dbt_test(database_url, select)
    assert passing.returncode == 0, passing.stdout
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO analytics.daily_email_events VALUES {bad_rows}"))
    failing = _dbt_test(database_url, select)
    assert failing.returncode == 1, (broken, failing.stdout)
    assert "FAIL 1 well_formed_daily_email_events" in failing.stdout, failing.stdout


def test_a_mart_that_gains_a_column_gets_it_added_and_filled(
    database_url: str, engine: Engine
) -> None:
    # window_replace inserts into the existing mart; a column the model has and the
    # table lacks is added first, with the type the model gives it.
    _email_events_mart(engine)
    window = "{start_date: '2026-03-02', end_date: '2026-03-03'}"
    run = _dbt_test(database_url, "+daily_email_events", ("run", "--vars", window))
    assert run.returncode == 0, run.stdout
    with engine.connect() as conn:
        added = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = 'analytics'"
                " AND table_name = 'daily_email_events' AND column_name = 'recipients'"
            )
        ).scalar_one()
    assert added == "bigint"


def _email_events_mart(engine: Engine, *extra_columns: str) -> None:
    """An existing `daily_email_events` mart, as an earlier build would have left it."""
    columns = ", ".join(
        ("project_id bigint", "event_date date", "event_type text", "events bigint", *extra_columns)
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS analytics"))
        conn.execute(text(f"CREATE TABLE analytics.daily_email_events ({columns})"))


def test_dbt_gets_one_thread_per_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LYTICS_DBT_THREADS", raising=False)
    assert dbt_environment()["LYTICS_DBT_THREADS"] == str(os.cpu_count() or 2)
    monkeypatch.setenv("LYTICS_DBT_THREADS", "8")
    assert dbt_environment()["LYTICS_DBT_THREADS"] == "8"


def test_dagster_dbt_still_builds_its_adapter_where_our_resource_skips_it() -> None:
    # LyticsDbtCliResource overrides a private method of dagster-dbt. If dagster-dbt
    # renames it or cli() stops calling it, the override would silently do nothing
    # (and every run would pay ~1 s again): fail here instead.
    hook = "_initialize_dbt_core_adapter"
    assert hook in vars(DbtCliResource), f"dagster-dbt no longer defines {hook}"
    assert f"self.{hook}(" in inspect.getsource(DbtCliResource.cli), f"cli() no longer calls {hook}"
    assert hook in vars(LyticsDbtCliResource)


def test_our_dbt_invocations_run_without_an_in_process_adapter(tmp_path: Path) -> None:
    resource = dbt_resource()
    assert isinstance(resource, LyticsDbtCliResource)
    invocation = resource.cli(["parse", "--quiet"], target_path=tmp_path, raise_on_error=False)
    invocation.wait()
    assert invocation.is_successful()
    assert invocation.adapter is None


def test_dbt_reports_nothing_to_a_third_party(tmp_path: Path) -> None:
    # dbt sends anonymous usage events to dbt Labs unless a project opts out, and
    # marks the machine with a cookie (.user.yml in the profiles folder) when it does.
    (tmp_path / "profiles.yml").write_text((DBT_DIR / "profiles.yml").read_text())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    answer = subprocess.run(
        [
            DBT_EXECUTABLE,
            "ls",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(tmp_path),
            "--target-path",
            str(tmp_path / "target"),
            "--resource-type",
            "model",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    assert answer.returncode == 0, answer.stderr
    assert "fct_sessions" in answer.stdout
    assert not (tmp_path / ".user.yml").exists()
