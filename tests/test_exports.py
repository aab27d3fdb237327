"""Exports end to end against Postgres and a real S3 protocol server (moto's, over HTTP).

Every test writes real rows into raw.*, runs the exporter, and reads what
landed back the way a customer would (pyarrow.dataset / DuckDB with Hive
partitioning, gzip + json, CSV), comparing with the source rows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as pads
import pytest
from pyarrow import fs
from sqlalchemy import Engine, text

from lytics.crypto import Cipher
from lytics.exports.destinations import CIPHER_PURPOSE, Destination, add_destination
from lytics.exports.runner import ExportReport, ExportRequest, check_window, export_window
from lytics.exports.stores import LocalStore, S3Credentials, S3Store, Staged
from lytics.exports.windows import Window
from lytics.settings import Settings
from tests.support import TEST_SECRET
from tests.support.exports import (
    CREDENTIALS,
    FailingProxy,
    insert_events,
    insert_metrics,
    list_keys,
    list_uploads,
    new_bucket,
    s3_client,
)
from tests.support.ingest import new_project

DAY = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = DAY + timedelta(hours=10)


def _settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "exports_default_backup": False,
        "exports_s3_max_attempts": 2,
        "exports_upload_concurrency": 2,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def _s3_destination(
    engine: Engine,
    endpoint: str,
    bucket: str,
    project_id: int | None,
    *,
    name: str = "client",
    fmt: str = "parquet",
    frequency: str = "hourly",
    datasets: tuple[str, ...] = ("events",),
    credentials: S3Credentials = CREDENTIALS,
) -> Destination:
    with engine.begin() as conn:
        return add_destination(
            conn,
            project_id=project_id,
            name=name,
            kind="s3",
            bucket=bucket,
            prefix="lytics/exports",
            region="us-east-1",
            endpoint_url=endpoint,
            credentials=credentials,
            cipher=Cipher(TEST_SECRET, CIPHER_PURPOSE),
            fmt=fmt,
            frequency=frequency,
            datasets=datasets,
        )


def _export(
    settings: Settings, database_url: str, window: Window, dataset: str = "events", **kw: Any
) -> ExportReport:
    run_id = kw.pop("run_id", f"run-{window.partition_key}")
    return export_window(database_url, settings, ExportRequest(dataset, window, run_id, **kw))


def _source(engine: Engine, project_id: int, start: datetime, end: datetime) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id, message_id, user_id, payload, timestamp, received_at"
                    " FROM raw.events WHERE project_id = :p"
                    " AND received_at >= :s AND received_at < :e ORDER BY id"
                ),
                {"p": project_id, "s": start, "e": end},
            )
        )


def _arrow_s3(endpoint: str) -> fs.S3FileSystem:
    return fs.S3FileSystem(
        endpoint_override=endpoint.removeprefix("http://"),
        scheme="http",
        access_key=CREDENTIALS.access_key_id,
        secret_key=CREDENTIALS.secret_access_key,
        region="us-east-1",
    )


def _get(endpoint: str, bucket: str, key: str) -> bytes:
    body: bytes = s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _manifest(endpoint: str, bucket: str, key: str) -> dict[str, Any]:
    return dict(json.loads(_get(endpoint, bucket, key)))


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_every_format_holds_exactly_the_source_rows(
    fmt: str, engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 500, HOUR)
    insert_events(engine, project_id, 40, HOUR + timedelta(hours=1))  # next window: not in this one
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id, fmt=fmt)
    # Small files: the partition spans several of them.
    cfg = _settings(settings, exports_file_mb=0.004, exports_block_mb=0.02)

    report = _export(cfg, database_url, Window("hourly", HOUR))

    assert [u.status for u in report.units] == ["exported"]
    directory = f"lytics/exports/events/project={project_id}/dt=2026-11-20/hour=10"
    manifest = _manifest(s3_endpoint, bucket, f"{directory}/_manifest.json")
    files = manifest["files"]
    assert len(files) > 1, "the partition should have rolled over several files"
    assert manifest["rows"] == 500 == sum(f["rows"] for f in files)
    assert manifest["format"] == fmt
    assert manifest["window"]["start"] == HOUR.isoformat()
    assert list_keys(s3_endpoint, bucket, directory) == sorted(
        [f["key"] for f in files] + [f"{directory}/_manifest.json"]
    )
    rows: list[dict[str, Any]] = []
    for entry in files:
        data = _get(s3_endpoint, bucket, entry["key"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows += pq.read_table(io.BytesIO(data)).to_pylist()
        elif fmt == "jsonl":
            assert entry["key"].endswith(".jsonl.gz")
            rows += [json.loads(line) for line in gzip.decompress(data).splitlines()]
        else:
            assert entry["key"].endswith(".csv.gz")
            rows += list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))
    source = _source(engine, project_id, HOUR, HOUR + timedelta(hours=1))
    assert [str(r["id"]) for r in rows] == [str(s.id) for s in source]
    assert [r["message_id"] for r in rows] == [s.message_id for s in source]
    # NULL stays NULL where the format has one; CSV writes it as an empty field.
    assert [r["user_id"] or None for r in rows] == [s.user_id for s in source]
    payloads = [r["payload"] if fmt == "jsonl" else json.loads(r["payload"]) for r in rows]
    assert payloads == [s.payload for s in source]
    assert "newline\nend" in payloads[0]["text"]


def test_exported_events_carry_the_ip_and_user_agent_stored_once(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    # Stored as the writer stores them since migration 0014: a value the payload holds
    # is not in its column, which keeps only the request's when the payload has none.
    project_id, _, _ = new_project(engine, "acme")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, timestamp, received_at,"
                " source, ip, user_agent, payload) VALUES"
                " (:p, 'a', 'track', :t, :t, 'segment', NULL, NULL, CAST(:a AS jsonb)),"
                " (:p, 'b', 'page', :t, :t, 'collect', '127.0.0.1', NULL, CAST(:b AS jsonb)),"
                " (:p, 'c', 'track', :t, :t, 'native', '127.0.0.1', 'header/1', '{}')"
            ),
            {
                "p": project_id,
                "t": HOUR + timedelta(minutes=5),
                "a": json.dumps({"context": {"ip": "203.0.113.9", "userAgent": "UA/1"}}),
                "b": json.dumps({"userAgent": "UA/2"}),
            },
        )
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id, fmt="jsonl")

    report = _export(_settings(settings), database_url, Window("hourly", HOUR))

    assert [u.status for u in report.units] == ["exported"]
    directory = f"lytics/exports/events/project={project_id}/dt=2026-11-20/hour=10"
    manifest = _manifest(s3_endpoint, bucket, f"{directory}/_manifest.json")
    rows = [
        json.loads(line)
        for entry in manifest["files"]
        for line in gzip.decompress(_get(s3_endpoint, bucket, entry["key"])).splitlines()
    ]
    assert [(r["message_id"], r["ip"], r["user_agent"]) for r in rows] == [
        ("a", "203.0.113.9", "UA/1"),
        ("b", "127.0.0.1", "UA/2"),
        ("c", "127.0.0.1", "header/1"),
    ]


def _tick_to_the_next_second() -> None:
    """Wait until the wall clock's second changes: a header that carried the write time
    (gzip's mtime has a one-second resolution) would then differ between two writes."""
    start = int(time.time())
    deadline = time.monotonic() + 5
    while int(time.time()) == start:
        assert time.monotonic() < deadline, "the clock did not move"
        time.sleep(0.01)


def _objects(endpoint: str, bucket: str, keys: list[str]) -> dict[str, tuple[bytes, str]]:
    client = s3_client(endpoint)
    found = {}
    for key in keys:
        got = client.get_object(Bucket=bucket, Key=key)
        found[key] = (got["Body"].read(), got["ETag"])
    return found


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_reexporting_the_same_rows_writes_the_same_bytes_and_etags(
    fmt: str, engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 400, HOUR)
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id, fmt=fmt)
    # Several files per partition, so the file boundaries must be reproducible too.
    cfg = _settings(settings, exports_file_mb=0.004, exports_block_mb=0.02)
    window = Window("hourly", HOUR)
    directory = f"lytics/exports/events/project={project_id}/dt=2026-11-20/hour=10"

    first = _export(cfg, database_url, window, run_id="first", force=True)
    keys = [
        f["key"] for f in _manifest(s3_endpoint, bucket, f"{directory}/_manifest.json")["files"]
    ]
    before = _objects(s3_endpoint, bucket, keys)
    _tick_to_the_next_second()
    second = _export(cfg, database_url, window, run_id="second", force=True)
    manifest = _manifest(s3_endpoint, bucket, f"{directory}/_manifest.json")
    after = _objects(s3_endpoint, bucket, [f["key"] for f in manifest["files"]])

    assert [u.status for u in first.units + second.units] == ["exported", "exported"]
    assert manifest["run_id"] == "second"  # the partition was really written again
    assert len(before) > 1
    assert after == before  # same keys, same bytes, same ETags read back over S3
    if fmt != "parquet":
        for data, _ in after.values():
            # gzip header (RFC 1952): FLG without FNAME (0x08), MTIME zero.
            assert data[:2] == b"\x1f\x8b"
            assert not data[3] & 0x08
            assert data[4:8] == b"\x00\x00\x00\x00"


