"""`lytics metrics backfill`: one asset backfill of the metrics models over a range of days.

Against a real dagster-webserver on the lytics code location. The shared one has no
daemon, so those tests read back what Dagster recorded; one test starts its own
webserver and `dagster-daemon` on a throwaway instance and sees the backfill become
exactly one run covering every day and every model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lytics.warehouse.urls import dbt_env
from tests.support.cli import CliResult, invoke
from tests.support.dagster_ui import REPO, running_webserver, stop
from tests.support.http import HTTP_TIMEOUT_S, free_port
from tests.support.wait import wait_until

Run = Callable[..., CliResult]

BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status isAssetBackfill title numPartitions
      tags { key value }
      assetSelection { path }
      assetBackfillData {
        rootTargetedPartitions { ranges { start end } partitionKeys }
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsInProgress
          }
        }
      }
    }
  }
}
"""

# What the command should pick by itself: the dbt models of the staging and metrics groups.
ASSETS_QUERY = """
query Assets($group: String!) {
  assetNodes(group: {groupName: $group, repositoryName: "__repository__",
                     repositoryLocationName: "lytics"}) { assetKey { path } }
}
"""

RUNS_QUERY = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    __typename
    ... on Runs { results { runId status tags { key value } assetSelection { path } } }
  }
}
"""


def _graphql(url: str, query: str, **variables: str) -> dict[str, Any]:
    body = httpx.post(
        url, json={"query": query, "variables": variables}, timeout=HTTP_TIMEOUT_S
    ).json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def _metrics_assets(url: str) -> set[str]:
    return {
        "/".join(node["assetKey"]["path"])
        for group in ("staging", "metrics")
        for node in _graphql(url, ASSETS_QUERY, group=group)["assetNodes"]
    }


def _backfill(url: str, backfill_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _graphql(url, BACKFILL_QUERY, id=backfill_id)[
        "partitionBackfillOrError"
    ]
    assert found["__typename"] == "PartitionBackfill", found
    return found


def _backfill_id(result: CliResult) -> str:
    assert result.code == 0, result.err
    first_line = result.out.splitlines()[0]
    assert first_line.startswith("backfill "), result.out
    return first_line.split()[1].rstrip(":")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str) -> CliResult:
        return invoke(monkeypatch, capsys, "metrics", *args)

    return _run


# --------------------------------------------------------------------- refused before Dagster


def test_a_reversed_range_is_refused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens there: the range is checked before Dagster is asked anything.
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", "http://127.0.0.1:9/graphql")
    result = run("backfill", "--from", "2026-02-01", "--to", "2026-01-31")
    assert result.code == 1
    assert result.err.strip() == "error: --from 2026-02-01 is after --to 2026-01-31"


@pytest.mark.parametrize(
    "args",
    [
        ("--from", "2026-1-32", "--to", "2026-02-01"),
        ("--from", "01/02/2026", "--to", "2026-02-01"),
        ("--from", "2026-01-01"),
    ],
)
def test_bad_arguments_exit_2(run: Run, args: tuple[str, ...]) -> None:
    result = run("backfill", *args)
    assert result.code == 2
    assert "--from" in result.err or "--to" in result.err


def test_an_unreachable_dagster_is_one_clear_line(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", url)
    result = run("backfill", "--from", "2026-01-01", "--to", "2026-01-31")
    assert result.code == 1
    assert result.err.startswith(f"error: Dagster is unreachable at {url}")
    assert "Traceback" not in result.err


# --------------------------------------------------------------- against the real webserver


@pytest.mark.slow
def test_backfill_is_one_asset_backfill_of_the_metrics_models_over_the_range(
    run: Run, monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str
) -> None:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    result = run("backfill", "--from", "2026-01-01", "--to", "2026-01-31")
    backfill_id = _backfill_id(result)
    assert "31 daily partitions (2026-01-01 to 2026-01-31)" in result.out
    assert "in one run" in result.out
    ui = dagster_graphql_url.removesuffix("/graphql")
    assert result.out.splitlines()[1] == f"{ui}/runs/b/{backfill_id}"
    assert httpx.get(f"{ui}/runs/b/{backfill_id}", timeout=HTTP_TIMEOUT_S).status_code == 200

    backfill = _backfill(dagster_graphql_url, backfill_id)
    # An asset backfill (not a job backfill of refresh_metrics): only asset backfills
    # plan their runs from the backfill policy.
    assert backfill["isAssetBackfill"] is True
    assert backfill["status"] == "REQUESTED"
    assert backfill["title"] == "metrics 2026-01-01 to 2026-01-31"
    selected = {"/".join(key["path"]) for key in backfill["assetSelection"]}
    expected = _metrics_assets(dagster_graphql_url)
    assert selected == expected
    assert "analytics/daily_site_metrics" in selected
    assert all(key.startswith("analytics/") for key in selected)
    assert not any(key.startswith(("raw/", "app/", "exports/", "github/")) for key in selected)
    data = backfill["assetBackfillData"]
    assert data["rootTargetedPartitions"]["ranges"] == [
        {"start": "2026-01-01", "end": "2026-01-31"}
    ]
    statuses = data["assetBackfillStatuses"]
    assert {"/".join(s["assetKey"]["path"]) for s in statuses} == expected
    assert {s["numPartitionsTargeted"] for s in statuses} == {31}
    tags = {t["key"]: t["value"] for t in backfill["tags"]}
    assert tags["lytics/domain"] == "metrics"


@pytest.mark.slow
def test_one_day_is_a_range_of_one(
    run: Run, monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str
) -> None:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    result = run("backfill", "--from", "2026-03-02", "--to", "2026-03-02")
    backfill_id = _backfill_id(result)
    assert "1 daily partition (2026-03-02 to 2026-03-02)" in result.out
    data = _backfill(dagster_graphql_url, backfill_id)["assetBackfillData"]
    assert data["rootTargetedPartitions"]["ranges"] == [
        {"start": "2026-03-02", "end": "2026-03-02"}
    ]


@pytest.mark.slow
def test_days_outside_the_partitions_are_refused_with_the_valid_range(
    run: Run, monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str
) -> None:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    today = datetime.now(UTC).date()
    # The location's partitions: LYTICS_PARTITIONS_START (default 2025-01-01) to today.
    valid = f"the metrics partitions run from 2025-01-01 to {today}"
    early = run("backfill", "--from", "2024-12-31", "--to", "2025-01-05")
    assert early.code == 1
    assert early.err.strip() == f"error: {valid}; 2024-12-31 to 2025-01-05 is outside"
    tomorrow = today + timedelta(days=1)
    late = run("backfill", "--from", str(today), "--to", str(tomorrow))
    assert late.code == 1
    assert valid in late.err
    assert late.out == ""


# ----------------------------------------------------------------- executed by the daemon

DAEMON_INSTANCE_YAML = """\
telemetry:
  enabled: false
