"""JSON text for jsonb columns: Postgres cannot store U+0000 in text or jsonb.

Rather than lose an event for one NUL character (which some clients do send),
the character is replaced by U+FFFD; the walk happens only when a NUL is there.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode
NUL_ESCAPE = b"\\u0000"


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def storable(value: Any) -> tuple[Any, bytes]:
    """The value (NUL-free) and its JSON encoding."""
    encoded = _encode(value)
    if NUL_ESCAPE in encoded:
        value = without_nul(value)
        encoded = _encode(value)
    return value, encoded


def jsonb_text(value: Any) -> str:
    return storable(value)[1].decode()
