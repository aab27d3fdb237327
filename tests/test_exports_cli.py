"""`lytics exports`: destinations add/list/test/remove, and backfills through Dagster."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from lytics.exports.backfills import PROJECT_TAG
from tests.support import TEST_SECRET
from tests.support.cli import CliResult, invoke
from tests.support.exports import CREDENTIALS, new_bucket
from tests.support.ingest import new_project

Run = Callable[..., CliResult]


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    tmp_path: Path,
) -> Run:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LYTICS_DATA_DIR", str(tmp_path / "data"))

    def _run(*args: str, stdin: str = "") -> CliResult:
        return invoke(monkeypatch, capsys, "exports", *args, stdin=stdin)

    return _run


def test_add_list_test_and_remove_an_s3_destination(
    run: Run, engine: Engine, s3_endpoint: str
) -> None:
    new_project(engine, "acme")
    bucket = new_bucket(s3_endpoint)
    added = run(
        "destinations",
        "add",
        "--project",
        "acme",
        "--name",
        "client",
        "--bucket",
        bucket,
        "--prefix",
        "/lytics/",
        "--endpoint-url",
        s3_endpoint,
        "--access-key-id",
        CREDENTIALS.access_key_id,
        "--secret-access-key",
        "-",
        "--format",
        "jsonl",
        "--frequency",
        "hourly",
        "--datasets",
        "events,metrics",
        stdin=CREDENTIALS.secret_access_key + "\n",
    )
    assert added.code == 0, added.err
    assert f"s3://{bucket}/lytics" in added.out
    assert "credentials: stored" in added.out

    listed = run("destinations", "list", "--json")
    assert listed.code == 0
    [row] = json.loads(listed.out)
    assert (row["name"], row["format"], row["frequency"]) == ("client", "jsonl", "hourly")
    assert row["datasets"] == ["events", "metrics"]
    assert row["prefix"] == "lytics"
    for output in (added.out, listed.out):
        assert CREDENTIALS.secret_access_key not in output
    with engine.connect() as conn:
        blob = conn.execute(text("SELECT credentials_encrypted FROM app.export_destinations"))
        assert CREDENTIALS.secret_access_key.encode() not in bytes(blob.scalar_one())

    tested = run("destinations", "test", "client", "--project", "acme")
    assert tested.code == 0, tested.err
    assert "accepts writes" in tested.out

    removed = run("destinations", "remove", "client", "--project", "acme")
    assert removed.code == 0
    assert json.loads(run("destinations", "list", "--json").out) == []
    again = run("destinations", "remove", "client", "--project", "acme")
    assert again.code == 1
    assert "no export destination 'client'" in again.err


def test_a_destination_that_cannot_be_written_is_not_saved(
    run: Run, engine: Engine, s3_endpoint: str
) -> None:
    new_project(engine, "acme")
    result = run(
        "destinations",
        "add",
        "--project",
        "acme",
        "--name",
        "client",
        "--bucket",
        "no-such-bucket-here",
        "--endpoint-url",
        s3_endpoint,
        "--access-key-id",
        "AKIDX",
        "--secret-access-key",
        "-",
        stdin="some-secret\n",
    )
    assert result.code == 1
    assert "NoSuchBucket: the bucket does not exist" in result.err
    assert "some-secret" not in result.err + result.out
    assert json.loads(run("destinations", "list", "--json").out) == []


def test_backup_and_local_destinations(run: Run, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    added = run(
        "destinations",
        "add",
        "--backup",
        "--name",
        "disk",
        "--kind",
        "local",
        "--path",
        str(folder),
        "--frequency",
        "hourly",
    )
    assert added.code == 0, added.err
    assert "backup" in added.out
    assert folder.is_dir()
    assert list(folder.iterdir()) == []  # the probe cleaned up after itself
    assert run("destinations", "test", "disk", "--backup").code == 0
    both = run("destinations", "test", "disk", "--backup", "--project", "x")
    assert both.code == 1
    assert "either --project SLUG or --backup" in both.err
    bad = run(
        "destinations",
        "add",
        "--backup",
        "--name",
        "Bad Name",
        "--kind",
        "local",
        "--path",
        str(folder),
    )
    assert bad.code == 1
    assert "invalid destination name" in bad.err


BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { partitionNames assetSelection { path } tags { key value } }
  }
}
"""


