"""The 200 bodies of the API, declared once as msgspec structs for the OpenAPI document.

Handlers name these in `responses=openapi_docs.responses(<struct>, ...)`; the fuzz test
checks every answer against them. Row fields that a query may leave out or null
default to None, so the schema requires only what every answer carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from msgspec import Struct

# --- ingest ----------------------------------------------------------------------------------


class EventAnswer(Struct):
    success: bool
    messageId: str | None
    status: Literal["accepted", "duplicate"]


class EventOutcome(Struct):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    messageId: str | None = None
    error: str | None = None
    message: str | None = None
    field: str | None = None


class BatchAnswer(Struct):
    """Per event: the good ones are stored, the rejected ones never will be."""

    success: bool
    received: int
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventOutcome]


class CollectAnswer(Struct):
    status: str
    message: str
    result: Literal["accepted", "duplicate"]
    event_id: str | None
    timestamp: str


class MetricsAnswer(Struct):
    success: bool
    stored: int


class SessionStarted(Struct):
    success: bool
    sessionId: str
    status: Literal["created", "duplicate"]


class ReplayStored(Struct):
    success: bool
    sessionId: str
    batchId: str
    events: int
    status: Literal["created", "duplicate"]


class WebhookStored(Struct):
    status: Literal["created", "duplicate"]
    id: str


# --- reads -----------------------------------------------------------------------------------


class RecentEvent(Struct):
    message_id: str | None = None
    type: str | None = None
    event: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    timestamp: datetime | None = None
    received_at: datetime | None = None
    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    source: str | None = None
    timestamp_clamped: bool | None = None


class RecentEvents(Struct):
    project: str
    events: list[RecentEvent]
    next_cursor: str | None  # pass back as `cursor` for the next page; null on the last


class Message(Struct):
    id: int | None = None
    source: str | None = None
    delivery_id: str | None = None
    event_type: str | None = None
    sender: str | None = None
    received_at: datetime | None = None
    payload: Any = None


class Messages(Struct):
    data: list[Message]
    limit: int
    next_cursor: str | None  # pass back as `cursor` for the next page; null on the last


class SenderCount(Struct):
    sender: str | None = None
    messages: int | None = None


class SourceCount(Struct):
    source: str | None = None
    messages: int | None = None


class Stats(Struct):
    total_messages: int
    unique_senders: int
    top_senders: list[SenderCount]
    by_source: list[SourceCount]
    first_message_at: datetime | None
    last_message_at: datetime | None


class Tile(Struct):
    key: str
    label: str
    value: Any
    previous: Any
    change_pct: float | None


class Range(Struct, rename={"start": "from", "end": "to"}):
    start: str
    end: str


class DashboardTiles(Struct, rename={"start": "from", "end": "to"}):
    project: str
    start: str
    end: str
    previous: Range
    built: bool
    tiles: list[Tile]
    metrics: list[Tile]


# --- GitHub ------------------------------------------------------------------------------------


class GithubAccount(Struct):
    login: str
    name: str | None = None
    type: str | None = None
    html_url: str | None = None
    public_repos: int | None = None
    followers: int | None = None
    synced_at: datetime | None = None


class GithubUser(Struct):
    project: str
    user: GithubAccount | None
    accounts: list[GithubAccount]


class GithubRepo(Struct):
    full_name: str
    owner: str | None = None
    name: str | None = None
    description: str | None = None
    html_url: str | None = None
    language: str | None = None
    default_branch: str | None = None
    visibility: str | None = None
    fork: bool | None = None
    archived: bool | None = None
    stars: int | None = None
    forks: int | None = None
    watchers: int | None = None
    open_issues: int | None = None
    size_kb: int | None = None
    created_at: datetime | None = None
    pushed_at: datetime | None = None
    counts_synced_at: datetime | None = None


class GithubRepos(Struct):
    project: str
    total: int
    limit: int
    offset: int
    repos: list[GithubRepo]


# --- exports -----------------------------------------------------------------------------------


class ExportDestination(Struct):
    id: int
    name: str
    kind: str
    bucket: str
    format: str
    frequency: str
    datasets: list[str]
    enabled: bool
    layout: str
    prefix: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    created_at: datetime | None = None


class ExportsConfig(Struct):
    project: str
    project_id: int
    destinations: list[ExportDestination]


class ExportPartition(Struct):
    destination: str
    dataset: str
    frequency: str
    window_start: datetime
    window_end: datetime
    status: str
    format: str | None = None
    rows: int | None = None
    bytes: int | None = None
    files: int | None = None
    manifest_key: str | None = None
    error: str | None = None
    attempts: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ExportsStatus(Struct):
    project: str
    totals: dict[str, int]
    partitions: list[ExportPartition]


class Backfill(Struct):
    id: str
    frequency: str
    assets: list[Any]
    partitions: int
    first_partition: str
    last_partition: str


class ExportsLaunched(Struct):
    id: str
    backfills: list[Backfill]


# --- digests -----------------------------------------------------------------------------------


class DigestTestSent(Struct):
    id: str | None
    to: str
    week: str
    test: bool


class DigestLaunched(Struct):
    run_id: str
    digest_run_id: int
    week: str
    scope: str


class DigestStatus(Struct):
    project: str
    last_run: dict[str, Any] | None
    dagster_status: str | None
    recipients: dict[str, int]
    cooldown_remaining_s: float


class EmailEvent(Struct):
    delivery_id: str | None = None
    event_type: str | None = None
    email: str | None = None
    subject: str | None = None
    received_at: datetime | None = None


class EmailEventsSummary(Struct):
    project: str
    window_hours: int
    total: int
    by_type: dict[str, int]
    latest: list[EmailEvent]