# The webserver's instance: same runs, event logs and backfills.
storage:
  sqlite:
    base_dir: {storage}
# Runs the backfill creates stay queued: the test counts them, nothing builds.
run_queue:
  max_concurrent_runs: 0
"""


@contextmanager
def running_daemon(database_url: str, webserver_home: Path, home: Path) -> Iterator[Path]:
    """`dagster-daemon run` on the webserver's storage; yields its log file."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAEMON_INSTANCE_YAML.format(storage=webserver_home))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(home), DATABASE_URL=database_url, **dbt_env(database_url))
    log = home / "daemon.log"
    daemon_bin = Path(sys.executable).parent / "dagster-daemon"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(daemon_bin), "run", "-w", str(REPO / "workspace.yaml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    try:
        yield log
    finally:
        stop(process)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_daemon_runs_the_whole_backfill_as_one_run(
    run: Run, monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    web_home = tmp_path / "webserver"
    with (
        running_webserver(database_url, web_home) as url,
        running_daemon(database_url, web_home, tmp_path / "daemon") as log,
    ):
        monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", url)
        backfill_id = _backfill_id(run("backfill", "--from", "2026-01-01", "--to", "2026-01-31"))

        def runs() -> list[dict[str, Any]]:
            found = _graphql(url, RUNS_QUERY, id=backfill_id)["runsOrError"]
            assert found["__typename"] == "Runs", found
            results: list[dict[str, Any]] = found["results"]
            return results

        def all_requested() -> bool:
            data = _backfill(url, backfill_id)["assetBackfillData"]
            return all(
                s["numPartitionsInProgress"] == s["numPartitionsTargeted"] == 31
                for s in data["assetBackfillStatuses"]
            )

        def daemon_log() -> str:
            return f"daemon log:\n{log.read_text()[-4000:]}"

        wait_until(runs, "a run of the backfill", timeout_s=180, interval_s=1, detail=daemon_log)
        # Every partition of every model requested: the daemon has nothing left to launch.
        wait_until(
            all_requested,
            "every partition requested",
            timeout_s=180,
            interval_s=1,
            detail=daemon_log,
        )
        [only] = runs()
        expected = _metrics_assets(url)

    tags = {t["key"]: t["value"] for t in only["tags"]}
    assert tags["dagster/asset_partition_range_start"] == "2026-01-01"
    assert tags["dagster/asset_partition_range_end"] == "2026-01-31"
    assert tags["lytics/domain"] == "metrics"
    assert only["status"] == "QUEUED"
    # The one run builds every model of the backfill, for the whole range at once.
    assert {"/".join(key["path"]) for key in only["assetSelection"]} == expected
