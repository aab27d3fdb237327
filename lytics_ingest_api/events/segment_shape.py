"""The parts of a Segment event that become columns, declared once as msgspec types.

Two ways in, one declaration: an event already decoded into a dict is converted
(`msgspec.convert`), and an event of a batch is decoded straight from its JSON
bytes, where msgspec skips every field not named here without building it (the
products, traits and library details that make up most of an event). Leaves are
`Any`: a wrong type there never rejects an event, because normalize only takes what
it can use and the payload keeps the rest. Only the parts that must be objects are
typed as objects, so a validation error always means "this part is not an object".
`UNSET` marks fields whose absence differs from `null` (an SDK's `userId: null`
does not fall back to `user_id`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from msgspec import UNSET, Struct


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
    type: Any = None
    event: Any = None
    name: Any = None
    userId: Any = UNSET
    user_id: Any = None
    anonymousId: Any = UNSET
    anonymous_id: Any = None
    messageId: Any = UNSET
    message_id: Any = None
    timestamp: Any = None
    originalTimestamp: Any = UNSET
    sentAt: Any = None
    sessionId: Any = None
    properties: Properties | None = None
    traits: AnyObject | None = None
    context: Context | None = None
    writeKey: Any = UNSET
    write_key: Any = UNSET


class BatchEnvelope(Struct):
    """A Segment batch whose events stay as their JSON bytes until each is normalized."""

    batch: list[msgspec.Raw]
    context: Any = None
    integrations: Any = None
    sentAt: Any = None
    writeKey: Any = None
    write_key: Any = None


decode_event = msgspec.json.Decoder(SegmentEvent).decode
decode_envelope = msgspec.json.Decoder(BatchEnvelope).decode

_PATH = re.compile(r"at `\$\.?([^`]*)`")


def not_an_object(error: msgspec.ValidationError) -> tuple[str, str]:
    """(field, message) for a validation error: the part at its path is not an object."""
    match = _PATH.search(str(error))
    field = match.group(1) if match else ""
    if not field:
        return "event", "each event must be a JSON object"
    return field, f"{field} must be an object"
