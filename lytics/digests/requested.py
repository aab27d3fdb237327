"""What a caller may ask a digest for: a week and a recipient, checked before any work."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from lytics.digests.weeks import last_complete_week, parse_week

# Far-off dates would overflow the previous-week arithmetic; no data lives there.
EARLIEST_WEEK = date(2000, 1, 3)
LATEST_WEEK = date(2199, 12, 30)


class RequestError(ValueError):
    """Not a digest anyone can be sent; the message says why."""


def today(timezone: str) -> date:
    """Today in the digest's time zone."""
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def week(value: str | None, timezone: str) -> date:
    """The Monday of the week that `value` (any day of it) names; the last complete week
    when it names none."""
    if value is None:
        return last_complete_week(today(timezone))
    try:
        monday = parse_week(value)
    except (ValueError, OverflowError) as exc:
        raise RequestError("week must be a date (YYYY-MM-DD)") from exc
    if not EARLIEST_WEEK <= monday <= LATEST_WEEK:
        raise RequestError("week is out of range")
    return monday


def address(value: str) -> str:
    """A plausible address, lower-cased, checked before it reaches SQL or Resend."""
    candidate = value.strip()
    if (
        not 3 <= len(candidate) <= 320
        or candidate.count("@") != 1
        or candidate.startswith("@")
        or candidate.endswith("@")
        or any(ch.isspace() or not ch.isprintable() for ch in candidate)
    ):
        raise RequestError("not an email address")
    return candidate.lower()
