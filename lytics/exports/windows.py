"""Partition windows: half-open [start, end) intervals of ingestion time, in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Frequency = Literal["hourly", "daily"]
FREQUENCIES: tuple[Frequency, ...] = ("hourly", "daily")
STEP = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
# The partition keys Dagster's Hourly/DailyPartitionsDefinition use by default.
PARTITION_KEY_FORMAT = {"hourly": "%Y-%m-%d-%H:%M", "daily": "%Y-%m-%d"}


@dataclass(frozen=True)
class Window:
    frequency: Frequency
    start: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a window starts at an aware datetime")
        start = self.start.astimezone(UTC)
        aligned = start.replace(minute=0, second=0, microsecond=0)
        if self.frequency == "daily":
            aligned = aligned.replace(hour=0)
        if aligned != start:
            raise ValueError(
                f"{self.start.isoformat()} is not the start of a {self.frequency} window"
            )
        object.__setattr__(self, "start", start)

    @property
    def end(self) -> datetime:
        return self.start + STEP[self.frequency]

    @property
    def hive_path(self) -> str:
        """`dt=YYYY-MM-DD/hour=HH` (hourly) or `dt=YYYY-MM-DD` (daily)."""
        day = f"dt={self.start:%Y-%m-%d}"
        return f"{day}/hour={self.start:%H}" if self.frequency == "hourly" else day

    @property
    def partition_key(self) -> str:
        return self.start.strftime(PARTITION_KEY_FORMAT[self.frequency])

    @classmethod
    def from_partition_key(cls, frequency: Frequency, key: str) -> Window:
        parsed = datetime.strptime(key, PARTITION_KEY_FORMAT[frequency]).replace(tzinfo=UTC)
        return cls(frequency, parsed)


def floor(moment: datetime, frequency: Frequency) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if frequency == "daily" else moment


def windows_between(frequency: Frequency, since: datetime, until: datetime) -> Iterator[Window]:
    """Every window that overlaps [since, until)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must carry a time zone")
    start = floor(since, frequency)
    while start < until:
        yield Window(frequency, start)
        start += STEP[frequency]
