"""Reads for the secret key's project: recent events, webhook messages and their stats.

Queries run as `lytics_reader` with `lytics.project_id` set for the
transaction, so row-level security, not just a WHERE clause, keeps each
project to its own rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromQuery, QueryParameter
from psycopg.rows import dict_row

from lytics_ingest_api.database import project_transaction
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal
from lytics_ingest_api.response_bodies import Messages, RecentEvents, Stats

RECENT_EVENTS = """
SELECT message_id, type, event, anonymous_id, user_id, session_id, timestamp, received_at,
       url, path, referrer, source, timestamp_clamped
FROM raw.events
ORDER BY received_at DESC, id DESC
LIMIT %(limit)s
"""

MESSAGES = """
SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload
FROM raw.webhook_deliveries
WHERE (%(source)s::text IS NULL OR provider = %(source)s)
  AND (%(sender)s::text IS NULL OR sender = %(sender)s)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
  AND (%(q)s::text IS NULL OR coalesce(payload::text, '') ILIKE '%%' || %(q)s || '%%')
ORDER BY received_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

STATS = """
SELECT count(*) AS total, count(DISTINCT sender) AS unique_senders,
       min(received_at) AS first_received_at, max(received_at) AS last_received_at
FROM raw.webhook_deliveries
"""

TOP_SENDERS = """
SELECT sender, count(*) AS messages FROM raw.webhook_deliveries
WHERE sender IS NOT NULL GROUP BY sender ORDER BY messages DESC, sender LIMIT 10
"""

BY_SOURCE = """
SELECT provider AS source, count(*) AS messages FROM raw.webhook_deliveries
GROUP BY provider ORDER BY messages DESC, provider
"""


@get(
    "/v1/events/recent",
    operation_id="events_recent",
    tags=["reads"],
    summary="Latest events",
    responses=responses(RecentEvents, *SECRET_ERRORS),
)
async def recent_events(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="How many (1-100)")] = 20,
) -> dict[str, Any]:
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(RECENT_EVENTS, {"limit": limit})
        rows = await cur.fetchall()
    return {"project": principal.project_slug, "events": rows}


@get(
    "/v1/messages",
    operation_id="messages",
    tags=["reads"],
    summary="Webhook deliveries, newest first (seed S3's /messages)",
    responses=responses(Messages, *SECRET_ERRORS),
)
async def messages(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    *,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    source: Annotated[str | None, QueryParameter(max_length=64)] = None,
    sender: Annotated[str | None, QueryParameter(name="from", max_length=500)] = None,
    since: FromQuery[datetime | None] = None,
    q: Annotated[
        str | None, QueryParameter(max_length=200, description="Text search in the body")
    ] = None,
) -> dict[str, Any]:
    params = {
        "limit": limit,
        "offset": offset,
        "source": source,
        "sender": sender,
        "since": since,
        "q": q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") if q else None,
    }
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(MESSAGES, params)
        rows = await cur.fetchall()
    return {"data": rows, "limit": limit, "offset": offset}


@get(
    "/v1/stats",
    operation_id="stats",
    tags=["reads"],
    summary="Webhook message statistics",
    responses=responses(Stats, *SECRET_ERRORS),
)
async def stats(request: Request[Any, Any, Any], principal: KeyPrincipal) -> dict[str, Any]:
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(STATS)
        totals = await cur.fetchone() or {}
        await cur.execute(TOP_SENDERS)
        top = await cur.fetchall()
        await cur.execute(BY_SOURCE)
        by_source = await cur.fetchall()
    return {
        "total_messages": totals.get("total", 0),
        "unique_senders": totals.get("unique_senders", 0),
        "top_senders": top,
        "by_source": by_source,
        "first_message_at": totals.get("first_received_at"),
        "last_message_at": totals.get("last_received_at"),
    }


ROUTES = [recent_events, messages, stats]
