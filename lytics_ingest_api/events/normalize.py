"""Turn what SDKs send into rows of `raw.events`, or say precisely what is wrong.

Three shapes arrive: Segment's (`/v1/<type>`, `/v1/batch`), the native one
(`/v1/events`, the same fields), and seed S1's `/collect` beacons. All end as
`EventRow`; the event as sent is kept whole in `payload`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lytics_ingest_api.events.timestamps import TimestampError, corrected, parse_time
from lytics_ingest_api.jsontext import storable

EVENT_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
MAX_MESSAGE_ID = 100
MAX_NAME = 500
PAGEVIEW_NAMES = frozenset({"pageview", "page_view", "page", "$pageview"})


class EventError(ValueError):
    """One event is invalid; `field` names the offending part."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class RequestContext:
    project_id: int
    received_at: datetime
    source: str  # segment, native, collect, pixel
    max_event_bytes: int
    max_future: timedelta
    ip: str | None = None
    user_agent: str | None = None
    sent_at: datetime | None = None  # a batch's sentAt, applied to events without their own


@dataclass(slots=True)
class EventRow:
    project_id: int
    message_id: str
    type: str
    event: str | None
    anonymous_id: str | None
    user_id: str | None
    session_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    timestamp_clamped: bool
    url: str | None
    path: str | None
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    ip: str | None
    user_agent: str | None
    source: str
    payload: str  # JSON text


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError(field, f"{field} must be an object")
    return value


def _text(value: Any, field: str, limit: int = MAX_NAME) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(field, f"{field} must be a string")
    if len(value) > limit:
        raise EventError(field, f"{field} is longer than {limit} characters")
    return value


