"""`lytics dev` as a user runs it: one command up, one signal down, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from lytics.embedded_postgres import EmbeddedPostgres
from tests.support.http import free_port, port_is_free

GRAPH_QUERY = """
{ assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection {
    nodes { sensors { name } schedules { name } } } } }
"""
LYTICS = str(Path(sys.executable).parent / "lytics")
STARTUP_TIMEOUT_S = 600  # a deadline against a hang: a loaded 2-core machine took 200 s
STOP_DEADLINE_S = 60

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path
    api: str
    ui: str
    api_port: int
    ui_port: int
    data_dir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="lyt-dev-", dir="/tmp"))
    yield folder
    EmbeddedPostgres.in_data_dir(folder).stop()
    shutil.rmtree(folder, ignore_errors=True)


def _start(data_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Running:
    api_port, ui_port = free_port(), free_port()
    log = data_dir.parent / f"{data_dir.name}-{api_port}.log"
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(LYTICS_DATA_DIR=str(data_dir), LOG_FORMAT="json", **(env or {}))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [LYTICS, "dev", "--api-port", str(api_port), "--dagster-port", str(ui_port), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=data_dir,  # not the repository: the command must find its own files
        )
    return Running(
        process,
        log,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{ui_port}",
        api_port,
        ui_port,
        data_dir,
    )


def _wait_for_output(running: Running, text: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert running.process.poll() is None, f"lytics dev exited early:\n{running.output()}"
        if text in running.output():
            return
        time.sleep(0.25)
    pytest.fail(f"{text!r} not printed within {STARTUP_TIMEOUT_S}s:\n{running.output()}")


def _wait_for(running: Running, check: str, dagster: bool = True) -> None:
    _wait_for_output(running, check)
    ready = httpx.get(f"{running.api}/health/ready", timeout=5)
    assert ready.status_code == 200
    if dagster:
        version = httpx.post(f"{running.ui}/graphql", json={"query": "{ version }"}, timeout=10)
        assert version.json()["data"]["version"]
        workspace = httpx.post(f"{running.ui}/graphql", json={"query": WORKSPACE_QUERY}, timeout=30)
        entries = workspace.json()["data"]["workspaceOrError"]["locationEntries"]
        assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
            ("lytics", "RepositoryLocation")
        ], workspace.text
        graph = httpx.post(f"{running.ui}/graphql", json={"query": GRAPH_QUERY}, timeout=30).json()
        keys = {"/".join(n["assetKey"]["path"]) for n in graph["data"]["assetNodes"]}
        assert {"raw/events", "analytics/stg_events", "analytics/daily_site_metrics"} <= keys
        (repository,) = graph["data"]["repositoriesOrError"]["nodes"]
        assert {s["name"] for s in repository["sensors"]} >= {
            "raw_data_sensor",
            "run_failure_alert",
            "github_webhook_sensor",
            "github_marts_sensor",
            "privacy_deletions",
        }
        assert {s["name"] for s in repository["schedules"]} == {
            "hourly_metrics",
            "exports_hourly",
            "exports_daily",
            "github_daily",
            "github_daily_snapshot",
            "weekly_digest_schedule",
            "retention_daily",
        }
        assert "github/stargazers" in keys
        assert "app/raw_horizons" in keys
        assert {"exports/events_hourly", "exports/events_daily"} <= keys


def _stop_and_check_clean(running: Running, sig: signal.Signals, postmaster: int | None) -> None:
    children = running.descendants()
    assert children, "lytics dev should be supervising processes"
    running.process.send_signal(sig)
    # A deadline against a hang, not a speed requirement (that is benchmarks' business).
    code = running.process.wait(STOP_DEADLINE_S)
    assert code == 0, running.output()
    survivors = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"left behind: {[p.cmdline() for p in survivors]}"
    if postmaster is not None:
        assert not psutil.pid_exists(postmaster) or (
            psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE
        ), "embedded Postgres still running"
    for port in (running.api_port, running.ui_port):
        assert port_is_free(port), f"port {port} still bound"
    assert not (running.data_dir / "addresses.json").exists(), "addresses outlived the server"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(2 * STARTUP_TIMEOUT_S + 2 * STOP_DEADLINE_S)
def test_dev_starts_everything_and_stops_clean_then_reuses_data(data_dir: Path) -> None:
    first = _start(data_dir)
    try:
        _wait_for(first, "Press Ctrl-C to stop.")
        out = first.output()
        assert "Created project 'demo'" in out
        assert "curl -u 'lyw_" in out
        postmaster = EmbeddedPostgres.in_data_dir(data_dir).postmaster_pid()
        assert postmaster is not None
        _stop_and_check_clean(first, signal.SIGTERM, postmaster)
    finally:
        if first.process.poll() is None:
            first.process.kill()

    # Second start: same data, no new project or keys, and SIGINT works as Ctrl-C.
    second = _start(data_dir, "--no-dagster")
    try:
        _wait_for(second, "Press Ctrl-C to stop.", dagster=False)
        assert "Created project" not in second.output()
        postmaster = EmbeddedPostgres.in_data_dir(data_dir).postmaster_pid()
        _stop_and_check_clean(second, signal.SIGINT, postmaster)
    finally:
        if second.process.poll() is None:
            second.process.kill()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(2 * STARTUP_TIMEOUT_S + 2 * STOP_DEADLINE_S)
def test_dev_on_an_external_database_url(data_dir: Path, database_url: str) -> None:
    running = _start(data_dir, "--no-dagster", env={"DATABASE_URL": database_url})
    try:
        _wait_for(running, "Press Ctrl-C to stop.", dagster=False)
        assert "postgres  external" in running.output()
        assert "Created project 'demo'" in running.output()
        # Nothing embedded was started for it.
        assert not (data_dir / "pg").exists()
        _stop_and_check_clean(running, signal.SIGTERM, None)
    finally:
        if running.process.poll() is None:
            running.process.kill()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(2 * STARTUP_TIMEOUT_S + 2 * STOP_DEADLINE_S)
def test_a_second_dev_on_the_same_data_dir_leaves_the_first_running(data_dir: Path) -> None:
    first = _start(data_dir, "--no-dagster")
    try:
        _wait_for(first, "Press Ctrl-C to stop.", dagster=False)
        postmaster = EmbeddedPostgres.in_data_dir(data_dir).postmaster_pid()
        assert postmaster is not None
        served = json.loads((data_dir / "addresses.json").read_text())
        assert served["api_url"] == first.api

        second = _start(data_dir, "--no-dagster")
        code = second.process.wait(STOP_DEADLINE_S)
        assert code == 1, second.output()
        assert f"another `lytics dev` (pid {first.process.pid}: lytics dev" in second.output()
        assert "Lytics is ready" not in second.output()

        # The first is untouched: same Postgres, still answering, still the served address.
        assert EmbeddedPostgres.in_data_dir(data_dir).postmaster_pid() == postmaster
        assert httpx.get(f"{first.api}/health/ready", timeout=10).status_code == 200
        assert json.loads((data_dir / "addresses.json").read_text()) == served
        _stop_and_check_clean(first, signal.SIGTERM, postmaster)
    finally:
        if first.process.poll() is None:
            first.process.kill()
