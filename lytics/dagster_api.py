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

# The code location's state and its asset nodes in some groups, with each node's first
# and last partition (the location decides its partitions; the caller cannot know them).
GROUP_ASSETS = """
query GroupAssets($location: String!, $repository: String!, $group: String!) {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name locationOrLoadError {
      __typename ... on PythonError { message } } } }
    ... on Error { message }
  }
  assetNodes(group: {groupName: $group, repositoryName: $repository,
                     repositoryLocationName: $location}) {
    assetKey { path }
    groupName
    isMaterializable
    isPartitioned
    backfillPolicy { policyType }
    first: partitionKeyConnection(limit: 1, ascending: true) { results }
    last: partitionKeyConnection(limit: 1, ascending: false) { results }
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
class AssetNode:
    """An asset the code location defines, as far as launching a backfill of it goes."""

    key: str  # "analytics/daily_site_metrics"
    group: str
    materializable: bool
    # None when the asset is not partitioned.
    first_partition: str | None
    last_partition: str | None
    backfill_policy: str | None  # "SINGLE_RUN", "MULTI_RUN" or None


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

    async def launch_range_backfill(
        self,
        *,
        asset_keys: Sequence[str],
        start: str,
        end: str,
        tags: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> str:
        """Start an asset backfill of `asset_keys` over partitions `start`..`end` (inclusive).

        An asset backfill, not a job backfill: Dagster plans its runs from the assets'
        backfill policies (a single-run policy makes one run for the whole range).
        """
        if not asset_keys:
            raise ValueError("a backfill needs at least one asset")
        # A range per asset, not a list of names: Dagster keeps it as a range.
        selectors = [
            {
                "assetKey": {"path": key.split("/")},
                "partitions": {"range": {"start": start, "end": end}},
            }
            for key in asset_keys
        ]
        params: dict[str, Any] = {"partitionsByAssets": selectors, "tags": _tags(tags)}
        if title:
            params["title"] = title
        result = await self._call(LAUNCH_BACKFILL, {"params": params}, "launchPartitionBackfill")
        return str(result["backfillId"])

    async def group_assets(self, groups: Sequence[str]) -> list[AssetNode]:
        """The asset nodes of `groups` in this code location (raises if it failed to load)."""
        nodes: list[AssetNode] = []
        for group in groups:
            variables = {"location": self.location, "repository": self.repository, "group": group}
            data = await self._query(GROUP_ASSETS, variables)
            self._check_location(data["workspaceOrError"])
            nodes.extend(_asset_node(node) for node in data["assetNodes"])
        return nodes

    def backfill_url(self, backfill_id: str) -> str:
        """The backfill's page in the Dagster UI (served next to the GraphQL endpoint)."""
        base = self.graphql_url.rstrip("/").removesuffix("/graphql")
        return f"{base}/runs/b/{backfill_id}"

    def _check_location(self, workspace: Mapping[str, Any]) -> None:
        if workspace.get("__typename") != "Workspace":
            raise DagsterApiError(f"Dagster cannot list its code locations: {_reason(workspace)}")
        states = {e["name"]: e["locationOrLoadError"] for e in workspace["locationEntries"]}
        if self.location not in states:
            raise DagsterApiError(f"Dagster has no code location named {self.location!r}")
        state = states[self.location] or {}
        if state.get("__typename") == "PythonError":
            first_line = str(state.get("message", "")).strip().splitlines()[:1]
            raise DagsterApiError(
                f"code location {self.location!r} failed to load: "
                f"{first_line[0] if first_line else 'no reason given'} (see the Dagster UI)"
            )
        if state.get("__typename") != "RepositoryLocation":
            raise DagsterApiError(f"code location {self.location!r} is still loading; try again")

    async def run_status(self, run_id: str) -> str:
        """QUEUED, NOT_STARTED, STARTING, STARTED, SUCCESS, FAILURE, CANCELING or CANCELED."""
        result = await self._call(RUN_STATUS, {"runId": run_id}, "runOrError")
        return str(result["status"])

    async def _call(self, query: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        result: dict[str, Any] = (await self._query(query, variables))[field]
        kind = result.get("__typename", "")
        if kind in {"LaunchRunSuccess", "LaunchBackfillSuccess", "Run"}:
            return result
        raise DagsterApiError(f"Dagster refused ({kind}): {_reason(result)}")

    async def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
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
        data: dict[str, Any] = body["data"]
        return data


def _tags(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in (tags or {}).items()]


def _asset_node(node: Mapping[str, Any]) -> AssetNode:
    first = (node.get("first") or {}).get("results") or [None]
    last = (node.get("last") or {}).get("results") or [None]
    policy = node.get("backfillPolicy") or {}
    return AssetNode(
        key="/".join(node["assetKey"]["path"]),
        group=str(node["groupName"]),
        materializable=bool(node["isMaterializable"]),
        first_partition=first[0] if node["isPartitioned"] else None,
        last_partition=last[0] if node["isPartitioned"] else None,
        backfill_policy=policy.get("policyType"),
    )


def _reason(result: Mapping[str, Any]) -> str:
    if result.get("message"):
        return str(result["message"])
    errors = result.get("errors") or []
    return "; ".join(str(e.get("message")) for e in errors) or "no reason given"
