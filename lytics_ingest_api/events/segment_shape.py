"""The event request bodies, declared once as msgspec types: decoder, validation and schema.

These structs are the single declaration of what the event endpoints accept: the
decoders below enforce every constraint declared here (`Meta`: lengths, counts,
enums), and the OpenAPI document is generated from them. The request bodies:

- `SegmentEvent`: `/v1/track|identify|page|screen|group|alias`, each element of
  `/v1/batch`, and `/v1/events` (one event, or an array of at most
  `MAX_BATCH_EVENTS`).
- `SegmentBatch`: `/v1/batch`; its events stay JSON bytes (`msgspec.Raw`) until each
  is decoded as a `SegmentEvent` on its own, so one bad event is rejected alone.
- `CollectEvent`: `/collect` beacons and the `GET /collect` pixel's query.

An event of a batch is decoded straight from its JSON bytes, where msgspec skips
every field not named here without building it (the products, traits and library
details that make up most of an event). Leaves that are only extracted when usable
are `Any`: a wrong type there never rejects an event, the payload keeps it. `UNSET`
marks fields whose absence differs from `null` (an SDK's `userId: null` does not fall
back to `user_id`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID = 100
MAX_NAME = 500
MAX_TIME_TEXT = 64

Kind = Literal["track", "page", "screen", "identify", "group", "alias"]
Name = Annotated[str, Meta(max_length=MAX_NAME)]
MessageId = Annotated[str, Meta(max_length=MAX_MESSAGE_ID)]
# SDKs send numeric user ids; they are stored as text.
Id = Annotated[str, Meta(max_length=MAX_NAME)] | int | float
Time = (
    Annotated[str, Meta(max_length=MAX_TIME_TEXT, description="ISO 8601; without a zone, UTC")]
    | Annotated[float, Meta(description="epoch seconds, or milliseconds above 1e11")]
)
WriteKey = Annotated[str, Meta(max_length=MAX_NAME)]


class Page(Struct):
    url: Any = None
    path: Any = None
    referrer: Any = None


class Campaign(Struct):
    source: Any = None
    medium: Any = None
    name: Any = None


class Context(Struct):
    page: Page | None = None
    campaign: Campaign | None = None
    ip: Any = None
    userAgent: Any = None  # Segment's camelCase names, as sent
    sessionId: Any = None


class Properties(Struct):
    sessionId: Any = None
    url: Any = None
    path: Any = None
    referrer: Any = None


class AnyObject(Struct):
    """Must be an object; what it holds is not read."""


class SegmentEvent(Struct):
    """A Segment call. userId or anonymousId is required; track needs `event`.

    Time (docs/ingest.md): an explicit `timestamp` wins; otherwise
    `receivedAt + (originalTimestamp - sentAt)`.
    """

    type: Kind | None = None
    event: Name | None = None
    name: Name | None = None
    userId: Id | UnsetType | None = UNSET
    user_id: Id | None = None
    anonymousId: Id | UnsetType | None = UNSET
    anonymous_id: Id | None = None
    messageId: MessageId | UnsetType | None = UNSET
    message_id: MessageId | None = None
    timestamp: Time | None = None
    originalTimestamp: Time | UnsetType | None = UNSET
    sentAt: Time | None = None
    sessionId: Any = None
    groupId: Id | None = None
    previousId: Id | None = None
    properties: Properties | None = None
    traits: AnyObject | None = None
    context: Context | None = None
    integrations: AnyObject | None = None
    writeKey: WriteKey | UnsetType | None = UNSET
    write_key: WriteKey | UnsetType | None = UNSET


class SegmentBatch(Struct):
    """Segment's batch: the events, and what applies to all of them."""

    batch: Annotated[
        list[msgspec.Raw],
        Meta(max_length=MAX_BATCH_EVENTS, description="SegmentEvent objects, answered per event"),
    ]
    context: Any = None
    integrations: Any = None
    sentAt: Time | None = None
    writeKey: WriteKey | None = None
    write_key: WriteKey | None = None


class Attribution(Struct):
    referrer: Any = None
    utmParams: dict[str, Any] | None = None


class CollectEvent(Struct):
    """Seed S1's beacon: eventType and visitorId (or userId) are required."""

    eventType: Name | None = None
    visitorId: Id | None = None
    userId: Id | None = None
    sessionId: Id | None = None
    siteId: Name | None = None
    messageId: MessageId | None = None
    message_id: MessageId | None = None
    timestamp: Time | None = None
    originalTimestamp: Time | None = None
    sentAt: Time | None = None
    url: Any = None
    path: Any = None
    referrer: Any = None
    userAgent: Any = None
    attribution: Attribution | None = None
    writeKey: WriteKey | None = None
    write_key: WriteKey | None = None


decode_event = msgspec.json.Decoder(SegmentEvent).decode
decode_batch = msgspec.json.Decoder(SegmentBatch).decode

_PATH = re.compile(r"\s*-\s*at `\$\.?([^`]*)`")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")


def invalid_part(error: msgspec.ValidationError, root: str = "event") -> tuple[str, str]:
    """(field, message) for a validation error, the field as a path like `context.page`."""
    text = str(error)
    match = _PATH.search(text)
    field = match.group(1) if match else ""
    problem = _PATH.sub("", text)
    missing = _MISSING.match(problem)
    if missing:  # name the missing field itself
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
        return field, f"{field} is required"
    if not field:
        if problem.startswith("Expected `object`"):
            return root, f"each {root} must be a JSON object"
        return root, f"{root}: {problem}"
    return field, f"{field}: {problem}"
