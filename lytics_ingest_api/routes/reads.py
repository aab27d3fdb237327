"""Reads for the secret key's project: recent events, webhook messages and their stats.

Each answer costs what it returns, not what the project has stored: lists page with a
cursor through indexes in their order, stats come from counts kept as deliveries arrive,
text search through its own index (migration 0010), and every statement runs under the
reader's statement timeout (`project_transaction`).

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

from lytics_ingest_api import pagination
from lytics_ingest_api.database import project_transaction
from lytics_ingest_api.errors import bad_request
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal
from lytics_ingest_api.response_bodies import Messages, RecentEvents, Stats

# Every list is newest first and continues after a cursor (lytics_ingest_api.pagination);
# each is one index range, (project_id, received_at, id) or the same per source or sender,
# read backward (migration 0010). A `%(x)s IS NULL OR ...` term is folded away when
# Postgres plans the statement with its values, so an absent filter costs nothing.
AFTER_CURSOR = """(%(before_at)s::timestamptz IS NULL
       OR (received_at, id) < (%(before_at)s::timestamptz, %(before_id)s::bigint))"""

RECENT_EVENTS = f"""
SELECT id, message_id, type, event, anonymous_id, user_id, session_id, timestamp, received_at,
       url, path, referrer, source, timestamp_clamped
FROM raw.events
WHERE {AFTER_CURSOR}
ORDER BY received_at DESC, id DESC
LIMIT %(limit)s
"""

MESSAGES = f"""
SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload
FROM raw.webhook_deliveries
WHERE (%(source)s::text IS NULL OR provider = %(source)s::text)
  AND (%(sender)s::text IS NULL OR sender = %(sender)s::text)
  AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s::timestamptz)
  AND {AFTER_CURSOR}
ORDER BY received_at DESC, id DESC
LIMIT %(limit)s
"""

# The same list, restricted to deliveries whose payload values hold q's words in a row.
# Row-level security would keep the text index out of reach (its operator is not
# leakproof), so the search runs in a function that applies the reader's project itself.
SEARCHED_MESSAGES = """
SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload
FROM raw.search_webhook_deliveries(
    raw.webhook_search_query(%(q)s::text), %(source)s::text, %(sender)s::text,
    %(since)s::timestamptz, %(before_at)s::timestamptz, %(before_id)s::bigint,
    %(limit)s::integer)
ORDER BY received_at DESC, id DESC
"""

# Counts kept per source and per sender by triggers, in the transaction that stores each
# delivery: exact, and as cheap for 500k deliveries as for 5. First and last are the
# ends of the newest-first index.
STATS = """
SELECT coalesce((SELECT messages FROM raw.webhook_totals), 0) AS total,
       coalesce((SELECT senders FROM raw.webhook_totals), 0) AS unique_senders,
       (SELECT min(received_at) FROM raw.webhook_deliveries) AS first_received_at,
       (SELECT max(received_at) FROM raw.webhook_deliveries) AS last_received_at
"""

TOP_SENDERS = """
SELECT sender, messages FROM raw.webhook_sender_counts ORDER BY messages DESC, sender LIMIT 10
"""

BY_SOURCE = """
SELECT provider AS source, messages FROM raw.webhook_source_counts
ORDER BY messages DESC, provider
"""


def _words(q: str | None) -> str | None:
    # (A NUL in any parameter is refused by the secret-key guard before we get here.)
    if q is not None and not any(c.isalnum() for c in q):
        raise bad_request("must contain a word (letters or digits)", field="q")
    return q


CURSOR_DESCRIPTION = "The previous page's `next_cursor`; absent: the newest rows"


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
    cursor: Annotated[
        str | None, QueryParameter(max_length=200, description=CURSOR_DESCRIPTION)
    ] = None,
) -> dict[str, Any]:
    params = {"limit": limit + 1, **pagination.bounds(pagination.decode(cursor))}
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(RECENT_EVENTS, params)
        rows, next_cursor = pagination.page(await cur.fetchall(), limit)
    for row in rows:
        del row["id"]
    return {"project": principal.project_slug, "events": rows, "next_cursor": next_cursor}


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
    cursor: Annotated[
        str | None, QueryParameter(max_length=200, description=CURSOR_DESCRIPTION)
    ] = None,
    source: Annotated[str | None, QueryParameter(max_length=64)] = None,
    sender: Annotated[str | None, QueryParameter(name="from", max_length=500)] = None,
    since: FromQuery[datetime | None] = None,
    q: Annotated[
        str | None,
        QueryParameter(
            max_length=200,
            description=(
                "Deliveries whose payload values hold these words in this order; a word is "
                "a run of letters and digits, compared without case (`bounced` finds "
                "`email.bounced`, `ann@example.com` finds the address, `bounce` does not "
                "find `bounced`)"
            ),
        ),
    ] = None,
) -> dict[str, Any]:
    if "offset" in request.query_params:
        # Ignoring it would hand an old client the first page forever.
        raise bad_request("offset is gone: pass the previous page's next_cursor", field="offset")
    params = {
        "limit": limit + 1,
        "source": source,
        "sender": sender,
        "since": since,
        "q": _words(q),
        **pagination.bounds(pagination.decode(cursor)),
    }
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(MESSAGES if q is None else SEARCHED_MESSAGES, params)
        rows, next_cursor = pagination.page(await cur.fetchall(), limit)
    return {"data": rows, "limit": limit, "next_cursor": next_cursor}


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
