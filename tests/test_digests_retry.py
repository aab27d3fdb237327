"""A digest run whose process dies mid-batch is finished by Dagster's own run retry.

Real parts throughout: the repository's `dagster.yaml` (Postgres storage, the run
queue, run retries) on a throwaway Dagster database, a real `dagster-daemon` on the
real workspace (it launches the run, notices the dead process, retries the run and
runs the sensors), the Lytics Postgres, and the Resend stand-in over HTTP. The run is
launched as `POST /v1/digest/weekly` launches it: the digest run claimed first, its
id in the run config. The stand-in accepts the second batch and never answers, so the
run is stuck with rows claimed and possibly sent; then the test SIGKILLs the run's
process. Done when every recipient has exactly one email.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
import pytest
import yaml
from sqlalchemy import Engine, text

from lytics.digests import launch, runs
from lytics.projects import create_project
from lytics.warehouse.urls import dbt_env, render, with_driver
from tests.support import TEST_SECRET
from tests.support.dagster_ui import REPO, stop
from tests.support.digests import WEEK, add_members, create_marts, seed_two_weeks
from tests.support.fake_resend import API_KEY, FakeResend, fake_resend
from tests.support.postgres import create_database, drop_database, unique_name

EMAILS = [f"reader{i}@example.com" for i in range(7)]
DEADLINE_S = 400


def _instance_yaml(home: Path) -> None:
    """The repository's instance config, with changes that only save the test time."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    # Other domains' schedules may come due while the daemon runs: their runs stay queued.
    config["concurrency"]["runs"]["tag_concurrency_limits"] += [
        {"key": "lytics/domain", "value": domain, "limit": 0}
        for domain in ("metrics", "github", "exports")
    ]
    # A SIGKILLed step never gives its `email` pool slot back; run monitoring frees it this
    # long after the run ended (60 s in production, checked every 120 s), and only then
    # can the retry take it.
    config["run_monitoring"]["free_slots_after_run_end_seconds"] = 1
    config["run_monitoring"]["poll_interval_seconds"] = 2
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


@contextmanager
def dagster_home(pg_server: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    name = unique_name("dagster_retry")
    url = create_database(pg_server, name)
    home = tmp_path / "dagster_home"
    home.mkdir()
    _instance_yaml(home)
    try:
        yield {
            "DAGSTER_HOME": str(home),
            "LYTICS_DAGSTER_PG_URL": render(with_driver(url, "psycopg2")),
            "LYTICS_DAGSTER_ARTIFACTS": str(tmp_path / "dagster_artifacts"),
        }
    finally:
        drop_database(pg_server, name)


def _env(dagster: dict[str, str], database_url: str, fake: FakeResend) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "RESEND_"))}
    env.update(
        dagster,
        DATABASE_URL=database_url,
        LYTICS_SECRET_KEY=TEST_SECRET,
        LYTICS_PUBLIC_URL="http://lytics.test",
        RESEND_API_URL=fake.base_url,
        RESEND_API_KEY=API_KEY,
        RESEND_BATCH_SIZE="2",
        RESEND_RATE_PER_SECOND="50",
        # Longer than the test: the held request must not time out and recover by itself.
        RESEND_TIMEOUT_SECONDS="300",
        **dbt_env(database_url),
    )
    return env


