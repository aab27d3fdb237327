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

import msgspec
from msgspec import UNSET

from lytics_ingest_api.events.segment_shape import (
    Campaign,
    Context,
    Page,
    Properties,
    SegmentEvent,
    decode_event,
    not_an_object,
)
from lytics_ingest_api.events.timestamps import TimestampError, corrected, parse_time
from lytics_ingest_api.jsontext import NUL_ESCAPE, storable

EVENT_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
MAX_MESSAGE_ID = 100
MAX_NAME = 500
PAGEVIEW_NAMES = frozenset({"pageview", "page_view", "page", "$pageview"})
_NO_PROPERTIES = Properties()
_NO_CONTEXT = Context()
_NO_PAGE = Page()
_NO_CAMPAIGN = Campaign()


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


def _message_id(given: Any, has_time: bool, ctx: RequestContext, payload: bytes) -> str:
    if given is not None:
        message_id = _text(given, "messageId", MAX_MESSAGE_ID)
        if message_id:
            return message_id
    # With a client timestamp, a retried event without messageId is recognised
    # as the same event; without one, nothing distinguishes a retry from a
    # second event, so it gets a random id.
    if has_time:
        digest = hashlib.sha256(b"%d:" % ctx.project_id + payload).hexdigest()
        return f"gen-{digest[:40]}"
    return f"gen-{uuid.uuid4().hex}"


def _too_large(ctx: RequestContext) -> EventError:
    return EventError("event", f"event exceeds {ctx.max_event_bytes} bytes", code="too_large")


def _encoded(event: dict[str, Any], ctx: RequestContext) -> tuple[dict[str, Any], bytes]:
    event, payload = storable(event)
    if len(payload) > ctx.max_event_bytes:
        raise _too_large(ctx)
    return event, payload


def _without_credentials(event: dict[str, Any]) -> dict[str, Any]:
    # A key in the body authenticated the request; it is not part of the event.
    if "writeKey" in event or "write_key" in event:
        return {k: v for k, v in event.items() if k not in ("writeKey", "write_key")}
    return event


def _given(value: Any, fallback: Any) -> Any:
    return fallback if value is UNSET else value


def segment_event(event: Any, ctx: RequestContext, type_hint: str | None = None) -> EventRow:
    """A Segment/native event. `type_hint` is the route's type (/v1/track) if any."""
    if not isinstance(event, dict):
        raise EventError("event", "each event must be a JSON object")
    event, payload = _encoded(_without_credentials(event), ctx)
    try:
        shape = msgspec.convert(event, SegmentEvent)
    except msgspec.ValidationError as exc:
        raise EventError(*not_an_object(exc)) from None
    return _segment_row(shape, ctx, type_hint, payload)


def segment_event_json(data: bytes, ctx: RequestContext, type_hint: str | None = None) -> EventRow:
    """The same event from its JSON bytes (a batch's element), stored exactly as sent.

    Decoding only the fields that become columns, and keeping the bytes as the payload
    instead of encoding the event again, is what makes batches cheap. Whatever this
    path does not handle identically goes to `segment_event`: a part that is not an
    object (so the answer names it), a key in the body (removed from the payload),
    a NUL escape (Postgres cannot store it) and a missing messageId (derived from the
    canonical encoding, so a retry gets the same id however it was serialized).
    """
    try:
        shape = decode_event(data)
    except msgspec.ValidationError:
        return segment_event(msgspec.json.decode(data), ctx, type_hint)
    given = _given(shape.messageId, shape.message_id)
    if (
        shape.writeKey is not UNSET
        or shape.write_key is not UNSET
        or not given
        or NUL_ESCAPE in data
    ):
        return segment_event(msgspec.json.decode(data), ctx, type_hint)
    if len(data) > ctx.max_event_bytes:
        raise _too_large(ctx)
    return _segment_row(shape, ctx, type_hint, data)


def _segment_row(
    shape: SegmentEvent, ctx: RequestContext, type_hint: str | None, payload: bytes
) -> EventRow:
    kind = type_hint or shape.type or "track"
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise EventError("type", f"type must be one of {', '.join(sorted(EVENT_TYPES))}")

    user_id = _identity(_given(shape.userId, shape.user_id), "userId")
    anonymous_id = _identity(_given(shape.anonymousId, shape.anonymous_id), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise EventError("userId", "userId or anonymousId is required")

    name = _text(shape.event, "event") if kind == "track" else None
    if kind == "track" and name is None:
        raise EventError("event", "track calls need an event name")
    if kind in ("page", "screen"):
        name = _text(shape.name, "name")

    properties = shape.properties or _NO_PROPERTIES
    context = shape.context or _NO_CONTEXT
    page = context.page or _NO_PAGE
    campaign = context.campaign or _NO_CAMPAIGN

    original = _time(_given(shape.originalTimestamp, shape.timestamp), "timestamp")
    sent_at = _time(shape.sentAt, "sentAt") or ctx.sent_at
    timestamp, clamped = corrected(ctx.received_at, original, sent_at, ctx.max_future)

    session = shape.sessionId or context.sessionId or properties.sessionId
    has_time = shape.timestamp is not None or shape.originalTimestamp not in (None, UNSET)
    return EventRow(
        project_id=ctx.project_id,
        message_id=_message_id(_given(shape.messageId, shape.message_id), has_time, ctx, payload),
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
        url=_soft_text(page.url) or _soft_text(properties.url),
        path=_soft_text(page.path) or _soft_text(properties.path),
        referrer=_soft_text(page.referrer) or _soft_text(properties.referrer),
        utm_source=_soft_text(campaign.source),
        utm_medium=_soft_text(campaign.medium),
        utm_campaign=_soft_text(campaign.name),
        ip=_soft_text(context.ip) or ctx.ip,
        user_agent=_soft_text(context.userAgent) or ctx.user_agent,
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
        message_id=_message_id(
            event.get("messageId", event.get("message_id")),
            event.get("timestamp") is not None or event.get("originalTimestamp") is not None,
            ctx,
            payload,
        ),
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