def test_metrics_dataset_exports_with_its_own_schema(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_metrics(engine, project_id, 30, HOUR)
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id, datasets=("events", "metrics"))

    report = _export(_settings(settings), database_url, Window("hourly", HOUR), "metrics")

    assert [(u.status, u.rows) for u in report.units] == [("exported", 30)]
    table = pads.dataset(
        f"{bucket}/lytics/exports/metrics", filesystem=_arrow_s3(s3_endpoint), partitioning="hive"
    ).to_table()
    assert sorted(table.column("metric_value").to_pylist()) == [g * 1.5 for g in range(1, 31)]
    assert table.schema.field("metric_date").type == "date32[day]"


# --------------------------------------------------------------------------- layout


def test_a_day_of_hourly_partitions_reads_back_as_one_hive_dataset(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    acme, _, _ = new_project(engine, "acme")
    other, _, _ = new_project(engine, "other")
    for hour in (0, 7, 23):
        insert_events(engine, acme, 50 + hour, DAY + timedelta(hours=hour))
    insert_events(engine, other, 10, DAY + timedelta(hours=7))
    insert_events(engine, acme, 5, DAY + timedelta(days=1))  # the next day
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, acme)
    cfg = _settings(settings)

    for hour in range(24):
        report = _export(cfg, database_url, Window("hourly", DAY + timedelta(hours=hour)))
        assert not report.failed

    dataset = pads.dataset(
        f"{bucket}/lytics/exports/events",
        filesystem=_arrow_s3(s3_endpoint),
        format="parquet",
        partitioning="hive",
    )
    day = dataset.to_table(filter=pads.field("dt") == "2026-11-20")
    source = _source(engine, acme, DAY, DAY + timedelta(days=1))
    assert sorted(day.column("id").to_pylist()) == [s.id for s in source]
    assert set(day.column("project").to_pylist()) == {acme}  # another project's rows never leak
    assert sorted(set(day.column("hour").to_pylist())) == [0, 7, 23]
    # 24 manifests: an empty hour is published too (the customer's "done" signal).
    manifests = [k for k in list_keys(s3_endpoint, bucket) if k.endswith("_manifest.json")]
    assert len(manifests) == 24


