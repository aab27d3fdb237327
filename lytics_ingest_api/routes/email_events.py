"""`GET /v1/email-events/summary`: what Resend reported about the project's mail."""

from __future__ import annotations

from typing import Any

from litestar import get

from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal, Reader
from lytics_ingest_api.response_bodies import EmailEventsSummary

SUMMARY_BY_TYPE = """
SELECT replace(coalesce(payload ->> 'type', event_type), 'email.', '') AS event_type,
       count(*) AS events
FROM raw.webhook_deliveries
WHERE provider = 'resend' AND received_at >= now() - interval '24 hours'
GROUP BY 1 ORDER BY events DESC, 1
"""
SUMMARY_LATEST = """
SELECT delivery_id, replace(coalesce(payload ->> 'type', event_type), 'email.', '') AS event_type,
       coalesce(payload -> 'data' -> 'to' ->> 0, payload -> 'data' ->> 'to') AS email,
       payload -> 'data' ->> 'subject' AS subject, received_at
FROM raw.webhook_deliveries
WHERE provider = 'resend'
ORDER BY received_at DESC, id DESC LIMIT 10
"""


@get(
    "/v1/email-events/summary",
    operation_id="email_events_summary",
    tags=["digests"],
    summary="Resend email events of the last 24 hours by type, and the latest 10 events",
    responses=responses(EmailEventsSummary, *SECRET_ERRORS),
)
async def email_events_summary(principal: KeyPrincipal, reader: Reader) -> dict[str, Any]:
    async with reader.cursor() as cur:
        await cur.execute(SUMMARY_BY_TYPE)
        by_type = {r["event_type"]: int(r["events"]) for r in await cur.fetchall()}
        await cur.execute(SUMMARY_LATEST)
        latest = await cur.fetchall()
    return {
        "project": principal.project_slug,
        "window_hours": 24,
        "total": sum(by_type.values()),
        "by_type": by_type,
        "latest": latest,
    }


ROUTES: list[Any] = [email_events_summary]
