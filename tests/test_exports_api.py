"""GET /v1/exports/config, GET /v1/exports/status and POST /v1/exports/run over real HTTP.

`run` launches a backfill on a real dagster-webserver (no daemon, so it stays
queued) and the test reads the backfill back from Dagster's GraphQL API.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from lytics.crypto import Cipher
from lytics.exports.backfills import FORCE_TAG, FORMAT_TAG, PROJECT_TAG
from lytics.exports.destinations import CIPHER_PURPOSE, add_destination
from lytics.exports.runner import ExportRequest, export_window
from lytics.exports.windows import Window
from lytics.settings import Settings
from tests.support import TEST_SECRET
from tests.support.exports import CREDENTIALS, insert_events, new_bucket
from tests.support.http import free_port
from tests.support.ingest import Ingest, new_project, served_ingest

HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      partitionNames assetSelection { path } tags { key value }
    }
  }
}
"""


def _destination(engine: Engine, project_id: int | None, name: str, **kw: Any) -> None:
    values: dict[str, Any] = {
        "kind": "s3",
        "bucket": f"bucket-{name}",
        "region": "eu-west-1",
        "credentials": CREDENTIALS,
        "cipher": Cipher(TEST_SECRET, CIPHER_PURPOSE),
    }
    values.update(kw)
    with engine.begin() as conn:
        add_destination(conn, project_id=project_id, name=name, **values)


@pytest.fixture
def api_settings(settings: Settings, dagster_graphql_url: str) -> Settings:
    return settings.model_copy(update={"dagster_graphql_url": dagster_graphql_url})


def test_endpoints_need_a_secret_key(api: Ingest) -> None:
    for method, path in (
        ("GET", "/v1/exports/config"),
        ("GET", "/v1/exports/status"),
        ("POST", "/v1/exports/run?since=2026-11-20T00:00:00Z"),
    ):
        anonymous = httpx.request(method, f"{api.base}{path}")
        assert anonymous.status_code == 401, path
        with_write_key = httpx.request(
            method, f"{api.base}{path}", headers=api.bearer(api.write_key)
        )
        assert with_write_key.status_code == 401, path
        assert with_write_key.json()["error"] == "unauthorized"


def test_config_lists_the_projects_destinations_without_credentials(api: Ingest) -> None:
    _destination(
        api.engine,
        api.project_id,
        "warehouse",
        prefix="raw/lytics",
        fmt="csv",
        frequency="hourly",
        datasets=("events", "metrics"),
    )
    other, _, _ = new_project(api.engine, "other")
    _destination(api.engine, other, "theirs")
    _destination(api.engine, None, "backup")

    response = api.get("/v1/exports/config", headers=api.bearer())

    assert response.status_code == 200
    body = response.json()
    [destination] = body["destinations"]
    assert destination["name"] == "warehouse"
    assert destination["bucket"] == "bucket-warehouse"
    assert (destination["format"], destination["frequency"]) == ("csv", "hourly")
    assert destination["datasets"] == ["events", "metrics"]
    assert destination["layout"] == (
        f"raw/lytics/{{dataset}}/project={api.project_id}/dt=YYYY-MM-DD/hour=HH/part-00000.csv.gz"
    )
    assert CREDENTIALS.access_key_id not in response.text
    assert CREDENTIALS.secret_access_key not in response.text
    assert "credentials" not in response.text


def test_status_shows_this_projects_partitions_and_filters(
    api: Ingest, settings: Settings, database_url: str, s3_endpoint: str
) -> None:
    other, _, _ = new_project(api.engine, "other")
    good = new_bucket(s3_endpoint)
    _destination(
        api.engine,
        api.project_id,
        "good",
        bucket=good,
        endpoint_url=s3_endpoint,
        frequency="hourly",
    )
    _destination(
        api.engine,
        api.project_id,
        "broken",
        bucket=f"no-{good}",
        endpoint_url=s3_endpoint,
        frequency="hourly",
    )
    _destination(
        api.engine, other, "theirs", bucket=good, endpoint_url=s3_endpoint, frequency="hourly"
    )
    for project in (api.project_id, other):
        insert_events(api.engine, project, 20, HOUR)
    cfg = settings.model_copy(
        update={"exports_default_backup": False, "exports_s3_max_attempts": 1}
    )
    export_window(database_url, cfg, ExportRequest("events", Window("hourly", HOUR), "run-1"))

    response = api.get("/v1/exports/status", headers=api.bearer())

    assert response.status_code == 200
    body = response.json()
    assert body["totals"] == {"succeeded": 1, "failed": 1}
    states = {p["destination"]: p for p in body["partitions"]}
    assert set(states) == {"good", "broken"}  # never another project's
    assert states["good"]["status"] == "succeeded"
    assert states["good"]["rows"] == 20
    assert states["good"]["manifest_key"].endswith(
        f"events/project={api.project_id}/dt=2026-11-20/hour=10/_manifest.json"
    )
    assert states["broken"]["status"] == "failed"
    assert "NoSuchBucket" in states["broken"]["error"]
    assert states["broken"]["manifest_key"] is None

    failed = api.get("/v1/exports/status?status=failed", headers=api.bearer()).json()
    assert [p["destination"] for p in failed["partitions"]] == ["broken"]
    invalid = api.get("/v1/exports/status?status=done", headers=api.bearer())
    assert invalid.status_code == 400
    assert invalid.json()["field"] == "status"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "since"),
        ("since=2026-11-20T05:00:00Z&until=2026-11-20T01:00:00Z", "since"),
        ("since=2026-11-20T05", "since"),
        ("since=20261120", "since"),
        ("since=2026-02-30", "since"),
        ("since=2026-11-01&until=tomorrow", "until"),
        ("since=2026-11-20T00:00:00Z&format=xml", "format"),
        ("since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z", "since"),
        ("since=2025-01-01T00:00:00Z&until=2026-11-01T00:00:00Z", "until"),
    ],
)
def test_run_validates_its_parameters(api: Ingest, query: str, field: str) -> None:
    _destination(api.engine, api.project_id, "hourly", frequency="hourly")
    response = api.post(f"/v1/exports/run?{query}", headers=api.bearer(), auth=None)
    assert response.status_code == 400, response.text
    body = response.json()
    # Litestar names a missing parameter in the message, an invalid one in `field`.
    assert body.get("field") == field or f"'{field}'" in body["message"], body


