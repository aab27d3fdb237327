"""The date and time forms an export request takes, the same in the API and the command.

A plain date is the start of that UTC day, and a time without an offset is UTC:
partition windows and their keys (`dt=YYYY-MM-DD/hour=HH`) are UTC, so that is
what a bare date or time means here. An offset, when given, is honoured.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

FORMS = (
    "YYYY-MM-DD (the start of that UTC day), or YYYY-MM-DDTHH:MM[:SS[.ffffff]] "
    "with an optional Z or ±HH:MM (none: UTC)"
)
# Narrower than datetime.fromisoformat (no week dates, no basic format): what is documented.
_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)
_PLUS_LOST = re.compile(r"\d \d{2}:\d{2}$", re.ASCII)


def parse_moment(text: str) -> datetime:
    """The aware UTC instant `text` names; ValueError (saying the accepted forms) otherwise."""
    value = text.strip()
    if not _SHAPE.fullmatch(value):
        hint = ""
        if _PLUS_LOST.search(value):
            hint = " (in a URL query a + reads as a space: send it as %2B)"
        raise ValueError(f"{text!r} is not a date or time: use {FORMS}{hint}")
    try:
        parsed = datetime.fromisoformat(value)
        aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        return aware.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a valid date or time ({exc})") from None