def _backfill(url: str, backfill_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.post(
        url, json={"query": BACKFILL, "variables": {"id": backfill_id}}, timeout=30
    ).json()["data"]["partitionBackfillOrError"]
    return found


def _launched(out: str) -> dict[str, str]:
    """Backfill id per frequency, from the command's output."""
    found = re.findall(r"^backfill (\S+): \d+ (\w+) partitions queued", out, re.MULTILINE)
    return {frequency: backfill_id for backfill_id, frequency in found}


@pytest.fixture
def dagster(monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str) -> str:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    return dagster_graphql_url


def _local_destination(run: Run, tmp_path: Path, *args: str) -> None:
    added = run(
        "destinations",
        "add",
        "--kind",
        "local",
        "--path",
        str(tmp_path / "out"),
        *args,
    )
    assert added.code == 0, added.err


def test_backfill_queues_a_dagster_backfill_to_every_destination(
    run: Run, monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str
) -> None:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    result = run(
        "backfill", "--since", "2026-11-01", "--until", "2026-11-03", "--dataset", "events"
    )
    assert result.code == 0, result.err
    # No destination yet: the default backup (hourly) is created, as the first export would.
    assert "48 hourly partitions queued (2026-11-01-00:00 to 2026-11-02-23:00)" in result.out
    assert "  backup (backup): hourly events" in result.out
    found = _backfill(dagster_graphql_url, _launched(result.out)["hourly"])
    assert [a["path"] for a in found["assetSelection"]] == [["exports", "events_hourly"]]
    assert len(found["partitionNames"]) == 48

    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", "http://127.0.0.1:9/graphql")
    down = run("backfill", "--since", "2026-11-01", "--until", "2026-11-03")
    assert down.code == 1
    assert "Dagster is unreachable" in down.err


@pytest.mark.parametrize(
    "span",
    [
        ("2026-11-01", "2026-11-03"),
        ("2026-11-01T00:00:00Z", "2026-11-03T00:00:00+00:00"),
        ("2026-11-01 00:00", "2026-11-03T00:00:00"),  # no offset: UTC
        ("2026-11-01T01:00+01:00", "2026-11-02T19:00:00.000000-05:00"),
    ],
)
def test_backfill_takes_the_date_forms_of_the_api(
    run: Run, engine: Engine, tmp_path: Path, dagster: str, span: tuple[str, str]
) -> None:
    since, until = span
    new_project(engine, "acme")
    _local_destination(run, tmp_path, "--project", "acme", "--name", "daily")

    result = run("backfill", "--project", "acme", "--since", since, "--until", until)

    assert result.code == 0, result.err
    assert "2 daily partitions queued (2026-11-01 to 2026-11-02)" in result.out
    assert _backfill(dagster, _launched(result.out)["daily"])["partitionNames"] == [
        "2026-11-01",
        "2026-11-02",
    ]


def test_backfill_refuses_other_date_forms(run: Run) -> None:
    result = run("backfill", "--since", "2026-11-01T05", "--until", "2026-11-03")
    assert result.code == 1
    assert "'2026-11-01T05' is not a date or time: use YYYY-MM-DD" in result.err


def test_backfill_exports_the_closed_hour_and_says_why_the_daily_destination_was_skipped(
    run: Run, engine: Engine, tmp_path: Path, dagster: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    _local_destination(
        run, tmp_path, "--project", "acme", "--name", "hourly", "--frequency", "hourly"
    )
    _local_destination(run, tmp_path, "--project", "acme", "--name", "daily")
    before = datetime.now(UTC)
    hour = before.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

    result = run(
        "backfill",
        "--project",
        "acme",
        "--since",
        hour.isoformat(),
        "--until",
        (hour + timedelta(hours=1)).isoformat(),
    )
    after = datetime.now(UTC)

    assert result.code == 0, result.err
    key = hour.strftime("%Y-%m-%d-%H:%M")
    assert f"1 hourly partitions queued ({key} to {key})" in result.out
    assert f"hourly (project {project_id}): hourly events" in result.out
    if hour.date() == before.date() == after.date():
        assert list(_launched(result.out)) == ["hourly"]
        assert f"skipped daily (project {project_id}): no closed daily window" in result.out
    elif hour.date() < before.date():
        # Between 00:00 and 01:00 UTC the last closed hour ends a day that has closed too.
        assert "1 daily partitions queued" in result.out
    found = _backfill(dagster, _launched(result.out)["hourly"])
    assert found["partitionNames"] == [key]
    tags = {t["key"]: t["value"] for t in found["tags"]}
    assert tags[PROJECT_TAG] == str(project_id)

    only_daily = run(
        "backfill",
        "--project",
        "acme",
        "--frequency",
        "daily",
        "--since",
        hour.isoformat(),
        "--until",
        (hour + timedelta(minutes=30)).isoformat(),
    )
    if hour.date() == before.date() == after.date():
        # Nothing at all to export: refused, naming each destination's reason.
        assert only_daily.code == 1
        assert "nothing to export: daily: no closed daily window" in only_daily.err
        assert "hourly: it exports hourly, the request asks for daily" in only_daily.err