def _identity(value: Any, field: str) -> str | None:
    """Ids as sent; numbers become strings (SDKs send numeric user ids)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EventError(field, f"{field} must be a string")
    text = str(value)
    if len(text) > MAX_NAME:
        raise EventError(field, f"{field} is longer than {MAX_NAME} characters")
    return text


def _soft_text(value: Any) -> str | None:
    """Context fields we only extract: a wrong type is ignored, the payload keeps it."""
    return value if isinstance(value, str) and value else None


def _time(value: Any, field: str) -> datetime | None:
    try:
        return parse_time(value)
    except TimestampError as exc:
        raise EventError(field, f"{field}: {exc}") from exc


def _message_id(event: Mapping[str, Any], ctx: RequestContext, payload: bytes) -> str:
    given = event.get("messageId", event.get("message_id"))
    if given is not None:
        message_id = _text(given, "messageId", MAX_MESSAGE_ID)
        if message_id:
            return message_id
    # With a client timestamp, a retried event without messageId is recognised
    # as the same event; without one, nothing distinguishes a retry from a
    # second event, so it gets a random id.
    if event.get("timestamp") is not None or event.get("originalTimestamp") is not None:
        digest = hashlib.sha256(b"%d:" % ctx.project_id + payload).hexdigest()
        return f"gen-{digest[:40]}"
    return f"gen-{uuid.uuid4().hex}"


def _encoded(event: dict[str, Any], ctx: RequestContext) -> tuple[dict[str, Any], bytes]:
    event, payload = storable(event)
    if len(payload) > ctx.max_event_bytes:
        raise EventError("event", f"event exceeds {ctx.max_event_bytes} bytes", code="too_large")
    return event, payload


def _without_credentials(event: dict[str, Any]) -> dict[str, Any]:
    # A key in the body authenticated the request; it is not part of the event.
    if "writeKey" in event or "write_key" in event:
        return {k: v for k, v in event.items() if k not in ("writeKey", "write_key")}
    return event


def segment_event(event: Any, ctx: RequestContext, type_hint: str | None = None) -> EventRow:
    """A Segment/native event. `type_hint` is the route's type (/v1/track) if any."""
    if not isinstance(event, dict):
        raise EventError("event", "each event must be a JSON object")
    event, payload = _encoded(_without_credentials(event), ctx)

    kind = type_hint or event.get("type") or "track"
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise EventError("type", f"type must be one of {', '.join(sorted(EVENT_TYPES))}")

    user_id = _identity(event.get("userId", event.get("user_id")), "userId")
    anonymous_id = _identity(event.get("anonymousId", event.get("anonymous_id")), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise EventError("userId", "userId or anonymousId is required")

    name = _text(event.get("event"), "event") if kind == "track" else None
    if kind == "track" and name is None:
        raise EventError("event", "track calls need an event name")
    if kind in ("page", "screen"):
        name = _text(event.get("name"), "name")

    properties = _obj(event.get("properties"), "properties")
    _obj(event.get("traits"), "traits")
    context = _obj(event.get("context"), "context")
    page = _obj(context.get("page"), "context.page")
    campaign = _obj(context.get("campaign"), "context.campaign")

    original = _time(event.get("originalTimestamp", event.get("timestamp")), "timestamp")
    sent_at = _time(event.get("sentAt"), "sentAt") or ctx.sent_at
    timestamp, clamped = corrected(ctx.received_at, original, sent_at, ctx.max_future)

    session = event.get("sessionId") or context.get("sessionId") or properties.get("sessionId")
    return EventRow(
        project_id=ctx.project_id,
        message_id=_message_id(event, ctx, payload),
        type=kind,
        event=name,
        anonymous_id=anonymous_id,
        user_id=user_id,
        session_id=_identity(session, "sessionId"),
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        received_at=ctx.received_at,
        timestamp_clamped=clamped,
        url=_soft_text(page.get("url")) or _soft_text(properties.get("url")),
        path=_soft_text(page.get("path")) or _soft_text(properties.get("path")),
        referrer=_soft_text(page.get("referrer")) or _soft_text(properties.get("referrer")),
        utm_source=_soft_text(campaign.get("source")),
        utm_medium=_soft_text(campaign.get("medium")),
        utm_campaign=_soft_text(campaign.get("name")),
        ip=_soft_text(context.get("ip")) or ctx.ip,
        user_agent=_soft_text(context.get("userAgent")) or ctx.user_agent,
        source=ctx.source,
        payload=payload.decode(),
    )


def collect_event(event: Any, ctx: RequestContext) -> EventRow:
    """Seed S1's beacon: eventType, sessionId, visitorId, siteId, url, path, attribution."""
    if not isinstance(event, dict):
        raise EventError("event", "the event must be a JSON object")
    event, payload = _encoded(_without_credentials(event), ctx)
    event_type = _text(event.get("eventType"), "eventType")
    if event_type is None:
        raise EventError("eventType", "eventType is required")
    visitor = _identity(event.get("visitorId"), "visitorId")
    user = _identity(event.get("userId"), "userId")
    if visitor is None and user is None:
        raise EventError("visitorId", "visitorId is required")
    attribution = _obj(event.get("attribution"), "attribution")
    utm = _obj(attribution.get("utmParams"), "attribution.utmParams")

    original = _time(event.get("timestamp"), "timestamp")
    sent_at = _time(event.get("sentAt"), "sentAt") or ctx.sent_at
    timestamp, clamped = corrected(ctx.received_at, original, sent_at, ctx.max_future)
    is_page = event_type.lower() in PAGEVIEW_NAMES
    return EventRow(
        project_id=ctx.project_id,
        message_id=_message_id(event, ctx, payload),
        type="page" if is_page else "track",
        event=None if is_page else event_type,
        anonymous_id=visitor,
        user_id=user,
        session_id=_identity(event.get("sessionId"), "sessionId"),
        timestamp=timestamp,
        original_timestamp=original,
        sent_at=sent_at,
        received_at=ctx.received_at,
        timestamp_clamped=clamped,
        url=_soft_text(event.get("url")),
        path=_soft_text(event.get("path")),
        referrer=_soft_text(event.get("referrer")) or _soft_text(attribution.get("referrer")),
        utm_source=_soft_text(utm.get("utm_source")),
        utm_medium=_soft_text(utm.get("utm_medium")),
        utm_campaign=_soft_text(utm.get("utm_campaign")),
        ip=ctx.ip,
        user_agent=_soft_text(event.get("userAgent")) or ctx.user_agent,
        source=ctx.source,
        payload=payload.decode(),
    )
