"""Deleting a person everywhere: raw, replays, webhook payloads, marts, and the client's bucket.

Real Postgres, the real dbt project, the export assets writing to the S3 protocol
server. The `privacy_deletions` sensor is evaluated tick by tick and each run it
asks for is executed in process on the same Dagster instance, as the daemon would
launch it (the daemon itself is exercised by the metrics backfill test).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource
from sqlalchemy import Engine, text

from lytics.crypto import Cipher
from lytics.exports.destinations import CIPHER_PURPOSE, add_destination
from lytics.privacy.erasure import erase
from lytics.privacy.identities import identity_hash
from lytics.privacy.requests import create_request
from lytics_assets.exports.definitions import build as build_exports
from lytics_assets.exports.resources import ExportsResource
from lytics_assets.metrics.jobs import refresh_metrics
from lytics_assets.metrics.project import dbt_project
from lytics_assets.privacy.definitions import build as build_privacy
from lytics_assets.privacy.sensors import privacy_deletions
from lytics_assets.resources import WarehouseResource
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.exports import CREDENTIALS, list_keys, new_bucket, s3_client
from tests.support.ingest import Ingest, new_project
from tests.support.pipeline import Pipeline, failures

DAY = "2026-11-20"
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)
EMAIL = "Person@Example.com"
# The person: signed in as u1 on two devices (a1, a2), and earlier known as old-id.
PERSON_EVENTS = [
    ("identify", None, "u1", "a1", {"traits": {"email": EMAIL}}),
    ("page", "/pricing", None, "a1", {}),
    ("page", "/docs", None, "a1", {}),
    ("track", None, "u1", "a2", {"event": "Signed Up"}),
    ("alias", None, "u1", None, {"previousId": "old-id"}),
    ("page", "/blog", None, "old-id", {}),
]
OTHER_EVENTS = [
    ("page", "/pricing", None, "b1", {}),
    ("page", "/", None, "b1", {}),
    ("track", None, "u2", "b1", {"event": "Purchase"}),
]


@dataclass
class World:
    project_id: int
    other_project_id: int
    bucket: str
    definitions: dg.Definitions
    instance: dg.DagsterInstance


def _insert(engine: Engine, project_id: int, rows: list[Any], tag: str) -> None:
    values = []
    for n, (kind, path, user, anonymous, extra) in enumerate(rows):
        at = HOUR + timedelta(minutes=n)
        payload = {"type": kind, "userId": user, "anonymousId": anonymous, **extra}
        values.append(
            {
                "project": project_id,
                "message": f"{tag}-{n}",
                "type": kind,
                "event": extra.get("event"),
                "anonymous": anonymous,
                "user": user,
                "at": at,
                "path": path,
                "payload": json.dumps(payload),
            }
        )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id,"
                " user_id, timestamp, original_timestamp, received_at, path, url, source,"
                " payload) VALUES (:project, :message, :type, :event, :anonymous, :user, :at,"
                " :at, :at, :path, 'https://site.example' || coalesce(:path, ''), 'segment',"
                " CAST(:payload AS jsonb))"
            ),
            values,
        )


def _insert_delivery(engine: Engine, project_id: int, delivery: str, to: str) -> None:
    payload = {"type": "email.delivered", "data": {"to": [to], "subject": "Weekly"}}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id,"
                " event_type, headers, body, payload, received_at) VALUES (:p, 'resend', :d,"
                " 'email.delivered', '{}', convert_to(:body, 'UTF8'), CAST(:body AS jsonb), :at)"
            ),
            {"p": project_id, "d": delivery, "body": json.dumps(payload), "at": HOUR},
        )


def _insert_replay(engine: Engine, project_id: int, session: str, user: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.replay_sessions (project_id, session_id, user_id) VALUES"
                " (:p, :s, :u)"
            ),
            {"p": project_id, "s": session, "u": user},
        )
        conn.execute(
            text(
                "INSERT INTO raw.replay_events (project_id, session_id, batch_id, event_count,"
                " events) VALUES (:p, :s, 'b1', 1, '[{\"type\": 2}]')"
            ),
            {"p": project_id, "s": session},
        )


def _exported_user_ids(endpoint: str, bucket: str) -> list[str | None]:
    client = s3_client(endpoint)
    found: list[str | None] = []
    for key in list_keys(endpoint, bucket):
        if key.endswith(".jsonl.gz"):
            body = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            found += [
                row.get("anonymous_id") or row.get("user_id")
                for row in map(json.loads, body.splitlines())
            ]
    return sorted(found, key=str)


def _execute(world: World, request: dg.RunRequest) -> None:
    assert request.job_name is not None
    job = world.definitions.resolve_job_def(request.job_name)
    tags = {**request.tags, "dagster/run_key": str(request.run_key)}
    if request.partition_key is not None:
        tags["dagster/partition"] = request.partition_key
    result = job.execute_in_process(
        instance=world.instance,
        run_config=request.run_config,
        tags=tags,
        asset_selection=list(request.asset_selection) if request.asset_selection else None,
        raise_on_error=False,
    )
    assert result.success, failures(result)


def _tick(world: World, database_url: str) -> list[dg.RunRequest]:
    context = dg.build_sensor_context(
        instance=world.instance,
        resources={"warehouse": WarehouseResource(database_url=database_url)},
    )
    result = privacy_deletions(context)
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or [])


def _status(engine: Engine, request_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM app.deletion_requests WHERE id = :id"), {"id": request_id}
            ).scalar_one()
        )


@pytest.fixture
def world(pipeline: Pipeline, engine: Engine, database_url: str, s3_endpoint: str) -> World:
    project_id, _, _ = new_project(engine, "shop")
    other_id, _, _ = new_project(engine, "other")
    _insert(engine, project_id, PERSON_EVENTS, "person")
    _insert(engine, project_id, OTHER_EVENTS, "b1")
    _insert(engine, other_id, PERSON_EVENTS, "same-ids-elsewhere")
    _insert_delivery(engine, project_id, "msg-person", EMAIL.lower())
    _insert_delivery(engine, project_id, "msg-other", "someone@example.org")
    _insert_replay(engine, project_id, "s-person", "u1")
    _insert_replay(engine, project_id, "s-other", "u2")
    bucket = new_bucket(s3_endpoint)
    with engine.begin() as conn:
        add_destination(
            conn,
            project_id=project_id,
            name="client",
            kind="s3",
            bucket=bucket,
            endpoint_url=s3_endpoint,
            credentials=CREDENTIALS,
            cipher=Cipher(TEST_SECRET, CIPHER_PURPOSE),
            fmt="jsonl",
            frequency="hourly",
        )
    exports = build_exports()
    definitions = dg.Definitions(
        assets=[*(exports.assets or []), pipeline.assets],
        jobs=[*(exports.jobs or []), refresh_metrics, *(build_privacy().jobs or [])],
        resources={
            "dbt": DbtCliResource(project_dir=dbt_project()),
            "warehouse": WarehouseResource(database_url=database_url),
            "exports": ExportsResource(secret_key=TEST_SECRET, default_backup=False),
        },
    )
    world = World(project_id, other_id, bucket, definitions, pipeline.instance)
    built = pipeline.build(DAY)
    assert built.success, failures(built)
    _execute(
        world,
        dg.RunRequest(
            run_key="initial-export",
            job_name="exports_hourly_job",
            partition_key="2026-11-20-10:00",
            asset_selection=[dg.AssetKey(["exports", "events_hourly"])],
        ),
    )
    return world


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_a_person_is_removed_from_raw_marts_and_exports_and_only_counts_remain(
    *,
    world: World,
    engine: Engine,
    database_url: str,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    person_ids = {"u1", "a1", "a2", "old-id"}
    assert person_ids & set(map(str, _exported_user_ids(s3_endpoint, world.bucket)))
    visitors_before = _count(
        engine,
        "SELECT unique_visitors FROM analytics.daily_site_metrics WHERE project_id = :p",
        p=world.project_id,
    )

    monkeypatch.setenv("DATABASE_URL", database_url)
    asked = invoke(monkeypatch, capsys, "privacy", "delete", "shop", "--user-id", "u1")
    assert asked.code == 0, asked.err
    request_id = int(asked.out.split()[2])
    assert _status(engine, request_id) == "pending"

    # pending -> one erase run
    [erase] = _tick(world, database_url)
    assert erase.job_name == "erase_person"
    assert _tick(world, database_url)[0].run_key == erase.run_key  # asked again, same key
    _execute(world, erase)
    assert _status(engine, request_id) == "erased"

    # erased -> the day's window rebuild and the hour's forced re-export
    rebuilds = _tick(world, database_url)
    assert sorted(str(r.job_name) for r in rebuilds) == ["exports_hourly_job", "refresh_metrics"]
    for request in rebuilds:
        _execute(world, request)
    # Asked again under the same run keys (the daemon launches a key once); every one
    # now has a run, so the request moves on.
    again = _tick(world, database_url)
    assert {r.run_key for r in again} == {r.run_key for r in rebuilds}
    assert _status(engine, request_id) == "rebuilding"
    assert _tick(world, database_url) == []
    assert _status(engine, request_id) == "done"

    # Raw: every linked identity gone, everyone else's rows untouched.
    assert (
        _count(
            engine,
            "SELECT count(*) FROM raw.events WHERE project_id = :p"
            " AND (user_id = ANY(:ids) OR anonymous_id = ANY(:ids))",
            p=world.project_id,
            ids=sorted(person_ids),
        )
        == 0
    )
    assert _count(
        engine, "SELECT count(*) FROM raw.events WHERE project_id = :p", p=world.project_id
    ) == len(OTHER_EVENTS)
    assert _count(
        engine, "SELECT count(*) FROM raw.events WHERE project_id = :p", p=world.other_project_id
    ) == len(PERSON_EVENTS)
    assert _count(engine, "SELECT count(*) FROM raw.webhook_deliveries") == 1
    assert _count(engine, "SELECT count(*) FROM raw.replay_sessions") == 1
    assert _count(engine, "SELECT count(*) FROM raw.replay_events") == 1

    # Marts: the person no longer counts. They were four visitors (a1, a2, old-id, and
    # the alias call's user:u1); b1 stays.
    assert (
        _count(
            engine,
            "SELECT unique_visitors FROM analytics.daily_site_metrics WHERE project_id = :p",
            p=world.project_id,
        )
        == visitors_before - 4
    )
    # And the range tiles' count of them (daily_visitor_recency) drops with it.
    assert (
        _count(
            engine,
            "SELECT sum(visitors) FROM analytics.daily_visitor_recency WHERE project_id = :p",
            p=world.project_id,
        )
        == visitors_before - 4
    )
    assert (
        _count(
            engine,
            "SELECT count(*) FROM analytics.int_events WHERE project_id = :p"
            " AND visitor_id = ANY(:ids)",
            p=world.project_id,
            ids=["a1", "a2", "old-id", "user:u1"],
        )
        == 0
    )

    # The client's bucket: the hour was rewritten without them.
    exported = _exported_user_ids(s3_endpoint, world.bucket)
    assert exported
    assert not person_ids & set(map(str, exported))

    # What stays: counts, and hashes of the identities (no identity in clear).
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT user_ids, anonymous_ids, emails, summary FROM app.deletion_requests"
                " WHERE id = :id"
            ),
            {"id": request_id},
        ).one()
        hashes = set(
            conn.execute(
                text("SELECT identity_hash FROM app.identity_suppressions WHERE project_id = :p"),
                {"p": world.project_id},
            ).scalars()
        )
    assert (row.user_ids, row.anonymous_ids, row.emails) == (None, None, None)
    assert row.summary["removed"] == {
        "raw.events": len(PERSON_EVENTS),
        "raw.replay_sessions": 1,
        "raw.replay_events": 1,
        "raw.webhook_deliveries": 1,
        "analytics.int_events": len(PERSON_EVENTS),
    }
    assert row.summary["identities"]["emails"] == 1
    assert identity_hash("user_id", "u1") in hashes
    assert identity_hash("anonymous_id", "a2") in hashes

    shown = invoke(monkeypatch, capsys, "privacy", "status", str(request_id))
    assert json.loads(shown.out)["status"] == "done"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one user id or anonymous id"),
        (["--user-id", "a\x00b"], "without NUL"),
        (["--anonymous-id", "x" * 501], "anonymousIds: each must be 1-500 characters"),
    ],
)
def test_a_malformed_request_is_refused_and_nothing_is_recorded(
    *,
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    new_project(engine, "shop")
    monkeypatch.setenv("DATABASE_URL", database_url)
    refused = invoke(monkeypatch, capsys, "privacy", "delete", "shop", *args)
    assert refused.code == 1
    assert message in refused.err
    assert _count(engine, "SELECT count(*) FROM app.deletion_requests") == 0


# --- the same through the read API ---------------------------------------------------------


def test_the_api_files_a_request_once_and_reports_it(api: Ingest) -> None:
    body = {"userIds": ["u1"], "emails": ["p@example.com"]}
    filed = api.post("/v1/privacy/deletions", json=body, headers=api.bearer(), auth=None)
    assert filed.status_code == 202, filed.text
    answer = filed.json()
    assert answer["status"] == "pending"
    # The same person again while the first is open: the same request, not a second one.
    again = api.post("/v1/privacy/deletions", json=body, headers=api.bearer(), auth=None)
    assert again.status_code == 202
    assert again.json()["id"] == answer["id"]
    assert _count(api.engine, "SELECT count(*) FROM app.deletion_requests") == 1

    state = api.get(f"/v1/privacy/deletions/{answer['id']}", headers=api.bearer())
    assert state.status_code == 200
    assert state.json()["status"] == "pending"
    assert state.json()["removed"] == {}


def test_a_key_sees_and_files_for_its_own_project_only(api: Ingest) -> None:
    _, _, other_secret = new_project(api.engine, "other")
    filed = api.post(
        "/v1/privacy/deletions", json={"anonymousIds": ["a1"]}, headers=api.bearer(), auth=None
    )
    request_id = filed.json()["id"]
    hidden = api.get(f"/v1/privacy/deletions/{request_id}", headers=api.bearer(other_secret))
    assert hidden.status_code == 404
    assert hidden.json()["error"] == "not_found"
    assert api.get("/v1/privacy/deletions/999999", headers=api.bearer()).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer lys_not-a-key"}, 401)],
)
def test_the_api_wants_a_secret_key(api: Ingest, headers: dict[str, str], status: int) -> None:
    answer = api.post("/v1/privacy/deletions", json={"userIds": ["u1"]}, headers=headers, auth=None)
    assert answer.status_code == status
    written = api.post(
        "/v1/privacy/deletions",
        json={"userIds": ["u1"]},
        headers=api.bearer(api.write_key),
        auth=None,
    )
    assert written.status_code == 401
    assert _count(api.engine, "SELECT count(*) FROM app.deletion_requests") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{}", "userIds"),
        (b'{"userIds": []}', "userIds"),
        (b'{"userIds": ["u1"], "name": "x"}', None),
        (b'{"userIds": ["a\\u0000b"]}', "userIds"),
        (b'{"userIds": [""]}', None),
        (json.dumps({"userIds": ["x" * 501]}).encode(), None),
        (json.dumps({"userIds": [f"u{n}" for n in range(101)]}).encode(), None),
        (b'{"userIds": "u1"}', None),
        (b"not json", None),
        (b'{"userIds": ["\xff\xfe"]}', None),
    ],
)
def test_malformed_requests_are_400_and_nothing_is_filed(
    api: Ingest, body: bytes, field: str | None
) -> None:
    answer = api.post(
        "/v1/privacy/deletions",
        content=body,
        headers={**api.bearer(), "Content-Type": "application/json"},
        auth=None,
    )
    assert answer.status_code == 400, answer.text
    if field is not None:
        assert answer.json()["field"] == field
    assert _count(api.engine, "SELECT count(*) FROM app.deletion_requests") == 0


def test_a_deleted_persons_later_events_are_answered_and_stored_nowhere(api: Ingest) -> None:
    with api.engine.begin() as conn:
        request = create_request(conn, "site", user_ids=["u1"], requested_by="cli")
    erase(api.engine, request.id, "test-run")
    before = api.get("/metrics").text

    late = [
        {"type": "track", "event": "E", "userId": "u1", "messageId": "late-1"},
        {"type": "page", "anonymousId": "a9", "userId": "u1", "messageId": "late-2"},
        {"type": "track", "event": "E", "userId": "u2", "messageId": "other-1"},
    ]
    answer = api.post("/v1/batch", json={"batch": late})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 3
    single = api.post("/v1/track", json={"event": "E", "userId": "u1", "messageId": "late-3"})
    assert single.status_code == 200
    assert single.json()["status"] == "accepted"
    assert api.scalar("SELECT array_agg(message_id) FROM raw.events") == ["other-1"]
    after = api.get("/metrics").text
    assert (
        _sample(after, 'lytics_events_total{reason="",result="suppressed"}')
        - _sample(before, 'lytics_events_total{reason="",result="suppressed"}')
        == 3
    )


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0