def test_late_events_are_exported_in_the_window_they_arrived_in(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    # Happened three days ago (a phone that was offline), arrived in this hour.
    insert_events(engine, project_id, 25, HOUR, event_time=HOUR - timedelta(days=3))
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id, frequency="daily")

    report = _export(_settings(settings), database_url, Window("daily", DAY))

    assert [(u.status, u.rows) for u in report.units] == [("exported", 25)]
    table = pads.dataset(
        f"{bucket}/lytics/exports/events", filesystem=_arrow_s3(s3_endpoint), partitioning="hive"
    ).to_table()
    assert set(table.column("dt").to_pylist()) == {"2026-11-20"}
    assert max(table.column("timestamp").to_pylist()) < DAY - timedelta(days=2)
    # Their event-time day exports nothing: no event is counted twice.
    earlier = _export(_settings(settings), database_url, Window("daily", DAY - timedelta(days=3)))
    assert [u.rows for u in earlier.units] == [0]


# --------------------------------------------------------------------------- re-runs


def test_rerun_after_source_rows_are_deleted_leaves_no_stale_object(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 600, HOUR)
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id)
    cfg = _settings(settings, exports_file_mb=0.005, exports_block_mb=0.02)
    window = Window("hourly", HOUR)
    first = _export(cfg, database_url, window, run_id="first")
    assert len(first.units[0].keys) >= 3

    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM raw.events WHERE id > (SELECT min(id) + 99 FROM raw.events)")
        )
    second = _export(cfg, database_url, window, run_id="second")

    [unit] = second.units
    assert (unit.status, unit.rows) == ("exported", 100)
    assert len(unit.keys) < len(first.units[0].keys)
    # Exactly the new version: no old part file, no staging left anywhere in the bucket.
    assert list_keys(s3_endpoint, bucket) == sorted([*unit.keys, unit.manifest_key])
    assert list_uploads(s3_endpoint, bucket) == []
    table = pads.dataset(
        f"{bucket}/lytics/exports/events", filesystem=_arrow_s3(s3_endpoint), partitioning="hive"
    ).to_table()
    assert table.num_rows == 100
    assert _manifest(s3_endpoint, bucket, str(unit.manifest_key))["run_id"] == "second"


