"""Request-body schemas for the OpenAPI document.

Intake handlers read their bodies themselves (gzip, text/plain, per-event
validation), so Litestar cannot infer these schemas; they are declared here
and attached with `operation_class=json_body(...)`. The fuzz test drives the
API from exactly this document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

_KEYS = {
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "additionalProperties": "additional_properties",
    "oneOf": "one_of",
    "anyOf": "any_of",
}


def to_schema(spec: dict[str, Any]) -> Schema:
    """A small JSON Schema dict → Litestar's Schema objects."""
    kwargs: dict[str, Any] = {}
    for key, raw in spec.items():
        value: Any = raw
        if key == "type":
            value = [OpenAPIType(v) for v in raw] if isinstance(raw, list) else OpenAPIType(raw)
        elif key == "properties":
            value = {k: to_schema(v) for k, v in raw.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(raw, dict)):
            value = to_schema(raw)
        elif key in ("oneOf", "anyOf"):
            value = [to_schema(v) for v in raw]
        kwargs[_KEYS.get(key, key)] = value
    return Schema(**kwargs)


def json_body(spec: dict[str, Any], description: str | None = None) -> type[Operation]:
    schema = to_schema(spec)

    @dataclass
    class WithJsonBody(Operation):
        def __post_init__(self) -> None:
            content = {
                media: OpenAPIMediaType(schema=schema)
                for media in ("application/json", "text/plain")
            }
            self.request_body = RequestBody(content=content, required=True, description=description)

    return WithJsonBody


_ID = {"type": ["string", "integer"], "maxLength": 500}
_OBJ = {"type": "object"}
_TIME = {"type": ["string", "integer"], "description": "ISO 8601 or epoch milliseconds"}

EVENT_BODY: dict[str, Any] = {
    "type": "object",
    "description": "A Segment-style call. userId or anonymousId is required; track needs event.",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "page", "screen", "identify", "group", "alias"],
        },
        "event": {"type": "string", "maxLength": 500},
        "name": {"type": "string", "maxLength": 500},
        "userId": _ID,
        "anonymousId": _ID,
        "messageId": {"type": "string", "maxLength": 100},
        "timestamp": _TIME,
        "originalTimestamp": _TIME,
        "sentAt": _TIME,
        "properties": _OBJ,
        "traits": _OBJ,
        "context": _OBJ,
        "integrations": _OBJ,
        "groupId": _ID,
        "previousId": _ID,
        "writeKey": {"type": "string"},
    },
}

BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": EVENT_BODY, "maxItems": 2500},
        "sentAt": _TIME,
        "context": _OBJ,
        "integrations": _OBJ,
        "writeKey": {"type": "string"},
    },
}

EVENTS_BODY: dict[str, Any] = {
    "oneOf": [EVENT_BODY, {"type": "array", "items": EVENT_BODY, "maxItems": 2500}],
}

COLLECT_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["eventType", "visitorId"],
    "properties": {
        "eventType": {"type": "string"},
        "sessionId": {"type": "string"},
        "visitorId": {"type": "string"},
        "siteId": {"type": "string"},
        "timestamp": _TIME,
        "url": {"type": "string"},
        "path": {"type": "string"},
        "referrer": {"type": "string"},
        "attribution": {
            "type": "object",
            "properties": {
                "utmParams": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
        "writeKey": {"type": "string"},
    },
}

METRICS_BODY: dict[str, Any] = {
    "oneOf": [
        {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["source", "metric_name", "metric_value", "metric_date"],
                "properties": {
                    "source": {"type": "string", "maxLength": 200},
                    "metric_name": {"type": "string", "maxLength": 200},
                    "metric_value": {"type": "number"},
                    "metric_date": {"type": "string", "format": "date"},
                    "meta": _OBJ,
                },
            },
        },
        {"type": "object", "required": ["metrics"], "properties": {"metrics": {"type": "array"}}},
    ]
}

SESSION_START_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["sessionId"],
    "properties": {
        "sessionId": {"type": "string", "maxLength": 200},
        "userId": {"type": "string"},
        "userEmail": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "referrer": {"type": "string"},
                "userAgent": {"type": "string"},
                "screen": _OBJ,
                "viewport": _OBJ,
                "timestamp": _TIME,
            },
        },
    },
}

REPLAY_EVENTS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "sessionId": {"type": "string", "maxLength": 200},
        "batchId": {"type": "string", "maxLength": 200},
        "events": {"type": "array", "items": {"type": "object"}},
        "timestamp": _TIME,
    },
}

WEBHOOK_BODY: dict[str, Any] = {
    "type": "object",
    "description": "The sender's payload; verified on the raw bytes before parsing.",
}
