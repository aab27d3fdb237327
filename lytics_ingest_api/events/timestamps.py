"""Client times: parsing, and which time an event happened at.

The rule, as Segment's spec and RudderStack's server define it (docs/ingest.md):

1. An explicit `timestamp` wins: it is the time the caller says the event
   happened (a historical import, a backdated call) and is taken as sent.
2. Otherwise, with `originalTimestamp` (the SDK's clock when the call was made)
   and `sentAt` (the SDK's clock when the request left, per event or per batch):
   `receivedAt + (originalTimestamp - sentAt)`, the event's time on the server's
   clock, whatever the client's clock was off by.
3. `originalTimestamp` without any `sentAt`: taken as sent.
4. No time at all: `receivedAt`.

Whatever the source, a result more than `max_future` after receipt (a broken
client clock) is kept at `receivedAt` and flagged as clamped. A correction that
leaves the representable range (`originalTimestamp` in year 9999 with `sentAt` in
2000) is refused as invalid input, naming `originalTimestamp`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Numbers above this are milliseconds since the epoch (year 5138 in seconds).
_MS_THRESHOLD = 1e11


class TimestampError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventTime:
    timestamp: datetime  # when the event happened, on the server's clock
    clamped: bool  # the client's time was too far ahead and receipt time was used


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (with or without zone; naive means UTC) or epoch seconds/milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TimestampError("must be an ISO 8601 string or epoch number")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > _MS_THRESHOLD else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TimestampError("epoch value out of range") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise TimestampError(f"not an ISO 8601 time: {value[:40]!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TimestampError("must be an ISO 8601 string or epoch number")


def event_time(
    received_at: datetime,
    timestamp: datetime | None,
    original: datetime | None,
    sent_at: datetime | None,
    max_future: timedelta,
) -> EventTime:
    """The event's time by the rule of this module's docstring.

    Raises `TimestampError` when the skew correction leaves the range of datetimes.
    """
    if timestamp is not None:
        when = timestamp
    elif original is not None and sent_at is not None:
        try:
            when = received_at + (original - sent_at)
        except OverflowError as exc:
            raise TimestampError(
                "correcting it by sentAt leaves the range of representable times"
            ) from exc
    elif original is not None:
        when = original
    else:
        return EventTime(received_at, False)
    if when - received_at > max_future:
        return EventTime(received_at, True)
    return EventTime(when, False)