def _backfill(url: str, backfill_id: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.post(
        url, json={"query": BACKFILL, "variables": {"id": backfill_id}}, timeout=30
    ).json()["data"]["partitionBackfillOrError"]
    assert found["__typename"] == "PartitionBackfill"
    return found


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-11-01", "2026-11-03"),
        ("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z"),
        ("2026-11-01T00:00", "2026-11-03 00:00:00"),  # no offset: UTC
        ("2026-11-01T01:00:00+01:00", "2026-11-02T19:00:00.000000-05:00"),
    ],
)
def test_run_takes_the_date_forms_of_the_command(
    api: Ingest, dagster_graphql_url: str, since: str, until: str
) -> None:
    _destination(api.engine, api.project_id, "daily", frequency="daily")

    # httpx encodes the query (a + must reach the server as %2B).
    response = api.post(
        "/v1/exports/run", params={"since": since, "until": until}, headers=api.bearer(), auth=None
    )

    assert response.status_code == 202, response.text
    found = _backfill(dagster_graphql_url, response.json()["id"])
    assert found["partitionNames"] == ["2026-11-01", "2026-11-02"]


def test_run_refuses_an_unencoded_plus_with_a_hint(api: Ingest) -> None:
    _destination(api.engine, api.project_id, "daily", frequency="daily")
    response = api.post(
        "/v1/exports/run?since=2026-11-01T00:00:00+01:00", headers=api.bearer(), auth=None
    )
    assert response.status_code == 400
    assert response.json()["field"] == "since"
    assert "%2B" in response.json()["message"]


def test_run_exports_the_closed_hour_and_says_why_the_daily_destination_was_skipped(
    api: Ingest, dagster_graphql_url: str
) -> None:
    _destination(api.engine, api.project_id, "hourly", frequency="hourly", fmt="jsonl")
    _destination(api.engine, api.project_id, "daily", frequency="daily")
    before = datetime.now(UTC)
    hour = before.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

    response = api.post(
        "/v1/exports/run",
        params={"since": hour.isoformat(), "until": (hour + timedelta(hours=1)).isoformat()},
        headers=api.bearer(),
        auth=None,
    )
    after = datetime.now(UTC)

    assert response.status_code == 202, response.text
    body = response.json()
    requested = {d["destination"]: d for d in body["destinations"]}
    assert requested["hourly"]["partitions"] == 1
    assert requested["hourly"]["first_partition"] == hour.strftime("%Y-%m-%d-%H:%M")
    hourly = next(b for b in body["backfills"] if b["frequency"] == "hourly")
    assert requested["hourly"]["backfill"] == hourly["id"]
    found = _backfill(dagster_graphql_url, hourly["id"])
    assert found["partitionNames"] == [hour.strftime("%Y-%m-%d-%H:%M")]
    assert [a["path"] for a in found["assetSelection"]] == [["exports", "events_hourly"]]
    if hour.date() == before.date() == after.date():
        # The hour's day is still open: no daily window to export, and the answer says so.
        assert list(requested) == ["hourly"]
        [skipped] = body["skipped"]
        assert skipped["destination"] == "daily"
        assert skipped["field"] == "since"
        assert "no closed daily window" in skipped["reason"]
    elif hour.date() < before.date():
        # Between 00:00 and 01:00 UTC the last closed hour ends a day that has closed too.
        assert requested["daily"]["first_partition"] == hour.strftime("%Y-%m-%d")
        assert body["skipped"] == []