def test_rerun_with_unchanged_source_skips_and_force_rewrites(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 50, HOUR)
    bucket = new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, bucket, project_id)
    window, cfg = Window("hourly", HOUR), _settings(settings)
    _export(cfg, database_url, window, run_id="one")

    again = _export(cfg, database_url, window, run_id="two")
    assert [(u.status, u.rows) for u in again.units] == [("skipped", 50)]
    key = str(again.units[0].manifest_key)
    assert _manifest(s3_endpoint, bucket, key)["run_id"] == "one"

    forced = _export(cfg, database_url, window, run_id="three", force=True)
    assert [u.status for u in forced.units] == ["exported"]
    assert _manifest(s3_endpoint, bucket, key)["run_id"] == "three"

    # A manifest deleted at the destination is noticed: the partition is exported again.
    s3_client(s3_endpoint).delete_object(Bucket=bucket, Key=key)
    assert [u.status for u in _export(cfg, database_url, window).units] == ["exported"]


def test_upload_failing_half_way_leaves_no_manifest_and_a_rerun_completes_it(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 600, HOUR)
    bucket = new_bucket(s3_endpoint)
    cfg = _settings(settings, exports_file_mb=0.005, exports_block_mb=0.02)
    window = Window("hourly", HOUR)
    directory = f"lytics/exports/events/project={project_id}/dt=2026-11-20/hour=10"
    with FailingProxy(s3_endpoint, healthy_uploads=2).running() as proxy:
        _s3_destination(engine, proxy.url, bucket, project_id)

        failed = _export(cfg, database_url, window, run_id="broken")

        [unit] = failed.units
        assert unit.status == "failed"
        assert "ServiceUnavailable" in str(unit.error)
        assert proxy.refused >= 2, "the upload was retried before giving up"
        keys = list_keys(s3_endpoint, bucket)
        assert f"{directory}/_manifest.json" not in keys
        assert not [k for k in keys if k.startswith(directory)], "nothing was promoted"
        # The files staged before the failure (multipart uploads) were aborted.
        assert list_uploads(s3_endpoint, bucket) == []
        with engine.connect() as conn:
            status, error = conn.execute(text("SELECT status, error FROM exports.partitions")).one()
        assert status == "failed"
        assert "ServiceUnavailable" in error

        proxy.heal()
        retried = _export(cfg, database_url, window, run_id="healed")

    [unit] = retried.units
    assert (unit.status, unit.rows) == ("exported", 600)
    assert list_keys(s3_endpoint, bucket) == sorted([*unit.keys, f"{directory}/_manifest.json"])
    assert list_uploads(s3_endpoint, bucket) == []
    table = pads.dataset(
        f"{bucket}/lytics/exports/events", filesystem=_arrow_s3(s3_endpoint), partitioning="hive"
    ).to_table()
    assert sorted(table.column("id").to_pylist()) == [
        s.id for s in _source(engine, project_id, HOUR, HOUR + timedelta(hours=1))
    ]


