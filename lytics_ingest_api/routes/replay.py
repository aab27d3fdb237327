"""Session replay (seed S4): sessions and rrweb event batches, authenticated with X-API-Key."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath
from msgspec import Meta

from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import Principal, require_write_key
from lytics_ingest_api.body import read_json
from lytics_ingest_api.errors import bad_request
from lytics_ingest_api.events.segment_shape import Time, invalid_part
from lytics_ingest_api.events.timestamps import TimestampError, parse_time
from lytics_ingest_api.jsontext import MAX_EVENT_DEPTH, UnstorableJsonError, storable
from lytics_ingest_api.observability import note
from lytics_ingest_api.openapi_docs import (
    WRITE_ERRORS,
    WRITE_KEY,
    json_body,
    responses,
    struct_body,
)
from lytics_ingest_api.response_bodies import ReplayStored, SessionStarted

# Full DOM snapshots make replay batches far larger than analytics events.
MAX_REPLAY_BYTES = 5 * 1024 * 1024
MAX_ID = 200
# rrweb snapshots nest two levels per DOM level; this is far beyond any real page.
MAX_REPLAY_DEPTH = 512

INSERT_SESSION = """
INSERT INTO raw.replay_sessions
    (project_id, session_id, user_id, user_email, url, referrer, user_agent, metadata, started_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT (project_id, session_id) DO NOTHING
RETURNING id
"""

INSERT_BATCH = """
INSERT INTO raw.replay_events
    (project_id, session_id, batch_id, event_count, first_timestamp, last_timestamp, events)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (project_id, session_id, batch_id) DO NOTHING
RETURNING id
"""


def _id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID or "\x00" in value:
        raise bad_request(f"{field} must be a string of 1-{MAX_ID} characters", field=field)
    return value


def _opt_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string", field=field)
    if "\x00" in value:
        raise bad_request(f"{field} contains a NUL (U+0000)", field=field)
    return value


ReplayId = Annotated[str, Meta(min_length=1, max_length=MAX_ID)]
_Shape = TypeVar("_Shape")


class ReplayMetadata(msgspec.Struct):
    """What the recorder knows about the page; stored whole (unknown keys too)."""

    url: str | None = None
    referrer: str | None = None
    userAgent: str | None = None
    screen: dict[str, Any] | None = None
    viewport: dict[str, Any] | None = None
    timestamp: Time | None = None


class SessionStart(msgspec.Struct):
    """`POST /v1/sessions/start` (and `/api/sessions/start`)."""

    sessionId: ReplayId
    userId: str | None = None
    userEmail: str | None = None
    metadata: ReplayMetadata | None = None


class ReplayBatch(msgspec.Struct):
    """`POST /v1/sessions/{id}/events`, and `/api/ingest` (which needs `sessionId`)."""

    events: Annotated[list[dict[str, Any]], Meta(min_length=1, description="rrweb events")]
    sessionId: ReplayId | None = None
    batchId: ReplayId | None = None
    timestamp: Time | None = None


def _shaped(body: Any, shape: type[_Shape]) -> _Shape:
    try:
        return msgspec.convert(body, shape)
    except msgspec.ValidationError as exc:
        field, message = invalid_part(exc, "body")
        raise bad_request(message, field=field) from None


def _json(value: Any, max_depth: int, root: str) -> bytes:
    try:
        return storable(value, max_depth, root)
    except UnstorableJsonError as exc:
        raise bad_request(exc.message, field=exc.field) from None


async def _start(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = await require_write_key(request)
    headers = await admit(request, principal)
    body = await read_json(request, 64 * 1024)
    start = _shaped(body, SessionStart)
    session_id = _id(start.sessionId, "sessionId")
    meta = body.get("metadata") or {}
    try:
        started = parse_time(meta.get("timestamp")) or datetime.now(UTC)
    except TimestampError as exc:
        raise bad_request(f"metadata.timestamp: {exc}", field="metadata.timestamp") from exc
    params = (
        principal.project_id,
        session_id,
        _opt_text(body.get("userId"), "userId"),
        _opt_text(body.get("userEmail"), "userEmail"),
        _opt_text(meta.get("url"), "metadata.url"),
        _opt_text(meta.get("referrer"), "metadata.referrer"),
        _opt_text(meta.get("userAgent"), "metadata.userAgent"),
        _json(meta, MAX_EVENT_DEPTH, "metadata").decode(),
        started,
    )
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(INSERT_SESSION, params)
        created = await cur.fetchone() is not None
    note(request.scope, replay="start")
    status = "created" if created else "duplicate"
    return Response(
        {"success": True, "sessionId": session_id, "status": status},
        status_code=200,
        headers=headers,
    )


def _event_times(events: list[Any]) -> tuple[datetime | None, datetime | None]:
    stamps = [
        e["timestamp"]
        for e in events
        if isinstance(e, dict)
        and isinstance(e.get("timestamp"), int | float)
        and not isinstance(e.get("timestamp"), bool)
    ]
    if not stamps:
        return None, None
    try:
        return parse_time(min(stamps)), parse_time(max(stamps))
    except TimestampError:
        return None, None


async def _store_batch(
    request: Request[Any, Any, Any],
    principal: Principal,
    headers: dict[str, str],
    session_id: str,
    body: dict[str, Any],
) -> Response[dict[str, Any]]:
    events = _shaped(body, ReplayBatch).events
    encoded = _json(events, MAX_REPLAY_DEPTH, "events")
    batch_id = body.get("batchId")
    # Without a client batch id, the content identifies the batch: a retried
    # upload of the same events is stored once.
    batch = (
        _id(batch_id, "batchId") if batch_id is not None else hashlib.sha256(encoded).hexdigest()
    )
    first, last = _event_times(events)
    params = (principal.project_id, session_id, batch, len(events), first, last, encoded.decode())
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(INSERT_BATCH, params)
        created = await cur.fetchone() is not None
    note(request.scope, replay_events=len(events))
    return Response(
        {
            "success": True,
            "sessionId": session_id,
            "batchId": batch,
            "events": len(events),
            "status": "created" if created else "duplicate",
        },
        status_code=200,
        headers=headers,
    )


@post(
    ["/v1/sessions/start", "/api/sessions/start"],
    summary="Register a replay session (user, URL, referrer, user agent, screen, viewport)",
    tags=["replay"],
    operation_class=json_body(struct_body(SessionStart)),
    status_code=200,
    security=WRITE_KEY,
    responses=responses(SessionStarted, *WRITE_ERRORS),
)
async def session_start(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return await _start(request)


@post(
    "/v1/sessions/{session_id:str}/events",
    operation_id="replay_session_events",
    summary="Upload a batch of rrweb events for a session",
    tags=["replay"],
    operation_class=json_body(struct_body(ReplayBatch)),
    status_code=200,
    security=WRITE_KEY,
    responses=responses(ReplayStored, *WRITE_ERRORS),
)
async def session_events(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[dict[str, Any]]:
    principal = await require_write_key(request)
    headers = await admit(request, principal)
    body = await read_json(request, MAX_REPLAY_BYTES)
    if not isinstance(body, dict):
        raise bad_request("the body must be an object with an events array", field="events")
    return await _store_batch(request, principal, headers, _id(session_id, "session_id"), body)


@post(
    "/api/ingest",
    operation_id="replay_ingest_legacy",
    summary="Seed S4's upload path: {sessionId, events, timestamp}",
    tags=["replay"],
    operation_class=json_body(struct_body(ReplayBatch)),
    status_code=200,
    security=WRITE_KEY,
    responses=responses(ReplayStored, *WRITE_ERRORS),
)
async def legacy_ingest(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = await require_write_key(request)
    headers = await admit(request, principal)
    body = await read_json(request, MAX_REPLAY_BYTES)
    if not isinstance(body, dict):
        raise bad_request("the body must be an object with sessionId and events", field="events")
    session_id = _id(body.get("sessionId"), "sessionId")
    return await _store_batch(request, principal, headers, session_id, body)


ROUTES = [session_start, session_events, legacy_ingest]
