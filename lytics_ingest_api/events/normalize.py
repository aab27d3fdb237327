"""Turn what SDKs send into rows of `raw.events`, or say precisely what is wrong.

Three shapes arrive: Segment's (`/v1/<type>`, `/v1/batch`), the native one
(`/v1/events`, the same fields), and seed S1's `/collect` beacons. All end as
`EventRow`; the event as sent is kept whole in `payload`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET

from lytics_ingest_api.events.segment_shape import (
    MAX_MESSAGE_ID,
    MAX_NAME,
    Attribution,
    Campaign,
    CollectEvent,
    Context,
    Page,
    Properties,
    SegmentEvent,
    decode_event,
    invalid_part,
)
from lytics_ingest_api.events.timestamps import (
    EventTime,
    TimestampError,
    event_time,
    parse_time,
)
from lytics_ingest_api.jsontext import (
    MAX_EVENT_DEPTH,
    UnstorableJsonError,
    explain,
    may_be_unstorable,
    storable,
)

EVENT_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
PAGEVIEW_NAMES = frozenset({"pageview", "page_view", "page", "$pageview"})
_NO_PROPERTIES = Properties()
_NO_CONTEXT = Context()
_NO_PAGE = Page()
_NO_CAMPAIGN = Campaign()
_NO_ATTRIBUTION = Attribution()


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
    # The request's address and User-Agent, only when the payload holds no value of its
    # own (see `_from_request`); raw.event_ip() / raw.event_user_agent() give the event's.
    ip: str | None
    user_agent: str | None
    source: str
    payload: str  # JSON text


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


def _from_request(sent: Any, from_request: str | None) -> str | None:
    """The request's value for a column the payload may hold (ip, user agent): None when
    the payload holds a usable one, which wins and is then not stored a second time
    (~130 bytes of a ~1.4 KB row; migration 0014's functions read it from the payload)."""
    return None if _soft_text(sent) else from_request


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


def _encoded(event: dict[str, Any], ctx: RequestContext) -> bytes:
    try:
        payload = storable(event, MAX_EVENT_DEPTH)
    except UnstorableJsonError as exc:
        raise EventError(exc.field, exc.message) from None
    if len(payload) > ctx.max_event_bytes:
        raise _too_large(ctx)
    return payload


def decode_event_json(data: bytes) -> Any:
    """An event's JSON value, or an `EventError` naming the part that makes it unusable
    (invalid UTF-8, a number out of range, nesting beyond what can be decoded)."""
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        problem = explain(data, MAX_EVENT_DEPTH)
        if problem is not None:
            raise EventError(problem.field, problem.message) from None
        if isinstance(exc, RecursionError):
            raise EventError(
                "event", f"the event nests deeper than {MAX_EVENT_DEPTH} levels"
            ) from None
        raise EventError("event", f"malformed JSON: {exc}") from None


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
    payload = _encoded(_without_credentials(event), ctx)
    try:
        shape = msgspec.convert(event, SegmentEvent)
    except msgspec.ValidationError as exc:
        raise EventError(*invalid_part(exc)) from None
    return _segment_row(shape, ctx, type_hint, payload)


def segment_event_json(data: bytes, ctx: RequestContext, type_hint: str | None = None) -> EventRow:
    """The same event from its JSON bytes (a batch's element), stored exactly as sent.

    Decoding only the fields that become columns, and keeping the bytes as the payload
    instead of encoding the event again, is what makes batches cheap. Whatever this
    path does not handle identically goes to `segment_event`: a key in the body
    (removed from the payload), a missing messageId (derived from the canonical
    encoding, so a retry gets the same id however it was serialized), and bytes that
    may not be storable as they are (a NUL escape, deep nesting), which are decoded
    whole so that the answer names the field. Numbers in fields this path skips are
    not range-checked here: Postgres refuses the few it cannot hold (1e1000000), and
    `routes.events.ingest` then answers that event alone (`unstorable_event`).
    """
    if may_be_unstorable(data, MAX_EVENT_DEPTH):
        return segment_event(decode_event_json(data), ctx, type_hint)
    try:
        shape = decode_event(data)
    except msgspec.ValidationError as exc:
        raise EventError(*invalid_part(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return segment_event(decode_event_json(data), ctx, type_hint)
    given = _given(shape.messageId, shape.message_id)
    if shape.writeKey is not UNSET or shape.write_key is not UNSET or not given:
        return segment_event(decode_event_json(data), ctx, type_hint)
    if len(data) > ctx.max_event_bytes:
        raise _too_large(ctx)
    return _segment_row(shape, ctx, type_hint, data)


def _when(
    ctx: RequestContext, timestamp: Any, original: Any, sent_at: Any, original_field: str
) -> tuple[EventTime, datetime | None, datetime | None]:
    """The event's time (timestamps.event_time), its client time and its sentAt."""
    stamp = _time(timestamp, "timestamp")
    client = _time(original, original_field)
    sent = _time(sent_at, "sentAt") or ctx.sent_at
    try:
        when = event_time(ctx.received_at, stamp, client, sent, ctx.max_future)
    except TimestampError as exc:
        raise EventError(original_field, f"{original_field}: {exc}") from None
    return when, client or stamp, sent


def unstorable_event(payload: str) -> EventError:
    """Why Postgres refused an event's row, naming the field when it can be found."""
    problem = explain(payload.encode(), MAX_EVENT_DEPTH)
    if problem is not None:
        return EventError(problem.field, problem.message)
    return EventError("event", "the database cannot store this event", code="unstorable")


def _text_payload(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        problem = explain(payload, MAX_EVENT_DEPTH)
        field = problem.field if problem is not None else "event"
        raise EventError(field, f"{field} is not valid UTF-8") from None


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

    original = None if shape.originalTimestamp is UNSET else shape.originalTimestamp
    when, client_time, sent_at = _when(
        ctx, shape.timestamp, original, shape.sentAt, "originalTimestamp"
    )

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
        timestamp=when.timestamp,
        original_timestamp=client_time,
        sent_at=sent_at,
        received_at=ctx.received_at,
        timestamp_clamped=when.clamped,
        url=_soft_text(page.url) or _soft_text(properties.url),
        path=_soft_text(page.path) or _soft_text(properties.path),
        referrer=_soft_text(page.referrer) or _soft_text(properties.referrer),
        utm_source=_soft_text(campaign.source),
        utm_medium=_soft_text(campaign.medium),
        utm_campaign=_soft_text(campaign.name),
        ip=_from_request(context.ip, ctx.ip),
        user_agent=_from_request(context.userAgent, ctx.user_agent),
        source=ctx.source,
        payload=_text_payload(payload),
    )


def collect_event(event: Any, ctx: RequestContext) -> EventRow:
    """Seed S1's beacon: eventType, sessionId, visitorId, siteId, url, path, attribution.

    Its `timestamp` is the browser's clock when the event happened (Segment's
    `originalTimestamp`), so it is corrected by `sentAt` when one is sent.
    """
    if not isinstance(event, dict):
        raise EventError("event", "the event must be a JSON object")
    payload = _encoded(_without_credentials(event), ctx)
    try:
        shape = msgspec.convert(event, CollectEvent)
    except msgspec.ValidationError as exc:
        raise EventError(*invalid_part(exc)) from None
    event_type = _text(shape.eventType, "eventType")
    if event_type is None:
        raise EventError("eventType", "eventType is required")
    visitor = _identity(shape.visitorId, "visitorId")
    user = _identity(shape.userId, "userId")
    if visitor is None and user is None:
        raise EventError("visitorId", "visitorId is required")
    attribution = shape.attribution or _NO_ATTRIBUTION
    utm = attribution.utmParams or {}

    when, client_time, sent_at = _when(ctx, None, shape.timestamp, shape.sentAt, "timestamp")
    is_page = event_type.lower() in PAGEVIEW_NAMES
    return EventRow(
        project_id=ctx.project_id,
        message_id=_message_id(
            shape.messageId or shape.message_id,
            shape.timestamp is not None or shape.originalTimestamp is not None,
            ctx,
            payload,
        ),
        type="page" if is_page else "track",
        event=None if is_page else event_type,
        anonymous_id=visitor,
        user_id=user,
        session_id=_identity(shape.sessionId, "sessionId"),
        timestamp=when.timestamp,
        original_timestamp=client_time,
        sent_at=sent_at,
        received_at=ctx.received_at,
        timestamp_clamped=when.clamped,
        url=_soft_text(shape.url),
        path=_soft_text(shape.path),
        referrer=_soft_text(shape.referrer) or _soft_text(attribution.referrer),
        utm_source=_soft_text(utm.get("utm_source")),
        utm_medium=_soft_text(utm.get("utm_medium")),
        utm_campaign=_soft_text(utm.get("utm_campaign")),
        ip=ctx.ip,  # a beacon's own `ip`, if any, is not taken (only the request's address)
        user_agent=_from_request(shape.userAgent, ctx.user_agent),
        source=ctx.source,
        payload=_text_payload(payload),
    )