def test_run_exports_what_fits_and_skips_what_is_too_long(
    api: Ingest, dagster_graphql_url: str
) -> None:
    _destination(api.engine, api.project_id, "hourly", frequency="hourly")
    _destination(api.engine, api.project_id, "daily", frequency="daily", datasets=("metrics",))

    response = api.post(
        "/v1/exports/run?since=2025-01-01&until=2026-11-01", headers=api.bearer(), auth=None
    )

    assert response.status_code == 202, response.text
    body = response.json()
    [backfill] = body["backfills"]
    assert (backfill["frequency"], backfill["partitions"]) == ("daily", 669)
    assert [d["destination"] for d in body["destinations"]] == ["daily"]
    [skipped] = body["skipped"]
    assert (skipped["destination"], skipped["field"]) == ("hourly", "until")
    assert "16056 hourly partitions requested; at most 2208" in skipped["reason"]
    found = _backfill(dagster_graphql_url, backfill["id"])
    assert [a["path"] for a in found["assetSelection"]] == [["exports", "metrics_daily"]]
    assert (found["partitionNames"][0], found["partitionNames"][-1]) == (
        "2025-01-01",
        "2026-10-31",
    )


def _not_close_to_the_end_of_an_hour() -> datetime:
    """Now, once it is at least a minute before the next hour (waits if it is not)."""
    deadline = time.monotonic() + 120
    while True:
        now = datetime.now(UTC)
        if now.minute < 59:
            return now
        assert time.monotonic() < deadline, "the clock did not move"
        time.sleep(0.5)


def test_run_with_nothing_closed_is_400_naming_since_and_every_destination(api: Ingest) -> None:
    _destination(api.engine, api.project_id, "hourly", frequency="hourly")
    _destination(api.engine, api.project_id, "daily", frequency="daily")
    # The current hour, which has not ended (nor has its day), and will not for a while.
    now = _not_close_to_the_end_of_an_hour()
    hour = now.replace(minute=0, second=0, microsecond=0)

    response = api.post(
        "/v1/exports/run",
        params={"since": hour.isoformat(), "until": (hour + timedelta(hours=1)).isoformat()},
        headers=api.bearer(),
        auth=None,
    )

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "since"
    assert "hourly: no closed hourly window" in body["message"]
    assert "daily: no closed daily window" in body["message"]


def test_run_without_a_matching_destination_is_404(api: Ingest) -> None:
    _destination(api.engine, api.project_id, "pq", fmt="parquet")
    response = api.post(
        "/v1/exports/run?since=2026-11-01T00:00:00Z&until=2026-11-03T00:00:00Z&format=csv",
        headers=api.bearer(),
        auth=None,
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_run_launches_a_backfill_in_dagster(api: Ingest, dagster_graphql_url: str) -> None:
    _destination(
        api.engine,
        api.project_id,
        "daily-csv",
        fmt="csv",
        frequency="daily",
        datasets=("events", "metrics"),
    )
    _destination(api.engine, api.project_id, "hourly-pq", fmt="parquet", frequency="hourly")

    response = api.post(
        "/v1/exports/run?since=2026-11-01T12:00:00Z&until=2026-11-04T00:00:00Z&format=csv",
        headers=api.bearer(),
        auth=None,
    )

    assert response.status_code == 202, response.text
    body = response.json()
    [backfill] = body["backfills"]
    assert body["id"] == backfill["id"]
    assert backfill["frequency"] == "daily"
    assert backfill["partitions"] == 3
    assert [(d["destination"], d["backfill"]) for d in body["destinations"]] == [
        ("daily-csv", backfill["id"])
    ]
    assert body["skipped"] == [
        {
            "destination": "hourly-pq",
            "project_id": api.project_id,
            "reason": "it writes parquet, the request asks for csv",
            "field": "format",
        }
    ]
    found = httpx.post(
        dagster_graphql_url,
        json={"query": BACKFILL, "variables": {"id": body["id"]}},
        timeout=30,
    ).json()["data"]["partitionBackfillOrError"]
    assert found["__typename"] == "PartitionBackfill"
    assert found["partitionNames"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert sorted(a["path"] for a in found["assetSelection"]) == [
        ["exports", "events_daily"],
        ["exports", "metrics_daily"],
    ]
    tags = {t["key"]: t["value"] for t in found["tags"]}
    assert tags[PROJECT_TAG] == str(api.project_id)
    assert tags[FORMAT_TAG] == "csv"
    assert tags[FORCE_TAG] == "true"


def test_run_answers_503_when_dagster_is_unreachable(settings: Settings, engine: Engine) -> None:
    unreachable = settings.model_copy(
        update={"dagster_graphql_url": f"http://127.0.0.1:{free_port()}/graphql"}
    )
    with served_ingest(unreachable, engine) as ingest:
        _destination(engine, ingest.project_id, "daily")
        until = datetime.now(UTC) - timedelta(days=1)
        response = ingest.post(
            "/v1/exports/run",
            params={"since": (until - timedelta(days=2)).isoformat(), "until": until.isoformat()},
            headers=ingest.bearer(),
            auth=None,
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert "unreachable" in response.json()["message"]