def test_a_failed_replacement_keeps_the_previous_complete_version(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 300, HOUR)
    bucket = new_bucket(s3_endpoint)
    cfg = _settings(settings, exports_file_mb=0.005, exports_block_mb=0.02)
    window = Window("hourly", HOUR)
    with FailingProxy(s3_endpoint, healthy_uploads=1000).running() as proxy:
        _s3_destination(engine, proxy.url, bucket, project_id)
        first = _export(cfg, database_url, window, run_id="v1")
        before = list_keys(s3_endpoint, bucket)
        insert_events(engine, project_id, 300, HOUR)
        proxy.healthy_uploads = proxy.uploads + 1  # the new version fails while staging

        second = _export(cfg, database_url, window, run_id="v2")

    assert second.units[0].status == "failed"
    # Readers still see version 1, whole: same keys, and its manifest.
    assert list_keys(s3_endpoint, bucket) == before
    assert list_uploads(s3_endpoint, bucket) == []
    assert _manifest(s3_endpoint, bucket, str(first.units[0].manifest_key))["run_id"] == "v1"


# --------------------------------------------------------------------------- staging


def _missing(endpoint: str, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3_client(endpoint).head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


def test_a_staged_s3_file_is_invisible_until_promoted_and_is_never_copied(
    s3_endpoint: str, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_endpoint)
    store = S3Store(
        bucket,
        region="us-east-1",
        endpoint_url=s3_endpoint,
        credentials=CREDENTIALS,
        multipart_bytes=5 * 1024 * 1024,  # S3's smallest part but the last
        concurrency=2,
    )
    big, small = tmp_path / "big", tmp_path / "small"
    big.write_bytes(hashlib.sha256(b"seed").digest() * (11 * 1024 * 1024 // 32 + 5))
    small.write_bytes(b"tiny")
    key = "p/events/project=1/dt=2026-11-20/hour=10/part-00000.parquet"
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key=key, Body=b"previous version")

    staged = store.stage(big, key, "application/vnd.apache.parquet")

    # Uploaded in 3 parts at its final key, yet readers still see the previous version.
    assert [p.number for p in staged.parts] == [1, 2, 3]
    assert _get(s3_endpoint, bucket, key) == b"previous version"
    assert list_uploads(s3_endpoint, bucket) == [(key, staged.handle)]
    assert store.staged_under("p/events/project=1/dt=2026-11-20/hour=10") == [
        Staged(key, staged.handle)
    ]
    assert store.staged_under("p/events/project=1/dt=2026-11-20") == []  # not a daily file

    new_key = key.replace("00000", "00001")
    staged_new = store.stage(small, new_key, "application/vnd.apache.parquet")
    assert _missing(s3_endpoint, bucket, new_key)  # HEAD: 404 while staged
    assert (new_key, staged_new.handle) in list_uploads(s3_endpoint, bucket)
    assert list_keys(s3_endpoint, bucket) == [key]

    store.promote(staged)
    store.promote(staged_new)

    assert _get(s3_endpoint, bucket, key) == big.read_bytes()
    assert _get(s3_endpoint, bucket, new_key) == b"tiny"
    head = s3_client(s3_endpoint).head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "application/vnd.apache.parquet"
    assert list_uploads(s3_endpoint, bucket) == []

    dropped = store.stage(small, "p/other/part-00000.parquet", "text/csv")
    store.abort(dropped)
    store.abort(dropped)  # already gone: not an error
    assert _missing(s3_endpoint, bucket, "p/other/part-00000.parquet")
    assert list_uploads(s3_endpoint, bucket) == []


def test_a_staged_folder_file_is_invisible_until_promoted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    source = tmp_path / "part"
    source.write_bytes(b"data")
    key = "events/project=1/dt=2026-11-20/hour=10/part-00000.parquet"

    staged = store.stage(source, key, "application/vnd.apache.parquet")

    assert store.list("events/") == []
    assert store.staged_under("events/project=1/dt=2026-11-20/hour=10") == [staged]
    store.promote(staged)
    assert store.list("events/") == [key]
    assert store.get_bytes(key) == b"data"
    assert store.staged_under("events/project=1/dt=2026-11-20/hour=10") == []
    assert not (tmp_path / "root" / "_staging").exists()
    store.abort(store.stage(source, key, "text/csv"))
    assert not (tmp_path / "root" / "_staging").exists()


# --------------------------------------------------------------------------- destinations


def test_backup_copy_matches_client_copy_and_a_rerun_retries_only_what_failed(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 200, HOUR)
    client_bucket, backup_bucket = f"missing-{new_bucket(s3_endpoint)}", new_bucket(s3_endpoint)
    _s3_destination(engine, s3_endpoint, client_bucket, project_id)
    _s3_destination(engine, s3_endpoint, backup_bucket, None, name="backup")
    cfg, window = _settings(settings), Window("hourly", HOUR)

    first = _export(cfg, database_url, window)

    by_owner = {u.destination: u for u in first.units}
    client, backup = by_owner["client (project 1)"], by_owner["backup (backup)"]
    assert client.status == "failed"
    assert client.permanent
    assert "NoSuchBucket" in str(client.error)
    assert backup.status == "exported"  # the client's broken bucket does not stop the backup

    s3_client(s3_endpoint).create_bucket(Bucket=client_bucket)
    second = _export(cfg, database_url, window)

    assert {u.destination: u.status for u in second.units} == {
        "client (project 1)": "exported",
        "backup (backup)": "skipped",
    }
    copies = []
    for bucket in (client_bucket, backup_bucket):
        table = pads.dataset(
            f"{bucket}/lytics/exports/events",
            filesystem=_arrow_s3(s3_endpoint),
            partitioning="hive",
        ).to_table()
        copies.append(table.sort_by("id"))
    assert copies[0].equals(copies[1])
    assert copies[0].num_rows == 200
    client_keys = [k.split("/", 2)[2] for k in list_keys(s3_endpoint, client_bucket)]
    assert client_keys == [k.split("/", 2)[2] for k in list_keys(s3_endpoint, backup_bucket)]


def test_bad_credentials_fail_with_a_clear_message_that_holds_no_secret(
    engine: Engine,
    database_url: str,
    settings: Settings,
    s3_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from moto.core.authorization import enable_iam_authentication

    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 10, HOUR)
    bucket = new_bucket(s3_endpoint)
    wrong = S3Credentials("AKIDWRONGWRONGWRONG", "definitely-not-the-secret-key-42")
    _s3_destination(engine, s3_endpoint, bucket, project_id, credentials=wrong)

    caplog.set_level(logging.DEBUG)
    # moto's server checks signatures against its IAM users only when asked to.
    with enable_iam_authentication():
        report = _export(_settings(settings), database_url, Window("hourly", HOUR))

    [unit] = report.units
    assert unit.status == "failed"
    assert unit.permanent
    assert "InvalidAccessKeyId" in str(unit.error)
    assert "access key id is not known" in str(unit.error)
    logged = caplog.text + str(unit.error)
    assert wrong.secret_access_key not in logged
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT error FROM exports.partitions")).scalar_one()
        blob = conn.execute(
            text("SELECT credentials_encrypted FROM app.export_destinations")
        ).scalar_one()
    assert wrong.secret_access_key not in stored
    assert wrong.secret_access_key.encode() not in bytes(blob)


def test_local_folder_destination_behaves_the_same(
    engine: Engine, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 400, HOUR)
    root = tmp_path / "exports"
    cfg = _settings(settings, exports_file_mb=0.005, exports_block_mb=0.02, exports_local_dir=root)
    cfg = cfg.model_copy(update={"exports_default_backup": True})  # the `make dev` default
    window = Window("hourly", HOUR)

    first = _export(cfg, database_url, window)

    [unit] = first.units
    assert (unit.destination, unit.status, unit.rows) == ("backup (backup)", "exported", 400)
    directory = root / f"events/project={project_id}/dt=2026-11-20/hour=10"
    assert (directory / "_manifest.json").is_file()
    day = duckdb.sql(
        f"SELECT id FROM read_parquet('{root}/events/*/*/*/*.parquet', hive_partitioning = true)"
        " WHERE dt = '2026-11-20' ORDER BY id"
    ).fetchall()
    source = _source(engine, project_id, HOUR, HOUR + timedelta(hours=1))
    assert [r[0] for r in day] == [s.id for s in source]

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM raw.events WHERE id % 4 <> 0"))
    second = _export(cfg, database_url, window)

    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == sorted([k for k in second.units[0].keys] + [str(second.units[0].manifest_key)])
    assert not (root / "_staging").exists() or not any((root / "_staging").rglob("*.parquet"))
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{directory}/*.parquet')").fetchall()
    assert count == [(100,)]


def test_asset_check_compares_manifest_rows_with_the_source(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    project_id, _, _ = new_project(engine, "acme")
    insert_events(engine, project_id, 70, HOUR)
    bucket = new_bucket(s3_endpoint)
    destination = _s3_destination(engine, s3_endpoint, bucket, project_id)
    cfg, window = _settings(settings), Window("hourly", HOUR)
    _export(cfg, database_url, window)

    [row] = check_window(database_url, cfg, "events", window, {destination.id})
    assert (row.manifest_rows, row.source_rows, row.ok) == (70, 70, True)

    insert_events(engine, project_id, 3, HOUR)  # arrived after the export
    [row] = check_window(database_url, cfg, "events", window, {destination.id})
    assert (row.manifest_rows, row.source_rows, row.ok) == (70, 73, False)


# --------------------------------------------------------------------------- roles


def test_roles_see_and_change_only_what_exports_need(
    engine: Engine, database_url: str, settings: Settings, s3_endpoint: str
) -> None:
    import psycopg

    from lytics.warehouse.urls import libpq_dsn

    acme, _, _ = new_project(engine, "acme")
    other, _, _ = new_project(engine, "other")
    bucket = new_bucket(s3_endpoint)
    for project in (acme, other):
        insert_events(engine, project, 5, HOUR)
        _s3_destination(engine, s3_endpoint, bucket, project, name=f"d{project}")
    _export(_settings(settings), database_url, Window("hourly", HOUR))

    with psycopg.connect(libpq_dsn(database_url), options="-c role=lytics_reader") as reader:
        reader.execute("SELECT set_config('lytics.project_id', %s, false)", (str(acme),))
        names = reader.execute("SELECT name FROM app.export_destinations").fetchall()
        assert names == [(f"d{acme}",)]
        owners = reader.execute("SELECT DISTINCT project_id FROM exports.partitions").fetchall()
        assert owners == [(acme,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT credentials_encrypted FROM app.export_destinations")

    with psycopg.connect(libpq_dsn(database_url), options="-c role=lytics_pipeline") as pipeline:
        # It may add the deployment's backup, never a client's destination.
        pipeline.execute(
            "INSERT INTO app.export_destinations (name, kind, local_path, is_backup)"
            " VALUES ('b', 'local', '/tmp/x', true)"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pipeline.execute(
                "INSERT INTO app.export_destinations (project_id, name, kind, local_path)"
                " VALUES (%s, 'c', 'local', '/tmp/x')",
                (acme,),
            )
