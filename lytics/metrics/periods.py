"""Date ranges for KPI tiles: a range, and the previous range of the same length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: date  # inclusive
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the range ends before it starts")
        if self.days > MAX_RANGE_DAYS:
            raise ValueError(f"a range spans at most {MAX_RANGE_DAYS} days")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The same number of days immediately before this range."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)


def change_percent(current: float | None, previous: float | None) -> float | None:
    """Relative change in percent, None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return round(100.0 * (current - previous) / previous, 2)
