"""`lytics exports`: destinations add/list/test/remove, and backfills through Dagster."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

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


def test_backfill_queues_a_dagster_backfill(
    run: Run, monkeypatch: pytest.MonkeyPatch, dagster_graphql_url: str
) -> None:
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", dagster_graphql_url)
    result = run(
        "backfill", "--since", "2026-11-01", "--until", "2026-11-03", "--dataset", "events"
    )
    assert result.code == 0, result.err
    assert "2 daily partitions queued" in result.out

    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", "http://127.0.0.1:9/graphql")
    down = run("backfill", "--since", "2026-11-01", "--until", "2026-11-03")
    assert down.code == 1
    assert "Dagster is unreachable" in down.err
