"""The GraphQL client the API launches Dagster work with, against a real dagster-webserver."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lytics.dagster_api import DagsterApi, DagsterApiError
from tests.support.http import HTTP_TIMEOUT_S, free_port

pytestmark = pytest.mark.slow  # one webserver start (~20 s) shared by the whole session

BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status partitionNames tags { key value } assetSelection { path } }
  }
}
"""


def test_launch_job_queues_a_run_with_its_tags(dagster_graphql_url: str) -> None:
    api = DagsterApi(dagster_graphql_url)
    run_id = asyncio.run(
        api.launch_job(
            "refresh_metrics",
            tags={"dagster/partition": "2026-11-01", "lytics/requested_by": "test"},
        )
    )
    assert len(run_id) == 36
    # No daemon runs here, so the run stays in the queue where the API put it.
    assert asyncio.run(api.run_status(run_id)) == "QUEUED"


def test_launch_backfill_records_the_assets_partitions_and_tags(dagster_graphql_url: str) -> None:
    api = DagsterApi(dagster_graphql_url)
    backfill_id = asyncio.run(
        api.launch_backfill(
            asset_keys=["analytics/daily_site_metrics"],
            partition_names=["2026-11-01", "2026-11-02"],
            tags={"lytics/requested_by": "test"},
        )
    )
    body = httpx.post(
        dagster_graphql_url,
        json={"query": BACKFILL_QUERY, "variables": {"id": backfill_id}},
        timeout=HTTP_TIMEOUT_S,
    ).json()
    backfill = body["data"]["partitionBackfillOrError"]
    assert backfill["__typename"] == "PartitionBackfill"
    assert backfill["status"] == "REQUESTED"
    assert backfill["assetSelection"] == [{"path": ["analytics", "daily_site_metrics"]}]
    assert {"key": "lytics/requested_by", "value": "test"} in backfill["tags"]


def test_refusals_carry_dagsters_reason(dagster_graphql_url: str) -> None:
    api = DagsterApi(dagster_graphql_url)
    with pytest.raises(DagsterApiError, match="no_such_job"):
        asyncio.run(api.launch_job("no_such_job"))
    with pytest.raises(DagsterApiError, match=r"(?i)not found|could not find|partition"):
        asyncio.run(
            api.launch_backfill(
                asset_keys=["analytics/daily_site_metrics"], partition_names=["not-a-date"]
            )
        )
    with pytest.raises(DagsterApiError, match="RunNotFoundError"):
        asyncio.run(api.run_status("00000000-0000-0000-0000-000000000000"))


def test_unreachable_dagster_is_a_clear_error() -> None:
    api = DagsterApi(f"http://127.0.0.1:{free_port()}/graphql", timeout_s=2)
    with pytest.raises(DagsterApiError, match="unreachable"):
        asyncio.run(api.launch_job("refresh_metrics"))


def test_an_empty_backfill_is_refused_before_any_request() -> None:
    api = DagsterApi("http://127.0.0.1:9/graphql")
    with pytest.raises(ValueError, match="at least one"):
        asyncio.run(api.launch_backfill(asset_keys=[], partition_names=["2026-11-01"]))
