"""Client times: parsing, and the clock-skew correction of Segment and PostHog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# Numbers above this are milliseconds since the epoch (year 5138 in seconds).
_MS_THRESHOLD = 1e11


class TimestampError(ValueError):
    pass


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


def corrected(
    received_at: datetime,
    original: datetime | None,
    sent_at: datetime | None,
    max_future: timedelta,
) -> tuple[datetime, bool]:
    """`received_at + (original - sent_at)`: the event's time on the server's clock.

    Returns the time and whether it was clamped (more than `max_future` ahead
    of receipt: a broken client clock; kept, at receipt time, and flagged).
    """
    if original is None:
        return received_at, False
    timestamp = received_at + (original - sent_at) if sent_at is not None else original
    if timestamp - received_at > max_future:
        return received_at, True
    return timestamp, False
