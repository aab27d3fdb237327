"""A real `dagster-webserver` on the lytics code location, for tests that launch work through it.

The instance is throwaway (SQLite storage in a temporary DAGSTER_HOME) and no
daemon runs, so launched runs and backfills stay queued: tests see exactly what
the API asked Dagster to do, and nothing executes behind their back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from lytics.warehouse.urls import dbt_env
from tests.support.http import HTTP_TIMEOUT_S, free_port
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 180

INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_queue:
  max_concurrent_runs: 1
"""

LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@contextmanager
def running_webserver(database_url: str, home: Path) -> Iterator[str]:
    """Yields the GraphQL URL once the lytics code location has loaded."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(home), DATABASE_URL=database_url, **dbt_env(database_url))
    log = home / "webserver.log"
    bin_dir = Path(sys.executable).parent
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_until_loaded(process, url, log)
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if the process is still there 30 s later."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_until_loaded(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    def loaded() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited:\n{log.read_text()[-4000:]}")
        try:
            body = httpx.post(url, json={"query": LOCATION_QUERY}, timeout=HTTP_TIMEOUT_S).json()
        except httpx.HTTPError:
            return False
        entries = body["data"]["workspaceOrError"]["locationEntries"]
        location = {e["name"]: e["locationOrLoadError"] for e in entries}.get("lytics")
        if location and location["__typename"] == "PythonError":
            raise RuntimeError(f"code location failed to load: {location['message']}")
        return bool(location and location["__typename"] == "RepositoryLocation")

    wait_until(
        loaded,
        "dagster-webserver with the lytics code location loaded",
        timeout_s=STARTUP_TIMEOUT_S,
        interval_s=0.5,
        detail=lambda: log.read_text()[-4000:],
    )
