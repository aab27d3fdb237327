"""Digest weeks: Monday to Sunday, named by their Monday (the Dagster partition key)."""

from __future__ import annotations

from datetime import date, timedelta

from lytics.metrics.periods import Period


def week_of(day: date) -> date:
    """The Monday starting the week that contains `day`."""
    return day - timedelta(days=day.weekday())


def week_period(monday: date) -> Period:
    if monday.weekday() != 0:
        raise ValueError(f"a digest week starts on a Monday, not on {monday.isoformat()}")
    return Period(monday, monday + timedelta(days=6))


def last_complete_week(today: date) -> date:
    """The week a digest sent on `today` reports on: the last one that has ended."""
    return week_of(today) - timedelta(days=7)


class WeekNotOverError(ValueError):
    """A week is mailed once it has ended: the outbox marks it sent for good."""

    def __init__(self, monday: date, today: date) -> None:
        super().__init__(
            f"the week of {monday.isoformat()} has not ended yet; the last complete week "
            f"is {last_complete_week(today).isoformat()}"
        )


def require_ended(monday: date, today: date) -> date:
    """`monday` when its week is over on `today`, else WeekNotOverError.

    Sending an unfinished week would mark it sent with partial numbers, and the
    Monday run would then skip everyone for that week.
    """
    if monday > last_complete_week(today):
        raise WeekNotOverError(monday, today)
    return monday


def parse_week(value: str) -> date:
    """`2026-11-16` (any day of the week is accepted and means its week)."""
    return week_of(date.fromisoformat(value))
