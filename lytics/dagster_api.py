"""Launch Dagster work from outside the code location, through its GraphQL API.

The ingest API hands work to Dagster (a digest run, an export backfill) rather
than doing it itself: the run then shows in the Dagster UI with its logs, obeys
the run queue, pools and retries, and the API answers at once with an id.
Nothing here imports Dagster: the API process speaks HTTP to the webserver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""


class DagsterApiError(RuntimeError):
    """Dagster could not be reached, or it refused the request (the message says why)."""


@dataclass(frozen=True)
class DagsterApi:
    graphql_url: str
    location: str = "lytics"  # workspace.yaml's location_name
    repository: str = "__repository__"  # the repository a `Definitions` object becomes
    timeout_s: float = 10.0

    async def launch_job(
        self,
        job_name: str,
        *,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Queue a run of `job_name`; returns its run id."""
        params = {
            "selector": {
                "repositoryLocationName": self.location,
                "repositoryName": self.repository,
                "jobName": job_name,
            },
            "runConfigData": dict(run_config or {}),
            "executionMetadata": {"tags": _tags(tags)},
        }
        result = await self._call(LAUNCH_RUN, {"params": params}, "launchRun")
        return str(result["run"]["runId"])

    async def launch_backfill(
        self,
        *,
        asset_keys: Sequence[str],
        partition_names: Sequence[str],
        tags: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> str:
        """Start a backfill of `asset_keys` ("group/name" paths) over partitions; returns its id."""
        if not asset_keys or not partition_names:
            raise ValueError("a backfill needs at least one asset and one partition")
        params: dict[str, Any] = {
            "assetSelection": [{"path": key.split("/")} for key in asset_keys],
            "partitionNames": list(partition_names),
            "tags": _tags(tags),
        }
        if title:
            params["title"] = title
        result = await self._call(LAUNCH_BACKFILL, {"params": params}, "launchPartitionBackfill")
        return str(result["backfillId"])

    async def run_status(self, run_id: str) -> str:
        """QUEUED, NOT_STARTED, STARTING, STARTED, SUCCESS, FAILURE, CANCELING or CANCELED."""
        result = await self._call(RUN_STATUS, {"runId": run_id}, "runOrError")
        return str(result["status"])

    async def _call(self, query: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(
                    self.graphql_url, json={"query": query, "variables": variables}
                )
        except httpx.HTTPError as exc:
            raise DagsterApiError(f"Dagster is unreachable at {self.graphql_url}: {exc}") from exc
        if response.status_code != 200:
            raise DagsterApiError(
                f"Dagster answered HTTP {response.status_code}: {response.text[:300]}"
            )
        body = response.json()
        if body.get("errors"):
            # A GraphQL-level error: the query does not match this Dagster's schema.
            messages = "; ".join(str(e.get("message")) for e in body["errors"])
            raise DagsterApiError(f"Dagster rejected the request: {messages}")
        result: dict[str, Any] = body["data"][field]
        kind = result.get("__typename", "")
        if kind in {"LaunchRunSuccess", "LaunchBackfillSuccess", "Run"}:
            return result
        raise DagsterApiError(f"Dagster refused ({kind}): {_reason(result)}")


def _tags(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in (tags or {}).items()]


def _reason(result: Mapping[str, Any]) -> str:
    if result.get("message"):
        return str(result["message"])
    errors = result.get("errors") or []
    return "; ".join(str(e.get("message")) for e in errors) or "no reason given"