@contextmanager
def running_daemon(env: dict[str, str], log: Path) -> Iterator[None]:
    """`dagster-daemon run`; on exit, it and the code servers and runs it started are gone
    (they use the Dagster database, which is dropped next)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    daemon = psutil.Process(process.pid)
    started: dict[int, psutil.Process] = {}
    try:
        yield
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            started = {p.pid: p for p in daemon.children(recursive=True)}
        stop(process)
        # A code server leaves on its own once no heartbeat comes (20 s).
        _, left = psutil.wait_procs(list(started.values()), timeout=60)
        for leftover in left:
            leftover.kill()
        psutil.wait_procs(left, timeout=10)


def _wait_for(what: str, check: Callable[[], Any], log: Path) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(
        f"{what} not seen in {DEADLINE_S} s; daemon log:\n{log.read_text()[-6000:]}"
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dagster_retries_a_killed_digest_run_and_every_recipient_gets_one_email(
    pg_server: str,
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_marts(engine)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    seed_two_weeks(engine, project_id)
    add_members(engine, project_id, EMAILS)
    # What POST /v1/digest/weekly does before it launches the job.
    digest_run = runs.claim_now(
        engine, runs.RunRequest(period_start=WEEK, project_id=project_id), 600
    )
    first_run = str(uuid.uuid4())
    log = tmp_path / "daemon.log"
    with fake_resend(limit=50) as fake, dagster_home(pg_server, tmp_path) as dagster:
        fake.inject("slow", seconds=0)  # the first batch goes through ...
        fake.inject("hold")  # ... the second is accepted and never answered
        env = _env(dagster, database_url, fake)
        for name, value in dagster.items():
            monkeypatch.setenv(name, value)
        with running_daemon(env, log), dg.DagsterInstance.get() as instance:
            launched = subprocess.run(
                [
                    str(Path(sys.executable).parent / "dagster"),
                    "job",
                    "launch",
                    "-w",
                    "workspace.yaml",
                    "-j",
                    launch.JOB_NAME,
                    "--run-id",
                    first_run,
                    "--config-json",
                    json.dumps(
                        launch.run_config(
                            scope="all", email=None, project="acme", digest_run_id=digest_run
                        )
                    ),
                    "--tags",
                    json.dumps(launch.tags(WEEK, digest_run)),
                ],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=False,
                timeout=DEADLINE_S,
            )
            assert launched.returncode == 0, launched.stderr[-4000:]

            _wait_for("the second batch held mid-send", lambda: len(fake.emails) == 4, log)
            with engine.connect() as conn:
                claimed = conn.execute(
                    text("SELECT claimed_by FROM app.digest_deliveries WHERE status = 'claimed'")
                ).all()
            assert [r[0] for r in claimed] == [first_run, first_run]
            (start,) = instance.all_logs(first_run, of_type=dg.DagsterEventType.STEP_START)
            assert start.dagster_event is not None
            pid = start.dagster_event.pid
            assert pid is not None
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)

            def finished() -> tuple[Any, ...] | None:
                with engine.connect() as conn:
                    row = conn.execute(
                        text("SELECT status, dagster_run_id FROM app.digest_runs WHERE id = :id"),
                        {"id": digest_run},
                    ).one()
                return tuple(row) if row[0] == "succeeded" else None

            _, retry_run = _wait_for("the digest run succeeded", finished, log)

            def status(run_id: str) -> dg.DagsterRunStatus | None:
                run = instance.get_run_by_id(run_id)
                return run.status if run is not None else None

            _wait_for(
                "Dagster's record of the retry's success",
                lambda: status(retry_run) == dg.DagsterRunStatus.SUCCESS,
                log,
            )
            first = instance.get_run_by_id(first_run)
            retry = instance.get_run_by_id(retry_run)

    assert first is not None
    assert retry is not None
    assert first.status == dg.DagsterRunStatus.FAILURE
    assert retry.parent_run_id == first_run  # Dagster's automatic retry, not a new run
    assert retry.tags.get("dagster/retry_number") == "1"
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    # The held batch went out again with its key and was answered from Resend's store.
    held_key = fake.emails[2].key
    assert held_key is not None
    answered = [r.status for r in fake.requests if r.key == held_key and r.status != 0]
    assert answered == [200]
    with engine.connect() as conn:
        states = conn.execute(
            text("SELECT status, count(*) FROM app.digest_deliveries GROUP BY 1")
        ).all()
        sent = conn.execute(
            text("SELECT sent FROM app.digest_runs WHERE id = :id"), {"id": digest_run}
        ).scalar_one()
    assert [tuple(s) for s in states] == [("sent", len(EMAILS))]
    assert sent == len(EMAILS) - 2  # the retry's own count: everything after batch one
